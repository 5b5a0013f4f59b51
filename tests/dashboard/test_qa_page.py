"""The QA page's callbacks as the browser calls them, against the real app and database: the
page signs through the same service as the API (the server checks the role, whatever the page
shows), and its download is the API's file."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from dashboard.pages import qa
from services import reports
from services.reports import ReportSettings
from tests.fixtures.auth import PASSWORD, Person
from tests.fixtures.web import LiveServer
from tests.reports.test_report_api import _now, _wait_past, shipment  # noqa: F401  # a fixture

pytestmark = pytest.mark.integration

REASON = "Excursion within the stability data"


def _callback(
    server: LiveServer,
    cookie: str,
    outputs: list[tuple[str, str]],
    inputs: list[Any],
    state: list[dict[str, Any]],
    changed: str,
) -> dict[str, Any]:
    """POST one callback as Dash's renderer does; its outputs by component id."""
    single = len(outputs) == 1
    payload = {
        "output": f"{outputs[0][0]}.{outputs[0][1]}"
        if single
        else ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": {"id": outputs[0][0], "property": outputs[0][1]}
        if single
        else [{"id": i, "property": p} for i, p in outputs],
        "inputs": inputs,
        "state": state,
        "changedPropIds": [changed],
    }
    with httpx.Client(base_url=server.url, timeout=30) as http:
        http.cookies.set("coldchain_session", cookie)
        r = http.post("/_dash-update-component", json=payload)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()["response"]
    return body


def _sign(server: LiveServer, cookie: str, as_of: str, digest: str) -> dict[str, Any]:
    outputs = [
        (qa.QA_FEEDBACK, "children"),
        (qa.QA_FEEDBACK, "className"),
        (qa.QA_PASSWORD, "value"),
        (qa.QA_CHANGED, "data"),
    ]
    states = [
        (qa.QA_KEY, "data", "SHP-1"),
        (qa.QA_STATE, "data", {"as_of": as_of, "hash": digest}),
        (qa.QA_DECISION, "value", "release"),
        (qa.QA_LOT, "value", qa.WHOLE_SHIPMENT),
        (qa.QA_REASON, "value", REASON),
        (qa.QA_PASSWORD, "value", PASSWORD),
        (qa.QA_CHANGED, "data", 0),
    ]
    return _callback(
        server,
        cookie,
        outputs,
        [{"id": qa.QA_SIGN, "property": "n_clicks", "value": 1}],
        [{"id": i, "property": p, "value": v} for i, p, v in states],
        f"{qa.QA_SIGN}.n_clicks",
    )


def _signed(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT d.signer_username, a.actor FROM dispositions d"
            " JOIN audit_log a ON a.entity = 'dispositions'"
            " AND a.entity_id = d.disposition_id::text"
        ).fetchall()


def test_only_qa_signs_on_the_page_and_the_audit_trail_names_them(
    web_server: LiveServer,
    db_dsn: str,
    people: dict[str, Person],
    session_cookie: Any,
    shipment: dict[str, Any],  # noqa: F811
) -> None:
    as_of = _now()
    _wait_past(as_of)
    cfg = ReportSettings.from_settings(web_server.settings)
    with psycopg.connect(db_dsn, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        doc = reports.report(
            conn, cfg, key="SHP-1", as_of=datetime.fromisoformat(as_of), now=datetime.now(UTC)
        )
    for role in ("viewer", "operator", "admin"):
        out = _sign(web_server, session_cookie(people[role]), as_of, doc["content_hash"])
        feedback = out[qa.QA_FEEDBACK]
        assert feedback["className"] == "feedback error", feedback
        assert feedback["children"] == f"Your role ({role}) cannot sign dispositions."
    assert _signed(db_dsn) == []

    out = _sign(web_server, session_cookie(people["qa"]), as_of, doc["content_hash"])
    assert out[qa.QA_FEEDBACK]["className"] == "feedback ok", out
    assert out[qa.QA_FEEDBACK]["children"].startswith("Signed #")
    assert _signed(db_dsn) == [("quinn.qa", "quinn.qa")]


@pytest.mark.parametrize("fmt", ["csv", "summary.csv"])
def test_the_page_downloads_the_file_the_api_serves(
    fmt: str,
    web_server: LiveServer,
    people: dict[str, Person],
    session_cookie: Any,
    shipment: dict[str, Any],  # noqa: F811
) -> None:
    as_of = _now()
    _wait_past(as_of)
    button = {"type": qa.QA_DOWNLOAD_BUTTON, "fmt": fmt}
    out = _callback(
        web_server,
        session_cookie(people["viewer"]),
        [(qa.QA_DOWNLOAD, "data")],
        # The two pattern-matching inputs (ALL): the format buttons (one shown here) and the
        # signed records' buttons (none yet).
        [[{"id": button, "property": "n_clicks", "value": 1}], []],
        [
            {"id": qa.QA_KEY, "property": "data", "value": "SHP-1"},
            {"id": qa.QA_STATE, "property": "data", "value": {"as_of": as_of, "hash": ""}},
        ],
        json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks",
    )
    download = out[qa.QA_DOWNLOAD]["data"]
    with httpx.Client(base_url=web_server.url, timeout=30) as http:
        r = http.get(
            f"/api/v1/shipments/SHP-1/report.{fmt}",
            params={"as_of": as_of},
            headers=people["viewer"].headers,
        )
    assert r.status_code == 200, r.text
    assert base64.b64decode(download["content"]) == r.content
    assert f'filename="{download["filename"]}"' in r.headers["Content-Disposition"]
    assert download["type"] == r.headers["Content-Type"]
