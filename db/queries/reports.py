"""Queries of the excursion report, the frozen report snapshots and the signed dispositions.

Everything a report says is read *as of* one instant: readings measured and received by then,
excursions and alerts recorded by then (and alert events up to then), rule versions stored by
then, arrival verdicts evaluated by then. A report asked for at the same ``as_of`` therefore says
the same thing later, unless data was deleted; a signature compares the hash of what the signer
saw with this.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import tuple_row

from coldchain import severity
from db.queries.shipments import SELECT_LEGS
from db.types import Conn, Row

# The status is the shipment's logistic state as of ``as_of`` (from its timeline, 0011): QA's
# decisions are the report's dispositions, listed apart, so signing one does not change the
# evidence it was signed on. A shipment without a timeline (older than 0011) shows its stored
# state, with a disposed one shown as the "arrived" it was before the decision.
SHIPMENT = """
SELECT s.shipment_id, s.reference, s.product_gtin, s.origin, s.destination,
       coalesce(
           (SELECT e.to_state FROM shipment_events e
            WHERE e.shipment_id = s.shipment_id AND e.at <= %(as_of)s
              AND e.event IN ('create', 'start', 'arrive', 'review', 'cancel')
            ORDER BY e.at DESC, e.event_id DESC LIMIT 1),
           CASE WHEN s.status IN ('released', 'quarantined', 'rejected', 'returned')
                THEN 'arrived' ELSE s.status END
       ) AS status,
       s.carrier, s.planned_departure, s.planned_arrival, s.created_at
FROM shipments s WHERE s.shipment_id = %(shipment_id)s
"""

LOGGERS = """
SELECT d.device_id, d.model, d.calibration_cert, d.calibration_due, d.interval_s,
       lower(a.during) AS assigned_from, upper(a.during) AS assigned_to
FROM device_assignments a JOIN devices d USING (device_id)
WHERE a.shipment_id = %(shipment_id)s
  AND (lower(a.during) IS NULL OR lower(a.during) <= %(as_of)s)
ORDER BY lower(a.during) NULLS FIRST, d.device_id
"""

# The bounds next to the range test let the (device_id, ts) index and chunk exclusion work.
READINGS = """
SELECT r.ts, r.temp_c, r.rh, r.lat, r.lon
FROM readings r
WHERE r.device_id = %(device_id)s
  AND r.ts >= coalesce(%(lower)s::timestamptz, '-infinity')
  AND r.ts < coalesce(%(upper)s::timestamptz, 'infinity')
  AND r.ts <= %(as_of)s AND r.received_at <= %(as_of)s
  AND r.temp_c IS NOT NULL
ORDER BY r.ts
"""

# Units on board, and what is packed in them (down to the items), for lots and serials.
UNITS = """
WITH RECURSIVE onboard (epc, depth) AS (
    SELECT su.epc, 0 FROM shipment_units su WHERE su.shipment_id = %(shipment_id)s
    UNION
    SELECT a.child_epc, o.depth + 1
    FROM onboard o JOIN aggregations a ON a.parent_epc = o.epc
    WHERE o.depth < 6
)
SELECT DISTINCT u.epc, u.kind, u.gtin, u.serial, u.sscc, u.lot, u.expiry
FROM onboard o JOIN units u USING (epc)
ORDER BY u.epc
"""

EXCURSIONS_AS_OF = """
SELECT excursion_id AS id, device_id, direction, start_ts, end_ts, last_out_ts, ended_by_gap,
       min_c, max_c, degree_minutes, n_readings, readings_over_40, readings_freezing, alarm,
       alarm_at, freeze_alarm, rule_key, thresholds
FROM excursions
WHERE shipment_id = %(shipment_id)s AND created_at <= %(as_of)s
  AND (superseded_at IS NULL OR superseded_at > %(as_of)s)
ORDER BY start_ts, device_id, excursion_id
"""

ALERTS_AS_OF = """
SELECT alert_id AS id, rule_key, severity, title, device_id, triggered_at, value, thresholds
FROM alerts
WHERE shipment_id = %(shipment_id)s AND created_at <= %(as_of)s
ORDER BY triggered_at, alert_id
"""

ALERT_EVENTS_AS_OF = """
SELECT alert_id, at, kind, actor, comment
FROM alert_events
WHERE alert_id = ANY(%(alert_ids)s) AND at <= %(as_of)s
ORDER BY alert_id, at, id
"""

# The latest arrival verdict of each product evaluated by ``as_of`` (shipment_verdicts is
# append-only, 0011: a product judged again has a newer row, the older one stays).
VERDICTS_AS_OF = """
SELECT DISTINCT ON (v.gtin) v.gtin, p.name AS product_name, v.verdict, v.reasons, v.figures,
       v.profile_version, v.evaluated_at, v.evaluated_by
