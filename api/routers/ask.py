"""Asking the platform in plain words, and the log of what was asked (README "Ask"); the
operations are :mod:`services.ask` (the dashboard's Ask box and ``coldchain ask`` call the
same)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import CallerDep, ConnDep, SettingsDep, requires
from services import ask as service

router = APIRouter(prefix="/ask", tags=["ask"])


class AskIn(BaseModel):
    """A question, in plain words."""

    question: str = Field(
        description=f"at most {service.MAX_QUESTION_LENGTH} characters (spaces collapsed)",
        examples=["What is the status of PO 5829?"],
    )


class FigureOut(BaseModel):
    """One figure of an answer and the query it came from."""

    label: str
    value: str
    source: str


class LinkOut(BaseModel):
    """A dashboard page that shows part of the answer (a path such as ``/shipments/SHP-1``)."""

    label: str
    href: str


class AnswerOut(BaseModel):
    """The answer: short text, figures, links, and every query the figures came from.
    ``understood`` false: the text says what was not understood; ``suggestions`` are questions
    that would be."""

    question: str
    understood: bool
    text: str
    figures: list[FigureOut]
    links: list[LinkOut]
    queries: list[str]
    suggestions: list[str]
    answerer: Literal["default", "llm"]
    intent: str | None
    extra: dict[str, Any]


class AskLogEntryOut(BaseModel):
    """One question and the answer given: who asked, when, from where, how long it took."""

    id: int
    asked_at: AwareDatetime
    actor: str
    role: str
    source: str | None
    question: str
    answerer: str
    understood: bool
    intent: str | None
    answer: dict[str, Any]
    queries: list[str]
    duration_ms: float


class AskLogPage(BaseModel):
    """A page of the log, newest first."""

    items: list[AskLogEntryOut]
    total: int
    limit: int
    offset: int


@router.post("", openapi_extra=requires("read"))
def ask(body: AskIn, conn: ConnDep, caller: CallerDep, settings: SettingsDep) -> AnswerOut:
    """Answer a question about shipments, excursions, alerts, units and lots, loggers or QA
    decisions; logged with who asked."""
    answer = service.ask(conn, caller, body.question, now=datetime.now(UTC), settings=settings)
    return AnswerOut.model_validate(answer.to_json())


@router.get("/log", openapi_extra=requires("admin"))
def ask_log(
    conn: ConnDep,
    caller: CallerDep,
    actor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AskLogPage:
    """Every question asked and the answer given, newest first; optionally one person's."""
    rows, total = service.list_ask_log(conn, caller, actor=actor, limit=limit, offset=offset)
    return AskLogPage(
        items=[AskLogEntryOut.model_validate(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )
