"""``coldchain up``: the local stack and every stage, started in order and stopped cleanly.

Order: PostgreSQL → migrations → demo users → Mosquitto → ingester → rules engine → lifecycle
automation (shipments that start and arrive on their own: :mod:`services.automation`) → web →
simulator.

Security of the local stack (README "Security"): the database is owned by a separate role
(``{user}_owner``) that runs the migrations, and the stages connect as the app role, which cannot
change the audit trail. The demo accounts (one per role) get fresh passwords at every start, and
they are printed. Mosquitto runs with a password file and an ACL generated from the device
registry: each logger may publish only to its own topics; the ingester and the simulator get
service accounts (new passwords at every start, handed to their processes in the environment).
The simulator publishes the whole simulated fleet over one connection, so it uses one privileged
account rather than per-logger credentials; a production broker has no such account.
Ctrl-C (or SIGTERM) stops them in reverse: the simulator stops publishing, the ingester commits
and acknowledges what it holds, then the broker saves its sessions and PostgreSQL shuts down
fast (everything committed is on disk). Run again, it reuses the data in ``.coldchain/``.

A stage that exits is restarted (:func:`supervise`), after a pause that doubles with each crash
(1 s, 2 s, 4 s … at most 30 s: :class:`RestartPolicy`). A stage that then runs for
``healthy_after_s`` (60 s) has its crash count reset, so crashes spread over days never add up;
``up`` gives up, and stops everything, only when a stage crashes more than ``max_crashes`` (5)
times within ``window_s`` (10 min) without one healthy run in between (:func:`on_crash`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from coldchain.errors import SetupError
from coldchain.settings import Settings
from launcher.localstack import MosquittoBroker, PostgresCluster, make_local_tls, wait_for_port

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """When a crashed stage is restarted, and when ``up`` gives up on it."""

    healthy_after_s: float = 60.0  # a run this long resets the stage's crash count
    window_s: float = 600.0  # crashes older than this are forgotten
    max_crashes: int = 5  # restarts allowed within the window; one more and ``up`` stops
    backoff_first_s: float = 1.0
    backoff_max_s: float = 30.0


@dataclass(frozen=True, slots=True)
class CrashDecision:
    """What to do about a stage that just exited."""

    crashes: tuple[float, ...]  # the crashes that count (monotonic times), this one included
    give_up: bool
    delay_s: float  # pause before the restart


def on_crash(
    crashes: tuple[float, ...], *, started_at: float, now: float, policy: RestartPolicy
) -> CrashDecision:
    """The restart decision for a stage that started at ``started_at`` and exited at ``now``.

    A run of ``healthy_after_s`` or more wipes the count: the stage was healthy, this crash is
    the first of a new series. Otherwise the crashes within ``window_s`` count, and the pause
    doubles with each (capped at ``backoff_max_s``).
    """
    if now - started_at >= policy.healthy_after_s:
        recent: tuple[float, ...] = ()
    else:
        recent = tuple(t for t in crashes if now - t < policy.window_s)
    recent = (*recent, now)
    delay = min(policy.backoff_max_s, policy.backoff_first_s * 2.0 ** min(len(recent) - 1, 30))
    return CrashDecision(recent, len(recent) > policy.max_crashes, delay)


#: The demo's accounts, one per role: (user name, printed name).
DEMO_USERS = {
    "viewer": ("viewer", "Demo Viewer"),
    "operator": ("operator", "Demo Operator"),
    "qa": ("qa", "Demo QA Reviewer"),
    "admin": ("admin", "Demo Administrator"),
}


@dataclass
class Stage:
    """One child process of the stack."""

    name: str
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    crashes: tuple[float, ...] = ()  # the crashes that count towards giving up (on_crash)
    restart_at: float | None = None  # a restart is due at this monotonic time
    program: list[str] = field(default_factory=lambda: [sys.executable, "-m", "launcher.cli"])
    log_path: Path | None = field(default=None)
    env: dict[str, str] | None = field(default=None, repr=False)  # holds MQTT passwords

    def start(self, env: dict[str, str], log_dir: Path) -> None:
        self.log_path = log_dir / f"{self.name}.log"
        out = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*self.program, *self.args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop the stages in order
        )
        self.started_at = time.monotonic()

    def stop(self, timeout: float = 20.0) -> bool:
        """Stop the stage if it runs (SIGTERM, then SIGKILL after ``timeout``); True if it ran."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", self.name, timeout)
            self.proc.kill()
            self.proc.wait()
        return True


