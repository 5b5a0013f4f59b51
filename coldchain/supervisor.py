"""``coldchain up``: the local stack and every stage, started in order and stopped cleanly.

Order: PostgreSQL → migrations → Mosquitto → ingester → rules engine → web → simulator.
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

from coldchain.errors import SetupError
from coldchain.localstack import MosquittoBroker, PostgresCluster, wait_for_port
from coldchain.settings import Settings

log = logging.getLogger(__name__)

#: How often a crashed stage is restarted before ``up`` gives up.
MAX_RESTARTS = 5


@dataclass
class Stage:
    """One child process of the stack."""

    name: str
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    log_path: Path | None = field(default=None)

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
        if settings.stack.manage_services:
            data_dir.chmod(0o755)
            pg = PostgresCluster(data_dir / "pgdata", settings.db.port)
            _say(
                f"PostgreSQL + TimescaleDB on 127.0.0.1:{settings.db.port} (data in {pg.data_dir})"
            )
            pg.start()
            pg.ensure_database(
                settings.db.name, settings.db.user, settings.db.password.get_secret_value()
            )
            broker = MosquittoBroker(data_dir / "mosquitto", settings.mqtt.port)
            _say(f"Mosquitto on 127.0.0.1:{settings.mqtt.port}")
            broker.start()
        from db.migrate import migrate

        applied = migrate(settings.db.dsn)
        _say(f"database schema up to date ({len(applied)} migration(s) applied)")

        env = dict(os.environ)
        stages = [Stage("ingest", ["ingest"]), Stage("rules", ["rules"]), Stage("web", ["web"])]
        if simulator:
            stages.append(Stage("simulate", ["simulate", "--scenario", scenario, "--no-progress"]))
        for stage in stages:
            stage.start(env, log_dir)
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
                    stage.start(env, log_dir)
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


def _say(text: str) -> None:
    print(f"[coldchain] {text}", flush=True)


__all__ = ["run_stack", "wait_for_port"]
