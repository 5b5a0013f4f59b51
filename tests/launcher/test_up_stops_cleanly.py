"""Ctrl-C on ``coldchain up`` (``make demo``) from a terminal stops every stage in reverse order,
with no error in any stage's log (issue 14).

A terminal sends SIGINT to its whole foreground process group. The test starts ``coldchain up``
as the leader of a process group of its own, on free ports and a private data directory, with
the demo simulator publishing, waits until readings flow, then sends SIGINT to that whole group
as a terminal would. The broker used to sit in that group and die first, so the simulator and
the ingester logged disconnections instead of stopping in order.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from launcher.localstack import free_port

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
#: What a stage writes when something went wrong (log levels, tracebacks, lost connections).
TROUBLE = re.compile(r"\b(ERROR|CRITICAL|Traceback|disconnected|connection lost)\b", re.IGNORECASE)


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDCHAIN_")}
    env.update(
        {
            "COLDCHAIN_STACK__DATA_DIR": str(tmp / "stack"),
            "COLDCHAIN_DB__PORT": str(free_port()),
            "COLDCHAIN_MQTT__PORT": str(free_port()),
            "COLDCHAIN_WEB__PORT": str(free_port()),
        }
    )
    return env


def _readings(env: dict[str, str]) -> int:
    dsn = (
        f"host=127.0.0.1 port={env['COLDCHAIN_DB__PORT']} dbname=coldchain user=coldchain"
        " password=coldchain connect_timeout=3"
    )
    try:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT count(*) FROM readings").fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


def test_ctrl_c_stops_every_stage_in_reverse_order_without_errors(service_root: Path) -> None:
    tmp_path = Path(tempfile.mkdtemp(prefix="up-", dir=service_root))
    tmp_path.chmod(0o755)  # the postgres account must reach the data directory (we are root)
    env = _env(tmp_path)
    out = (tmp_path / "up.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "up"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        process_group=0,  # a group of its own, like a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 240
        while _readings(env) < 200:
            assert proc.poll() is None, (tmp_path / "up.out").read_text()
            assert time.monotonic() < deadline, "no readings within 4 min"
            time.sleep(1)
        os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole group
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    said = (tmp_path / "up.out").read_text()
    assert "stopping…" in said and said.rstrip().endswith("stopped"), said
    logs = tmp_path / "stack" / "logs"
    stage_logs = sorted(logs.glob("*.log"))
    assert {p.stem for p in stage_logs} >= {"ingest", "rules", "automate", "web", "simulate"}
    for log in stage_logs:
        trouble = [line for line in log.read_text().splitlines() if TROUBLE.search(line)]
        assert trouble == [], f"{log.name}: {trouble[:5]}"
    # In reverse order of their start: the simulator stopped publishing first, the ingester
    # (having committed what it held) before the broker, the database last.
    order = re.findall(r"^\[coldchain\]\s+(\w+) stopped$", said, flags=re.M)
    assert order == ["simulate", "web", "automate", "rules", "ingest", "broker", "database"]
