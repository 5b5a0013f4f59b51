"""The shipment timeline read on the real database: the lifecycle entries, the excursion, the
alert raised and acknowledged through the alert service (who, comment), in order; an unknown
shipment is refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from coldchain.errors import NotFoundError
from db.types import Conn
from security.ratelimit import LoginLimiter
from security.roles import Role
from services import alerts, reports, timeline
from services.caller import Caller
from tests.fixtures.web import add_alert, add_device, add_product, add_shipment
from tests.reports.test_report_api import shipment  # noqa: F401  # a fixture
from tests.services.test_reports import _as_of, _sign, cfg, limiter  # noqa: F401  # fixtures

pytestmark = pytest.mark.integration


def _seed(dsn: str, now: datetime) -> tuple[int, int]:
    """A shipment booked the day before, started, with an excursion that alarmed and ended."""
    booked, started, out = (
        now - timedelta(days=1),
        now - timedelta(hours=3),
        now - timedelta(hours=1),
    )
    with psycopg.connect(dsn) as conn:
        return _rows(conn, booked, started, out)


def _rows(
    conn: psycopg.Connection[Any], booked: datetime, started: datetime, out: datetime
) -> tuple[int, int]:
    product = add_product(conn)
    add_device(conn, "LOG-T1")
    shipment_id = add_shipment(conn, "SHP-T1", product=product)
    conn.execute(
        "UPDATE shipments SET created_at = %s WHERE shipment_id = %s", (booked, shipment_id)
    )
    conn.execute(
        "INSERT INTO shipment_events (shipment_id, at, event, from_state, to_state, actor, data)"
        " VALUES (%s, %s, 'start', 'planned', 'in_transit', 'ana.ruiz', %s)",
        (shipment_id, started, Jsonb({})),
    )
    alert_id = add_alert(
        conn,
        shipment_id,
        triggered_at=out + timedelta(minutes=10),
        device_id="LOG-T1",
    )
    conn.execute(
        "INSERT INTO excursions (shipment_id, device_id, direction, start_ts, end_ts, last_out_ts,"
        " min_c, max_c, degree_minutes, n_readings, alarm, alarm_at, alert_id, rule_key,"
        " thresholds) VALUES (%s, 'LOG-T1', 'high', %s, %s, %s, 8.3, 11.2, 80, 40, true, %s, %s,"
        " 'temp-high', %s)",
        (shipment_id, out, out + timedelta(minutes=40), out + timedelta(minutes=39),
         out + timedelta(minutes=10), alert_id, Jsonb({"max": 8})),
    )  # fmt: skip
    return shipment_id, alert_id


def test_the_timeline_of_a_shipment_with_an_acknowledged_excursion(
    conn: Conn, db_dsn: str, caller: Callable[[Role], Caller]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    started, out = now - timedelta(hours=3), now - timedelta(hours=1)
    shipment_id, alert_id = _seed(db_dsn, now)
    operator = caller("operator")
    alerts.acknowledge(conn, operator, alert_id=alert_id, comment="reefer reset by the driver")

    entries = timeline.shipment_timeline(conn, shipment_id=shipment_id)

    assert [e.kind for e in entries] == [
        "created",
        "started",
        "excursion_start",
        "alarm_raised",
        "excursion_end",
        "acknowledged",  # acknowledged now, after the excursion ended
    ]
    assert [e.at for e in entries][:5] == [
        now - timedelta(days=1),
        started,
        out,
        out + timedelta(minutes=10),
        out + timedelta(minutes=40),
    ]
    ack = entries[-1]
    assert (ack.actor, ack.detail) == (operator.actor, "reefer reset by the driver")


def test_an_unknown_shipment_is_not_found(conn: Conn) -> None:
    with pytest.raises(NotFoundError, match="shipment 987654"):
        timeline.shipment_timeline(conn, shipment_id=987654)


def test_signed_dispositions_are_on_the_timeline_the_superseded_one_marked(
    conn: Conn,
    cfg: reports.ReportSettings,  # noqa: F811
    limiter: LoginLimiter,  # noqa: F811
    caller: Callable[[Role], Caller],
    shipment: dict[str, Any],  # noqa: F811
) -> None:
    """QA quarantines lot L42, then releases it: both signatures are on the timeline, in
    order, with the signer and why; the quarantine is marked superseded."""
    as_of = _as_of()
    doc = reports.report(conn, cfg, key="SHP-1", as_of=as_of, now=datetime.now(UTC))
    qa = caller("qa")
    first = _sign(conn, qa, cfg, limiter, as_of, doc["content_hash"], lot="L42",
                  decision="quarantine", reason="hold while the excursion is assessed")  # fmt: skip
    second = _sign(conn, qa, cfg, limiter, as_of, doc["content_hash"], lot="L42")
    shipment_id = conn.execute(
        "SELECT shipment_id FROM shipments WHERE reference = 'SHP-1'"
    ).fetchone()
    assert shipment_id is not None

    signed = [
        e
        for e in timeline.shipment_timeline(conn, shipment_id=shipment_id["shipment_id"])
        if e.kind == "signed"
    ]

    assert [(e.title, e.at) for e in signed] == [
        (
            "Signed: quarantine (lot L42) (superseded later)",
            datetime.fromisoformat(first["signed_at"]),
        ),
        ("Signed: release (lot L42)", datetime.fromisoformat(second["signed_at"])),
    ]
    assert {e.actor for e in signed} == {f"{qa.display_name} ({qa.actor})"}
    assert signed[0].detail is not None
    assert signed[0].detail.endswith(": hold while the excursion is assessed")
