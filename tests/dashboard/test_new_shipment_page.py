"""The "New shipment" form and the shipment page's lifecycle panel, their callbacks called as the
browser calls them, against the real app and database, as each role: only operator and admin
book and move shipments (the server checks, whatever the page shows); a refusal is shown under
the field it names and books nothing; an expired calibration needs the override's reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from coldchain import lifecycle
from coldchain.gs1 import check_digit
from dashboard import ids
from dashboard.pages import new_shipment as ns
from dashboard.pages import new_shipment_form
from dashboard.pages import shipment_life as life
from services import bookings, units_on_board
from services import lifecycle as lifecycle_s
from services import timeline as timeline_s
from tests.dashboard.callbacks import call
from tests.dashboard.masterdata import MasterData, register
from tests.dashboard.test_qa_page import _callback
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer

pytestmark = pytest.mark.integration

SSCC = "03761234500000001" + str(check_digit("03761234500000001"))
HIDDEN = {"display": "none"}


@pytest.fixture
def data(db_dsn: str) -> MasterData:
    return register(db_dsn)


def _form(data: MasterData, **overrides: Any) -> dict[str, Any]:
    """A good booking as the form holds it, with ``overrides``."""
    values: dict[str, Any] = {
        ns.NS_REFERENCE: "SHP-FORM-1",
        ns.NS_PO: "PO-4711",
        ns.NS_SO: None,
        ns.NS_CUSTOMER: "Ospedale Niguarda",
        ns.item_id("product", 0): data.gtin,
        ns.item_id("lot", 0): "L2026-11",
        ns.item_id("qty", 0): 240,
        ns.NS_LANE: data.lane_id,
        ns.NS_CARRIER: data.carrier_id,
        ns.NS_DEPARTURE: "2026-12-01 08:00",
        ns.NS_ARRIVAL: "2026-12-02 18:30",
        ns.NS_LOGGERS: data.loggers[0],
        ns.NS_LOGGER_PICK: [],
        ns.NS_UNITS: f"(00){SSCC}",
        ns.NS_OVERRIDE_REASON: None,
        ns.NS_OVERRIDE: HIDDEN,
    }
    return values | overrides


def _submit(server: LiveServer, cookie: str, form: dict[str, Any]) -> dict[str, Any]:
    """Press "Book shipment"; the outputs by component id."""
    outputs = [
        (ns.NS_FEEDBACK, "children"),
        (ns.NS_FEEDBACK, "className"),
        (ns.NS_OVERRIDE, "style"),
        *[(ns.error_id(slot), "children") for slot in ns.SLOTS],
    ]
    order = [ns.NS_REFERENCE, ns.NS_PO, ns.NS_SO, ns.NS_CUSTOMER]
    order += [
        ns.item_id(p, i)
        for i in range(new_shipment_form.ITEM_ROWS)
        for p in ("product", "lot", "qty")
    ]
    order += [ns.NS_LANE, ns.NS_CARRIER, ns.NS_DEPARTURE, ns.NS_ARRIVAL, ns.NS_LOGGERS]
    order += [ns.NS_LOGGER_PICK, ns.NS_UNITS, ns.NS_OVERRIDE_REASON]
    state = [{"id": i, "property": "value", "value": form.get(i)} for i in order]
    state.append({"id": ns.NS_OVERRIDE, "property": "style", "value": form.get(ns.NS_OVERRIDE)})
    return _callback(
        server,
        cookie,
        outputs,
        [{"id": ns.NS_SUBMIT, "property": "n_clicks", "value": 1}],
        state,
        f"{ns.NS_SUBMIT}.n_clicks",
    )


def _errors(out: dict[str, Any]) -> dict[str, str]:
    """The non-empty field errors of a submit, by slot."""
    return {
        slot: out[ns.error_id(slot)]["children"]
        for slot in ns.SLOTS
        if out.get(ns.error_id(slot), {}).get("children")
    }


def _shipments(dsn: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute("SELECT shipment_id, reference FROM shipments").fetchall()


def _booking(dsn: str, reference: str) -> dict[str, Any]:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        row = bookings.get(conn, shipment_id=bookings.resolve(conn, key=reference))
        row["timeline"] = lifecycle_s.timeline(conn, shipment_id=row["shipment_id"])
        row["units"] = [
            r["epc"]
            for r in conn.execute(
                "SELECT epc FROM shipment_units WHERE shipment_id = %s", (row["shipment_id"],)
            )
        ]
        row["audit"] = conn.execute(
            "SELECT actor, reason FROM audit_log WHERE entity = 'shipments' AND entity_id = %s",
            (str(row["shipment_id"]),),
        ).fetchall()
        return row


def test_only_operator_and_admin_book_and_the_booking_is_the_apis(
    web_server: LiveServer,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
    data: MasterData,
) -> None:
    for role in ("viewer", "qa"):
        out = _submit(web_server, session_cookie(people[role]), _form(data))
        assert out[ns.NS_FEEDBACK]["className"] == "feedback error"
        assert out[ns.NS_FEEDBACK]["children"].startswith(f"Your role ({role}) cannot book")
    assert _shipments(db_dsn) == []

    out = _submit(web_server, session_cookie(people["operator"]), _form(data))
    assert out[ns.NS_FEEDBACK]["className"] == "feedback ok", out
    assert _errors(out) == {}
    row = _booking(db_dsn, "SHP-FORM-1")
    assert row["status"] == "planned"
    assert (row["origin"], row["destination"], row["carrier"]) == (
        data.origin,
        data.destination,
        data.carrier,
    )
    assert row["planned_arrival"] == datetime(2026, 12, 2, 18, 30, tzinfo=UTC)
    assert {(r["kind"], r["value"]) for r in row["references"]} == {
        ("purchase_order", "PO-4711"),
        ("customer", "Ospedale Niguarda"),
    }
    assert [(i["gtin"], i["lot"], i["quantity"]) for i in row["items"]] == [
        (data.gtin, "L2026-11", 240)
    ]
    assert [(a["device_id"], a["attached"]) for a in row["loggers"]] == [(data.loggers[0], True)]
    assert [e["event"] for e in row["timeline"]] == ["create", "logger_attached"]
    assert row["units"] == [units_on_board.read_scan(SSCC, today=datetime.now(UTC).date()).epc]
    assert {a["actor"] for a in row["audit"]} == {people["operator"].username}

    # The same booking sent again (a double click) books nothing more.
    again = _submit(web_server, session_cookie(people["operator"]), _form(data))
    assert again[ns.NS_FEEDBACK]["className"] == "feedback ok"
    assert len(_shipments(db_dsn)) == 1

    admin = _form(data, **{ns.NS_REFERENCE: "SHP-FORM-2", ns.NS_PO: "PO-4712",
                           ns.NS_CUSTOMER: None, ns.NS_LOGGERS: "",
                           ns.NS_LOGGER_PICK: [data.loggers[1]], ns.NS_UNITS: ""})  # fmt: skip
    out = _submit(web_server, session_cookie(people["admin"]), admin)
    assert out[ns.NS_FEEDBACK]["className"] == "feedback ok", out
    assert [a["device_id"] for a in _booking(db_dsn, "SHP-FORM-2")["loggers"]] == [data.loggers[1]]


def test_mistakes_are_shown_under_their_fields_and_book_nothing(
    web_server: LiveServer,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
    data: MasterData,
) -> None:
    cookie = session_cookie(people["operator"])
    bad = _form(data, **{ns.NS_REFERENCE: " ", ns.item_id("qty", 0): 0, ns.NS_LANE: None,
                         ns.NS_ARRIVAL: "tomorrow", ns.NS_UNITS: "(00)123"})  # fmt: skip
    errors = _errors(_submit(web_server, cookie, bad))
    assert set(errors) == {"reference", "items[0]", "lane", "planned_arrival", "units"}
    assert "Line 1" in errors["units"]
    assert "'tomorrow'" in errors["planned_arrival"]

    # What only the database knows comes back from the service, under its field.
    errors = _errors(_submit(web_server, cookie, _form(data, **{ns.NS_LOGGERS: "TL-NOBODY"})))
    assert set(errors) == {"loggers"}
    assert "TL-NOBODY" in errors["loggers"]
    early = _form(data, **{ns.NS_ARRIVAL: "2026-11-30 08:00"})
    assert set(_errors(_submit(web_server, cookie, early))) == {"planned_arrival"}
    assert _shipments(db_dsn) == []

    assert _errors(_submit(web_server, cookie, _form(data))) == {}
    # Another shipment with the same purchase order: refused under the purchase order.
    taken = _form(data, **{ns.NS_REFERENCE: "SHP-FORM-9", ns.NS_LOGGERS: "", ns.NS_UNITS: "",
                           ns.NS_CUSTOMER: None})  # fmt: skip
    errors = _errors(_submit(web_server, cookie, taken))
    assert set(errors) == {"purchase_order"}
    assert "SHP-FORM-1" in errors["purchase_order"]
    # A logger riding in SHP-FORM-1 cannot ride in another shipment too.
    busy = _form(data, **{ns.NS_REFERENCE: "SHP-FORM-9", ns.NS_PO: None, ns.NS_UNITS: "",
                          ns.NS_CUSTOMER: None})  # fmt: skip
    errors = _errors(_submit(web_server, cookie, busy))
    assert set(errors) == {"loggers"}
    assert "SHP-FORM-1" in errors["loggers"]
    assert [r["reference"] for r in _shipments(db_dsn)] == ["SHP-FORM-1"]


def test_an_expired_calibration_offers_the_override_and_records_its_reason(
    web_server: LiveServer,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
    data: MasterData,
) -> None:
    cookie = session_cookie(people["operator"])
    form = _form(data, **{ns.NS_LOGGERS: data.expired})
    out = _submit(web_server, cookie, form)
    assert out[ns.NS_OVERRIDE]["style"] == {"display": "block"}
    assert set(_errors(out)) == {"loggers"}
    assert data.expired in _errors(out)["loggers"]
    assert _shipments(db_dsn) == []

    why = "No calibrated logger at the dock; replaced in Milan"
    out = _submit(web_server, cookie, form | {ns.NS_OVERRIDE_REASON: why})
    assert out[ns.NS_FEEDBACK]["className"] == "feedback ok", out
    overrides = [e for e in _booking(db_dsn, "SHP-FORM-1")["timeline"]
                 if e["event"] == "calibration_override"]  # fmt: skip
    assert [(e["reason"], e["actor"]) for e in overrides] == [(why, people["operator"].username)]


# ---- the shipment page's lifecycle panel ------------------------------------------------------


def _life(server: LiveServer, cookie: str, reference: str) -> dict[str, Any]:
    outputs = [
        (ids.SHIPMENT_STATE, "children"),
        (ids.SHIPMENT_ACTIONS, "style"),
        *[(button, "style") for button in life.BUTTONS.values()],
        (ids.SHIPMENT_DETACH_PICK, "options"),
        (ids.SHIPMENT_VERDICTS, "children"),
    ]
    return _callback(
        server,
        cookie,
        outputs,
        [
            {"id": ids.SHIPMENT_INTERVAL, "property": "n_intervals", "value": 1},
            {"id": ids.SHIPMENT_CHANGED, "property": "data", "value": 0},
        ],
        [{"id": ids.SHIPMENT_KEY, "property": "data", "value": reference}],
        f"{ids.SHIPMENT_INTERVAL}.n_intervals",
    )


def _shown(out: dict[str, Any]) -> set[str]:
    """The transition buttons the panel shows."""
    if out[ids.SHIPMENT_ACTIONS]["style"] == HIDDEN:
        return set()
    return {e for e, button in life.BUTTONS.items() if out[button]["style"] != HIDDEN}


def _click(
    server: LiveServer, cookie: str, reference: str, button: str, **values: Any
) -> dict[str, Any]:
    inputs = [
        {"id": b, "property": "n_clicks", "value": 1 if b == button else 0}
        for b in (*life.BUTTONS.values(), ids.SHIPMENT_ATTACH, ids.SHIPMENT_DETACH)
    ]
    state = [
        (ids.SHIPMENT_KEY, "data", reference),
        (ids.SHIPMENT_REASON, "value", values.get("reason")),
        (ids.SHIPMENT_ATTACH_SERIAL, "value", values.get("serial")),
        (ids.SHIPMENT_OVERRIDE_REASON, "value", values.get("override")),
        (ids.SHIPMENT_DETACH_PICK, "value", values.get("detach")),
        (ids.SHIPMENT_CHANGED, "data", 0),
    ]
    return _callback(
        server,
        cookie,
        [
            (ids.SHIPMENT_ACTION_FEEDBACK, "children"),
            (ids.SHIPMENT_ACTION_FEEDBACK, "className"),
            (ids.SHIPMENT_OVERRIDE, "style"),
            (ids.SHIPMENT_CHANGED, "data"),
        ],
        inputs,
        [{"id": i, "property": p, "value": v} for i, p, v in state],
        f"{button}.n_clicks",
    )


def _state(out: dict[str, Any]) -> str:
    return str(out[ids.SHIPMENT_STATE]["children"][0]["props"]["data-state"])


def test_the_buttons_follow_the_state_and_the_role_and_the_timeline_records_each_move(
    web_server: LiveServer,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
    data: MasterData,
) -> None:
    operator = session_cookie(people["operator"])
    assert _errors(_submit(web_server, operator, _form(data))) == {}
    ref = "SHP-FORM-1"
    for role in ("viewer", "qa"):
        cookie = session_cookie(people[role])
        seen = _life(web_server, cookie, ref)
        assert _shown(seen) == set()
        assert "operator or admin" in str(seen[ids.SHIPMENT_STATE]["children"])
        out = _click(web_server, cookie, ref, ids.SHIPMENT_START)
        assert out[ids.SHIPMENT_ACTION_FEEDBACK]["children"] == (
            f"Your role ({role}) cannot change shipments."
        )
    out = _life(web_server, operator, ref)
    assert _state(out) == "planned"
    expected = set(life.actions_for("planned", can_manage=True))
    assert _shown(out) == expected == {"start", "cancel"}

    # Attach the second logger by its serial, detach the first.
    out = _click(web_server, operator, ref, ids.SHIPMENT_ATTACH, serial=data.loggers[1])
    assert out[ids.SHIPMENT_ACTION_FEEDBACK]["className"] == "feedback ok", out
    out = _click(web_server, operator, ref, ids.SHIPMENT_DETACH, detach=data.loggers[0],
                 reason="swapped at the dock")  # fmt: skip
    assert out[ids.SHIPMENT_ACTION_FEEDBACK]["className"] == "feedback ok", out
    options = _life(web_server, operator, ref)[ids.SHIPMENT_DETACH_PICK]["options"]
    assert [o["value"] for o in options] == [data.loggers[1]]

    # Cancel needs a reason: refused without one, nothing moved.
    out = _click(web_server, operator, ref, ids.SHIPMENT_CANCEL)
    assert out[ids.SHIPMENT_ACTION_FEEDBACK]["className"] == "feedback error"
    assert "reason" in out[ids.SHIPMENT_ACTION_FEEDBACK]["children"]

    out = _click(web_server, operator, ref, ids.SHIPMENT_START, reason="left Basel")
    assert out[ids.SHIPMENT_ACTION_FEEDBACK]["className"] == "feedback ok", out
    out = _life(web_server, operator, ref)
    assert _state(out) == "in_transit"
    assert _shown(out) == set(lifecycle.allowed("in_transit")) & set(life.BUTTONS) == {"arrive"}

    out = _click(web_server, session_cookie(people["admin"]), ref, ids.SHIPMENT_ARRIVE)
    assert out[ids.SHIPMENT_ACTION_FEEDBACK]["className"] == "feedback ok", out
    out = _life(web_server, operator, ref)
    assert _state(out) == "under_review"
    assert _shown(out) == set()
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        sid = bookings.resolve(conn, key=ref)
        stored = lifecycle_s.verdicts(conn, shipment_id=sid)
        events = lifecycle_s.timeline(conn, shipment_id=sid)
        story = timeline_s.shipment_timeline(conn, shipment_id=sid)
    verdicts = out[ids.SHIPMENT_VERDICTS]["children"]
    assert [(v["props"]["data-gtin"], v["props"]["data-verdict"]) for v in verdicts] == [
        (v["gtin"], v["verdict"]) for v in stored
    ]
    # The page's event timeline (the refresh callback's) is the service's, oldest first.
    page = call(
        web_server,
        operator,
        trigger=f"{ids.SHIPMENT_INTERVAL}.n_intervals",
        output=f"{ids.SHIPMENT_TIMELINE}.children",
        values={f"{ids.SHIPMENT_KEY}.data": ref},
    )
    rows = _rows(page[ids.SHIPMENT_TIMELINE]["children"])
    assert [r["props"]["data-kind"] for r in rows] == [e.kind for e in story]
    assert {"started", "arrived", "verdict", "under_review", "logger_detached"} <= {
        e.kind for e in story
    }
    assert {"start", "arrive", "verdict", "review", "logger_detached"} <= {
        e["event"] for e in events
    }
    start = next(e for e in events if e["event"] == "start")
    assert (start["actor"], start["reason"]) == (people["operator"].username, "left Basel")


def _rows(tree: Any) -> list[dict[str, Any]]:
    """The ``tr.timeline-row`` components of a rendered table, in order."""
    found: list[dict[str, Any]] = []
    if isinstance(tree, list):
        for child in tree:
            found.extend(_rows(child))
    elif isinstance(tree, dict):
        props = tree.get("props", {})
        if "timeline-row" in str(props.get("className", "")).split():
            found.append(tree)
        else:
            found.extend(_rows(props.get("children")))
    return found
