"""The products editor: its pure form mapping with numbers, and its callbacks as the browser
calls them against the real app and database, as each role (the service refuses whatever the
page shows), with the audit trail, profile versions and a stale edit checked in the database."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from coldchain.errors import InvalidRecordError
from dashboard.pages import products as page
from dashboard.pages.forms import field_label
from services import products as service
from services.caller import Caller
from tests.dashboard.callbacks import call
from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer, gtin

# ---- pure ---------------------------------------------------------------------------------------

TWO_BANDS = {
    "gtin": " 09506000134352 ",
    "name": "Insulin pen 3 ml",
    "temp_min_c": 2,
    "temp_max_c": 8,
    "freeze_limit_c": 0,
    "alarm_delay_min": 1.5,
    "mkt_delta_h_j_mol": None,
    "mkt_limit_c": 8,
    "mkt_window_days": 30,
    "rh_min": None,
    "rh_max": 65,
    "max_freeze_thaw_cycles": 3,
    "band-0-low_c": 8,
    "band-0-high_c": 25,
    "band-0-budget_h": 72,
    "band-2-low_c": None,  # an empty row between two bands is skipped
    "band-3-high_c": 2,
    "band-3-budget_h": 0.5,
}


def test_the_form_becomes_the_services_fields() -> None:
    body = page.product_body(TWO_BANDS)
    assert body["gtin"] == "09506000134352"
    assert body["alarm_delay_s"] == 90
    assert body["mkt_delta_h_j_mol"] == service.DEFAULT_DELTA_H_J_MOL
    assert body["mkt_window_days"] == 30 and isinstance(body["mkt_window_days"], int)
    assert body["stability"] == {
        "allowances": [
            {"low_c": 8.0, "high_c": 25.0, "budget_s": 259200.0},
            {"low_c": None, "high_c": 2.0, "budget_s": 1800.0},
        ],
        "max_freeze_thaw_cycles": 3,
    }
    service.ProductIn.model_validate(body)  # what the service takes


def test_a_stored_product_fills_the_form_and_back_unchanged() -> None:
    spec = service.ProductIn.model_validate(page.product_body(TWO_BANDS))
    stored = {**spec.model_dump(), "stability": spec.stability.model_dump()}
    again = page.product_body(page.form_values(stored))
    assert service.ProductIn.model_validate(again) == spec


@pytest.mark.parametrize(
    ("change", "field", "label"),
    [
        ({"band-1-low_c": 0}, "stability.allowances[1].budget_s", "Band 2"),
        ({"band-1-budget_h": 5}, "stability.allowances[1]", "Band 2"),
        ({"band-0-low_c": "warm"}, "stability.allowances[0].low_c", "Band 1"),
        ({"mkt_window_days": 1.5}, "mkt_window_days", "MKT window (days)"),
        ({"max_freeze_thaw_cycles": 0.5}, "max_freeze_thaw_cycles", "Max freeze–thaw cycles"),
    ],
)
def test_a_bad_form_names_the_field(change: dict[str, Any], field: str, label: str) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        page.product_body({**TWO_BANDS, **change})
    assert caught.value.field == field
    assert field_label(caught.value.field, page.LABELS) == label


def test_the_bands_in_a_line() -> None:
    stability = page.product_body(TWO_BANDS)["stability"]
    assert page.bands_text(stability) == "8–25 °C 72 h · ≤ 2 °C 0.5 h · 3 freeze–thaw"
    assert page.bands_text(None) == "—"


# ---- the callbacks, as each role ----------------------------------------------------------------


def _form(values: dict[str, Any]) -> dict[str, Any]:
    """The form's component values ("id.value") for values by form key."""
    full = {**page.form_values(None), **values}
    return {f"{i}.value": full[k] for k, i in zip(page.FORM_KEYS, page.FORM_IDS, strict=True)}


def _save(
    server: LiveServer,
    cookie: str,
    values: dict[str, Any],
    *,
    editing: dict[str, Any] | None = None,
    reason: str = "",
) -> dict[str, dict[str, Any]]:
    return call(
        server,
        cookie,
        trigger=f"{page.SAVE}.n_clicks",
        output=f"{page.FEEDBACK}.children",
        values={
            **_form(values),
            f"{page.EDITING}.data": editing,
            f"{page.REASON}.value": reason,
            f"{page.CHANGED}.data": 0,
        },
    )


