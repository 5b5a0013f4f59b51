"""The report as two tidy CSV files (pure: the bytes depend on the report document only).

- **readings** (:func:`render_readings_csv`): one row per reading, one column per variable,
  ordered by time then logger::

      time_utc, logger, temperature_c, humidity_pct, lat, lon, in_range, excursion_id

  ``time_utc`` is ISO 8601 in UTC (``2026-11-26T02:05:00Z``); ``temperature_c`` is in °C and
  ``humidity_pct`` in %RH; ``in_range`` is ``yes``/``no`` against the range the excursions were
  judged by (``rules.temperature``: out means above its high limit, below its low limit or at/below
  its freeze limit, :meth:`coldchain.thermal.excursions.TempLimits.classify`), empty without a
  temperature rule; ``excursion_id`` names the excursion of the same logger the reading falls in
  (from its start up to its end, or on while it is open), else empty. Humidity and position are
  part of the evidence from format 3 on: a record signed in an older format leaves them empty.
- **summary** (:func:`render_summary_csv`): everything else the report says, one row per figure::

      section, item, field, value, unit

  ``section`` is the report's section (``report``, ``shipment``, ``product``, ``rules``,
  ``totals``, ``lots``, ``units``, ``legs``, ``loggers``, ``excursions``, ``verdicts``, ``alerts``,
  ``dispositions``), ``item`` the row of that section it is about (a logger's serial, an
  excursion's id, a lot, an alert's id …; empty for a section of one), ``field`` the figure, nested
  ones dotted (``mkt.window.mkt_c``, ``gaps.1.start``, ``acknowledged.1.by``: lists numbered from
  1), ``value`` plain text (no JSON: ``yes``/``no`` for true/false, empty for none) and ``unit``
  the unit the field's name carries (``°C``, ``°C·min``, ``s``, ``min``, ``h``, ``J/mol``).
  Nothing in the JSON report is left out except the readings, which are the other file; a pivot
  on ``field`` gives a section back as a table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from coldchain.thermal.excursions import TempLimits
from reports.assemble import JsonDict

READINGS_HEADER = (
    "time_utc",
    "logger",
    "temperature_c",
    "humidity_pct",
    "lat",
    "lon",
    "in_range",
    "excursion_id",
)
SUMMARY_HEADER = ("section", "item", "field", "value", "unit")

#: The key that names an element of a list section (the ``item`` column), by section.
ITEM_KEYS: dict[str, tuple[str, ...]] = {
    "lots": ("gtin", "lot"),
    "units": ("epc",),
    "legs": ("seq",),
    "loggers": ("device_id",),
    "excursions": ("id",),
    "verdicts": ("gtin",),
    "alerts": ("id",),
    "dispositions": ("id",),
}
#: The evidence's sections in the order the summary lists them (any other after, by name).
SECTION_ORDER = ("shipment", "product", "lots", "units", "legs", "loggers", "rules", "excursions",
                 "totals", "verdicts", "alerts")  # fmt: skip
#: A field's unit, by the end of its name.
_UNITS = (
    ("degree_minutes", "°C·min"),
    ("_c", "°C"),
    ("_s", "s"),
    ("_min", "min"),
    ("_h", "h"),
    ("_j_mol", "J/mol"),
)


def _csv(header: tuple[str, ...], rows: Iterator[tuple[Any, ...]]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue().encode("utf-8")


def _text(value: Any) -> Any:
    """A cell: yes/no for a boolean, empty for none, else the value itself."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def _limits(ev: JsonDict) -> TempLimits | None:
    rule = ev["rules"].get("temperature")
    if rule is None:
        return None
    return TempLimits(
        low_c=rule.get("low_c"),
        high_c=rule.get("high_c"),
        freeze_c=rule.get("freeze_c"),
        alarm_delay=timedelta(seconds=rule.get("alarm_delay_s") or 0),
        max_gap=timedelta(seconds=1),  # not used: only the range judges a reading
    )


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _excursion_of(ev: JsonDict) -> dict[str, list[tuple[datetime, datetime | None, Any]]]:
    """Each logger's excursions as (start, end or None while open, id)."""
    out: dict[str, list[tuple[datetime, datetime | None, Any]]] = {}
    for e in ev["excursions"]:
        end = None if e["end"] is None else _instant(e["end"])
        out.setdefault(e["device_id"], []).append((_instant(e["start"]), end, e["id"]))
    return out


def reading_rows(doc: JsonDict) -> Iterator[tuple[Any, ...]]:
    """The readings file's rows (see the module docstring), ordered by time then logger."""
    ev = doc["evidence"]
    limits = _limits(ev)
    spans = _excursion_of(ev)
    timed = sorted(
        ((_instant(r["ts"]), r) for r in ev["readings"]), key=lambda x: (x[0], x[1]["device_id"])
    )
    for ts, r in timed:
        temp = r["temp_c"]
        in_range = None if limits is None or temp is None else limits.classify(temp) is None
        excursion = next(
            (
                i
                for start, end, i in spans.get(r["device_id"], ())
                if start <= ts and (end is None or ts < end)
            ),
            None,
        )
        yield tuple(
            _text(v)
            for v in (
                r["ts"],
                r["device_id"],
                temp,
                r.get("rh"),
                r.get("lat"),
                r.get("lon"),
                in_range,
                excursion,
            )
        )


def render_readings_csv(doc: JsonDict) -> bytes:
    """The readings file: one row per reading (module docstring)."""
    return _csv(READINGS_HEADER, reading_rows(doc))


def _flat(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    """(dotted field, scalar) pairs of a JSON value; list elements numbered from 1."""
    if isinstance(value, Mapping):
        for k in sorted(value):
            yield from _flat(f"{prefix}.{k}" if prefix else str(k), value[k])
    elif isinstance(value, list):
        if not value:
            yield prefix, None
        for i, v in enumerate(value, start=1):
            yield from _flat(f"{prefix}.{i}", v)
    else:
        yield prefix, value


def _unit(name: str) -> str:
    last = name.rsplit(".", 1)[-1]
    return next((unit for suffix, unit in _UNITS if last.endswith(suffix)), "")


def summary_rows(doc: JsonDict) -> Iterator[tuple[Any, ...]]:
    """The summary file's rows (see the module docstring), in the report's order."""
    ev = doc["evidence"]
    head = {
        "format": ev["format"],
        "as_of": ev["as_of"],
        "content_hash": doc["content_hash"],
        "content_hash_rule": doc["content_hash_rule"],
        "frozen_snapshot_id": doc["frozen_snapshot_id"],
    }
    sections: list[tuple[str, Any]] = [("report", head)]
    # a fixed order, not the evidence's own: a frozen snapshot comes back with its keys sorted
    rest = sorted(k for k in ev if k not in (*SECTION_ORDER, "format", "as_of", "readings"))
    sections += [(k, ev[k]) for k in (*SECTION_ORDER, *rest) if k in ev]
    sections.append(("dispositions", doc["dispositions"]))
    for section, body in sections:
        if isinstance(body, list) and section in ITEM_KEYS:
            for element in body:
                item = "/".join(str(_text(element.get(k))) for k in ITEM_KEYS[section])
                for name, value in _flat("", element):
                    yield section, item, name, _text(value), _unit(name)
        else:
            for name, value in _flat("", body):
                yield section, "", name, _text(value), _unit(name)


def render_summary_csv(doc: JsonDict) -> bytes:
    """The summary file: one row per figure (module docstring)."""
    return _csv(SUMMARY_HEADER, summary_rows(doc))
