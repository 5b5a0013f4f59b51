"""``coldchain insight lanes|carriers|report`` say what the services compute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from db.types import Conn
from services import insight
from tests.insight.history import LANE_A, LANE_A_SHIPMENTS, seed_history
from tests.launcher.test_masterdata_cli import env  # noqa: F401  # the command's environment
from tests.security.test_cli import run

pytestmark = pytest.mark.integration


def test_lanes_carriers_and_the_report(
    env: dict[str, str],  # noqa: F811  # the fixture imported above
    db_dsn: str,
    conn: Conn,
    tmp_path: Path,
) -> None:
    seed_history(db_dsn)
    code, out = run(env, "insight", "lanes", "--json")
    assert code == 0, out
    got = [json.loads(line) for line in out.splitlines()]
    want = [r.to_dict() for r in insight.lane_risk(conn)]
    assert [(r["lane"], r["score"]) for r in got] == [(r["lane"], r["score"]) for r in want]
    code, out = run(env, "insight", "lanes", "--lane", LANE_A, "--months")
    assert code == 0 and out.splitlines()[0].startswith("lane"), out
    assert len(out.splitlines()) == 1 + len(
        {s.arrived_at.strftime("%Y-%m") for s in LANE_A_SHIPMENTS if s.arrived_at}
    )
    code, out = run(env, "insight", "carriers", "--lane", LANE_A)
    assert code == 0 and "SkyCargo" in out and "a score needs 5" in out, out
    code, out = run(env, "insight", "lanes", "--lane", "NOPE")
    assert code == 1 and "no lane 'NOPE'" in out
    first = LANE_A_SHIPMENTS[0].arrived_at
    assert first is not None
    target = tmp_path / "week.csv"
    code, out = run(
        env, "insight", "report", "--lane", LANE_A, "--week", first.date().isoformat(),
        "-o", str(target),
    )  # fmt: skip
    assert code == 0 and target.read_text().startswith("week,section,lane"), out
