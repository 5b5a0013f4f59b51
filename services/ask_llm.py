"""The optional language-model answerer (README "Ask"): a question goes to an OpenAI-compatible
chat-completions endpoint with the platform's read-only query functions as tools.

Each tool (:data:`coldchain.ask.llm.TOOLS`) is a thin wrapper here over a service function the
dashboard and the API already use, run with the **asker's** :class:`~services.caller.Caller`:
a restricted read checks the caller's role exactly as it does for any other edge, so a viewer's
model asking for the audit trail gets "not allowed" and no data. The loop: POST the conversation,
run the tool calls the model asks for (at most ``ask.max_tool_calls``; then the tools are
withdrawn and the model must answer), answer each with a ``role: "tool"`` message, until the
model gives its final text. The answer's figures, links and queries come from the tool results
(:func:`coldchain.ask.llm.answer_from`), never from the model's text.

Any failure of the endpoint (unreachable, timeout, an HTTP error, a reply outside the format)
raises :class:`~coldchain.errors.LanguageModelError`; :func:`services.ask.ask` then lets the
default answerer answer and says so. The API key is sent in the ``Authorization`` header only:
it is never logged, never in an error message, never in the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import psycopg

from coldchain.ask.answer import Answer, Figure, Link
from coldchain.ask.llm import (
    MAX_ROWS,
    FinalReply,
    ToolCall,
    ToolCallsReply,
    ToolOutcome,
    answer_from,
    first_messages,
    parse_reply,
    request_body,
    tool_message,
)
from coldchain.errors import (
    IdentifierError,
    LanguageModelError,
    NotFoundError,
    PermissionDeniedError,
)
from coldchain.lifecycle import STATE_LABELS
from coldchain.settings import AskSettings, Settings
from db.types import Conn, Row
from services import alerts, audit, lifecycle, loggers, shipments, trace
from services.caller import Caller

log = logging.getLogger(__name__)

Tool = Callable[[Conn, Caller, dict[str, Any], datetime, Settings], ToolOutcome]


def _shipment_link(reference: str) -> Link:
    return Link(f"Shipment {reference}", "/shipments/" + quote(reference, safe=""))


def _limit(args: dict[str, Any]) -> int:
    return max(1, min(int(args.get("limit") or MAX_ROWS), MAX_ROWS))


def _state(value: Any) -> str:
    """A shipment's state in words (``In transit``), as the dashboard shows it."""
    return STATE_LABELS.get(value, str(value))


def _temp(value: Any) -> str:
    return "—" if value is None else f"{float(value):.1f} °C"


def _shipment_status(
    conn: Conn, caller: Caller, args: dict[str, Any], now: datetime, settings: Settings
) -> ToolOutcome:
    query = "services.shipments.shipment_detail"
    row = shipments.shipment_detail(
        conn, key=str(args["reference"]), offline_factor=settings.alerts.offline_factor
    )
    ref = str(row["reference"])
    content = {
        k: row.get(k)
        for k in (
            "reference", "status", "origin", "destination", "product_name", "condition",
            "current_temp_c", "current_ts", "n_excursions", "open_alerts", "eta_planned",
        )
    }  # fmt: skip
    figures = (
        Figure(f"{ref} status", _state(row.get("status")), query),
        Figure(f"{ref} route", f"{row.get('origin')} → {row.get('destination')}", query),
        Figure(f"{ref} latest temperature", _temp(row.get("current_temp_c")), query),
        Figure(f"{ref} excursions", str(row.get("n_excursions") or 0), query),
    )
    return ToolOutcome("shipment_status", args, query, content, figures, (_shipment_link(ref),))


def _list_shipments(
    conn: Conn, caller: Caller, args: dict[str, Any], now: datetime, settings: Settings
) -> ToolOutcome:
    query = "services.shipments.list_shipments"
    page = shipments.list_shipments(
        conn,
        offline_factor=settings.alerts.offline_factor,
        status=args.get("status"),
        lane=args.get("lane"),
        carrier=args.get("carrier"),
        q=args.get("search"),
        has_open_alerts=args.get("has_open_alerts"),
        limit=_limit(args),
    )
    keys = ("reference", "status", "origin", "destination", "condition", "n_excursions")
    items = [{k: r.get(k) for k in keys} for r in page.items]
    content = {"total": page.total, "shipments": items}
    figures = (Figure("Shipments found", str(page.total), query),)
    links = tuple(_shipment_link(str(r["reference"])) for r in page.items[:5])
    return ToolOutcome("list_shipments", args, query, content, figures, links)


