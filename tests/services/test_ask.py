"""services.ask against the real database: questions are checked (naming ``question``), answered
and logged whole with who asked; only administrators read the log. With the language model
enabled, against the local chat-completions stub (tests/fixtures/llm_stub.py): the figures come
from the database through the tools, a viewer's model gets no data a viewer may not see, a
failing endpoint falls back to the default answerer and says so, and the key is never logged."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from coldchain.ask.llm import TOOLS, ToolCall, ToolOutcome
from coldchain.errors import InvalidQuestionError, PermissionDeniedError
from coldchain.lifecycle import STATE_LABELS
from coldchain.settings import AskSettings, Settings
from db.types import Conn
from launcher.localstack import free_port
from security.roles import Role
from services import accounts, ask, ask_llm
from services.caller import Caller
from tests.fixtures.data import seed_shipment
from tests.fixtures.llm_stub import (
    KEY,
    MODEL,
    LlmStub,
    call_tool,
    fail,
    llm_stub,  # noqa: F401  # the fixture
    quote_tool_result,
)

pytestmark = pytest.mark.integration

CallerOf = Callable[[Role], Caller]
StubOf = Callable[..., LlmStub]
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _with_model(settings: Settings, url: str, **extra: object) -> Settings:
    cfg = AskSettings(
        llm_enabled=True, llm_url=url, llm_model=MODEL, llm_api_key=SecretStr(KEY), **extra
    )
    return settings.model_copy(update={"ask": cfg})


def _log(conn: Conn) -> list[dict[str, object]]:
    return conn.execute("SELECT * FROM ask_log ORDER BY id").fetchall()


def test_a_question_is_answered_and_logged_whole(
    conn: Conn, caller: CallerOf, settings: Settings
) -> None:
    viewer = caller("viewer")
    answer = ask.ask(conn, viewer, "  status of   SHP-0001? ", now=NOW, settings=settings)
    assert answer.answerer == "default" and answer.question == "status of SHP-0001?"
    (row,) = _log(conn)
    assert (row["actor"], row["role"], row["source"]) == (viewer.actor, "viewer", viewer.source)
    assert (row["question"], row["answerer"], row["understood"], row["intent"]) == (
        answer.question,
        answer.answerer,
        answer.understood,
        answer.intent,
    )
    assert row["asked_at"] == NOW and row["queries"] == list(answer.queries)
    assert row["answer"] == json.loads(json.dumps(answer.to_json()))
    assert isinstance(row["duration_ms"], float) and row["duration_ms"] >= 0


def test_a_bad_question_is_refused_naming_the_field_and_not_logged(
    conn: Conn, caller: CallerOf, settings: Settings
) -> None:
    cases = [
        ("", "empty"),
        ("   \n ", "empty"),
        ("x" * 501, "at most 500"),
        ("status of\x00 SHP-1?", "control character U+0000"),
        ("status \x1b[2J?", "control character U+001B"),
    ]
    for question, says in cases:
        with pytest.raises(InvalidQuestionError, match=re.escape(says)) as refused:
            ask.ask(conn, caller("viewer"), question, now=NOW, settings=settings)
        assert refused.value.field == "question" and str(refused.value).startswith("question:")
    assert ask.check_question("x" * 500) == "x" * 500  # the limit itself is taken
    assert ask.check_question(" where\tis\n\nSHP-1? ") == "where is SHP-1?"
    assert _log(conn) == []


def test_only_administrators_read_the_log(conn: Conn, caller: CallerOf, settings: Settings) -> None:
    asked: list[tuple[Role, str]] = [("viewer", "first?"), ("qa", "second?"), ("viewer", "third?")]
    for role, question in asked:
        ask.ask(conn, caller(role), question, now=NOW, settings=settings)
    refused: list[Role] = ["viewer", "operator", "qa"]
    for role in refused:
        with pytest.raises(PermissionDeniedError, match="'admin' permission"):
            ask.list_ask_log(conn, caller(role))
    rows, total = ask.list_ask_log(conn, caller("admin"), limit=2)
    assert total == 3 and [r["question"] for r in rows] == ["third?", "second?"]
    mine, total = ask.list_ask_log(conn, caller("admin"), actor=caller("qa").actor)
    assert total == 1 and [r["question"] for r in mine] == ["second?"]


def test_the_services_role_may_not_edit_the_log(
    conn: Conn, caller: CallerOf, settings: Settings
) -> None:
    ask.ask(conn, caller("viewer"), "status?", now=NOW, settings=settings)
    for statement in ("UPDATE ask_log SET question = 'other'", "DELETE FROM ask_log"):
        with pytest.raises(Exception, match="permission denied"):
            conn.execute(statement)


def test_the_model_answers_from_the_database_through_the_tools(
    conn: Conn,
    db_dsn: str,
    caller: CallerOf,
    settings: Settings,
    llm_stub: StubOf,  # noqa: F811  # the fixture imported above
) -> None:
    seeded = seed_shipment(db_dsn, reference="SHP-ASK-1", start=NOW - timedelta(hours=3))
    stub = llm_stub(call_tool("shipment_status", reference="SHP-ASK-1"), quote_tool_result())
    row = conn.execute(
        "SELECT status, origin, destination FROM shipments WHERE shipment_id = %s",
        (seeded.shipment_id,),
    ).fetchone()
    assert row is not None

    answer = ask.ask(
        conn,
        caller("viewer"),
        "where is SHP-ASK-1?",
        now=NOW,
        settings=_with_model(settings, stub.url),
    )

    assert stub.problems == [] and len(stub.requests) == 2
    assert stub.tool_names(0) == [t.name for t in TOOLS]
    assert stub.requests[0][1]["messages"][-1] == {"role": "user", "content": "where is SHP-ASK-1?"}
    (sent,) = stub.tool_messages()
    assert (sent["reference"], sent["status"]) == ("SHP-ASK-1", row["status"])
    assert (sent["origin"], sent["destination"]) == (row["origin"], row["destination"])
    assert answer.answerer == "llm" and answer.understood
    assert answer.text.startswith("According to the platform:") and row["status"] in answer.text
    figures = {f.label: (f.value, f.source) for f in answer.figures}
    source = "services.shipments.shipment_detail"
    assert figures["SHP-ASK-1 status"] == (STATE_LABELS[row["status"]], source)
    assert figures["SHP-ASK-1 route"] == (f"{row['origin']} → {row['destination']}", source)
    assert [(link.label, link.href) for link in answer.links] == [
        ("Shipment SHP-ASK-1", "/shipments/SHP-ASK-1")
    ]
    assert answer.queries == (source,)
    (logged,) = _log(conn)
    assert logged["answerer"] == "llm" and logged["queries"] == [source]


def test_a_viewers_model_gets_no_data_a_viewer_may_not_see(
    conn: Conn,
    caller: CallerOf,
    settings: Settings,
    llm_stub: StubOf,  # noqa: F811  # the fixture imported above
) -> None:
    accounts.create_api_key(conn, caller("admin"), name="erp", role="viewer", expires_at=None)
    entries = conn.execute("SELECT count(*) AS n FROM audit_log").fetchone()
    assert entries is not None and entries["n"] > 0
    script = (call_tool("audit_trail", entity="api_keys"), quote_tool_result())

    stub = llm_stub(*script)
    with_model = _with_model(settings, stub.url)
    answer = ask.ask(conn, caller("viewer"), "who made API keys?", now=NOW, settings=with_model)
    (sent,) = stub.tool_messages()
    assert list(sent) == ["error"] and sent["error"].startswith("not allowed: (role viewer)")
    assert caller("viewer").actor not in sent["error"]  # the endpoint need not know who asked
    assert "'audit.read' permission" in sent["error"]
    assert answer.figures == () and answer.links == () and answer.queries == ()
    assert not answer.understood and answer.extra["tool_calls"][0]["allowed"] is False

    # The same question from an administrator: the trail's entries, counted by the database.
    stub = llm_stub(*script)
    with_model = _with_model(settings, stub.url)
    answer = ask.ask(conn, caller("admin"), "who made API keys?", now=NOW, settings=with_model)
    (sent,) = stub.tool_messages()
    keys = conn.execute("SELECT count(*) AS n FROM audit_log WHERE entity = 'api_keys'").fetchone()
    assert keys is not None and sent["total"] == keys["n"] >= 1
    assert {e["entity"] for e in sent["entries"]} == {"api_keys"}
    assert [(f.label, f.value) for f in answer.figures] == [("Audit entries", str(keys["n"]))]


def test_a_failing_endpoint_falls_back_to_the_default_answerer_and_says_so(
    conn: Conn,
    caller: CallerOf,
    settings: Settings,
    llm_stub: StubOf,  # noqa: F811  # the fixture imported above
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    urls = {
        "HTTP 500": llm_stub(fail(500)).url,
        "ConnectError": f"http://127.0.0.1:{free_port()}/v1",
        "no choices[0].message": llm_stub(lambda body: (200, {"id": 1})).url,
    }
    for n, (why, url) in enumerate(urls.items(), start=1):
        with_model = _with_model(settings, url)
        answer = ask.ask(conn, caller("operator"), "status?", now=NOW, settings=with_model)
        assert answer.answerer == "default"
        assert answer.text.startswith(f"The language model did not answer ({url}/")
        assert why in answer.extra["fallback"] and url in answer.extra["fallback"]
        rows = _log(conn)
        logged = rows[-1]["answer"]
        assert len(rows) == n and rows[-1]["answerer"] == "default"
        assert isinstance(logged, dict) and logged["extra"]["fallback"] == answer.extra["fallback"]
        assert KEY not in json.dumps(logged)
    assert caplog.text.count("default answerer used") == len(urls)
    assert KEY not in caplog.text


def test_the_key_is_never_logged(
    conn: Conn,
    caller: CallerOf,
    settings: Settings,
    llm_stub: StubOf,  # noqa: F811  # the fixture imported above,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    stub = llm_stub(call_tool("qa_queue"), quote_tool_result())
    with_model = _with_model(settings, stub.url)
    answer = ask.ask(conn, caller("qa"), "what waits for QA?", now=NOW, settings=with_model)
    assert stub.problems == [] and answer.answerer == "llm"  # the key was sent, in its header
    assert KEY not in caplog.text
    assert KEY not in repr(with_model) and KEY not in repr(with_model.ask)
    assert KEY not in json.dumps(answer.to_json())
    logged = conn.execute("SELECT to_jsonb(l)::text AS row FROM ask_log l").fetchall()
    assert logged and all(KEY not in r["row"] for r in logged)


def test_the_tool_budget_is_enforced(
    conn: Conn,
    caller: CallerOf,
    settings: Settings,
    llm_stub: StubOf,  # noqa: F811  # the fixture imported above
) -> None:
    stub = llm_stub(
        call_tool("qa_queue"), call_tool("qa_queue"), call_tool("qa_queue"), quote_tool_result()
    )
    with_model = _with_model(settings, stub.url, max_tool_calls=2)
    answer = ask.ask(conn, caller("viewer"), "QA queue?", now=NOW, settings=with_model)
    assert stub.problems == [] and len(stub.requests) == 4
    assert [bool(stub.tool_names(i)) for i in range(4)] == [True, True, False, False]
    assert stub.tool_messages()[-1] == {"error": "no more tool calls: answer now"}
    assert len(answer.extra["tool_calls"]) == 2


def test_every_tool_reads_the_database_as_the_asker(
    conn: Conn, db_dsn: str, caller: CallerOf, settings: Settings
) -> None:
    """Each tool once, against seeded rows; its figures match a count made here in SQL."""
    seeded = seed_shipment(db_dsn, reference="SHP-TOOLS", start=NOW - timedelta(hours=3))
    admin = caller("admin")

    def run(name: str, **arguments: object) -> ToolOutcome:
        call = ToolCall(f"c-{name}", name, dict(arguments))
        return ask_llm.run_tool(conn, admin, call, now=NOW, settings=settings)

    def count(sql: str) -> int:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return int(row["n"])

    status = run("shipment_status", reference="SHP-TOOLS")
    assert status.content["reference"] == "SHP-TOOLS" and status.allowed
    listed = run("list_shipments", status="in_transit")
    in_transit = count("SELECT count(*) AS n FROM shipments WHERE status = 'in_transit'")
    assert listed.content["total"] == in_transit >= 1
    assert [(f.label, f.value) for f in listed.figures] == [("Shipments found", str(in_transit))]
    excursions = run("shipment_excursions", reference="SHP-TOOLS")
    n = count(f"SELECT count(*) AS n FROM excursions WHERE shipment_id = {seeded.shipment_id}")
    assert len(excursions.content["excursions"]) == n
    alerts = run("list_alerts", state="open")
    assert alerts.content["total"] == count("SELECT count(*) AS n FROM alerts WHERE state = 'open'")
    unit = run("verify_unit", identifier="(00)106141412345678908")
    assert unit.query == "services.trace.verify" and unit.content["status"]
    lot = run("lot_impact", gtin="09521234543213", lot="NO-SUCH-LOT")
    assert lot.query is None and lot.content["error"].startswith("not found")
    loggers = run("list_loggers")
    assert loggers.content["total"] == count("SELECT count(*) AS n FROM devices")
    one = run("list_loggers", device_id=seeded.device_id)
    assert one.content["device_id"] == seeded.device_id
    assert run("qa_queue").query == "services.lifecycle.qa_queue"
    trail = run("audit_trail")
    assert trail.content["total"] == count("SELECT count(*) AS n FROM audit_log")
    bad = run("shipment_status", reference="NO-SUCH-SHIPMENT")
    assert bad.query is None and bad.content["error"].startswith("not found")
    # A model's bad values are the tool's answer to it, never an error of the request.
    for name, arguments in (
        ("list_shipments", {"limit": "many"}),
        ("shipment_status", {"reference": "SHP\x00"}),
    ):
        invalid = run(name, **arguments)
        assert invalid.query is None and invalid.content["error"].startswith("invalid:")


def test_a_secret_in_the_endpoints_address_is_never_shown(
    conn: Conn, caller: CallerOf, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    url = f"http://someone:{KEY}@127.0.0.1:{port}/v1"
    answer = ask.ask(
        conn, caller("viewer"), "status?", now=NOW, settings=_with_model(settings, url)
    )
    shown = f"http://127.0.0.1:{port}/v1/chat/completions"
    assert answer.answerer == "default" and answer.extra["fallback"] == f"{shown}: ConnectError"
    (row,) = _log(conn)
    assert (
        KEY not in caplog.text
        and KEY not in json.dumps(row["answer"])
        and "someone" not in answer.text
    )
