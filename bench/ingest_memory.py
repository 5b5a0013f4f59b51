"""Bounded memory: the ingester drains a backlog of a million messages within a fixed budget.

Run: ``.venv/bin/python bench/ingest_memory.py [--messages 1000000] [--budget-mb 150]``.
A million single-reading messages are queued at the broker for the ingester's persistent
session while it is stopped; then ``coldchain ingest`` starts and drains them. Its resident
memory is sampled every 100 ms; the peak (VmHWM) is compared with a small backlog's, and with
the budget. What bounds it is the MQTT 5 receive maximum (and the ingester pausing its reads
when the broker sends past it), not the size of the backlog. Exits non-zero over budget.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    count_rows,
    ingester_process,
    local_stack,
    peak_rss_mb,
    publish_all,
    seed_devices,
    wait_for_log,
)
from bench.ingest_throughput import DEVICES, readings, single_messages


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def drain(n: int, logdir: Path, name: str) -> tuple[float, float, float]:
    """(peak RSS in MB, RSS at the end in MB, readings per second) for a backlog of n."""
    with local_stack() as stack:
        s = stack.new_database()
        seed_devices(s.db.dsn, DEVICES)
        log = logdir / f"{name}.log"
        proc = ingester_process(s, log)  # creates the persistent session
        wait_for_log(log, "ingester subscribed")
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        msgs = single_messages(s.mqtt.topic_root, readings(n))
        publish_all(stack.broker.port, msgs, window=20_000)
        del msgs
        proc = ingester_process(s, log)
        try:
            started = time.perf_counter()
            stored = 0
            while stored < n:
                if proc.poll() is not None:
                    raise RuntimeError(f"the ingester exited; see {log}")
                time.sleep(0.5)
                stored = count_rows(s.db.dsn)
            elapsed = time.perf_counter() - started
            peak = peak_rss_mb(proc.pid) or 0.0
            end = _rss_mb(proc.pid) or 0.0
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    return peak, end, n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=10_000, help="the small backlog")
    parser.add_argument("--budget-mb", type=float, default=150.0)
    args = parser.parse_args()
    logdir = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    small = drain(args.baseline, logdir, "small")
    large = drain(args.messages, logdir, "large")
    print(
        f"{'backlog':>12} {'peak RSS':>10} {'RSS at end':>11} {'drain rate, from process start':>32}"
    )
    for n, (peak, end, rate) in ((args.baseline, small), (args.messages, large)):
        print(f"{n:>12,} {peak:>7.0f} MB {end:>8.0f} MB {rate:>28,.0f} /s")
    growth = large[0] - small[0]
    verdict = "within" if large[0] <= args.budget_mb else "OVER"
    print(
        f"peak grows {growth:+.0f} MB from {args.baseline:,} to {args.messages:,} messages; "
        f"{verdict} the {args.budget_mb:.0f} MB budget"
    )
    print(f"ingester logs: {logdir}")
    if large[0] > args.budget_mb:
        sys.exit(1)


if __name__ == "__main__":
    main()
