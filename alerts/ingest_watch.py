"""The system alert "Ingest stalled": no reading stored at all while loggers should be reporting.

Each logger's own "no data" alert says that *it* fell silent; when the ingester, the broker or
the network in front of them stops, every logger falls silent at once, and a person should hear
of it as one thing, at once, not as hundreds of "no data" alerts after each logger's own offline
threshold. So, at every periodic pass, the engine that holds partition 0 (one engine, whichever:
alerts.partitions) reads (db/queries/health.py ``INGEST_SILENCE``, on the database's clock):

- how long ago the last reading was stored (the newest ``reading_changes`` row, any logger);
- how many loggers are *expected to report*: assigned now to a shipment in transit, and
  reporting when ingest went quiet (their latest reading was received within their offline
  threshold, ``offline_factor`` × their interval, before the last stored reading). A logger that
  was already offline, or a fleet with nothing in transit, expects nothing.

:func:`stalled` (pure) says whether that is a stall: silent for ``ingest_stall_min`` minutes or
more while at least one logger is expected. A stall opens ONE alert for the fleet (rule
``ingest_stalled``, severity critical, no shipment: db/migrations/0027), "Ingest stalled: no
reading stored for N min while K loggers are expected to report", notified through the outbox to
tier 0 (it escalates no further: escalation works per shipment partition). When readings are
stored again it resolves by itself (``auto_resolve``, as "no data" does: an operational
condition), with a "resolved" notification; a new stall opens a new alert.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from alerts import policy
from alerts.reconcile import Reconciler
from db.queries import health as q

RULE_KEY = "ingest_stalled"
SEVERITY = "critical"


def stalled(*, silent_s: float | None, expected: int, stall_s: float) -> bool:
    """A stall: nothing stored for ``stall_s`` or more while ``expected`` loggers should report
    (``silent_s`` None: no reading was ever stored, nothing to miss)."""
    return silent_s is not None and expected > 0 and silent_s >= stall_s


def title(*, silent_s: float, expected: int) -> str:
    """The alert's title: the silence in whole minutes (seconds under one)."""
    loggers = "logger is" if expected == 1 else "loggers are"
    silence = f"{int(silent_s // 60)} min" if silent_s >= 60 else f"{int(silent_s)} s"
    return (
        f"Ingest stalled: no reading stored for {silence} "
        f"while {expected} {loggers} expected to report"
    )


async def watch_ingest(
    conn: AsyncConnection[Any],
    reconciler: Reconciler,
    *,
    stall_min: float,
    offline_factor: float,
) -> str | None:
    """Open, keep or resolve the fleet's "Ingest stalled" alert, in the caller's transaction;
    return what happened (``"opened"``, ``"resolved"``) or None."""
    cur = await conn.execute(q.INGEST_SILENCE, {"offline_factor": offline_factor})
    row = await cur.fetchone()
    assert row is not None
    last_at: datetime | None = row[0]
    silent_s = None if row[1] is None else float(row[1])
    expected = int(row[2])
    now_stalled = stalled(silent_s=silent_s, expected=expected, stall_s=stall_min * 60)
    alert = await _unresolved(conn)
    if alert is None:
        if not now_stalled:
            return None
        assert silent_s is not None and last_at is not None
        alert = await _open(conn, silent_s=silent_s, expected=expected, last_at=last_at)
        await reconciler.event(
            conn, alert["alert_id"], "opened", None, {"expected_loggers": expected}
        )
        await reconciler.notify(conn, alert, "opened", range(0, 1))
        return "opened"
    state = policy.AlertState(
        alert["alert_id"], RULE_KEY, alert["severity"], alert["state"], alert["cleared"]
    )
    decision = policy.clear_decision(
        state, holding=now_stalled, quiet=not now_stalled, auto_resolve=True
    )
    await reconciler.transition(conn, alert, decision)
    return "resolved" if decision == "resolve" else None


async def _unresolved(conn: AsyncConnection[Any]) -> dict[str, Any] | None:
    cur = await conn.execute(q.UNRESOLVED_SYSTEM_ALERT, {"rule_key": RULE_KEY})
    row = await cur.fetchone()
    if row is None:
        return None
    assert cur.description is not None
    return dict(zip([c.name for c in cur.description], row, strict=True))


async def _open(
    conn: AsyncConnection[Any], *, silent_s: float, expected: int, last_at: datetime
) -> dict[str, Any]:
    details = {"expected_loggers": expected, "last_stored_at": last_at.isoformat()}
    alert: dict[str, Any] = {
        "shipment_id": None,
        "reference": None,
        "rule_key": RULE_KEY,
        "severity": SEVERITY,
        "state": "open",
        "cleared": False,
        "title": title(silent_s=silent_s, expected=expected),
        "device_id": None,
        "value": round(silent_s / 60, 1),
        "thresholds": {},
        "escalation_level": 0,
    }
    cur = await conn.execute(
        q.OPEN_SYSTEM_ALERT,
        {
            "rule_key": RULE_KEY,
            "severity": SEVERITY,
            "title": alert["title"],
            "value": alert["value"],
            "details": Jsonb(details),
        },
    )
    row = await cur.fetchone()
    assert row is not None
    alert["alert_id"], alert["triggered_at"] = row[0], row[1]
    return alert