def _load(server: LiveServer, cookie: str, gtin_: str) -> dict[str, dict[str, Any]]:
    return call(
        server,
        cookie,
        trigger=f"{page.SELECT}.value",
        output=f"{page.EDITING}.data",
        values={f"{page.SELECT}.value": gtin_},
    )


def _rows(dsn: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.mark.integration
def test_only_admin_and_qa_register_products_and_the_audit_names_them(
    web_server: LiveServer, db_dsn: str, people: dict[str, Person], session_cookie: Any
) -> None:
    for role in ("viewer", "operator"):
        out = _save(web_server, session_cookie(people[role]), {**TWO_BANDS, "gtin": gtin()})
        assert out[page.FEEDBACK] == {
            "children": f"Your role ({role}) cannot change products: nothing was saved.",
            "className": "feedback error",
        }
    assert _rows(db_dsn, "SELECT gtin FROM products") == []

    for n, role in enumerate(("qa", "admin")):
        code = gtin(f"095060001343{n}")
        values = {**TWO_BANDS, "gtin": code, "name": f"Vaccine {role}"}
        out = _save(web_server, session_cookie(people[role]), values)
        assert out[page.FEEDBACK]["className"] == "feedback ok", out
        assert out[page.FEEDBACK]["children"] == (
            f"Registered Vaccine {role} ({code}), profile version 1."
        )
        assert out[page.EDITING]["data"]["gtin"] == code
        audit = _rows(
            db_dsn,
            "SELECT actor FROM audit_log WHERE entity = 'products' AND entity_id = %s",
            code,
        )
        assert audit == [{"actor": people[role].username}]
        stored = _rows(db_dsn, "SELECT profile FROM product_profiles WHERE gtin = %s", code)
        assert [a["budget_s"] for a in stored[0]["profile"]["allowances"]] == [259200.0, 1800.0]

    # Everyone reads the list; the retired filter and the profile version are on it.
    out = call(
        web_server,
        session_cookie(people["viewer"]),
        trigger=f"{page.CHANGED}.data",
        output=f"{page.TABLE}.children",
        values={f"{page.SHOW_RETIRED}.value": []},
    )
    options = out[page.SELECT]["options"]
    assert [o["label"] for o in options] == [
        "New product",
        f"Vaccine admin ({gtin('0950600013431')})",
        f"Vaccine qa ({gtin('0950600013430')})",
    ]
    assert '"v1"' in str(out[page.TABLE]).replace("'", '"')


@pytest.mark.integration
def test_an_edit_is_a_new_profile_version_with_its_reason(
    web_server: LiveServer, db_dsn: str, people: dict[str, Person], session_cookie: Any
) -> None:
    cookie = session_cookie(people["qa"])
    code = gtin()
    _save(web_server, cookie, {**TWO_BANDS, "gtin": code})
    loaded = _load(web_server, cookie, code)
    editing = loaded[page.EDITING]["data"]
    assert editing["version"] == 1
    form = {k: loaded[i]["value"] for k, i in zip(page.FORM_KEYS, page.FORM_IDS, strict=True)}
    assert form["band-1-budget_h"] == 0.5 and form["alarm_delay_min"] == 1.5

    # Without a reason: refused, naming it.
    out = _save(web_server, cookie, {**form, "band-1-budget_h": 12}, editing=editing)
    assert out[page.FEEDBACK]["children"] == (
        "Not saved — Reason: say why you change this product (required)"
    )
    # A bad value: named by its label on the form.
    out = _save(web_server, cookie, {**form, "temp_max_c": 1}, editing=editing, reason="x")
    assert out[page.FEEDBACK]["children"].startswith("Not saved — Storage high (°C): ")

    why = "Stability study SR-2291: 0–2 °C allowed 12 h"
    out = _save(web_server, cookie, {**form, "band-1-budget_h": 12}, editing=editing, reason=why)
    assert out[page.FEEDBACK]["className"] == "feedback ok", out
    assert out[page.EDITING]["data"]["version"] == 2
    versions = _rows(
        db_dsn,
        "SELECT version, reason, created_by FROM product_profiles WHERE gtin = %s ORDER BY 1",
        code,
    )
    assert [(v["version"], v["reason"], v["created_by"]) for v in versions] == [
        (1, "product registered", people["qa"].username),
        (2, why, people["qa"].username),
    ]
    audit = _rows(
        db_dsn,
        "SELECT reason FROM audit_log WHERE entity = 'products' AND entity_id = %s"
        " AND action = 'update'",
        code,
    )
    assert audit == [{"reason": why}]


@pytest.mark.integration
def test_a_stale_edit_is_refused_not_saved_over_the_other(
    web_server: LiveServer, db_dsn: str, people: dict[str, Person], session_cookie: Any
) -> None:
    cookie = session_cookie(people["admin"])
    code = gtin()
    _save(web_server, cookie, {**TWO_BANDS, "gtin": code})
    loaded = _load(web_server, cookie, code)
    editing = loaded[page.EDITING]["data"]
    form = {k: loaded[i]["value"] for k, i in zip(page.FORM_KEYS, page.FORM_IDS, strict=True)}
    # Meanwhile someone else renames it.
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        service.update_product(
            conn,
            Caller.console(),
            gtin=code,
            changes={"name": "Renamed elsewhere"},
            expected_version=editing["version"],
            reason="label change",
        )
    out = _save(web_server, cookie, {**form, "name": "Mine"}, editing=editing, reason="rename")
    assert out[page.FEEDBACK]["className"] == "feedback error"
    assert "someone changed it since you opened it" in out[page.FEEDBACK]["children"]
    assert page.EDITING not in out  # the form keeps the version it was loaded with
    assert _rows(db_dsn, "SELECT name, version FROM products") == [
        {"name": "Renamed elsewhere", "version": 2}
    ]
    # Reload shows the other change and its version; the change then goes on top of it.
    reloaded = call(
        web_server,
        cookie,
        trigger=f"{page.RELOAD}.n_clicks",
        output=f"{page.EDITING}.data",
        values={f"{page.SELECT}.value": code},
    )
    assert reloaded[page.field_id("name")]["value"] == "Renamed elsewhere"
    editing = reloaded[page.EDITING]["data"]
    assert editing["version"] == 2
    form = {k: reloaded[i]["value"] for k, i in zip(page.FORM_KEYS, page.FORM_IDS, strict=True)}
    out = _save(web_server, cookie, {**form, "rh_max": 60}, editing=editing, reason="RH limit")
    assert out[page.FEEDBACK]["className"] == "feedback ok", out
    assert out[page.SELECT]["value"] == code
    assert _rows(db_dsn, "SELECT name, rh_max, version FROM products") == [
        {"name": "Renamed elsewhere", "rh_max": 60.0, "version": 3}
    ]


@pytest.mark.integration
def test_retiring_needs_a_reason_and_keeps_the_product(
    web_server: LiveServer, db_dsn: str, people: dict[str, Person], session_cookie: Any
) -> None:
    cookie = session_cookie(people["admin"])
    code = gtin()
    editing = _save(web_server, cookie, {**TWO_BANDS, "gtin": code})[page.EDITING]["data"]

    def retire(reason: str) -> dict[str, dict[str, Any]]:
        return call(
            web_server,
            cookie,
            trigger=f"{page.RETIRE}.n_clicks",
            output=f"{page.FEEDBACK}.children",
            values={f"{page.EDITING}.data": editing, f"{page.REASON}.value": reason},
        )

    assert retire(" ")[page.FEEDBACK]["children"] == (
        "Not saved — Reason: say why you retire this product (required)"
    )
    out = retire("Discontinued by the manufacturer")
    assert out[page.FEEDBACK]["className"] == "feedback ok", out
    assert out[page.EDITING]["data"] is None
    rows = _rows(db_dsn, "SELECT retired_at IS NOT NULL AS retired FROM products")
    assert rows == [{"retired": True}]
    audit = _rows(
        db_dsn,
        "SELECT reason FROM audit_log WHERE entity = 'products' AND action = 'update'",
    )
    assert audit == [{"reason": "Discontinued by the manufacturer"}]


@pytest.mark.integration
def test_loading_a_product_that_is_not_there_gives_an_empty_form(
    web_server: LiveServer, people: dict[str, Person], session_cookie: Any
) -> None:
    out = _load(web_server, session_cookie(people["admin"]), gtin())
    assert out[page.EDITING]["data"] is None
    assert out[page.field_id("name")]["value"] == ""