def _shipment_excursions(
    conn: Conn, caller: Caller, args: dict[str, Any], now: datetime, settings: Settings
) -> ToolOutcome:
    query = "services.shipments.excursions"
    reference = str(args["reference"])
    rows = shipments.excursions(conn, shipment_id=shipments.find_shipment(conn, key=reference))
    keys = ("excursion_id", "kind", "started_at", "ended_at", "peak_c", "degree_minutes")
    content = {"reference": reference, "excursions": [{k: r.get(k) for k in keys} for r in rows]}
    figures = (Figure(f"{reference} excursions", str(len(rows)), query),)
    return ToolOutcome(
        "shipment_excursions", args, query, content, figures, (_shipment_link(reference),)
    )


def _list_alerts(
    conn: Conn, caller: Caller, args: dict[str, Any], now: datetime, settings: Settings
) -> ToolOutcome:
    query = "services.alerts.list_alerts"
    state = args.get("state")
    page = alerts.list_alerts(
        conn, states=[state] if state else None, shipment=args.get("shipment"), limit=_limit(args)
    )
    keys = ("alert_id", "reference", "kind", "severity", "state", "triggered_at", "message")
    content = {"total": page.total, "alerts": [{k: r.get(k) for k in keys} for r in page.items]}
    label = f"{state.capitalize()} alerts" if state else "Alerts"
    figures = (Figure(label, str(page.total), query),)
    return ToolOutcome("list_alerts", args, query, content, figures, (Link("Alerts", "/alerts"),))


def _verify_unit(
    conn: Conn, caller: Caller, args: dict[str, Any], now: datetime, settings: Settings
) -> ToolOutcome:
    query = "services.trace.verify"
    identifier = str(args["identifier"])
    v = trace.verify(conn, identifier=identifier, today=now.date())
    content = {
        "status": v.status,
        "reasons": list(v.reasons),
        "product_name": v.product_name,
        "gtin": v.gtin,
        "lot": v.lot,
        "expiry": v.expiry,
        "recalls": len(v.recalls),
        "uncleared_excursions": len(v.uncleared_excursions),
    }
    figures = (Figure(f"Unit {identifier} verdict", str(v.status), query),)
    link = Link(f"Passport {identifier}", "/passport?id=" + quote(identifier, safe=""))
    return ToolOutcome("verify_unit", args, query, content, figures, (link,))


def _lot_impact(
    conn: Conn, caller: Caller, args: dict[str, Any], now: datetime, settings: Settings
) -> ToolOutcome:
    query = "services.trace.lot_impact"
    impact = trace.lot_impact(conn, gtin=str(args["gtin"]), lot=str(args["lot"]))
    excursions = impact.get("excursions") or []
    figures = (
        Figure(f"Lot {args['lot']} units", str(impact.get("units")), query),
        Figure(f"Lot {args['lot']} excursions", str(len(excursions)), query),
    )
    return ToolOutcome("lot_impact", args, query, dict(impact), figures)


def _list_loggers(
    conn: Conn, caller: Caller, args: dict[str, Any], now: datetime, settings: Settings
) -> ToolOutcome:
    keys = ("device_id", "model", "calibration_due", "battery", "last_seen",
            "current_shipment_reference")  # fmt: skip
    device = args.get("device_id")
    if device:
        query = "services.loggers.get_logger"
        row = loggers.get_logger(conn, str(device))
        content: dict[str, Any] = {k: row.get(k) for k in keys}
        figures: tuple[Figure, ...] = (
            Figure(f"{device} calibration due", str(row.get("calibration_due") or "—"), query),
            Figure(f"{device} last seen", str(row.get("last_seen") or "never"), query),
        )
    else:
        query = "services.loggers.list_loggers"
        rows: list[Row] = loggers.list_loggers(conn)
        content = {
            "total": len(rows),
            "loggers": [{k: r.get(k) for k in keys} for r in rows][:MAX_ROWS],
        }
        figures = (Figure("Loggers", str(len(rows)), query),)
    return ToolOutcome(
        "list_loggers", args, query, content, figures, (Link("Loggers", "/loggers"),)
    )


def _qa_queue(
    conn: Conn, caller: Caller, args: dict[str, Any], now: datetime, settings: Settings
) -> ToolOutcome:
    query = "services.lifecycle.qa_queue"
    rows = lifecycle.qa_queue(conn, limit=_limit(args))
    keys = ("reference", "status", "origin", "destination")
    content = {"waiting": [{k: r.get(k) for k in keys} for r in rows]}
    figures = (Figure("Shipments waiting for QA", str(len(rows)), query),)
    return ToolOutcome("qa_queue", args, query, content, figures, (Link("QA review", "/qa"),))


