"""New shipment ("/new-shipment"): the form an operator books a real shipment with.

What it asks: the reference and the external references (purchase order, sales order,
customer), up to :data:`~dashboard.pages.new_shipment_form.ITEM_ROWS` product lots with their quantities, the lane (origin and
destination follow it) and the carrier from their pick lists, the planned departure and
arrival (UTC), the loggers (typed or scanned, one serial a line, or picked from the loggers that
are free) and the serialised units (SSCC or SGTIN scans: GS1 element strings, Digital Links or
EPC URIs, one a line; read by the services' own :func:`services.units_on_board.read_scan`).

Submitting calls :func:`services.whole_booking.book`: the API's own create, then attach and load,
in one transaction, so a refused logger or scan books nothing. The form first reads every field
(:func:`~dashboard.pages.new_shipment_form.read_form`, pure) and shows every mistake it can see next to the field; what needs the
database (a taken reference, a retired product, a busy logger) comes back from the service as
one error naming its field, shown next to that field (:func:`~dashboard.pages.new_shipment_form.slot_of`). A logger past its
calibration due date is refused; the form then shows the override, whose reason is required and
goes to the audit trail and the timeline (EU GDP 9.3).

Only roles with ``shipments.manage`` (operator, admin) see the form; the service checks the
role again whatever the page shows.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

import flask
from dash import Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from coldchain.errors import (
    CalibrationExpiredError,
    ColdchainError,
    PermissionDeniedError,
)
from dashboard.pages import PageContext, shipment_href
from dashboard.pages.forms import SESSION_ENDED
from dashboard.pages.login import current_principal
from dashboard.pages.new_shipment_form import (
    ITEM_ROWS,
    FormValues,
    field_text,
    message_of,
    read_form,
    slot_of,
)
from security.accounts import Principal
from services import locations, loggers, products, whole_booking
from services.caller import Caller
from services.lifecycle import MANAGE

PATH = "/new-shipment"
NAV_NEW = "nav-new-shipment"

# Component ids of this page.
NS_LOAD = "ns-load"  # dcc.Store: set once, fires the pick lists' callback
NS_LANES = "ns-lanes"  # dcc.Store: lane id → "origin → destination · mode"
NS_FORM = "ns-form"
NS_REFERENCE = "ns-reference"
NS_PO = "ns-po"
NS_SO = "ns-so"
NS_CUSTOMER = "ns-customer"
NS_LANE = "ns-lane"
NS_LANE_ENDS = "ns-lane-ends"
NS_CARRIER = "ns-carrier"
NS_DEPARTURE = "ns-departure"
NS_ARRIVAL = "ns-arrival"
NS_LOGGERS = "ns-loggers"  # textarea: serials typed or scanned
NS_LOGGER_PICK = "ns-logger-pick"  # dropdown (multi): the free loggers
NS_OVERRIDE = "ns-override"  # the calibration override panel
NS_OVERRIDE_REASON = "ns-override-reason"
NS_UNITS = "ns-units"
NS_SUBMIT = "ns-submit"
NS_FEEDBACK = "ns-feedback"


def item_id(part: str, row: int) -> str:
    """The id of a product lot row's field: ``part`` is product, lot or qty."""
    return f"ns-item-{part}-{row}"


#: Where an error can be shown: the form's error slots, one per field (or per item row).
SLOTS: Final[tuple[str, ...]] = (
    "reference",
    "purchase_order",
    "sales_order",
    "customer",
    *(f"items[{i}]" for i in range(ITEM_ROWS)),
    "lane",
    "carrier",
    "planned_departure",
    "planned_arrival",
    "loggers",
    "units",
)


def error_id(slot: str) -> str:
    """The id of the message shown under the field of ``slot``."""
    return "ns-error-" + re.sub(r"[^a-z0-9]+", "-", slot).strip("-")


# ---- layout ---------------------------------------------------------------------------------


def nav_links(principal: Principal | None) -> list[Any]:
    """The navigation bar's link to this page, for the roles that may book."""
    if principal is None or not principal.can(MANAGE):
        return []
    return [dcc.Link("New shipment", href=PATH, id=NAV_NEW, className="nav-link")]


