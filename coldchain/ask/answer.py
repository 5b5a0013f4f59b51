"""What an answer to a question is, whoever answered it (the default answerer or a language
model): a short text, the figures it rests on, links to the pages that show them, and the
queries that produced every figure, so that nothing in an answer is invented."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Answer", "Figure", "Link"]


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure of an answer, formatted for people (``"12.8 °C"``), and the query it came from."""

    label: str
    value: str
    source: str  # the service function or named query that produced it


@dataclass(frozen=True, slots=True)
class Link:
    """A page that shows part of the answer: a dashboard path such as ``/shipments/SHP-1``."""

    label: str
    href: str


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to one question. ``understood`` False: the text says what was not understood,
    and ``suggestions`` are questions the answerer would understand."""

    question: str
    understood: bool
    text: str
    figures: tuple[Figure, ...] = ()
    links: tuple[Link, ...] = ()
    queries: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()
    answerer: Literal["default", "llm"] = "default"
    intent: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The answer as JSON-ready data (the API's and the log's form)."""
        return asdict(self)
