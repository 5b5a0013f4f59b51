"""``coldchain automate``, the stage ``coldchain up`` starts: it runs against a real database
(its cursor appears, a booked shipment's lifecycle entry is handled by it) and stops cleanly on
SIGTERM, as the supervisor stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from coldchain.settings import Settings

pytestmark = pytest.mark.integration


def _scalar(dsn: str, sql: str) -> object:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()
    return None if row is None else row[0]


def test_the_automate_stage_runs_and_stops_on_sigterm(
    settings: Settings, db_dsn: str, tmp_path: Path
) -> None:
    with psycopg.connect(db_dsn) as conn:
        conn.execute(
            "INSERT INTO shipments (reference, origin, destination) VALUES ('STAGE-1', 'A', 'B')"
        )
        (sid,) = conn.execute("SELECT shipment_id FROM shipments").fetchone() or (None,)
        conn.execute(
            "INSERT INTO shipment_events (shipment_id, event, actor) VALUES (%s, 'create', 'x')",
            (sid,),
        )
    db = settings.db
    env = {
        **os.environ,
        "COLDCHAIN_DB__PORT": str(db.port),
        "COLDCHAIN_DB__NAME": db.name,
        "COLDCHAIN_DB__USER": db.user,
        "COLDCHAIN_DB__PASSWORD": db.password.get_secret_value(),
        "COLDCHAIN_STACK__DATA_DIR": str(tmp_path / "stack"),
        "COLDCHAIN_LOG_LEVEL": "INFO",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "automate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        handled = None
        while time.monotonic() < deadline:
            handled = _scalar(
                db_dsn, "SELECT count(*) FROM lifecycle_outbox WHERE handled_at IS NOT NULL"
            )
            if handled == 1:
                break
            time.sleep(0.2)
        assert handled == 1, "the stage did not handle the lifecycle entry"
        assert _scalar(db_dsn, "SELECT count(*) FROM engine_cursor WHERE name = 'automation'") == 1
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out.decode()
    assert b"lifecycle automation stopped" in out
