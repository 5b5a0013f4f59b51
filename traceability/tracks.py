"""The pieces of a unit's history, their windows and their tracks (pure).

A *piece* says that over [start, end) the unit inherits one logger's readings, through a chain
of containers, in one shipment (:mod:`db.queries.trace` finds them; :mod:`traceability.passport`
judges the series built here).

A unit is usually watched by one logger at a time, and its series is then simply the pieces'
readings end to end, across containers, shipments and legs. When a shipment carries several
loggers, pieces overlap in time; interleaving their readings would make one series jump between
sensors. The pieces are therefore split into **tracks**, each a time-ordered chain of
non-overlapping pieces (greedy interval partitioning, preferring to continue with the same
logger). Each track is one coherent series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from coldchain.thermal.series import Point

__all__ = [
    "Inherited",
    "Piece",
    "max_gap_for",
    "merge_windows",
    "piece_order",
    "split_tracks",
    "track_points",
]


@dataclass(frozen=True, slots=True)
class Piece:
    """Over [start, end) the unit inherits ``device_id``'s readings (see the module doc)."""

    device_id: str
    interval_s: int
    shipment_id: int
    shipment_reference: str
    container: str
    chain: tuple[str, ...]
    start: datetime | None
    end: datetime | None

    def covers(self, ts: datetime) -> bool:
        """Whether ``ts`` falls in [start, end)."""
        return (self.start is None or ts >= self.start) and (self.end is None or ts < self.end)


@dataclass(frozen=True, slots=True)
class Inherited:
    """One reading the unit inherits."""

    device_id: str
    ts: datetime
    temp_c: float | None
    rh: float | None = None
    lat: float | None = None
    lon: float | None = None


def _start_key(ts: datetime | None) -> tuple[int, datetime | None]:
    # None is "since forever": before any datetime.
    return (0, None) if ts is None else (1, ts)


def piece_order(p: Piece) -> tuple[Any, ...]:
    """Pieces by start (open start first), then logger."""
    return (*_start_key(p.start), p.device_id)


def merge_windows(pieces: Iterable[Piece]) -> list[tuple[str, datetime | None, datetime | None]]:
    """Per logger, the union of its pieces as disjoint [start, end) windows (overlapping or
    touching ones merged), so each reading is fetched once."""
    by_device: dict[str, list[Piece]] = {}
    for p in pieces:
        by_device.setdefault(p.device_id, []).append(p)
    out: list[tuple[str, datetime | None, datetime | None]] = []
    for device in sorted(by_device):
        current: list[datetime | None] | None = None
        for p in sorted(by_device[device], key=piece_order):
            if current is not None and (
                current[1] is None or p.start is None or p.start <= current[1]
            ):
                if current[1] is not None and (p.end is None or p.end > current[1]):
                    current[1] = p.end
                continue
            if current is not None:
                out.append((device, current[0], current[1]))
            current = [p.start, p.end]
        if current is not None:
            out.append((device, current[0], current[1]))
    return out


def split_tracks(pieces: Sequence[Piece]) -> list[list[Piece]]:
    """Chains of non-overlapping pieces in time order (see the module doc)."""
    tracks: list[list[Piece]] = []
    for piece in sorted(pieces, key=piece_order):
        fitting = [
            t
            for t in tracks
            if t[-1].end is not None and piece.start is not None and t[-1].end <= piece.start
        ]
        if not fitting:
            tracks.append([piece])
            continue
        # Continue the same logger's series where possible, else the track that ended last.
        same = [t for t in fitting if t[-1].device_id == piece.device_id]
        chosen = max(same or fitting, key=lambda t: t[-1].end or datetime.min)
        chosen.append(piece)
    return tracks


def track_points(track: Sequence[Piece], readings: Iterable[Inherited]) -> list[Point]:
    """The track's series: each piece's logger's temperatures inside that piece."""
    points: list[Point] = []
    for r in readings:
        if r.temp_c is None or not math.isfinite(r.temp_c):
            continue
        if any(p.device_id == r.device_id and p.covers(r.ts) for p in track):
            points.append(Point(r.ts, r.temp_c))
    return points


def max_gap_for(pieces: Iterable[Piece], *, gap_factor: float, default_s: int = 300) -> timedelta:
    """The gap threshold: ``gap_factor`` × the longest logging interval among the loggers."""
    longest = max((p.interval_s for p in pieces), default=default_s)
    return timedelta(seconds=gap_factor * longest)