def run_stack(settings: Settings, *, simulator: bool = True, scenario: str = "demo") -> int:
    """Run everything until interrupted; return the exit status."""
    data_dir = settings.stack.data_dir.resolve()
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    pg: PostgresCluster | None = None
    broker: MosquittoBroker | None = None
    stages: list[Stage] = []
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        db = settings.db
        if settings.stack.manage_services:
            data_dir.chmod(0o755)
            pg = PostgresCluster(data_dir / "pgdata", db.port)
            _say(f"PostgreSQL + TimescaleDB on 127.0.0.1:{db.port} (data in {pg.data_dir})")
            pg.start()
            owner = db.owner_user or f"{db.user}_owner"
            owner_password = (db.owner_password or db.password).get_secret_value()
            pg.ensure_database(
                db.name,
                owner,
                owner_password,
                app_user=db.user,
                app_password=db.password.get_secret_value(),
            )
            db = db.model_copy(
                update={"owner_user": owner, "owner_password": SecretStr(owner_password)}
            )
        from db.migrate import migrate

        applied = migrate(db.migration_dsn)
        _say(f"database schema up to date ({len(applied)} migration(s) applied)")
        if simulator:
            _demo_users(settings)
            _demo_history(settings)

        stage_env: dict[str, dict[str, str]] = {}
        if settings.stack.manage_services:
            broker, stage_env = _prepare_broker(settings, data_dir / "mosquitto")
            _say(
                f"Mosquitto on 127.0.0.1:{settings.mqtt.port}"
                + (" (passwords and ACL)" if broker.password_file else " (anonymous)")
                + (" over TLS" if broker.certfile else "")
            )
            broker.start()

        env = dict(os.environ)
        stages = [
            Stage("ingest", ["ingest"]),
            Stage("rules", ["rules"]),
            Stage("automate", ["automate"]),
            Stage("web", ["web"]),
        ]
        if simulator:
            stages.append(Stage("simulate", ["simulate", "--scenario", scenario, "--no-progress"]))
        for stage in stages:
            stage.env = {**env, **stage_env.get(stage.name, {})}
            stage.start(stage.env, log_dir)
        wait_for_port(settings.web.host, settings.web.port, 60)
        url = f"http://{settings.web.host}:{settings.web.port}/"
        _say(f"dashboard: {url}   API docs: {url}api/docs   logs: {log_dir}")
        _say("press Ctrl-C to stop")
        return supervise(stages, env, log_dir, lambda: stopping)
    except SetupError as exc:
        _say(f"error: {exc}")
        return 2
    finally:
        _say("stopping…")
        for stage in reversed(stages):
            if stage.stop():
                _say(f"  {stage.name} stopped")
        if broker is not None:
            broker.stop()
            _say("  broker stopped")
        if pg is not None:
            pg.stop()
            _say("  database stopped")
        _say("stopped")


def supervise(
    stages: list[Stage],
    env: dict[str, str],
    log_dir: Path,
    stopping: Callable[[], bool],
    *,
    policy: RestartPolicy = RestartPolicy(),
    clock: Callable[[], float] = time.monotonic,
    tick_s: float = 0.5,
) -> int:
    """Watch the started ``stages`` until ``stopping()``: restart those that exit, with the
    pauses of ``policy``; return 1 when one crashes too often (:func:`on_crash`), else 0.

    The simulator exiting with 0 has finished its scenario and is not restarted.
    """
    while not stopping():
        time.sleep(tick_s)
        for stage in stages:
            if stopping():
                break
            now = clock()
            if stage.proc is None:
                if stage.restart_at is not None and now >= stage.restart_at:
                    stage.restart_at = None
                    stage.restarts += 1
                    stage.start(stage.env or env, log_dir)
                continue
            code = stage.proc.poll()
            if code is None:
                continue
            stage.proc = None
            if stage.name == "simulate" and code == 0:
                _say("simulator finished its scenario")
                continue
            decision = on_crash(stage.crashes, started_at=stage.started_at, now=now, policy=policy)
            stage.crashes = decision.crashes
            if decision.give_up:
                _say(
                    f"{stage.name} exited with {code}, its {len(decision.crashes)}th crash within "
                    f"{policy.window_s:.0f} s without a healthy run (see {stage.log_path}); stopping"
                )
                return 1
            stage.restart_at = now + decision.delay_s
            _say(
                f"{stage.name} exited with {code}; restarting in {decision.delay_s:.0f} s "
                f"(see {stage.log_path})"
            )
    return 0