def _field(label: str, control: Any, slot: str, *, hint: str | None = None) -> html.Div:
    return html.Div(
        className="form-field",
        children=[
            html.Label(label, className="form-label"),
            control,
            *([html.Div(hint, className="form-hint")] if hint else []),
            html.Div(id=error_id(slot), className="field-error", role="alert"),
        ],
    )


def _item_row(i: int) -> html.Div:
    return html.Div(
        className="item-row",
        children=[
            html.Div(
                className="form-field grow",
                children=[
                    html.Label(
                        f"Product {i + 1}" + ("" if i == 0 else " (optional)"),
                        className="form-label",
                    ),
                    dcc.Dropdown(id=item_id("product", i), options=[], placeholder="Product"),
                ],
            ),
            html.Div(
                className="form-field",
                children=[
                    html.Label("Lot", className="form-label"),
                    dcc.Input(id=item_id("lot", i), type="text", maxLength=20, debounce=False),
                ],
            ),
            html.Div(
                className="form-field narrow",
                children=[
                    html.Label("Quantity", className="form-label"),
                    dcc.Input(id=item_id("qty", i), type="number", min=1, step=1),
                ],
            ),
            html.Div(id=error_id(f"items[{i}]"), className="field-error wide", role="alert"),
        ],
    )


def form(visible: bool) -> html.Div:
    """The booking form (always in the layout, shown to the roles that may book)."""
    text: dict[str, Any] = {"type": "text", "debounce": False}
    return html.Div(
        id=NS_FORM,
        className="card form-card",
        style=None if visible else {"display": "none"},
        children=[
            html.H2("Booking"),
            html.Div(
                className="form-grid",
                children=[
                    _field(
                        "Reference",
                        dcc.Input(id=NS_REFERENCE, maxLength=100, **text),
                        "reference",
                        hint="Your shipment number, unique.",
                    ),
                    _field(
                        "Purchase order",
                        dcc.Input(id=NS_PO, maxLength=200, **text),
                        "purchase_order",
                    ),
                    _field(
                        "Sales order", dcc.Input(id=NS_SO, maxLength=200, **text), "sales_order"
                    ),
                    _field(
                        "Customer", dcc.Input(id=NS_CUSTOMER, maxLength=200, **text), "customer"
                    ),
                ],
            ),
            html.H2("Products on board"),
            *[_item_row(i) for i in range(ITEM_ROWS)],
            html.H2("Route and plan"),
            html.Div(
                className="form-grid",
                children=[
                    _field(
                        "Lane",
                        html.Div(
                            [
                                dcc.Dropdown(id=NS_LANE, options=[], placeholder="Lane"),
                                html.Div(id=NS_LANE_ENDS, className="form-hint"),
                            ]
                        ),
                        "lane",
                    ),
                    _field(
                        "Carrier",
                        dcc.Dropdown(id=NS_CARRIER, options=[], placeholder="Carrier (optional)"),
                        "carrier",
                    ),
                    _field(
                        "Planned departure (UTC)",
                        dcc.Input(id=NS_DEPARTURE, type="text", placeholder="YYYY-MM-DD HH:MM"),
                        "planned_departure",
                    ),
                    _field(
                        "Planned arrival (UTC)",
                        dcc.Input(id=NS_ARRIVAL, type="text", placeholder="YYYY-MM-DD HH:MM"),
                        "planned_arrival",
                    ),
                ],
            ),
            html.H2("Loggers and units"),
            html.Div(
                className="form-grid",
                children=[
                    _field(
                        "Loggers: scan or type serials",
                        html.Div(
                            [
                                dcc.Textarea(
                                    id=NS_LOGGERS,
                                    className="scan-box",
                                    placeholder="One serial a line",
                                ),
                                dcc.Dropdown(
                                    id=NS_LOGGER_PICK,
                                    options=[],
                                    multi=True,
                                    placeholder="…or pick free loggers",
                                ),
                            ]
                        ),
                        "loggers",
                    ),
                    _field(
                        "Units: scan SSCC or SGTIN",
                        dcc.Textarea(
                            id=NS_UNITS,
                            className="scan-box",
                            placeholder="One scan a line (GS1 element string, "
                            "Digital Link or EPC URI)",
                        ),
                        "units",
                    ),
                ],
            ),
            html.Div(
                id=NS_OVERRIDE,
                className="override",
                style={"display": "none"},
                children=[
                    html.Label(
                        "Calibration override: why ship with this logger anyway "
                        "(required; recorded in the audit trail and on the timeline)",
                        className="form-label",
                    ),
                    dcc.Textarea(id=NS_OVERRIDE_REASON, maxLength=2000, className="scan-box"),
                ],
            ),
            html.Div(
                className="form-actions",
                children=[
                    html.Button("Book shipment", id=NS_SUBMIT, className="btn btn-ack", n_clicks=0)
                ],
            ),
            html.Div(id=NS_FEEDBACK, className="feedback", role="status"),
        ],
    )


