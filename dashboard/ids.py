"""Component ids and the CSS classes that tests and stylesheets rely on, in one place.

Browser tests find things through these: e.g. the fleet row of a shipment is
``#fleet-table tr.fleet-row[data-reference="SHP-1"]`` and its temperature cell ``td.cell-temp``;
an alert row is ``#alerts-table tr.alert-row[data-alert-id="7"]`` with ``button.btn-ack``.
"""

from __future__ import annotations

# The shell
URL = "url"
PAGE = "page-content"
NAVBAR = "navbar"
NAV_FLEET = "nav-fleet"
NAV_ALERTS = "nav-alerts"
NAV_PASSPORT = "nav-passport"
# The open, unacknowledged alerts: the count in the navigation bar (empty when none), refreshed
# by its own interval; the bell toggles a sound and a desktop notification when it grows
# (dashboard/assets/alert-count.js, which also puts the count in the tab title).
NAV_ALERT_COUNT = "nav-alert-count"
NAV_ALERT_INTERVAL = "nav-alert-interval"
NAV_ALERT_BELL = "nav-alert-bell"

# Fleet page "/"
FLEET_INTERVAL = "fleet-interval"
FLEET_SEARCH = "fleet-search"
FLEET_CONDITION = "fleet-condition"
FLEET_SORT = "fleet-sort"  # dcc.Store: {"col": ..., "desc": ...}
FLEET_SORT_BUTTON = "fleet-sort-button"  # pattern-matching type, {"type": ..., "col": key}
FLEET_SUMMARY = "fleet-summary"
FLEET_MAP = "fleet-map"
FLEET_TABLE = "fleet-table"
FLEET_TBODY = "fleet-tbody"
FLEET_COUNT = "fleet-count"
FLEET_PAGE = "fleet-page"  # dcc.Store: the table page shown, from 0
FLEET_PREV = "fleet-prev"
FLEET_NEXT = "fleet-next"
FLEET_UPDATED = "fleet-updated"
FLEET_LANE = "fleet-lane"  # dcc.Dropdown: "origin → destination"
FLEET_CARRIER = "fleet-carrier"  # dcc.Dropdown
FLEET_QA = "fleet-qa"  # dcc.Dropdown: a key of dashboard.pages.fleet_table.QA_FILTERS

# Shipment page "/shipments/<reference>"
SHIPMENT_INTERVAL = "shipment-interval"
SHIPMENT_KEY = "shipment-key"  # dcc.Store holding the reference from the URL
SHIPMENT_HEADER = "shipment-header"
SHIPMENT_TEMP_GRAPH = "shipment-temp-graph"
SHIPMENT_RH_GRAPH = "shipment-rh-graph"
SHIPMENT_ROUTE_INTERVAL = "shipment-route-interval"
SHIPMENT_ROUTE_MAP = "shipment-route-map"  # the route map (dashboard/pages/shipment_route.py)
SHIPMENT_ROUTE_NOTE = "shipment-route-note"  # <p> under it: positions, range, ends
SHIPMENT_EXCURSIONS = "shipment-excursions"
SHIPMENT_ALERTS = "shipment-alerts"
SHIPMENT_DEVICES = "shipment-devices"
SHIPMENT_UNITS = "shipment-units"
SHIPMENT_LEGS = "shipment-legs"
SHIPMENT_UPDATED = "shipment-updated"
SHIPMENT_STABILITY_INTERVAL = "shipment-stability-interval"
SHIPMENT_STABILITY = "shipment-stability"  # the MKT and budget figures, one row per logger
SHIPMENT_STABILITY_GRAPH = "shipment-stability-graph"  # the two gauges
SHIPMENT_MKT = "shipment-mkt"  # <dd>: the highest MKT over the window, e.g. "5.22 °C"
SHIPMENT_BUDGET = "shipment-budget"  # <dd>: the most budget used, e.g. "1.9 %"
# The lifecycle panel: the state badge (span.badge-state with data-state), the transition
# buttons (shown only when allowed and the role may), attach/detach, the verdict, the timeline
# (rows tr.timeline-row with data-event).
SHIPMENT_STATE = "shipment-state"
SHIPMENT_ACTIONS = "shipment-actions"
SHIPMENT_START = "shipment-start"
SHIPMENT_ARRIVE = "shipment-arrive"
SHIPMENT_CANCEL = "shipment-cancel"
SHIPMENT_REASON = "shipment-reason"
SHIPMENT_ATTACH_SERIAL = "shipment-attach-serial"
SHIPMENT_ATTACH = "shipment-attach"
SHIPMENT_OVERRIDE = "shipment-override"  # the calibration override panel
SHIPMENT_OVERRIDE_REASON = "shipment-override-reason"
SHIPMENT_DETACH_PICK = "shipment-detach-pick"
SHIPMENT_DETACH = "shipment-detach"
SHIPMENT_ACTION_FEEDBACK = "shipment-action-feedback"
SHIPMENT_CHANGED = "shipment-changed"  # dcc.Store bumped after an action, to refresh at once
SHIPMENT_VERDICTS = "shipment-verdicts"  # div.verdict per product with data-gtin, data-verdict
SHIPMENT_TIMELINE = "shipment-timeline"
SHIPMENT_FORECAST = "shipment-forecast"
SHIPMENT_BANNER = "shipment-banner"  # div.status-banner: where the shipment stands, in a line

