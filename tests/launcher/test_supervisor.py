"""``coldchain up``'s restart policy: crashes spread over time never stop the platform; a stage
that crashes over and over is restarted with growing pauses, and only then given up on."""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

import pytest

from launcher.supervisor import RestartPolicy, Stage, on_crash, supervise

POLICY = RestartPolicy()


def test_the_first_crash_restarts_after_a_second() -> None:
    d = on_crash((), started_at=0.0, now=5.0, policy=POLICY)
    assert (d.crashes, d.give_up, d.delay_s) == ((5.0,), False, 1.0)


def test_crashes_in_quick_succession_back_off_and_then_give_up() -> None:
    crashes: tuple[float, ...] = ()
    now, delays = 0.0, list[float]()
    for _ in range(POLICY.max_crashes):
        started = now
        now = started + 2.0  # ran 2 s, crashed
        d = on_crash(crashes, started_at=started, now=now, policy=POLICY)
        assert not d.give_up
        crashes, delays = d.crashes, [*delays, d.delay_s]
        now += d.delay_s
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]
    d = on_crash(crashes, started_at=now, now=now + 2.0, policy=POLICY)
    assert d.give_up and len(d.crashes) == POLICY.max_crashes + 1


def test_the_pause_is_capped() -> None:
    policy = RestartPolicy(max_crashes=100)
    crashes = tuple(float(t) for t in range(20))
    d = on_crash(crashes, started_at=20.0, now=21.0, policy=policy)
    assert d.delay_s == policy.backoff_max_s and not d.give_up


def test_a_healthy_run_resets_the_count() -> None:
    """The issue's case: the sixth crash *ever* stopped everything. Crashes an hour apart, each
    after a healthy run, are each a first crash."""
    crashes: tuple[float, ...] = ()
    for hour in range(1, 50):
        now = hour * 3600.0
        d = on_crash(crashes, started_at=now - 3000.0, now=now, policy=POLICY)
        assert (d.give_up, d.delay_s, d.crashes) == (False, 1.0, (now,))
        crashes = d.crashes


def test_crashes_outside_the_window_are_forgotten() -> None:
    # Short runs (never healthy), but one crash every 3 minutes: at most 4 in any 10 minutes.
    crashes: tuple[float, ...] = ()
    for i in range(1, 40):
        now = i * 180.0
        d = on_crash(crashes, started_at=now - 5.0, now=now, policy=POLICY)
        assert not d.give_up and len(d.crashes) <= 4
        crashes = d.crashes


def test_a_run_just_short_of_healthy_still_counts() -> None:
    d = on_crash((1.0, 2.0), started_at=3.0, now=3.0 + POLICY.healthy_after_s - 0.1, policy=POLICY)
    assert len(d.crashes) == 3 and d.delay_s == 4.0


# --- real stage processes -------------------------------------------------------------------


def _stage(name: str, tmp_path: Path, code: str) -> Stage:
    """A stage whose process runs ``code`` (a Python one-liner) and appends its start time."""
    marks = tmp_path / f"{name}.starts"
    script = (
        f"import time, sys; open({str(marks)!r}, 'a').write(f'{{time.monotonic()}}\\n'); {code}"
    )
    return Stage(name, ["-c", script], program=[sys.executable])


def _starts(tmp_path: Path, name: str) -> list[float]:
    return [float(x) for x in (tmp_path / f"{name}.starts").read_text().split()]


def test_a_stage_that_always_crashes_is_restarted_with_growing_pauses_then_given_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = RestartPolicy(
        healthy_after_s=30.0, window_s=60.0, max_crashes=4, backoff_first_s=0.2, backoff_max_s=1.0
    )
    stage = _stage("flaky", tmp_path, "sys.exit(3)")
    stage.start({}, tmp_path)
    begun = time.monotonic()
    code = supervise(
        [stage], {}, tmp_path, lambda: time.monotonic() - begun > 30, policy=policy, tick_s=0.05
    )
    assert code == 1
    starts = _starts(tmp_path, "flaky")
    assert len(starts) == policy.max_crashes + 1  # the first start and four restarts
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # 0.2, 0.4, 0.8, 1.0 (capped), each plus the process's start-up and the 0.05 s tick
    for gap, pause in zip(gaps, [0.2, 0.4, 0.8, 1.0], strict=True):
        assert pause <= gap < pause + 1.5
    out = capsys.readouterr().out
    assert "flaky exited with 3; restarting in" in out and "5th crash" in out and "stopping" in out


def test_a_stage_that_crashes_after_healthy_runs_is_never_given_up(tmp_path: Path) -> None:
    """More crashes than ``max_crashes``, but each after a healthy run: ``up`` keeps going."""
    policy = RestartPolicy(
        healthy_after_s=0.3, window_s=60.0, max_crashes=2, backoff_first_s=0.05, backoff_max_s=0.05
    )
    stage = _stage("steady", tmp_path, "time.sleep(0.4); sys.exit(1)")
    stage.start({}, tmp_path)

    def enough() -> bool:
        path = tmp_path / "steady.starts"
        return path.exists() and len(path.read_text().split()) >= 6

    code = supervise([stage], {}, tmp_path, enough, policy=policy, tick_s=0.05)
    assert code == 0 and stage.restarts >= 5
    stage.stop()
