"""The engine watches itself: a heartbeat to a dead-man's switch while it is healthy.

An engine that is killed, hung or cut off cannot raise an alert about itself; something outside
must notice the silence. So, when ``COLDCHAIN_ALERTS__HEARTBEAT_URL`` is set, every
``heartbeat_period_s`` each running engine judges its own health (:func:`judge`, pure) and:

- healthy: ``POST <url>`` with a one-line summary (healthchecks.io's "success" ping; any service
  that pages when pings stop works: healthchecks.io, Cronitor's heartbeat URLs, Uptime Kuma's
  push monitors, Dead Man's Snitch);
- unhealthy, and it knows it: ``POST <url>/fail`` with the reasons, one per line
  (healthchecks.io's "fail" signal: it pages at once instead of after the grace time);
- starting (no round or claim yet, within the first ``engine_timeout_s``): nothing.

Healthy means all of: an evaluation round completed within ``2 × poll_interval_s +
heartbeat_period_s`` (a catch-up counts each committed round), the partition claims beat
within ``engine_timeout_s`` (alerts.partitions), the database answered the lag query within
the period, and the engines' lag (the age of the oldest change they have not processed,
db/queries/health.py, the figure ``/healthz`` shows) is at most ``heartbeat_max_lag_s``.

**Several engines each ping the same URL.** The outside service sees, while the pipeline is
well, at least one success per period (one per engine); it should page when no success arrives
for a period plus its grace (healthchecks.io: "period" = ``heartbeat_period_s``, "grace" a
minute or two) or when a ``/fail`` arrives. A killed engine among several stops its own pings
only: the others take its partitions over and keep pinging, which is right (the alerts keep
being raised); an engine that can no longer reach the database says ``/fail``.

The URL is a secret (whoever has it can silence the switch): it is never logged; log lines name
its host only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from alerts.partitions import cursor_prefix
from coldchain.settings import AlertsSettings
from db.queries import health as health_q

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineSigns:
    """What the engine knows of itself at one instant (monotonic seconds)."""

    now: float
    started_at: float
    progress_at: float | None  # the last completed evaluation round
    claims_at: float | None  # the last beat of the partition claims
    held: int  # partitions held
    partitions: int
    lag_s: float | None  # None: the database did not answer (db_error says why)
    db_error: str | None = None


@dataclass(frozen=True, slots=True)
class Bounds:
    """How stale each sign may be before the engine is unhealthy."""

    round_age_s: float
    claims_age_s: float
    max_lag_s: float

    @classmethod
    def of(cls, settings: AlertsSettings) -> Bounds:
        return cls(
            round_age_s=2 * settings.poll_interval_s + settings.heartbeat_period_s,
            claims_age_s=settings.engine_timeout_s,
            max_lag_s=settings.heartbeat_max_lag_s,
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """``ok`` (ping), ``fail`` (ping /fail with the reasons) or ``starting`` (say nothing)."""

    state: Literal["ok", "fail", "starting"]
    reasons: tuple[str, ...] = ()


def judge(signs: EngineSigns, bounds: Bounds) -> Verdict:
    """Whether the engine is healthy (see the module docstring); pure."""
    reasons: list[str] = []
    if signs.lag_s is None:
        reasons.append(f"database unavailable: {signs.db_error or 'no answer'}")
    elif signs.lag_s > bounds.max_lag_s:
        reasons.append(
            f"engine lag {signs.lag_s:.0f} s is over the bound of {bounds.max_lag_s:.0f} s"
        )
    starting = signs.now - signs.started_at < bounds.claims_age_s
    for what, at, bound in (
        ("no evaluation round completed", signs.progress_at, bounds.round_age_s),
        ("partition claims not renewed", signs.claims_at, bounds.claims_age_s),
    ):
        if at is None:
            if not starting:
                reasons.append(f"{what} since the start")
        elif signs.now - at > bound:
            reasons.append(f"{what} for {signs.now - at:.0f} s")
    if reasons:
        return Verdict("fail", tuple(reasons))
    if signs.progress_at is None or signs.claims_at is None:
        return Verdict("starting")
    return Verdict("ok")


def fail_url(url: str) -> str:
    """``<url>/fail``, the query string kept (healthchecks.io's fail signal)."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(path=parsed.path.rstrip("/") + "/fail"))


class Heartbeat:
    """Judges the engine every period and pings the dead-man's switch (the module docstring)."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        settings: AlertsSettings,
        client: httpx.AsyncClient,
        *,
        engine_id: str,
        signs: Callable[[], tuple[float | None, float | None, int]],
    ) -> None:
        assert settings.heartbeat_url is not None
        self._pool = pool
        self._url = settings.heartbeat_url.get_secret_value()
        self._host = httpx.URL(self._url).host
        self._period = settings.heartbeat_period_s
        self._bounds = Bounds.of(settings)
        self._prefix = cursor_prefix(settings.partitions)
        self._partitions = settings.partitions
        self._client = client
        self._engine_id = engine_id
        self._signs = signs  # (progress_at, claims_at, held) of the rounds and the claimer
        self._started = time.monotonic()
        self._last_state: str | None = None
        self.sent = 0

    async def beat(self) -> Verdict:
        """Judge the engine now and ping accordingly; return the verdict."""
        lag_s, error = await self._lag()
        progress_at, claims_at, held = self._signs()
        signs = EngineSigns(
            now=time.monotonic(),
            started_at=self._started,
            progress_at=progress_at,
            claims_at=claims_at,
            held=held,
            partitions=self._partitions,
            lag_s=lag_s,
            db_error=error,
        )
        verdict = judge(signs, self._bounds)
        if verdict.state != self._last_state and verdict.state != "starting":
            level = logging.INFO if verdict.state == "ok" else logging.WARNING
            log.log(level, "heartbeat: %s %s", verdict.state, "; ".join(verdict.reasons))
        self._last_state = verdict.state
        if verdict.state == "ok":
            lag = f"{lag_s:.1f}" if lag_s is not None else "?"
            body = (
                f"ok: engine {self._engine_id}, lag {lag} s, {held}/{self._partitions} partitions"
            )
            await self._ping(self._url, body)
        elif verdict.state == "fail":
            body = f"engine {self._engine_id} unhealthy:\n" + "\n".join(verdict.reasons)
            await self._ping(fail_url(self._url), body)
        return verdict

    async def run(self, stop: asyncio.Event) -> None:
        """Beat every period until ``stop``."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            try:
                await self.beat()
            except Exception:  # the switch pages on silence: a bug here must say so in the log
                log.exception("heartbeat failed; trying again next period")
            wait = max(self._period - (loop.time() - started), 0.01)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)

    async def _lag(self) -> tuple[float | None, str | None]:
        """The engines' lag, or None and why the database did not answer within the period."""
        try:
            async with asyncio.timeout(self._period), self._pool.connection() as conn:
                row = await (
                    await conn.execute(health_q.ENGINE_LAG, {"prefix": self._prefix})
                ).fetchone()
        except (TimeoutError, PoolTimeout) as exc:
            return None, f"no connection within {self._period:g} s ({type(exc).__name__})"
        except psycopg.Error as exc:
            return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        assert row is not None
        return float(row[0]), None

    async def _ping(self, url: str, body: str) -> None:
        try:
            response = await self._client.post(
                url, content=body.encode(), headers={"Content-Type": "text/plain"}
            )
        except httpx.HTTPError as exc:
            # Not the URL: its path is the secret.
            log.warning("heartbeat to %s not sent: %s", self._host, type(exc).__name__)
            return
        if response.is_success:
            self.sent += 1
        else:
            log.warning("heartbeat to %s refused: HTTP %d", self._host, response.status_code)
