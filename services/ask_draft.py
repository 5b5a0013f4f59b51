"""What the resolvers of the default answerer share (:mod:`services.ask_resolvers`,
:mod:`services.ask_inventory`): the question's context, the answer being written (:class:`Draft`,
each figure with the function or query it came from), and how figures are put in words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from coldchain import lifecycle
from coldchain.ask.answer import Figure, Link
from coldchain.ask.understand import Question
from coldchain.settings import Settings
from db.queries import ask as ask_q
from db.types import Conn
from services.caller import Caller

__all__ = ["Context", "Draft", "Resolved"]


@dataclass(frozen=True, slots=True)
class Resolved:
    """What the question's reference-like words name: shipments (reference, and the external
    reference it was found by, if any), loggers, and the words that name nothing."""

    shipments: tuple[tuple[str, str | None], ...] = ()
    loggers: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a resolver may use."""

    conn: Conn
    caller: Caller
    q: Question
    resolved: Resolved
    now: datetime
    settings: Settings


@dataclass(slots=True)
class Draft:
    """An answer being written."""

    text: str = ""
    figures: list[Figure] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def figure(self, label: str, value: Any, source: str) -> None:
        self.figures.append(Figure(label, str(value), source))
        self.used(source)

    def used(self, source: str) -> None:
        if source not in self.queries:
            self.queries.append(source)

    def link(self, label: str, href: str) -> None:
        if all(link.href != href for link in self.links):
            self.links.append(Link(label, href))


# ---- words ----------------------------------------------------------------------------------


def _when(t: datetime | None) -> str:
    return "never" if t is None else f"{t.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else many or word + 's'}"


def _shipment_href(reference: str) -> str:
    return "/shipments/" + quote(reference, safe="")


def _passport_href(identifier: str) -> str:
    return "/passport?id=" + quote(identifier, safe="")


def _state(status: str) -> str:
    return lifecycle.STATE_LABELS.get(status, status)  # type: ignore[call-overload, no-any-return]


def _said(status: str) -> str:
    """A state in the middle of a sentence: "in transit", "under QA review"."""
    return _state(status).lower().replace("qa ", "QA ")


def _listed(refs: Sequence[str], total: int) -> str:
    shown = ", ".join(refs)
    return f"{shown} (the first {len(refs)} of {total})" if total > len(refs) else shown


def _filters(ctx: Context) -> ask_q.Filters:
    q = ctx.q
    return ask_q.Filters(
        origin=q.origin,
        destination=q.destination,
        place=q.place,
        carrier=q.carrier,
        gtin=q.product[0] if q.product else None,
        lane=q.lane,
        statuses=q.statuses or None,
        since=q.period.since if q.period else None,
        until=q.period.until if q.period else None,
    )


def _described(ctx: Context, *, with_status: bool = True) -> str:
    """The question's filters in words: "from Basel to Milan, carrier X, last week"."""
    q = ctx.q
    parts = []
    if q.origin or q.destination:
        ends = (
            f"from {q.origin}" if q.origin else "",
            f"to {q.destination}" if q.destination else "",
        )
        parts.append(" ".join(e for e in ends if e))
    if q.place:
        parts.append(f"from or to {q.place}")
    if q.lane:
        parts.append(f"on lane {q.lane}")
    if q.carrier:
        parts.append(f"with carrier {q.carrier}")
    if q.product:
        parts.append(f"of {q.product[1]}")
    if with_status and q.statuses:
        parts.append(" or ".join(_said(s) for s in q.statuses))
    if q.condition:
        parts.append(f"in condition {q.condition}")
    if q.period:
        parts.append(q.period.label)
    return (" " + ", ".join(parts)) if parts else ""


def _ask_which(d: Draft, what: str) -> Draft:
    d.text = f"Which {what}? Give its reference, purchase order or identifier."
    d.suggestions = ["What is the status of SHP-0001?", "Where is PO 5829?"]
    return d