FROM shipment_verdicts v JOIN products p USING (gtin)
WHERE v.shipment_id = %(shipment_id)s AND v.evaluated_at <= %(as_of)s
ORDER BY v.gtin, v.evaluated_at DESC, v.verdict_id DESC
"""

INSERT_SNAPSHOT = """
INSERT INTO report_snapshots (shipment_id, as_of, content_hash, evidence, created_by)
VALUES (%(shipment_id)s, %(as_of)s, %(content_hash)s, %(evidence)s, %(created_by)s)
ON CONFLICT (shipment_id, content_hash) DO NOTHING
"""

SELECT_SNAPSHOT = """
SELECT snapshot_id, shipment_id, as_of, content_hash, evidence, created_at, created_by
FROM report_snapshots
WHERE shipment_id = %(shipment_id)s
  AND (snapshot_id = %(snapshot_id)s OR content_hash = %(content_hash)s)
"""

LIST_SNAPSHOTS = """
SELECT snapshot_id, shipment_id, as_of, content_hash, created_at, created_by
FROM report_snapshots WHERE shipment_id = %(shipment_id)s ORDER BY snapshot_id
"""

_DISPOSITION_COLUMNS = """disposition_id, shipment_id, lot, decision, reason, meaning,
    signer_user_id, signer_username, signer_name, signer_role, signed_at, snapshot_id,
    report_hash, supersedes, signature_hash, policy_id"""

LIST_DISPOSITIONS = f"""
SELECT {_DISPOSITION_COLUMNS} FROM dispositions
WHERE shipment_id = %(shipment_id)s
  AND (%(snapshot_id)s::bigint IS NULL OR snapshot_id = %(snapshot_id)s)
ORDER BY disposition_id
"""

# Two signers of the same (shipment, lot) take turns: a transaction-scoped advisory lock (the
# app role may not SELECT ... FOR UPDATE an append-only table, which needs UPDATE privilege).
# The unique indexes on dispositions would refuse a race anyway; the lock turns it into a wait.
LOCK_SCOPE = """
SELECT pg_advisory_xact_lock(hashtext('coldchain.disposition'),
                             hashtext(%(shipment_id)s::text || '/' || coalesce(%(lot)s, '')))
"""

# The record in force for a (shipment, lot) scope: the one nobody superseded.
CURRENT_DISPOSITION = f"""
SELECT {_DISPOSITION_COLUMNS} FROM dispositions d
WHERE d.shipment_id = %(shipment_id)s AND d.lot IS NOT DISTINCT FROM %(lot)s
  AND NOT EXISTS (SELECT 1 FROM dispositions n WHERE n.supersedes = d.disposition_id)
"""

INSERT_DISPOSITION = f"""
INSERT INTO dispositions (shipment_id, lot, decision, reason, meaning, signer_user_id,
    signer_username, signer_name, signer_role, signed_at, snapshot_id, report_hash, supersedes,
    signature_hash, policy_id)
VALUES (%(shipment_id)s, %(lot)s, %(decision)s, %(reason)s, %(meaning)s, %(signer_user_id)s,
    %(signer_username)s, %(signer_name)s, %(signer_role)s, %(signed_at)s, %(snapshot_id)s,
    %(report_hash)s, %(supersedes)s, %(signature_hash)s, %(policy_id)s)
RETURNING {_DISPOSITION_COLUMNS}
"""


def shipment(*, conn: Conn, shipment_id: int, as_of: datetime) -> Row | None:
    """The shipment's own row, its status as of ``as_of`` (see SHIPMENT)."""
    return conn.execute(SHIPMENT, {"shipment_id": shipment_id, "as_of": as_of}).fetchone()


