"""``coldchain up``: the local stack and every stage, started in order and stopped cleanly.

Order: PostgreSQL → migrations → demo users → Mosquitto → ingester → rules engine → web →
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
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from coldchain.errors import SetupError
from coldchain.localstack import MosquittoBroker, PostgresCluster, make_local_tls, wait_for_port
from coldchain.settings import Settings

log = logging.getLogger(__name__)

#: How often a crashed stage is restarted before ``up`` gives up.
MAX_RESTARTS = 5

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
    log_path: Path | None = field(default=None)
    env: dict[str, str] | None = field(default=None, repr=False)  # holds MQTT passwords

    def start(self, env: dict[str, str], log_dir: Path) -> None:
        self.log_path = log_dir / f"{self.name}.log"
        out = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coldchain.cli", *self.args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop the stages in order
        )
        self.started_at = time.monotonic()

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", self.name, timeout)
            self.proc.kill()
            self.proc.wait()


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
        stages = [Stage("ingest", ["ingest"]), Stage("rules", ["rules"]), Stage("web", ["web"])]
        if simulator:
            stages.append(Stage("simulate", ["simulate", "--scenario", scenario, "--no-progress"]))
        for stage in stages:
            stage.env = {**env, **stage_env.get(stage.name, {})}
            stage.start(stage.env, log_dir)
        wait_for_port(settings.web.host, settings.web.port, 60)
        url = f"http://{settings.web.host}:{settings.web.port}/"
        _say(f"dashboard: {url}   API docs: {url}api/docs   logs: {log_dir}")
        _say("press Ctrl-C to stop")
        while not stopping:
            time.sleep(0.5)
            for stage in stages:
                if stage.proc is not None and stage.proc.poll() is not None and not stopping:
                    code = stage.proc.returncode
                    if stage.name == "simulate" and code == 0:
                        _say("simulator finished its scenario")
                        stage.proc = None
                        continue
                    if stage.restarts >= MAX_RESTARTS:
                        _say(f"{stage.name} keeps failing (see {stage.log_path}); stopping")
                        return 1
                    stage.restarts += 1
                    _say(f"{stage.name} exited with {code}; restarting (see {stage.log_path})")
                    stage.start(stage.env or env, log_dir)
        return 0
    except SetupError as exc:
        _say(f"error: {exc}")
        return 2
    finally:
        _say("stopping…")
        for stage in reversed(stages):
            stage.stop()
        if broker is not None:
            broker.stop()
        if pg is not None:
            pg.stop()
        _say("stopped")


def _cli_connect(settings: Settings) -> Any:
    import psycopg
    from psycopg.rows import dict_row

    return psycopg.connect(settings.db.dsn, autocommit=True, row_factory=dict_row)


def _up_context() -> Any:
    from security.audit import AuditContext

    return AuditContext("system:coldchain-up", "admin", "coldchain up", "local stack start")


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


__all__ = ["run_stack", "wait_for_port"]
