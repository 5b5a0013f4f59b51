"""Dates and relative ranges in a question ("last week", "since 3 Dec", "past 48 hours"), read
against an injected ``now`` (pure: no clock reads); "in 2025" is that calendar year.

A range is half-open, ``[since, until)``, in ``now``'s time zone (UTC on the platform): "last
week" is the ISO week (Monday to Monday) before the current one, "in November" the latest
November that has begun, "since 3 Dec" from midnight of the latest 3 December not after now.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from coldchain.ask.text import closest

__all__ = ["MONTHS", "Period", "find_period"]

MONTHS: Final = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_UNITS: Final = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}


@dataclass(frozen=True, slots=True)
class Period:
    """``[since, until)`` and how the question said it (``"last week"``)."""

    since: datetime
    until: datetime
    label: str


def _month(word: str) -> int | None:
    """1–12 for a month's name, its first three letters, or a near miss ("novembr")."""
    if len(word) >= 3:
        for i, name in enumerate(MONTHS, start=1):
            if name.startswith(word):
                return i
    found = closest(word, MONTHS)
    return None if found is None else MONTHS.index(found) + 1


def _midnight(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def _month_start(year: int, month: int, like: datetime) -> datetime:
    return _midnight(like).replace(year=year, month=month, day=1)


def _next_month(t: datetime) -> datetime:
    return t.replace(year=t.year + 1, month=1) if t.month == 12 else t.replace(month=t.month + 1)


def _latest_month(month: int, now: datetime) -> datetime:
    year = now.year if month <= now.month else now.year - 1
    return _month_start(year, month, now)


def _day(words: list[str], i: int, now: datetime) -> tuple[datetime, int] | None:
    """A date at ``words[i:]`` ("3 dec", "dec 3", "2026-12-03", "3rd december"): the latest
    such day not after ``now``, and how many words it took."""
    first = words[i] if i < len(words) else ""
    iso = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", first)
    if iso:
        try:
            day = now.replace(
                year=int(iso[1]), month=int(iso[2]), day=int(iso[3]), hour=0, minute=0, second=0
            )
        except ValueError:
            return None
        return day.replace(microsecond=0), 1
    pair = words[i : i + 2]
    if len(pair) < 2:
        return None
    a, b = pair
    num = re.fullmatch(r"(\d{1,2})(st|nd|rd|th)?", a)
    month = _month(b) if num else None
    if num is None or month is None:
        num = re.fullmatch(r"(\d{1,2})(st|nd|rd|th)?", b)
        month = _month(a) if num else None
    if num is None or month is None:
        return None
    year = now.year
    try:
        day = _midnight(now).replace(year=year, month=month, day=int(num[1]))
        if day > now:
            day = day.replace(year=year - 1)
    except ValueError:
        return None
    return day, 2


def find_period(words: tuple[str, ...], now: datetime) -> tuple[Period, set[int]] | None:
    """The first date or range the words name, and the positions of the words it took."""
    w = list(words)
    today = _midnight(now)
    for i, word in enumerate(w):
        nxt = w[i + 1] if i + 1 < len(w) else ""
        if word == "today":
            return Period(today, now, "today"), {i}
        if word == "yesterday":
            return Period(today - timedelta(days=1), today, "yesterday"), {i}
        if word in ("this", "last", "past", "previous") and nxt:
            unit = nxt.rstrip("s")
            if unit in ("week", "month", "year") and word in ("this", "last", "previous"):
                if unit == "week":
                    start = today - timedelta(days=today.weekday())
                    period = (start, now) if word == "this" else (start - timedelta(days=7), start)
                elif unit == "month":
                    start = today.replace(day=1)
                    prev = (start - timedelta(days=1)).replace(day=1)
                    period = (start, now) if word == "this" else (prev, start)
                else:
                    start = today.replace(month=1, day=1)
                    period = (
                        (start, now)
                        if word == "this"
                        else (start.replace(year=now.year - 1), start)
                    )
                return Period(*period, f"{word} {unit}"), {i, i + 1}
            count = re.fullmatch(r"\d{1,4}", nxt)
            after = w[i + 2].rstrip("s") if i + 2 < len(w) else ""
            if word in ("last", "past") and count and after in (*_UNITS, "month"):
                n = int(count[0])
                span = (
                    timedelta(days=30 * n)
                    if after == "month"
                    else timedelta(seconds=n * _UNITS[after])
                )
                return Period(now - span, now, f"in the past {n} {after}s"), {i, i + 1, i + 2}
        if word == "since":
            found = _day(w, i + 1, now)
            if found:
                day, n = found
                return Period(day, now, f"since {day:%d %b %Y}"), set(range(i, i + 1 + n))
            month = _month(nxt) if nxt else None
            if month:
                start = _latest_month(month, now)
                return Period(start, now, f"since {start:%B %Y}"), {i, i + 1}
        if word in ("in", "during") and re.fullmatch(r"(19|20)\d\d", nxt):
            start = today.replace(year=int(nxt), month=1, day=1)
            return Period(start, start.replace(year=start.year + 1), f"in {nxt}"), {i, i + 1}
        if word in ("in", "during") and nxt:
            month = _month(nxt) if not nxt.isdigit() and len(nxt) >= 3 else None
            if month:
                start = _latest_month(month, now)
                return Period(start, _next_month(start), f"in {start:%B %Y}"), {i, i + 1}
        if word == "on":
            found = _day(w, i + 1, now)
            if found:
                day, n = found
                return Period(day, day + timedelta(days=1), f"on {day:%d %b %Y}"), set(
                    range(i, i + 1 + n)
                )
    return None