def legs(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The shipment's legs, in order."""
    return conn.execute(SELECT_LEGS, {"shipment_id": shipment_id}).fetchall()


def loggers(*, conn: Conn, shipment_id: int, as_of: datetime) -> list[Row]:
    """The loggers assigned to the shipment by ``as_of``, one row per assignment."""
    return conn.execute(LOGGERS, {"shipment_id": shipment_id, "as_of": as_of}).fetchall()


def readings(
    *,
    conn: Conn,
    device_id: str,
    lower: datetime | None,
    upper: datetime | None,
    as_of: datetime,
) -> list[tuple[datetime, float]]:
    """(ts, °C) of a logger in [lower, upper), measured and received by ``as_of``."""
    rows = reading_details(conn=conn, device_id=device_id, lower=lower, upper=upper, as_of=as_of)
    return [(ts, temp_c) for ts, temp_c, _rh, _lat, _lon in rows]


def reading_details(
    *,
    conn: Conn,
    device_id: str,
    lower: datetime | None,
    upper: datetime | None,
    as_of: datetime,
) -> list[tuple[datetime, float, float | None, float | None, float | None]]:
    """(ts, °C, %RH, lat, lon) of a logger in [lower, upper), measured and received by
    ``as_of`` (humidity and position None where the logger sent none)."""
    # Tuples in binary format: a 30-day, one-minute logger is 43,200 rows, and parsing their
    # timestamps from text into dicts took over half of the time (75 ms → 29 ms).
    params = {"device_id": device_id, "lower": lower, "upper": upper, "as_of": as_of}
    with conn.cursor(row_factory=tuple_row, binary=True) as cur:
        rows = cur.execute(READINGS, params).fetchall()
    return [
        (ts, float(temp_c), _float(rh), _float(lat), _float(lon))
        for ts, temp_c, rh, lat, lon in rows
    ]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def units(*, conn: Conn, shipment_id: int) -> list[Row]:
    """Units on board (SSCCs) and what they hold (cases, items), with lots and expiry."""
    return conn.execute(UNITS, {"shipment_id": shipment_id}).fetchall()


def excursions(*, conn: Conn, shipment_id: int, as_of: datetime) -> list[Row]:
    """The excursions that were current at ``as_of``."""
    return conn.execute(EXCURSIONS_AS_OF, {"shipment_id": shipment_id, "as_of": as_of}).fetchall()


def alerts(*, conn: Conn, shipment_id: int, as_of: datetime) -> list[Row]:
    """Alerts raised by ``as_of`` with their events up to then and their state at that time."""
    rows = conn.execute(ALERTS_AS_OF, {"shipment_id": shipment_id, "as_of": as_of}).fetchall()
    if not rows:
        return []
    events = conn.execute(
        ALERT_EVENTS_AS_OF, {"alert_ids": [r["id"] for r in rows], "as_of": as_of}
    ).fetchall()
    by_alert: dict[int, list[Row]] = {}
    for e in events:
        by_alert.setdefault(int(e["alert_id"]), []).append(e)
    out = []
    for r in rows:
        mine = by_alert.get(int(r["id"]), [])
        out.append({**r, "events": mine, "state_as_of": state_from_events(mine)})
    return out


def verdicts(*, conn: Conn, shipment_id: int, as_of: datetime) -> list[Row]:
    """The latest arrival verdict of each product, as evaluated by ``as_of`` (by GTIN)."""
    return conn.execute(VERDICTS_AS_OF, {"shipment_id": shipment_id, "as_of": as_of}).fetchall()


def state_from_events(events: list[Row]) -> str:
    """An alert's state after its events (opened/reopened → open, acknowledged, resolved)."""
    state = "open"
    for e in events:
        if e["kind"] == "acknowledged":
            state = "acknowledged"
        elif e["kind"] == "resolved":
            state = "resolved"
        elif e["kind"] in ("opened", "reopened"):
            state = "open"
    return state


def save_snapshot(
    *,
    conn: Conn,
    shipment_id: int,
    as_of: datetime,
    content_hash: str,
    evidence: str,
    created_by: str,
) -> Row:
    """Freeze a report's evidence (once per content hash); returns the snapshot row."""
    params: dict[str, Any] = {
        "shipment_id": shipment_id,
        "as_of": as_of,
        "content_hash": content_hash,
        "evidence": evidence,
        "created_by": created_by,
    }
    conn.execute(INSERT_SNAPSHOT, params)
    row = snapshot(conn=conn, shipment_id=shipment_id, content_hash=content_hash)
    assert row is not None
    return row


def snapshot(
    *,
    conn: Conn,
    shipment_id: int,
    snapshot_id: int | None = None,
    content_hash: str | None = None,
) -> Row | None:
    """A frozen report of the shipment, by id or by content hash."""
    return conn.execute(
        SELECT_SNAPSHOT,
        {"shipment_id": shipment_id, "snapshot_id": snapshot_id, "content_hash": content_hash},
    ).fetchone()


def list_snapshots(*, conn: Conn, shipment_id: int) -> list[Row]:
    """The shipment's frozen reports (without their evidence)."""
    return conn.execute(LIST_SNAPSHOTS, {"shipment_id": shipment_id}).fetchall()


def dispositions(*, conn: Conn, shipment_id: int, snapshot_id: int | None = None) -> list[Row]:
    """Signed dispositions of the shipment (of one snapshot), oldest first, superseded included."""
    return conn.execute(
        LIST_DISPOSITIONS, {"shipment_id": shipment_id, "snapshot_id": snapshot_id}
    ).fetchall()


def current_disposition(*, conn: Conn, shipment_id: int, lot: str | None) -> Row | None:
    """The record in force for the scope; the scope stays locked until the transaction ends
    (call inside a transaction)."""
    params = {"shipment_id": shipment_id, "lot": lot}
    conn.execute(LOCK_SCOPE, params)
    return conn.execute(CURRENT_DISPOSITION, params).fetchone()


def insert_disposition(*, conn: Conn, values: dict[str, Any]) -> Row:
    """Store a signed disposition (the caller computed its signature hash)."""
    row = conn.execute(INSERT_DISPOSITION, values).fetchone()
    assert row is not None
    return row


# The QA queue's figures of each shipment in ``ids``: its current excursions (count, alarmed,
# still open, time out of range, degree-minutes, the peak above and the low below the range), the
# worst severity of any alert it raised (open or not: QA judges what happened, not what is
# still ringing), and the dispositions in force (not superseded): the whole shipment's decision,
# and how many lots have one of their own.
QUEUE_FIGURES = f"""
WITH exc AS (
    SELECT shipment_id,
           count(*) AS excursions,
           count(*) FILTER (WHERE alarm) AS alarmed_excursions,
           count(*) FILTER (WHERE end_ts IS NULL) AS open_excursions,
           sum(extract(epoch FROM coalesce(end_ts, last_out_ts) - start_ts)) AS time_out_s,
           sum(degree_minutes) AS degree_minutes,
           max(max_c) FILTER (WHERE direction = 'high') AS peak_high_c,
           min(min_c) FILTER (WHERE direction = 'low') AS peak_low_c,
           min(start_ts) AS first_excursion_at
    FROM excursions
    WHERE shipment_id = ANY(%(ids)s) AND superseded_at IS NULL
    GROUP BY shipment_id
),
al AS (
    SELECT shipment_id, max({severity.rank_sql("severity")}) AS worst_rank
    FROM alerts WHERE shipment_id = ANY(%(ids)s) GROUP BY shipment_id
),
disp AS (
    SELECT d.shipment_id,
           max(d.decision) FILTER (WHERE d.lot IS NULL) AS decision,
           max(d.signed_at) FILTER (WHERE d.lot IS NULL) AS decided_at,
           count(*) FILTER (WHERE d.lot IS NOT NULL) AS lot_decisions
    FROM dispositions d
    WHERE d.shipment_id = ANY(%(ids)s)
      AND NOT EXISTS (SELECT 1 FROM dispositions n WHERE n.supersedes = d.disposition_id)
    GROUP BY d.shipment_id
)
SELECT s.shipment_id,
       coalesce(exc.excursions, 0) AS excursions,
       coalesce(exc.alarmed_excursions, 0) AS alarmed_excursions,
       coalesce(exc.open_excursions, 0) AS open_excursions,
       coalesce(exc.time_out_s, 0)::double precision AS time_out_s,
       coalesce(exc.degree_minutes, 0)::double precision AS degree_minutes,
       exc.peak_high_c, exc.peak_low_c, exc.first_excursion_at,
       {severity.name_sql("al.worst_rank")} AS worst_severity,
       disp.decision, disp.decided_at, coalesce(disp.lot_decisions, 0) AS lot_decisions
FROM unnest(%(ids)s::bigint[]) AS s(shipment_id)
LEFT JOIN exc USING (shipment_id)
LEFT JOIN al USING (shipment_id)
LEFT JOIN disp USING (shipment_id)
"""


def queue_figures(*, conn: Conn, shipment_ids: list[int]) -> dict[int, Row]:
    """The QA queue's figures of each shipment (see QUEUE_FIGURES), by shipment id."""
    rows = conn.execute(QUEUE_FIGURES, {"ids": shipment_ids}).fetchall()
    return {int(r["shipment_id"]): r for r in rows}