# Alerts page "/alerts"
ALERTS_INTERVAL = "alerts-interval"
ALERTS_STATE = "alerts-state"
ALERTS_SEVERITY = "alerts-severity"
ALERTS_ACTOR = "alerts-actor"
ALERTS_CLICK = "alerts-click"  # dcc.Store: the action button pressed (set by assets/actions.js)
ALERTS_FEEDBACK = "alerts-feedback"
ALERTS_CHANGED = "alerts-changed"  # dcc.Store: the last action's outcome (refreshes at once)
ALERTS_SUMMARY = "alerts-summary"
ALERTS_AGE_GRAPH = "alerts-age-graph"
ALERTS_TABLE = "alerts-table"
ALERTS_TBODY = "alerts-tbody"
ALERTS_UPDATED = "alerts-updated"

# Passport page "/passport"
PASSPORT_LOCATION = "passport-location"  # dcc.Location reading ?id=
PASSPORT_INPUT = "passport-input"
PASSPORT_BUTTON = "passport-button"
PASSPORT_RESULT = "passport-result"
PASSPORT_STATUS = "passport-status"  # <span> with data-status (ok, exposed, recalled...)
PASSPORT_GRAPH = "passport-temp-graph"
PASSPORT_CUSTODY = "passport-custody"  # rows tr.custody-row with data-shipment

# CSS classes with a meaning for tests
FLEET_ROW = "fleet-row"  # <tr> with data-reference and data-condition
CELL_REFERENCE = "cell-reference"
CELL_TEMP = "cell-temp"
CELL_LAST_SEEN = "cell-last-seen"
CELL_ALERTS = "cell-alerts"
CELL_OUT_OF_RANGE = "cell-out-of-range"  # for how long, since when (the open excursion's start)
CELL_PEAK = "cell-peak"
CELL_BUDGET = "cell-budget"
CELL_QA = "cell-qa"  # span.badge with data-state when QA has a say
CELL_CARRIER = "cell-carrier"
CELL_ETA = "cell-eta"
CELL_RISK = "cell-risk"
ALERT_ROW = "alert-row"  # <tr> with data-alert-id, data-state and data-severity
BTN_ACK = "btn-ack"
BTN_RESOLVE = "btn-resolve"
BTN_ASSIGN = "btn-assign"
ALERT_COMMENT = "alert-comment"  # the row's own comment box (input[data-alert-comment])
ALERT_ASSIGNEE = "alert-assignee"  # the row's pick list of people (select[data-alert-assignee])
ALERT_FEEDBACK = "alert-feedback"  # the row's own message: why an action was refused, or done
CELL_CONDITION = "cell-condition"  # the alert's state and whether its condition is under way

# The Ask box in the navigation bar (dashboard/ask_box.py) and its answer panel
ASK_INPUT = "ask-input"
ASK_BUTTON = "ask-button"
ASK_PANEL = "ask-panel"
ASK_CLOSE = "ask-close"
ASK_RESULT = "ask-result"
ASK_TEXT = "ask-text"  # the answer's text (or why the question was not taken)
