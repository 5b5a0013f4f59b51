"""The language-model answerer's pure parts: the tools it is offered, the chat-completions
request, the reading of a reply, and the answer built from what the tools returned.

The model speaks the OpenAI chat-completions format with tool calling: the request carries the
conversation (``messages``) and the tools as JSON-schema function definitions; a reply is either
``tool_calls`` (each a function name and its arguments as a JSON string), which the platform
runs and answers with ``role: "tool"`` messages, or a final message. The I/O (the HTTP calls,
running a tool against the database with the asker's permissions) is
:mod:`services.ask_llm`.

Nothing in an answer comes from the model but its wording: the figures, the links and the list
of queries are built here from the tool results the platform itself returned
(:func:`answer_from`), never parsed out of the model's text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from coldchain.ask.answer import Answer, Figure, Link
from coldchain.errors import LanguageModelError
from coldchain.lifecycle import STATES

__all__ = [
    "SYSTEM_PROMPT",
    "TOOLS",
    "FinalReply",
    "ToolCall",
    "ToolCallsReply",
    "ToolOutcome",
    "answer_from",
    "first_messages",
    "parse_reply",
    "request_body",
    "tool_definitions",
    "tool_message",
]

SYSTEM_PROMPT: Final = (
    "You answer questions about a cold-chain platform for pharmaceutical shipments: shipments, "
    "temperature excursions, alerts, units and lots, data loggers and QA decisions. Use only "
    "the tools to find facts; never guess a figure, a reference or a status. If a tool says "
    "'not allowed' or 'not found', say so plainly. Answer in two or three short sentences, "
    "quoting the figures the tools returned."
)

_T = TypeVar("_T")

#: The most rows a listing tool hands the model (the total is always given).
MAX_ROWS: Final = 20


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: its name, what it does (for the model), its arguments' JSON schema."""

    name: str
    description: str
    properties: Mapping[str, Mapping[str, Any]]
    required: tuple[str, ...] = ()


def _text(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, "minLength": 1, "maxLength": 200, **extra}


_LIMIT: Final = {"type": "integer", "minimum": 1, "maximum": MAX_ROWS}

#: The read-only query functions the model may call, by name (:mod:`services.ask_llm` runs
#: each with the asker's permissions).
TOOLS: Final[tuple[ToolSpec, ...]] = (
    ToolSpec(
        "shipment_status",
        "One shipment by its reference or id: status, route, product, latest temperature, "
        "open alerts and excursions.",
        {"reference": _text("the shipment's reference, e.g. SHP-0001")},
        ("reference",),
    ),
    ToolSpec(
        "list_shipments",
        "Shipments with filters, those needing attention first; gives the total.",
        {
            "status": {"type": "string", "enum": list(STATES)},
            "lane": _text("origin → destination, as the fleet lists lanes"),
            "carrier": _text("a carrier's name"),
            "search": _text("text in the reference, external references, product or places"),
            "has_open_alerts": {"type": "boolean"},
            "limit": _LIMIT,
        },
    ),
    ToolSpec(
        "shipment_excursions",
        "The temperature excursions of one shipment (by reference), oldest first.",
        {"reference": _text("the shipment's reference")},
        ("reference",),
    ),
    ToolSpec(
        "list_alerts",
        "Alerts, unresolved and most severe first; optionally of one shipment or state.",
        {
            "state": {"type": "string", "enum": ["open", "acknowledged", "resolved"]},
            "shipment": _text("a shipment's reference"),
            "limit": _LIMIT,
        },
    ),
    ToolSpec(
        "verify_unit",
        "The verdict on a unit or pallet by any GS1 form (SGTIN, SSCC, element string, "
        "digital link): status, product, lot, expiry, recalls, excursions.",
        {"identifier": _text("the scanned identifier")},
        ("identifier",),
    ),
    ToolSpec(
        "lot_impact",
        "Every excursion the units of a lot were exposed to.",
        {"gtin": _text("the product's GTIN"), "lot": _text("the lot number")},
        ("gtin", "lot"),
    ),
    ToolSpec(
        "list_loggers",
        "Data loggers: battery, calibration due date, last seen, current shipment; or one.",
        {"device_id": _text("a logger's serial number")},
    ),
    ToolSpec(
        "qa_queue",
        "Shipments waiting for a QA decision, the riskiest first.",
        {"limit": _LIMIT},
    ),
    ToolSpec(
        "audit_trail",
        "Entries of the audit trail (who changed what, when, why): QA and administrators only.",
        {
            "entity": _text("a table name, e.g. shipments"),
            "actor": _text("who acted"),
            "limit": _LIMIT,
        },
    ),
)

_BY_NAME: Final = {t.name: t for t in TOOLS}


