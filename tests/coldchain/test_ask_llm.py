"""coldchain.ask.llm, the model answerer's pure parts: the chat-completions request, the reading
of a reply (tool calls checked against the tools' schemas), and the answer built from the tool
results alone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coldchain.ask.answer import Figure, Link
from coldchain.ask.llm import (
    TOOLS,
    FinalReply,
    ToolCallsReply,
    ToolOutcome,
    answer_from,
    first_messages,
    parse_reply,
    request_body,
    tool_message,
)
from coldchain.errors import LanguageModelError
from services.ask_llm import TOOLS as IMPLEMENTED


def _reply(message: dict[str, Any]) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": message}]}


def _calls(*calls: tuple[str, Any]) -> dict[str, Any]:
    return _reply(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": a}}
                for i, (n, a) in enumerate(calls)
            ],
        }
    )


def test_every_tool_offered_is_implemented_and_described() -> None:
    assert [t.name for t in TOOLS] == list(IMPLEMENTED)
    for tool in request_body("m", first_messages("q?"), tools=True)["tools"]:
        function = tool["function"]
        assert tool["type"] == "function" and function["description"]
        parameters = function["parameters"]
        assert parameters["type"] == "object" and parameters["additionalProperties"] is False
        assert set(parameters["required"]) <= set(parameters["properties"])


def test_the_request_withdraws_the_tools_when_the_budget_is_spent() -> None:
    messages = first_messages("where is SHP-1?")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == "where is SHP-1?"
    with_tools = request_body("m1", messages, tools=True)
    without = request_body("m1", messages, tools=False)
    assert with_tools["model"] == "m1" and with_tools["tool_choice"] == "auto"
    assert "tools" not in without and "tool_choice" not in without
    assert without["messages"] == messages == with_tools["messages"]


def test_a_final_reply_is_its_text() -> None:
    assert parse_reply(_reply({"role": "assistant", "content": "  It is in transit. "})) == (
        FinalReply("It is in transit.")
    )


@pytest.mark.parametrize(
    ("name", "arguments", "problem"),
    [
        ("shipment_status", '{"reference": "SHP-1"}', None),
        ("shipment_status", {"reference": "SHP-1"}, None),
        ("drop_tables", "{}", "there is no tool 'drop_tables'"),
        ("shipment_status", "{not json", "arguments: not JSON"),
        ("shipment_status", "[1]", "arguments: not a JSON object"),
        ("shipment_status", "{}", "reference: required"),
        ("shipment_status", '{"reference": ""}', "reference: required"),
        ("list_shipments", '{"sql": "DROP"}', "sql: not an argument of list_shipments"),
    ],
)
def test_tool_calls_are_checked_against_the_schema(
    name: str, arguments: Any, problem: str | None
) -> None:
    reply = parse_reply(_calls((name, arguments)))
    assert isinstance(reply, ToolCallsReply)
    (call,) = reply.calls
    assert (call.id, call.name) == ("c0", name)
    assert (call.problem or "").startswith(problem or "") and bool(call.problem) == bool(problem)
    assert reply.message["role"] == "assistant" and reply.message["tool_calls"][0]["id"] == "c0"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"choices": []},
        {"choices": [{"message": "text"}]},
        _reply({"role": "assistant", "content": ""}),
        _reply({"role": "assistant", "content": None}),
        _reply({"role": "assistant", "tool_calls": [{"function": {"name": "x"}}]}),
        [1, 2],
    ],
)
def test_a_reply_outside_the_format_is_an_error(data: Any) -> None:
    with pytest.raises(LanguageModelError):
        parse_reply(data)


def test_the_answer_takes_figures_links_and_queries_from_the_tools_only() -> None:
    status = Figure("SHP-1 status", "in_transit", "services.shipments.shipment_detail")
    link = Link("Shipment SHP-1", "/shipments/SHP-1")
    outcomes = [
        ToolOutcome("audit_trail", {}, None, {"error": "not allowed: …"}, allowed=False),
        ToolOutcome(
            "shipment_status", {"reference": "SHP-1"}, status.source, {}, (status,), (link,)
        ),
        ToolOutcome(
            "shipment_status", {"reference": "SHP-1"}, status.source, {}, (status,), (link,)
        ),
        ToolOutcome("shipment_status", {"reference": "SHP-9"}, None, {"error": "not found: SHP-9"}),
    ]
    # The model's text names a shipment no tool returned: it is words, never a link or figure.
    answer = answer_from("q?", "SHP-1 is in transit; so is SHP-666.", outcomes, model="m")
    assert answer.answerer == "llm" and answer.understood and answer.intent == "shipment_status"
    assert answer.figures == (status,) and answer.links == (link,)
    assert answer.queries == ("services.shipments.shipment_detail",)
    assert [c["allowed"] for c in answer.extra["tool_calls"]] == [False, True, True, True]
    assert answer.extra["model"] == "m"


def test_with_no_tool_data_the_answer_is_not_understood() -> None:
    denied = ToolOutcome("audit_trail", {}, "services.audit.list_entries", {}, allowed=False)
    answer = answer_from("q?", "I cannot see that.", [denied], model="m")
    assert not answer.understood and answer.figures == () and answer.queries == ()


def test_a_tool_message_carries_dates_and_decimals_as_text() -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    at = datetime(2026, 12, 5, 12, tzinfo=UTC)
    message = tool_message("c1", {"at": at, "peak_c": Decimal("9.5")})
    assert (message["role"], message["tool_call_id"]) == ("tool", "c1")
    assert json.loads(message["content"]) == {"at": str(at), "peak_c": "9.5"}