def _audit_trail(
    conn: Conn, caller: Caller, args: dict[str, Any], now: datetime, settings: Settings
) -> ToolOutcome:
    query = "services.audit.list_entries"
    rows, total = audit.list_entries(
        conn, caller, entity=args.get("entity"), actor=args.get("actor"), limit=_limit(args)
    )
    keys = ("seq", "at", "actor", "action", "entity", "entity_id", "reason")
    content = {"total": total, "entries": [{k: r.get(k) for k in keys} for r in rows]}
    return ToolOutcome(
        "audit_trail", args, query, content, (Figure("Audit entries", str(total), query),)
    )


TOOLS: dict[str, Tool] = {
    "shipment_status": _shipment_status,
    "list_shipments": _list_shipments,
    "shipment_excursions": _shipment_excursions,
    "list_alerts": _list_alerts,
    "verify_unit": _verify_unit,
    "lot_impact": _lot_impact,
    "list_loggers": _list_loggers,
    "qa_queue": _qa_queue,
    "audit_trail": _audit_trail,
}


def run_tool(
    conn: Conn, caller: Caller, call: ToolCall, *, now: datetime, settings: Settings
) -> ToolOutcome:
    """Run one tool call as ``caller``; a refusal, an unknown record or a bad value becomes the
    tool's answer to the model (an ``error``), never an exception."""
    if call.problem is not None:
        return ToolOutcome(call.name, call.arguments, None, {"error": call.problem})
    try:
        return TOOLS[call.name](conn, caller, call.arguments, now, settings)
    except PermissionDeniedError as exc:
        # Why, without the asker's name: the model's endpoint need not know who asked.
        content = {"error": f"not allowed: {str(exc).removeprefix(caller.actor + ' ')}"}
        return ToolOutcome(call.name, call.arguments, None, content, allowed=False)
    except NotFoundError as exc:
        return ToolOutcome(call.name, call.arguments, None, {"error": f"not found: {exc}"})
    except (IdentifierError, ValueError, TypeError) as exc:
        return ToolOutcome(call.name, call.arguments, None, {"error": f"invalid: {exc}"})
    except psycopg.DataError:
        # A value the database cannot take (out of range, malformed): the model's mistake.
        content = {"error": "invalid: a value is out of range or malformed"}
        return ToolOutcome(call.name, call.arguments, None, content)


def _without_secrets(url: str) -> str:
    """The endpoint as messages name it: no user name or password, no query (a key may hide in
    either)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _exchange(
    client: httpx.Client, cfg: AskSettings, body: dict[str, Any]
) -> ToolCallsReply | FinalReply:
    """One chat-completions request and its reply; LanguageModelError naming the endpoint (never
    the key) when it fails or answers outside the format."""
    url = f"{cfg.llm_url}/chat/completions"
    shown = _without_secrets(url)
    headers = {"Content-Type": "application/json"}
    if cfg.llm_api_key is not None:
        headers["Authorization"] = f"Bearer {cfg.llm_api_key.get_secret_value()}"
    try:
        response = client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise LanguageModelError(f"{shown}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise LanguageModelError(f"{shown}: HTTP {response.status_code}")
    try:
        return parse_reply(response.json())
    except ValueError:
        raise LanguageModelError(f"{shown}: the reply is not JSON") from None
    except LanguageModelError as exc:
        raise LanguageModelError(f"{shown}: {exc}") from None


def answer(
    conn: Conn, caller: Caller, question: str, *, now: datetime, settings: Settings
) -> Answer:
    """The model's answer to ``question``, its tools run as ``caller``; LanguageModelError when the
    endpoint fails."""
    cfg = settings.ask
    messages = first_messages(question)
    outcomes: list[ToolOutcome] = []
    with httpx.Client(timeout=cfg.llm_timeout_s) as client:
        # Each round either runs tools or ends; with the budget spent the tools are withdrawn,
        # so at most max_tool_calls + 1 requests (and one more if the model insists).
        for _round in range(cfg.max_tool_calls + 2):
            tools = len(outcomes) < cfg.max_tool_calls
            body = request_body(cfg.llm_model, messages, tools=tools)
            reply = _exchange(client, cfg, body)
            if isinstance(reply, FinalReply):
                return answer_from(question, reply.text, outcomes, model=cfg.llm_model)
            messages.append(reply.message)
            for call in reply.calls:
                if len(outcomes) >= cfg.max_tool_calls:
                    content: dict[str, Any] = {"error": "no more tool calls: answer now"}
                else:
                    outcome = run_tool(conn, caller, call, now=now, settings=settings)
                    outcomes.append(outcome)
                    content = outcome.content
                messages.append(tool_message(call.id, content))
    raise LanguageModelError(f"the model asked for tools past the limit of {cfg.max_tool_calls}")
