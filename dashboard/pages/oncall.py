"""On call ("/oncall", every role): who is on call now in each rotation, the next hand-overs
and the overrides; administrators edit rotations and add overrides here.

The page reads and writes through :mod:`services.oncall`, the functions the API's
``/oncall/rotations`` routes and ``coldchain oncall`` call: everyone with ``read`` sees every
rotation; a change needs ``admin`` (checked there again) and is audited with the reason typed
here. Members are edited as user names in turn order (``ana, ben, cleo``): to reorder, retype
the order; to remove someone, leave them out. Hand-over times are in the rotation's own zone;
the hand-over instants are shown in the zone the person picked, labelled.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from coldchain.errors import ColdchainError, InvalidRecordError
from dashboard.pages import PageContext, badge, data_attrs, fmt_ts, table
from dashboard.pages.forms import REASON_MAX, SESSION_ENDED, caller, labelled, text_input
from db.types import Row
from security.accounts import Principal
from services import oncall as service

PATH = "/oncall"
NAV = "nav-oncall"
LIST = "oncall-list"
CHANGED = "oncall-changed"
FEEDBACK = "oncall-feedback"
PICK = "oncall-pick"
NAME = "oncall-name"
TEAM = "oncall-team"
ZONE = "oncall-zone"
HANDOVER = "oncall-handover"
SHIFT_DAYS = "oncall-shift-days"
START = "oncall-start"
MEMBERS = "oncall-members"
REASON = "oncall-reason"
SAVE = "oncall-save"
OVERRIDE_WHO = "oncall-override-who"
OVERRIDE_FROM = "oncall-override-from"
OVERRIDE_UNTIL = "oncall-override-until"
OVERRIDE_REASON = "oncall-override-reason"
ADD_OVERRIDE = "oncall-add-override"


# ---- pure ---------------------------------------------------------------------------------------


def who(person: Row | None) -> str:
    """``Ana Alves (ana)``, or "nobody"."""
    return "nobody" if person is None else f"{person['full_name']} ({person['username']})"


def rotation_card(row: Row) -> html.Div:
    """One rotation: who is on call now, the members, the next hand-overs, the overrides."""
    missing = [m["username"] for m in row["members"] if not (m["has_email"] or m["has_phone"])]
    handovers = [
        html.Tr([html.Td(fmt_ts(h["starts_at"])), html.Td(h["username"])])
        for h in row["handovers"][1:]
    ]
    overrides = [
        html.Tr(
            [
                html.Td(o["username"]),
                html.Td(fmt_ts(o["starts_at"])),
                html.Td(fmt_ts(o["ends_at"])),
                html.Td(o["reason"]),
                html.Td(o["created_by"]),
            ]
        )
        for o in row["overrides"]
    ]
    return html.Div(
        className="card rotation",
        **data_attrs(rotation=row["name"], oncall=(row["on_call"] or {}).get("username", "")),
        children=[
            html.H2(f"{row['team']} — {row['name']}"),
            html.P(
                [
                    "On call now: ",
                    badge(who(row["on_call"]), "ok" if row["on_call"] else "alarm"),
                ],
                className="oncall-now",
            ),
            html.P(
                f"Hands over every {row['shift_days']} day(s) at {row['handover_time']} "
                f"{row['time_zone']}, since {row['start_date']}. Members in turn: "
                + (", ".join(m["username"] for m in row["members"]) or "none"),
                className="sub",
            ),
            html.P(
                f"No e-mail or mobile number: {', '.join(missing)} (set them on the people page)",
                className="sub warning",
            )
            if missing
            else None,
            html.H3("Next hand-overs"),
            table(["From", "On call"], handovers, empty="None scheduled."),
            html.H3("Overrides"),
            table(["Who", "From", "Until", "Why", "By"], overrides, empty="None."),
        ],
    )


def members_of(text: str | None) -> list[str]:
    """User names typed as ``ana, ben cleo`` (commas or spaces), in that order."""
    return [m for m in (text or "").replace(",", " ").split() if m]


def parse_time(text: str | None, field: str) -> time:
    """``09:00`` as a time; InvalidRecordError naming ``field`` otherwise."""
    try:
        return time.fromisoformat((text or "").strip())
    except ValueError:
        raise InvalidRecordError(field, f"{text!r}: give a time of day as HH:MM") from None


def parse_instant(text: str | None, field: str) -> datetime:
    """``2026-12-24T09:00+01:00`` as an aware instant; InvalidRecordError naming ``field``."""
    try:
        value = datetime.fromisoformat((text or "").strip())
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidRecordError(
            field, f"{text!r}: give a date and time with its offset, 2026-12-24T09:00+01:00"
        )
    return value


# ---- layout -------------------------------------------------------------------------------------


def nav_links(principal: Principal | None) -> list[dcc.Link]:
    """The "On call" link, for everyone logged in."""
    if principal is None:
        return []
    return [dcc.Link("On call", href=PATH, id=NAV, className="nav-link")]


def layout(principal: Principal | None = None) -> html.Div:
    """The rotations; for administrators, the editor and the override form."""
    admin = principal is not None and principal.can("admin")
    editor = html.Div(
        className="card editor",
        style=None if admin else {"display": "none"},
        children=[
            html.H2("Create or change a rotation"),
            html.Div(
                className="form-row",
                children=[
                    labelled("Rotation", dcc.Dropdown(id=PICK, options=[], value=None), grow=True),
                    labelled("or a new one's name", text_input(NAME, max_length=64)),
                    labelled("Team", text_input(TEAM)),
                    labelled("Time zone", text_input(ZONE, placeholder="Europe/Berlin")),
                    labelled("Hand-over (HH:MM)", text_input(HANDOVER, placeholder="09:00")),
                    labelled(
                        "Shift (days)",
                        dcc.Input(id=SHIFT_DAYS, type="number", min=1, max=28, value=7),
                    ),
                    labelled("First shift", text_input(START, placeholder="2026-12-07")),
                ],
            ),
            html.Div(
                className="form-row",
                children=[
                    labelled(
                        "Members in turn order (user names)",
                        text_input(MEMBERS, max_length=4000),
                        grow=True,
                    ),
                    labelled(
                        "Reason (recorded in the audit trail)",
                        text_input(REASON, max_length=REASON_MAX),
                        grow=True,
                    ),
                ],
            ),
            html.Div(
                className="toolbar",
                children=[html.Button("Save", id=SAVE, className="btn btn-ack", n_clicks=0)],
            ),
            html.H2("Add an override"),
            html.Div(
                className="form-row",
                children=[
                    labelled("Who (user name)", text_input(OVERRIDE_WHO, max_length=64)),
                    labelled(
                        "From", text_input(OVERRIDE_FROM, placeholder="2026-12-24T09:00+01:00")
                    ),
                    labelled(
                        "Until", text_input(OVERRIDE_UNTIL, placeholder="2026-12-27T09:00+01:00")
                    ),
                    labelled("Why", text_input(OVERRIDE_REASON, max_length=REASON_MAX), grow=True),
                ],
            ),
            html.Div(
                className="toolbar",
                children=[
                    html.Button("Add override", id=ADD_OVERRIDE, className="btn", n_clicks=0)
                ],
            ),
        ],
    )
    return html.Div(
        className="page page-oncall",
        children=[
            dcc.Store(id=CHANGED, data=0),
            html.Div(className="page-header", children=[html.H1("On call")]),
            html.Div(id=FEEDBACK, className="feedback", role="status"),
            html.Div(id=LIST),
            editor,
        ],
    )


# ---- callbacks ----------------------------------------------------------------------------------


def register(app: Dash, page: PageContext) -> None:
    """The rotations, saving one, adding an override, and the editor filled from a pick."""

    @app.callback(Output(LIST, "children"), Output(PICK, "options"), Input(CHANGED, "data"))
    def refresh(_changed: int | None) -> tuple[Any, Any]:
        person = caller()
        if person is None:
            raise PreventUpdate
        with page.connection() as conn:
            rows = service.list_rotations(conn, person)
        cards: list[Any] = [rotation_card(r) for r in rows]
        if not cards:
            cards = [html.P("No rotations yet.", className="muted")]
        return cards, [{"label": f"{r['team']} — {r['name']}", "value": r["name"]} for r in rows]

    @app.callback(
        Output(NAME, "value"),
        Output(TEAM, "value"),
        Output(ZONE, "value"),
        Output(HANDOVER, "value"),
        Output(SHIFT_DAYS, "value"),
        Output(START, "value"),
        Output(MEMBERS, "value"),
        Input(PICK, "value"),
        prevent_initial_call=True,
    )
    def fill(name: str | None) -> tuple[Any, ...]:
        person = caller()
        if person is None or not name:
            raise PreventUpdate
        with page.connection() as conn:
            row = service.get_rotation(conn, person, name=name)
        return (
            "",
            row["team"],
            row["time_zone"],
            row["handover_time"],
            row["shift_days"],
            str(row["start_date"]),
            ", ".join(m["username"] for m in row["members"]),
        )

    @app.callback(
        Output(FEEDBACK, "children"),
        Output(FEEDBACK, "className"),
        Output(CHANGED, "data"),
        Input(SAVE, "n_clicks"),
        Input(ADD_OVERRIDE, "n_clicks"),
        State(PICK, "value"),
        State(NAME, "value"),
        State(TEAM, "value"),
        State(ZONE, "value"),
        State(HANDOVER, "value"),
        State(SHIFT_DAYS, "value"),
        State(START, "value"),
        State(MEMBERS, "value"),
        State(REASON, "value"),
        State(OVERRIDE_WHO, "value"),
        State(OVERRIDE_FROM, "value"),
        State(OVERRIDE_UNTIL, "value"),
        State(OVERRIDE_REASON, "value"),
        State(CHANGED, "data"),
        prevent_initial_call=True,
    )
    def change(save: int | None, add: int | None, *values: Any) -> tuple[Any, ...]:
        if ctx.triggered_id not in (SAVE, ADD_OVERRIDE) or not (save or add):
            raise PreventUpdate
        person = caller()
        if person is None:
            return SESSION_ENDED, "feedback error", no_update
        *form, changed = values
        try:
            with page.connection() as conn:
                if ctx.triggered_id == SAVE:
                    message = _save(conn, person, *form[:9])
                else:
                    message = _override(conn, person, form[0], *form[9:])
        except ColdchainError as exc:
            return f"Not done: {exc}", "feedback error", no_update
        return message, "feedback ok", (changed or 0) + 1


def _save(
    conn: Any,
    person: Any,
    picked: str | None,
    name: str | None,
    team: str | None,
    zone: str | None,
    handover: str | None,
    shift_days: int | None,
    start: str | None,
    members: str | None,
    reason: str | None,
) -> str:
    """Create the named rotation, or change the picked one; what to say."""
    try:
        start_date = date.fromisoformat((start or "").strip())
    except ValueError:
        raise InvalidRecordError("start_date", f"{start!r}: give a date, 2026-12-07") from None
    spec = service.rotation_spec(
        team=team or "",
        time_zone=zone or "",
        handover_time=parse_time(handover, "handover_time"),
        shift_days=int(shift_days or 0),
        start_date=start_date,
        members=members_of(members),
    )
    new = (name or "").strip()
    if new:
        row = service.create_rotation(conn, person, name=new, spec=spec)
        return f"Rotation {row['name']} created; on call now: {who(row['on_call'])}."
    if not picked:
        raise InvalidRecordError("name", "pick a rotation to change, or name a new one")
    row = service.update_rotation(conn, person, name=picked, spec=spec, reason=reason or "")
    return f"Rotation {row['name']} saved; on call now: {who(row['on_call'])}."


def _override(
    conn: Any,
    person: Any,
    picked: str | None,
    username: str | None,
    starts: str | None,
    ends: str | None,
    reason: str | None,
) -> str:
    """Add an override to the picked rotation; what to say."""
    if not picked:
        raise InvalidRecordError("rotation", "pick the rotation first")
    row = service.add_override(
        conn,
        person,
        rotation=picked,
        username=(username or "").strip(),
        starts_at=parse_instant(starts, "starts_at"),
        ends_at=parse_instant(ends, "ends_at"),
        reason=reason or "",
    )
    return f"{row['username']} is on call in {picked} from {fmt_ts(row['starts_at'])}."