def layout(page: PageContext, principal: Principal | None) -> html.Div:
    """The page: the form for the roles that may book, else a line saying who may."""
    del page  # the pick lists are filled by a callback
    allowed = principal is not None and principal.can(MANAGE)
    return html.Div(
        className="page page-new-shipment",
        children=[
            dcc.Store(id=NS_LOAD, data=1),
            dcc.Store(id=NS_LANES, data={}),
            html.Div(className="page-header", children=[html.H1("New shipment")]),
            html.P(
                "Booking shipments needs the operator or admin role"
                + ("" if principal is None else f"; yours is {principal.role}")
                + ".",
                className="muted",
                style={"display": "none"} if allowed else None,
            ),
            form(allowed),
        ],
    )


# ---- callbacks ------------------------------------------------------------------------------


def _options(conn: Any) -> dict[str, Any]:
    """The pick lists: live products, lanes and carriers, and the loggers free now."""
    sites = {r["location_id"]: r["name"] for r in locations.list_records(conn, "locations")}
    lanes = locations.list_records(conn, "lanes", include_retired=False)
    lane_text = {
        str(r["lane_id"]): f"{sites.get(r['origin_location_id'], r['origin_location_id'])} → "
        f"{sites.get(r['destination_location_id'], r['destination_location_id'])} · {r['mode']}"
        for r in lanes
    }
    today = datetime.now(UTC).date()
    free = []
    for r in loggers.list_loggers(conn):
        if r["retired_at"] is not None or r["current_shipment_id"] is not None:
            continue
        due = r["calibration_due"]
        note = "" if due is None or due >= today else f" (calibration overdue since {due})"
        free.append({"label": f"{r['device_id']} · {r['model']}{note}", "value": r["device_id"]})
    return {
        "products": [
            {"label": f"{r['name']} · {r['gtin']}", "value": r["gtin"]}
            for r in products.list_products(conn, include_retired=False)
        ],
        "lanes": [
            {"label": f"{r['code']}: {lane_text[str(r['lane_id'])]}", "value": r["lane_id"]}
            for r in lanes
        ],
        "lane_text": lane_text,
        "carriers": [
            {
                "label": r["name"] + (f" ({r['code']})" if r["code"] else ""),
                "value": r["carrier_id"],
            }
            for r in locations.list_records(conn, "carriers", include_retired=False)
        ],
        "loggers": free,
    }


