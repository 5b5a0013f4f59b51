"""Sites ("/sites"): the locations (sites with a GLN, coordinates and a geofence), carriers and
lanes; register one of each, or retire one with a reason; set a site's time zone.

One section per table of :mod:`services.locations`, built from :data:`SECTIONS` (the same
list, form and retire box three times, not three copies). Everyone may read the lists; the
forms are shown to the roles with ``locations.manage`` (admin), and the service checks the role
again whatever the page shows. A retirement names the version the list showed when it was
loaded (kept in the browser), so a record changed meanwhile is refused, not retired unseen; a
site that a live lane uses is refused until the lane is retired. A site's time zone (an IANA
name, migration 0017) can be set here too, at the version listed and with a reason, and each
site shows its local time now (:func:`dashboard.pages.fmt_site_ts`); changing a record's other
fields is the API's and the CLI's for now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate
from pydantic import ValidationError

from coldchain.errors import ColdchainError, InvalidRecordError
from coldchain.timezones import zone_names
from dashboard.pages import PageContext, badge, data_attrs, fmt_site_ts, table
from dashboard.pages.forms import (
    REASON_MAX,
    SESSION_ENDED,
    caller,
    labelled,
    number_input,
    refusal,
    text_input,
)
from db.types import Row
from security.accounts import Principal
from security.roles import Permission
from services import locations as service
from services.locations import MODELS, Table

PATH = "/sites"
NAV = "nav-sites"
PERMISSION: Permission = "locations.manage"
MODES = ("road", "air", "sea", "rail", "multimodal")


@dataclass(frozen=True, slots=True)
class Section:
    """One table on the page: its title, key column, form fields and list columns."""

    table: Table
    title: str
    noun: str
    key: str
    #: (field, label, kind): kind is "text", "number", "mode", "site" (a pick list of sites) or
    #: "zone" (a pick list of IANA time zones).
    fields: tuple[tuple[str, str, str], ...]

    def id(self, part: str) -> str:
        """A component id of this section: ``sites-lanes-origin-location-id``."""
        return f"sites-{self.table}-{part.replace('_', '-')}"

    @property
    def labels(self) -> dict[str, str]:
        return {f: label for f, label, _ in self.fields} | {"reason": "Reason"}


SECTIONS: tuple[Section, ...] = (
    Section(
        "locations",
        "Sites",
        "site",
        "location_id",
        (
            ("gln", "GLN", "text"),
            ("name", "Name", "text"),
            ("address", "Address", "text"),
            ("lat", "Latitude", "number"),
            ("lon", "Longitude", "number"),
            ("geofence_m", "Geofence radius (m)", "number"),
            ("time_zone", "Time zone", "zone"),
        ),
    ),
    Section(
        "carriers",
        "Carriers",
        "carrier",
        "carrier_id",
        (("name", "Name", "text"), ("code", "Code (SCAC, IATA…)", "text")),
    ),
    Section(
        "lanes",
        "Lanes",
        "lane",
        "lane_id",
        (
            ("code", "Code", "text"),
            ("origin_location_id", "Origin site", "site"),
            ("destination_location_id", "Destination site", "site"),
            ("mode", "Mode", "mode"),
        ),
    ),
)
BY_TABLE = {s.table: s for s in SECTIONS}


# ---- pure ---------------------------------------------------------------------------------------


def record_body(section: Section, values: dict[str, Any]) -> dict[str, Any]:
    """The service's fields from a section's form (text trimmed; an empty field absent)."""
    body: dict[str, Any] = {}
    for field, _, _ in section.fields:
        value = values.get(field)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            continue
        body[field] = value
    return body


def validated(section: Section, body: dict[str, Any]) -> Any:
    """The record to create; InvalidRecordError names the first bad field."""
    try:
        return MODELS[section.table].model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidRecordError(
            ".".join(map(str, first["loc"])) or section.table, first["msg"]
        ) from None


def record_label(section: Section, row: Row) -> str:
    """How a record is named in a pick list."""
    if section.table == "locations":
        return f"{row['name']} ({row['gln']})"
    if section.table == "carriers":
        return str(row["name"]) + (f" ({row['code']})" if row["code"] else "")
    return f"{row['code']}: {row['origin_location_id']} → {row['destination_location_id']} ({row['mode']})"


def _cells(section: Section, row: Row, now: datetime) -> list[Any]:
    if section.table == "locations":
        return [
            row["gln"],
            row["name"],
            row["address"] or "—",
            f"{row['lat']:.5f}, {row['lon']:.5f}",
            f"{row['geofence_m']:g} m",
            html.Span(
                [
                    html.Span(row["time_zone"], className="cell-zone"),
                    html.Br(),
                    html.Small(
                        "now " + fmt_site_ts(now, row["time_zone"], row["name"]),
                        className="muted cell-local-time",
                    ),
                ]
            ),
        ]
    if section.table == "carriers":
        return [row["name"], row["code"] or "—"]
    return [row["code"], row["origin_location_id"], row["destination_location_id"], row["mode"]]


HEADERS: dict[str, list[str]] = {
    "locations": ["GLN", "Name", "Address", "Position", "Geofence", "Time zone", ""],
    "carriers": ["Name", "Code", ""],
    "lanes": ["Code", "Origin", "Destination", "Mode", ""],
}


def record_rows(section: Section, rows: list[Row], now: datetime | None = None) -> list[html.Tr]:
    """A section's list rows, retired ones marked (a site's local time at ``now``)."""
    at = now or datetime.now(UTC)
    return [
        html.Tr(
            [
                *(html.Td(c) for c in _cells(section, r, at)),
                html.Td(badge("retired", "offline") if r["retired_at"] else badge("in use", "ok")),
            ],
            className=f"record-row {section.table}-row" + (" retired" if r["retired_at"] else ""),
            **data_attrs(key=str(r[section.key]), retired="true" if r["retired_at"] else "false"),
        )
        for r in rows
    ]


# ---- layout -------------------------------------------------------------------------------------


def _input(section: Section, field: str, label: str, kind: str) -> html.Label:
    if kind == "number":
        return labelled(label, number_input(section.id(field)))
    if kind == "mode":
        options = [{"label": m, "value": m} for m in MODES]
        return labelled(
            label,
            dcc.Dropdown(id=section.id(field), options=options, value="road", clearable=False),
        )
    if kind == "zone":
        return labelled(label, zone_dropdown(section.id(field)))
    if kind == "site":
        return labelled(
            label,
            dcc.Dropdown(id=section.id(field), options=[], value=None, placeholder="Pick a site"),
        )
    return labelled(label, text_input(section.id(field)))


def zone_dropdown(id: str) -> dcc.Dropdown:
    """A searchable pick list of the IANA time zones (UTC first)."""
    options = [{"label": z, "value": z} for z in zone_names()]
    return dcc.Dropdown(id=id, options=options, value="UTC", clearable=False)


ZONE_SITE = "sites-zone-site"
ZONE_NEW = "sites-zone-new"
ZONE_REASON = "sites-zone-reason"
ZONE_SET = "sites-zone-set"


def _zone_editor(section: Section) -> list[Any]:
    """The sites' extra box: set a registered site's time zone (locations only)."""
    if section.table != "locations":
        return []
    return [
        html.H3("Set a site's time zone"),
        html.Div(
            className="form-row",
            children=[
                labelled("Which", dcc.Dropdown(id=ZONE_SITE, options=[], value=None), grow=True),
                labelled("Time zone", zone_dropdown(ZONE_NEW), grow=True),
                labelled(
                    "Reason (required; recorded in the audit trail)",
                    text_input(ZONE_REASON, max_length=REASON_MAX),
                    grow=True,
                ),
            ],
        ),
        html.Div(
            className="toolbar",
            children=[html.Button("Set time zone", id=ZONE_SET, className="btn", n_clicks=0)],
        ),
    ]


def _section(section: Section, can_manage: bool) -> html.Div:
    hidden = None if can_manage else {"display": "none"}
    return html.Div(
        className="card",
        id=section.id("card"),
        children=[
            dcc.Store(id=section.id("changed"), data=0),
            dcc.Store(id=section.id("versions"), data={}),  # key -> version, as listed
            html.H2(section.title),
            html.Div(id=section.id("list")),
            html.Div(
                className="editor",
                style=hidden,
                id=section.id("forms"),
                children=[
                    html.H3(f"Register a {section.noun}"),
                    html.Div(
                        className="form-row", children=[_input(section, *f) for f in section.fields]
                    ),
                    html.Div(
                        className="toolbar",
                        children=[
                            html.Button(
                                "Register",
                                id=section.id("add"),
                                className="btn btn-ack",
                                n_clicks=0,
                            )
                        ],
                    ),
                    html.H3(f"Retire a {section.noun}"),
                    html.Div(
                        className="form-row",
                        children=[
                            labelled(
                                "Which",
                                dcc.Dropdown(id=section.id("pick"), options=[], value=None),
                                grow=True,
                            ),
                            labelled(
                                "Reason (required; recorded in the audit trail)",
                                text_input(section.id("reason"), max_length=REASON_MAX),
                                grow=True,
                            ),
                        ],
                    ),
                    html.Div(
                        className="toolbar",
                        children=[
                            html.Button(
                                "Retire", id=section.id("retire"), className="btn", n_clicks=0
                            )
                        ],
                    ),
                    *_zone_editor(section),
                    html.Div(id=section.id("feedback"), className="feedback", role="status"),
                ],
            ),
        ],
    )


def layout(page: PageContext, principal: Principal | None = None) -> html.Div:
    """The three lists, and their forms for the roles that may change them."""
    can_manage = principal is not None and principal.can(PERMISSION)
    role = principal.role if principal is not None else "none"
    note = (
        None
        if can_manage
        else html.P(
            f"Your role ({role}) can read the sites, carriers and lanes; administrators "
            "register and retire them.",
            className="muted",
        )
    )
    return html.Div(
        className="page page-sites",
        children=[
            html.Div(className="page-header", children=[html.H1("Sites, carriers and lanes")]),
            note,
            *(_section(s, can_manage) for s in SECTIONS),
        ],
    )


# ---- callbacks ----------------------------------------------------------------------------------


def register(app: Dash, page: PageContext) -> None:
    """The page's callbacks: per section, its list, its registration and its retirement."""
    for section in SECTIONS:
        _register_section(app, page, section)

    lanes, sites = BY_TABLE["lanes"], BY_TABLE["locations"]

    @app.callback(
        Output(lanes.id("origin_location_id"), "options"),
        Output(lanes.id("destination_location_id"), "options"),
        Output(ZONE_SITE, "options"),
        Input(sites.id("changed"), "data"),
    )
    def site_choices(_changed: int | None) -> tuple[Any, Any, Any]:
        with page.connection() as conn:
            rows = service.list_records(conn, "locations", include_retired=False)
        options = [{"label": record_label(sites, r), "value": r["location_id"]} for r in rows]
        return options, options, options

    @app.callback(
        Output(sites.id("feedback"), "children", allow_duplicate=True),
        Output(sites.id("feedback"), "className", allow_duplicate=True),
        Output(sites.id("changed"), "data", allow_duplicate=True),
        Input(ZONE_SET, "n_clicks"),
        State(ZONE_SITE, "value"),
        State(ZONE_NEW, "value"),
        State(ZONE_REASON, "value"),
        State(sites.id("versions"), "data"),
        State(sites.id("changed"), "data"),
        prevent_initial_call=True,
    )
    def set_zone(
        clicks: int | None, key: Any, zone: Any, reason: Any, versions: Any, changed: int | None
    ) -> tuple[Any, ...]:
        if not clicks:
            raise PreventUpdate
        who = caller()
        if who is None:
            return SESSION_ENDED, "feedback error", no_update
        reason = (reason or "").strip()
        labels = sites.labels | {"location_id": "Which"}
        try:
            if key is None or not isinstance(versions, dict) or str(key) not in versions:
                raise InvalidRecordError("location_id", "pick the site first")
            if not reason:
                raise InvalidRecordError("reason", "say why (required)")
            with page.connection() as conn:
                row = service.update_record(
                    conn,
                    who,
                    "locations",
                    key=key,
                    changes={"time_zone": zone or ""},
                    expected_version=int(versions[str(key)]),
                    reason=reason,
                )
        except ColdchainError as exc:
            return (
                refusal(exc, what="sites", role=who.role, labels=labels),
                "feedback error",
                no_update,
            )
        message = f"{record_label(sites, row)} is now in {row['time_zone']}."
        return message, "feedback ok", (changed or 0) + 1


