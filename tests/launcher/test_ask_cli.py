"""``coldchain ask "…"`` against a real TimescaleDB and, for the language model, the local
chat-completions stub: the text, the figures with their source, the links as full addresses,
the queries; ``--json`` as the API returns it; a bad question exits 2 naming ``question``. Every
question is logged as the console's."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.rows import dict_row

from coldchain.lifecycle import STATE_LABELS
from tests.fixtures.data import seed_shipment
from tests.fixtures.llm_stub import (
    KEY,
    MODEL,
    LlmStub,
    call_tool,
    llm_stub,  # noqa: F401  # the fixture
    quote_tool_result,
)
from tests.launcher.test_masterdata_cli import env  # noqa: F401  # the command's environment
from tests.security.test_cli import run

pytestmark = pytest.mark.integration


def _log(dsn: str) -> list[dict[str, object]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute("SELECT actor, question, answer FROM ask_log ORDER BY id").fetchall()


def test_ask_prints_the_answer_and_json_and_refuses_a_bad_question(
    env: dict[str, str],  # noqa: F811  # the fixture imported above
    db_dsn: str,
) -> None:
    code, out = run(env, "ask", "status of PO 5829?")
    assert code == 0, out
    (row,) = _log(db_dsn)
    answer = row["answer"]
    assert isinstance(answer, dict) and row["actor"] == f"cli:{getpass.getuser()}"
    assert out.startswith(answer["text"]) and "answered by: default" in out
    assert "from: " + (", ".join(answer["queries"]) or "no query") in out
    for suggestion in answer["suggestions"]:
        assert f"  {suggestion}" in out

    code, out = run(env, "ask", "status of PO 5829?", "--json")
    assert code == 0 and json.loads(out) == _log(db_dsn)[1]["answer"]

    code, out = run(env, "ask", "   ")
    assert code == 2 and "question: ask something" in out
    assert len(_log(db_dsn)) == 2


def test_ask_through_the_model_prints_full_links(
    env: dict[str, str],  # noqa: F811  # the fixture imported above
    db_dsn: str,
    llm_stub: Callable[..., LlmStub],  # noqa: F811  # the fixture imported above
) -> None:
    seed_shipment(db_dsn, reference="SHP-CLI-7", start=datetime.now(UTC))
    stub = llm_stub(call_tool("shipment_status", reference="SHP-CLI-7"), quote_tool_result())
    model_env = {
        **env,
        "COLDCHAIN_ASK__LLM_ENABLED": "true",
        "COLDCHAIN_ASK__LLM_URL": stub.url,
        "COLDCHAIN_ASK__LLM_MODEL": MODEL,
        "COLDCHAIN_ASK__LLM_API_KEY": KEY,
        "COLDCHAIN_WEB__PUBLIC_URL": "https://coldchain.example.org",
    }
    code, out = run(model_env, "ask", "how is SHP-CLI-7 doing?")
    assert code == 0 and stub.problems == [], out
    with psycopg.connect(db_dsn, row_factory=dict_row) as conn:
        status = conn.execute(
            "SELECT status FROM shipments WHERE reference = 'SHP-CLI-7'"
        ).fetchone()
    assert status is not None
    label = STATE_LABELS[status["status"]]
    assert f"  SHP-CLI-7 status: {label}   (services.shipments.shipment_detail)" in out
    assert "  Shipment SHP-CLI-7: https://coldchain.example.org/shipments/SHP-CLI-7" in out
    assert "from: services.shipments.shipment_detail" in out and "answered by: llm" in out
    assert KEY not in out