def tool_definitions(tools: Sequence[ToolSpec] = TOOLS) -> list[dict[str, Any]]:
    """The tools as chat-completions function definitions."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": {
                    "type": "object",
                    "properties": {k: dict(v) for k, v in t.properties.items()},
                    "required": list(t.required),
                    "additionalProperties": False,
                },
            },
        }
        for t in tools
    ]


def request_body(
    model: str, messages: Sequence[Mapping[str, Any]], *, tools: bool
) -> dict[str, Any]:
    """The body of ``POST {llm_url}/chat/completions``; without ``tools`` the model must answer
    (the tool-call budget is spent)."""
    body: dict[str, Any] = {"model": model, "messages": list(messages), "temperature": 0}
    if tools:
        body["tools"] = tool_definitions()
        body["tool_choice"] = "auto"
    return body


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model asked for: its id (echoed in the result), the tool, the arguments."""

    id: str
    name: str
    arguments: dict[str, Any]
    problem: str | None = None  # why the call cannot run as asked (unknown tool, bad arguments)


@dataclass(frozen=True, slots=True)
class ToolCallsReply:
    """The model asks for tools to be run; ``message`` goes back into the conversation."""

    calls: tuple[ToolCall, ...]
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FinalReply:
    """The model's answer."""

    text: str


def _arguments(call_id: str, name: str, raw: Any) -> ToolCall:
    """A call with its arguments checked against the tool's schema (names and required ones;
    the service function checks the values)."""
    spec = _BY_NAME.get(name)
    if spec is None:
        return ToolCall(call_id, name, {}, f"there is no tool {name!r}")
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        return ToolCall(call_id, name, {}, f"arguments: not JSON ({exc.msg})")
    if not isinstance(args, dict):
        return ToolCall(call_id, name, {}, "arguments: not a JSON object")
    unknown = sorted(set(args) - set(spec.properties))
    if unknown:
        return ToolCall(call_id, name, args, f"{unknown[0]}: not an argument of {name}")
    missing = [r for r in spec.required if args.get(r) in (None, "")]
    if missing:
        return ToolCall(call_id, name, args, f"{missing[0]}: required")
    return ToolCall(call_id, name, args)


def parse_reply(data: Any) -> ToolCallsReply | FinalReply:
    """The first choice of a chat-completions response; :class:`LanguageModelError` when it is
    not one."""
    try:
        message = data["choices"][0]["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise LanguageModelError("the reply has no choices[0].message") from exc
    if not isinstance(message, dict):
        raise LanguageModelError("choices[0].message is not an object")
    raw_calls = message.get("tool_calls") or []
    if raw_calls:
        calls = []
        for i, raw in enumerate(raw_calls):
            try:
                function = raw["function"]
                calls.append(
                    _arguments(str(raw["id"]), str(function["name"]), function["arguments"])
                )
            except (KeyError, TypeError) as exc:
                raise LanguageModelError(f"tool_calls[{i}] lacks id or function") from exc
        kept = {"role": "assistant", "content": message.get("content"), "tool_calls": raw_calls}
        return ToolCallsReply(tuple(calls), kept)
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        raise LanguageModelError("the reply has neither tool calls nor text")
    return FinalReply(content.strip())


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What one tool call returned: the data the model saw, and the figures and links of the
    answer built from it. ``allowed`` False: the caller's role may not read it (no data)."""

    name: str
    arguments: dict[str, Any]
    query: str | None  # the service function that ran; None when nothing ran
    content: dict[str, Any]
    figures: tuple[Figure, ...] = ()
    links: tuple[Link, ...] = ()
    allowed: bool = True


def tool_message(call_id: str, content: Mapping[str, Any]) -> dict[str, Any]:
    """The ``role: "tool"`` message answering one call."""
    return {
        "role": "tool",
        "tool_call_id": call_id,
        "content": json.dumps(content, default=str, ensure_ascii=False),
    }


def _unique(items: Sequence[_T]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(items))


def answer_from(question: str, text: str, outcomes: Sequence[ToolOutcome], *, model: str) -> Answer:
    """The answer: the model's words; the figures, links and queries of the tools that ran.
    Understood when at least one tool returned data."""
    ran = [o for o in outcomes if o.query is not None and o.allowed and "error" not in o.content]
    return Answer(
        question=question,
        understood=bool(ran),
        text=text,
        figures=_unique([f for o in ran for f in o.figures]),
        links=_unique([link for o in ran for link in o.links]),
        queries=_unique([o.query for o in ran if o.query is not None]),
        answerer="llm",
        intent=ran[0].name if ran else None,
        extra={
            "model": model,
            "tool_calls": [
                {"name": o.name, "arguments": o.arguments, "allowed": o.allowed} for o in outcomes
            ],
        },
    )


def first_messages(question: str) -> list[dict[str, Any]]:
    """The conversation's start: the system prompt and the question."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]
