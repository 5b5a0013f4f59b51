"""``coldchain rules``: the rules engine's service, its tasks and their shutdown.

:func:`run_rules_engine` owns a TaskGroup of four tasks (five with a dead-man's-switch URL: the
:class:`~alerts.heartbeat.Heartbeat`, which pings it while the engine is healthy): the rounds of
:class:`~alerts.rounds.RulesEngine` (evaluation, the periodic pass, escalation: see
:mod:`alerts.rounds`), the :class:`~alerts.delivery.DeliveryWorker` that sends the outbox's
notifications (so a slow receiver never delays evaluation; several workers share the outbox
safely), a listener that LISTENs for the ingester's ``reading_changes`` and the engine's
``alert_notifications`` and wakes the other two, and the
:class:`~alerts.partitions.PartitionClaimer` that shares the partitions with the other running
engines (any number; it wakes the rounds when it takes partitions over). Every connection of
the engine carries its application name, so a peer can fence it if it hangs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import httpx
from psycopg_pool import AsyncConnectionPool

from alerts.channels import senders_from_settings
from alerts.delivery import LEASE_MARGIN_S, DeliveryWorker
from alerts.digests import OutboxControl
from alerts.flood import Limits
from alerts.heartbeat import Heartbeat
from alerts.partitions import PartitionClaimer
from alerts.rounds import RulesEngine
from coldchain.runtime import utcnow
from coldchain.settings import AlertsSettings, Settings
from db.listen import listen

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 10.0


async def run_rules_engine(
    settings: Settings, stop: asyncio.Event, *, clock: Callable[[], datetime] = utcnow
) -> None:
    """Run until ``stop``: evaluation, delivery and the listener that wakes them."""
    a = settings.alerts
    wake_rules, wake_delivery = asyncio.Event(), asyncio.Event()
    claimer = PartitionClaimer(settings.db.dsn, a, on_gain=wake_rules.set)
    app = {"application_name": claimer.application_name}
    async with (
        AsyncConnectionPool(
            settings.db.dsn, min_size=1, max_size=4, open=False, kwargs=app
        ) as pool,
        httpx.AsyncClient(timeout=a.webhook_timeout_s) as client,
    ):
        await pool.wait(timeout=30)
        rules = RulesEngine(pool, settings, clock=clock, claims=claimer)
        await rules.setup()
        control = OutboxControl(
            limits=lambda: Limits.of(
                per_device=a.flood_per_device_per_hour,
                per_shipment=a.flood_per_shipment_per_hour,
                per_recipient=a.flood_per_recipient_per_hour,
                rules=rules.flood_limits,
            ),
            digest_after_s=a.flood_digest_after_s,
            lease_s=a.webhook_timeout_s + LEASE_MARGIN_S,
            base_url=settings.web.base_url(),
        )
        worker = DeliveryWorker(pool, a, senders_from_settings(a, client), control=control)
        log.info("rules engine running (%s, %d partitions)", claimer.engine_id, a.partitions)
        async with asyncio.TaskGroup() as tg:
            listener = tg.create_task(
                listen(
                    settings.db.dsn,
                    {"reading_changes": wake_rules, "alert_notifications": wake_delivery},
                    stop,
                ),
                name="rules-listen",
            )
            tasks = [
                tg.create_task(claimer.run(stop), name="rules-claim"),
                *heartbeat(pool, a, client, rules, claimer, tg, stop),
                tg.create_task(rules.run(stop, wake_rules), name="rules-evaluate"),
                tg.create_task(
                    worker.run(stop, wake_delivery, poll_s=a.poll_interval_s), name="rules-deliver"
                ),
            ]
            await stop.wait()
            listener.cancel()
            # The loops finish their current step; a send stuck beyond the timeout is cancelled
            # (its outbox row stays due and is sent after the restart).
            _done, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT_S)
            for t in pending:
                t.cancel()
        log.info(
            "rules engine stopped after %d rounds (%d alerts opened, %d notifications sent)",
            rules.stats.rounds,
            rules.stats.alerts_opened,
            worker.sent,
        )


def heartbeat(
    pool: AsyncConnectionPool,
    a: AlertsSettings,
    client: httpx.AsyncClient,
    rules: RulesEngine,
    claimer: PartitionClaimer,
    tg: asyncio.TaskGroup,
    stop: asyncio.Event,
) -> list[asyncio.Task[None]]:
    """The heartbeat's task when a dead-man's-switch URL is set (alerts.heartbeat)."""
    if a.heartbeat_url is None:
        return []
    beat = Heartbeat(
        pool,
        a,
        client,
        engine_id=claimer.engine_id,
        signs=lambda: (rules.progress_at, claimer.beat_at, len(claimer.held)),
    )
    log.info(
        "heartbeat every %g s to %s",
        a.heartbeat_period_s,
        httpx.URL(a.heartbeat_url.get_secret_value()).host,
    )
    return [tg.create_task(beat.run(stop), name="rules-heartbeat")]