def _cli_connect(settings: Settings) -> Any:
    import psycopg
    from psycopg.rows import dict_row

    return psycopg.connect(settings.db.dsn, autocommit=True, row_factory=dict_row)


def _up_context() -> Any:
    from security.audit import AuditContext

    return AuditContext("system:coldchain-up", "admin", "coldchain up", "local stack start")


def _demo_history(settings: Settings) -> None:
    """Twelve weeks of finished shipments on the demo's lanes (the first start only), so the
    forecasts and the Insight pages have a history to learn from. Before the stages start: no
    automation may move these shipments meanwhile."""
    from datetime import UTC, datetime

    from services.caller import Caller
    from services.history import backfill_history

    with _cli_connect(settings) as conn:
        done = backfill_history(
            conn,
            Caller.console(),
            now=datetime.now(UTC),
            settings=settings,
        )
    if not done.skipped:
        _say(
            f"history: {done.shipments} finished shipments, {done.readings} readings, "
            f"{done.alerts_settled} alert(s) resolved as simulated ({done.wall_s:.1f} s)"
        )


def _demo_users(settings: Settings) -> None:
    """Create the demo accounts (or give them new passwords) and print how to log in."""
    from security.accounts import ensure_demo_user

    lines = []
    with _cli_connect(settings) as conn:
        for role, (username, name) in DEMO_USERS.items():
            password = ensure_demo_user(
                conn, username=username, full_name=name, role=role, ctx=_up_context()
            )
            lines.append(f"  {role:<9} user {username:<9} password {password}")
    _say("demo logins (new passwords at every start):")
    for line in lines:
        _say(line)


def _prepare_broker(
    settings: Settings, folder: Path
) -> tuple[MosquittoBroker, dict[str, dict[str, str]]]:
    """The local broker with its password file and ACL (and TLS when asked), and the MQTT
    settings each stage needs to connect to it."""
    from security import devices

    # Payloads a little over the ingester's limit still reach it and are dead-lettered (so they
    # are seen); far larger ones are refused by the broker before they cost anything.
    broker = MosquittoBroker(
        folder, settings.mqtt.port, max_packet_size=4 * settings.ingest.max_payload_bytes + 1024
    )
    stage_env: dict[str, dict[str, str]] = {"ingest": {}, "simulate": {}}
    if settings.stack.mqtt_auth:
        with _cli_connect(settings) as conn:
            result = devices.provision(
                conn,
                topic_root=settings.mqtt.topic_root,
                out_dir=folder,
                services=[devices.INGEST_ACCOUNT, devices.SIMULATOR_ACCOUNT],
                ctx=_up_context(),
            )
        broker.password_file, broker.acl_file = result.password_file, result.acl_file
        # Loggers may not subscribe at all; the simulator reads its virtual logger's commands.
        broker.subscribers = (devices.INGEST_ACCOUNT.username, devices.SIMULATOR_ACCOUNT.username)
        for stage, account in (
            ("ingest", devices.INGEST_ACCOUNT),
            ("simulate", devices.SIMULATOR_ACCOUNT),
        ):
            stage_env[stage] = {
                "COLDCHAIN_MQTT__USERNAME": account.username,
                "COLDCHAIN_MQTT__PASSWORD": result.services[account.username],
            }
        if result.credentials_file is not None:
            _say(f"new logger MQTT passwords in {result.credentials_file}")
    if settings.stack.mqtt_tls:
        tls = make_local_tls(folder / "tls")
        broker.certfile, broker.keyfile = tls.cert_file, tls.key_file
        for env in stage_env.values():
            env.update({"COLDCHAIN_MQTT__TLS": "true", "COLDCHAIN_MQTT__CA_FILE": str(tls.ca_file)})
        _say(f"MQTT over TLS: clients trust {tls.ca_file}")
    return broker, stage_env


def _say(text: str) -> None:
    print(f"[coldchain] {text}", flush=True)


__all__ = ["RestartPolicy", "on_crash", "run_stack", "supervise", "wait_for_port"]