def _register_section(app: Dash, page: PageContext, section: Section) -> None:
    @app.callback(
        Output(section.id("list"), "children"),
        Output(section.id("pick"), "options"),
        Output(section.id("versions"), "data"),
        Input(section.id("changed"), "data"),
    )
    def refresh(_changed: int | None) -> tuple[Any, Any, Any]:
        with page.connection() as conn:
            rows = service.list_records(conn, section.table)
        live = [r for r in rows if r["retired_at"] is None]
        options = [{"label": record_label(section, r), "value": r[section.key]} for r in live]
        versions = {str(r[section.key]): r["version"] for r in live}
        body = record_rows(section, rows)
        empty = f"No {section.title.lower()} yet."
        return (
            table(HEADERS[section.table], body, empty=empty, id=section.id("table")),
            options,
            versions,
        )

    @app.callback(
        Output(section.id("feedback"), "children"),
        Output(section.id("feedback"), "className"),
        Output(section.id("changed"), "data"),
        Input(section.id("add"), "n_clicks"),
        State(section.id("changed"), "data"),
        *(State(section.id(f), "value") for f, _, _ in section.fields),
        prevent_initial_call=True,
    )
    def add(clicks: int | None, changed: int | None, *form: Any) -> tuple[Any, ...]:
        if not clicks:
            raise PreventUpdate
        who = caller()
        if who is None:
            return SESSION_ENDED, "feedback error", no_update
        values = dict(zip((f for f, _, _ in section.fields), form, strict=True))
        try:
            record = validated(section, record_body(section, values))
            with page.connection() as conn:
                row, created = service.create_record(conn, who, section.table, record=record)
        except ColdchainError as exc:
            text = refusal(exc, what=section.title.lower(), role=who.role, labels=section.labels)
            return text, "feedback error", no_update
        name = record_label(section, row)
        message = f"Registered {name}." if created else f"{name} was already registered as given."
        return message, "feedback ok", (changed or 0) + 1

    @app.callback(
        Output(section.id("feedback"), "children", allow_duplicate=True),
        Output(section.id("feedback"), "className", allow_duplicate=True),
        Output(section.id("changed"), "data", allow_duplicate=True),
        Input(section.id("retire"), "n_clicks"),
        State(section.id("pick"), "value"),
        State(section.id("reason"), "value"),
        State(section.id("versions"), "data"),
        State(section.id("changed"), "data"),
        prevent_initial_call=True,
    )
    def retire(
        clicks: int | None, key: Any, reason: str | None, versions: Any, changed: int | None
    ) -> tuple[Any, ...]:
        if not clicks:
            raise PreventUpdate
        who = caller()
        if who is None:
            return SESSION_ENDED, "feedback error", no_update
        reason = (reason or "").strip()
        try:
            if key is None or not isinstance(versions, dict) or str(key) not in versions:
                raise InvalidRecordError(section.key, "pick the record to retire first")
            if not reason:
                raise InvalidRecordError("reason", "say why (required)")
            with page.connection() as conn:
                row = service.retire_record(
                    conn,
                    who,
                    section.table,
                    key=key,
                    expected_version=int(versions[str(key)]),
                    reason=reason,
                )
        except ColdchainError as exc:
            text = refusal(exc, what=section.title.lower(), role=who.role, labels=section.labels)
            return text, "feedback error", no_update
        return f"Retired {record_label(section, row)}.", "feedback ok", (changed or 0) + 1
