"""The loggers page: calibration marks and the form mapping with plain values, and its callbacks
as the browser calls them against the real app and database, as each role: only an admin
registers (the password shown once, verified against the stored hash), a stale calibration
edit is refused, and every change is audited with its reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from coldchain.calibration import DUE_SOON, calibration_status
from coldchain.errors import InvalidRecordError
from dashboard.pages import loggers as page
from security.mosquitto import verify_mosquitto_hash
from services import loggers as service
from services.caller import Caller
from tests.dashboard.callbacks import call
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer

TODAY = date(2026, 12, 5)


@pytest.mark.parametrize(
    ("due", "status"),
    [
        (None, None),
        (TODAY - timedelta(days=1), "expired"),
        (TODAY, "due soon"),
        (TODAY + DUE_SOON, "due soon"),
        (TODAY + DUE_SOON + timedelta(days=1), "ok"),
    ],
)
def test_calibration_status(due: date | None, status: str | None) -> None:
    assert calibration_status(due, TODAY) == status


def test_the_form_becomes_the_services_fields() -> None:
    body = page.logger_body(
        {
            "device_id": " TL-7 ",
            "model": "TempTrace 4",
            "interval_s": 60.0,
            "calibration_cert": "",
            "calibration_due": "2027-06-30",
        }
    )
    assert body == {
        "device_id": "TL-7",
        "model": "TempTrace 4",
        "interval_s": 60,
        "calibration_cert": None,
        "calibration_due": "2027-06-30",
    }
    assert page.validated(body).calibration_due == date(2027, 6, 30)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"interval_s": 1.5}, "interval_s"),
        ({"interval_s": None}, "interval_s"),
        ({"calibration_due": "30/06/2027"}, "calibration_due"),
        ({"device_id": "TL/7"}, "device_id"),
        ({"model": " "}, "model"),
    ],
)
def test_a_bad_form_names_the_field(change: dict[str, Any], field: str) -> None:
    values = {"device_id": "TL-7", "model": "TempTrace 4", "interval_s": 60, **change}
    with pytest.raises(InvalidRecordError) as caught:
        page.validated(page.logger_body(values))
    assert caught.value.field == field


# ---- the callbacks, as each role ----------------------------------------------------------------

LOGGER = {
    "device_id": "TT4-000123",
    "model": "TempTrace 4",
    "interval_s": 60,
    "calibration_cert": "CAL-2026-0042",
    "calibration_due": "2027-06-30",
}


def _register(server: LiveServer, cookie: str, values: dict[str, Any]) -> dict[str, Any]:
    return call(
        server,
        cookie,
        trigger=f"{page.REGISTER}.n_clicks",
        output=f"{page.REGISTER_FEEDBACK}.children",
        values={f"{page.new_id(k)}.value": v for k, v in values.items()},
    )


def _rows(dsn: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def _codes(component: Any) -> list[str]:
    """The texts of the <code> elements in a rendered component tree."""
    found: list[str] = []
    if isinstance(component, dict):
        if component.get("type") == "Code":
            found.append(str(component["props"]["children"]))
        for value in component.get("props", {}).values():
            found.extend(_codes(value))
    elif isinstance(component, list):
        for item in component:
            found.extend(_codes(item))
    return found


@pytest.mark.integration
def test_only_an_admin_registers_and_sees_the_password_once(
    web_server: LiveServer, db_dsn: str, people: dict[str, Person], session_cookie: Any
) -> None:
    for role in ("viewer", "operator", "qa"):
        out = _register(web_server, session_cookie(people[role]), LOGGER)
        assert out[page.REGISTER_FEEDBACK] == {
            "children": f"Your role ({role}) cannot change loggers: nothing was saved.",
            "className": "feedback error",
        }
        assert out[page.CREDENTIALS]["children"] is None
    assert _rows(db_dsn, "SELECT device_id FROM devices") == []

    admin = session_cookie(people["admin"])
    out = _register(web_server, admin, LOGGER)
    assert out[page.REGISTER_FEEDBACK]["children"] == "Registered logger TT4-000123."
    user, password, topic = _codes(out[page.CREDENTIALS]["children"])
    assert user == "TT4-000123"
    assert topic == f"{web_server.settings.mqtt.topic_root}/devices/TT4-000123/telemetry"
    [stored] = _rows(db_dsn, "SELECT password_hash FROM device_credentials")
    assert verify_mosquitto_hash(stored["password_hash"], password)
    assert "only this once" in str(out[page.CREDENTIALS]["children"])
    assert _rows(db_dsn, "SELECT actor FROM audit_log WHERE entity = 'devices'") == [
        {"actor": people["admin"].username}
    ]

    # Once: a retried registration issues nothing, and the list does not carry it.
    again = _register(web_server, admin, LOGGER)
    assert again[page.CREDENTIALS]["children"] is None
    assert "already registered as given" in again[page.REGISTER_FEEDBACK]["children"]
    listed = call(
        web_server, admin, trigger=f"{page.CHANGED}.data", output=f"{page.TABLE}.children"
    )
    assert "TT4-000123" in str(listed[page.TABLE]) and password not in str(listed)


@pytest.mark.integration
def test_the_list_marks_an_expired_calibration(
    web_server: LiveServer, people: dict[str, Person], session_cookie: Any
) -> None:
    admin = session_cookie(people["admin"])
    past = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()
    _register(web_server, admin, {**LOGGER, "device_id": "OLD-1", "calibration_due": past})
    _register(web_server, admin, LOGGER)
    out = call(
        web_server,
        session_cookie(people["viewer"]),
        trigger=f"{page.CHANGED}.data",
        output=f"{page.TABLE}.children",
    )
    rows = out[page.TABLE]["children"]["props"]["children"]["props"]["children"][1]
    marks = {
        r["props"]["data-device-id"]: r["props"]["data-calibration"]
        for r in rows["props"]["children"]
    }
    assert marks == {"OLD-1": "expired", "TT4-000123": "ok"}


@pytest.mark.integration
def test_a_calibration_edit_needs_the_version_read_and_a_reason(
    web_server: LiveServer, db_dsn: str, people: dict[str, Person], session_cookie: Any
) -> None:
    admin = session_cookie(people["admin"])
    _register(web_server, admin, LOGGER)
    loaded = call(
        web_server,
        admin,
        trigger=f"{page.SELECT}.value",
        output=f"{page.EDITING}.data",
        values={f"{page.SELECT}.value": "TT4-000123"},
    )
    editing = loaded[page.EDITING]["data"]
    form = {k: loaded[page.edit_id(k)]["value"] for k in page.EDITABLE}
    assert form["calibration_due"] == "2027-06-30"

    def save(values: dict[str, Any], reason: str, editing: Any = editing) -> dict[str, Any]:
        return call(
            web_server,
            admin,
            trigger=f"{page.SAVE}.n_clicks",
            output=f"{page.EDIT_FEEDBACK}.children",
            values={
                **{f"{page.edit_id(k)}.value": v for k, v in values.items()},
                f"{page.EDITING}.data": editing,
                f"{page.REASON}.value": reason,
            },
        )

    new = {**form, "calibration_cert": "CAL-2027-0007", "calibration_due": "2028-06-30"}
    assert save(new, "")[page.EDIT_FEEDBACK]["children"] == "Not saved — Reason: say why (required)"
    # Someone else changes the interval meanwhile: this form's version is stale.
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        service.update_logger(
            conn,
            Caller.console(),
            device_id="TT4-000123",
            changes={"interval_s": 120},
            expected_version=editing["version"],
            reason="faster logging",
        )
    stale = save(new, "recalibrated")
    assert "someone changed it since you opened it" in stale[page.EDIT_FEEDBACK]["children"]
    assert _rows(db_dsn, "SELECT calibration_cert FROM devices") == [
        {"calibration_cert": "CAL-2026-0042"}
    ]

    fresh = {**editing, "version": editing["version"] + 1}
    out = save({**new, "interval_s": 120}, "Recalibrated at the lab", fresh)
    assert out[page.EDIT_FEEDBACK]["className"] == "feedback ok", out
    assert _rows(db_dsn, "SELECT calibration_cert, calibration_due FROM devices") == [
        {"calibration_cert": "CAL-2027-0007", "calibration_due": date(2028, 6, 30)}
    ]
    audit = _rows(
        db_dsn, "SELECT reason FROM audit_log WHERE entity = 'devices' AND action = 'update'"
    )
    assert audit == [{"reason": "faster logging"}, {"reason": "Recalibrated at the lab"}]

    retired = call(
        web_server,
        admin,
        trigger=f"{page.RETIRE}.n_clicks",
        output=f"{page.EDIT_FEEDBACK}.children",
        values={
            f"{page.EDITING}.data": out[page.EDITING]["data"],
            f"{page.REASON}.value": "Lost in transit",
        },
    )
    assert retired[page.EDIT_FEEDBACK]["className"] == "feedback ok", retired
    assert _rows(db_dsn, "SELECT revoked_at IS NOT NULL AS revoked FROM device_credentials") == [
        {"revoked": True}
    ]


@pytest.mark.integration
def test_loading_a_logger_that_is_not_there_gives_an_empty_form(
    web_server: LiveServer, people: dict[str, Person], session_cookie: Any
) -> None:
    out = call(
        web_server,
        session_cookie(people["admin"]),
        trigger=f"{page.SELECT}.value",
        output=f"{page.EDITING}.data",
        values={f"{page.SELECT}.value": "NOT-THERE"},
    )
    assert out[page.EDITING]["data"] is None
    assert out[page.edit_id("model")]["value"] is None