def register(app: Dash, page: PageContext) -> None:
    """The page's callbacks: the pick lists, the lane's ends, and booking."""

    @app.callback(
        *[Output(item_id("product", i), "options") for i in range(ITEM_ROWS)],
        Output(NS_LANE, "options"),
        Output(NS_LANES, "data"),
        Output(NS_CARRIER, "options"),
        Output(NS_LOGGER_PICK, "options"),
        Input(NS_LOAD, "data"),
    )
    def pick_lists(_load: Any) -> tuple[Any, ...]:
        if current_principal() is None:
            raise PreventUpdate
        with page.connection() as conn:
            opts = _options(conn)
        return (
            *([opts["products"]] * ITEM_ROWS),
            opts["lanes"],
            opts["lane_text"],
            opts["carriers"],
            opts["loggers"],
        )

    @app.callback(
        Output(NS_LANE_ENDS, "children"), Input(NS_LANE, "value"), State(NS_LANES, "data")
    )
    def lane_ends(lane_id: Any, lanes: dict[str, str] | None) -> str:
        if lane_id in (None, ""):
            return "Origin and destination follow the lane."
        return (lanes or {}).get(str(lane_id), "")

    @app.callback(
        Output(NS_FEEDBACK, "children"),
        Output(NS_FEEDBACK, "className"),
        Output(NS_OVERRIDE, "style"),
        *[Output(error_id(slot), "children") for slot in SLOTS],
        Input(NS_SUBMIT, "n_clicks"),
        State(NS_REFERENCE, "value"),
        State(NS_PO, "value"),
        State(NS_SO, "value"),
        State(NS_CUSTOMER, "value"),
        *[
            State(item_id(part, i), "value")
            for i in range(ITEM_ROWS)
            for part in ("product", "lot", "qty")
        ],
        State(NS_LANE, "value"),
        State(NS_CARRIER, "value"),
        State(NS_DEPARTURE, "value"),
        State(NS_ARRIVAL, "value"),
        State(NS_LOGGERS, "value"),
        State(NS_LOGGER_PICK, "value"),
        State(NS_UNITS, "value"),
        State(NS_OVERRIDE_REASON, "value"),
        State(NS_OVERRIDE, "style"),
        prevent_initial_call=True,
    )
    def submit(clicks: int | None, *state: Any) -> tuple[Any, ...]:
        if not clicks:
            raise PreventUpdate
        reference, po, so, customer = state[:4]
        flat = state[4 : 4 + 3 * ITEM_ROWS]
        lane, carrier, departure, arrival, typed, picked, units, override, override_style = state[
            4 + 3 * ITEM_ROWS :
        ]
        values = FormValues(
            reference=reference,
            purchase_order=po,
            sales_order=so,
            customer=customer,
            items=tuple((flat[3 * i], flat[3 * i + 1], flat[3 * i + 2]) for i in range(ITEM_ROWS)),
            lane_id=lane,
            carrier_id=carrier,
            planned_departure=departure,
            planned_arrival=arrival,
            loggers_typed=typed,
            loggers_picked=tuple(picked or ()),
            units=units,
            override_reason=override,
        )
        return book_from_form(page, values, current_principal(), override_style)


def _answer(message: Any, ok: bool, override_style: Any, errors: dict[str, str]) -> tuple[Any, ...]:
    return (
        message,
        "feedback ok" if ok else "feedback error",
        override_style,
        *[errors.get(slot, "") for slot in SLOTS],
    )


def book_from_form(
    page: PageContext, values: FormValues, principal: Principal | None, override_style: Any
) -> tuple[Any, ...]:
    """Read the form, book through :func:`services.whole_booking.book`; the callback's outputs."""
    if principal is None:
        return _answer(SESSION_ENDED, False, override_style, {})
    now = datetime.now(UTC)
    booking = read_form(values, today=now.date())
    if booking.new is None:
        return _answer(
            "Nothing was booked: correct the fields marked.", False, override_style, booking.errors
        )
    override = field_text(values.override_reason) or None
    client = flask.request.remote_addr if flask.has_request_context() else None
    try:
        with page.connection() as conn:
            row, created = whole_booking.book(
                conn,
                Caller.of(principal, client),
                new=booking.new,
                loggers=booking.loggers,
                units=booking.units,
                override_reason=override,
                now=now,
            )
    except PermissionDeniedError:
        return _answer(
            f"Your role ({principal.role}) cannot book shipments: nothing was booked.",
            False,
            override_style,
            {},
        )
    except CalibrationExpiredError as exc:
        return _answer(
            "Nothing was booked: a logger's calibration has expired. Recalibrate it, choose "
            "another, or give the override's reason below and book again.",
            False,
            {"display": "block"},
            {"loggers": message_of(exc)},
        )
    except ColdchainError as exc:
        slot = slot_of(exc, booking)
        errors = {} if slot is None else {slot: message_of(exc)}
        text = "Nothing was booked" + (": correct the field marked." if slot else f": {exc}")
        return _answer(text, False, override_style, errors)
    reference = row["reference"]
    attached = [a["device_id"] for a in row["loggers"] if a["attached"]]
    message = [
        "Booked " if created else "Already booked (the same booking was sent before): ",
        dcc.Link(reference, href=shipment_href(reference), id="ns-booked-link"),
        f" — planned, {len(attached)} logger(s)"
        + (f" ({', '.join(attached)})" if attached else "")
        + f", {len(booking.units)} unit(s). ",
        dcc.Link("See the fleet", href="/"),
    ]
    return _answer(message, True, override_style, {})
