"""The API under concurrent clients: throughput, latency percentiles and errors.

Run: ``.venv/bin/python -m bench.api_load [--clients 50] [--seconds 30] [--shipments 500]``.
It starts a private PostgreSQL (``bench._common.local_stack``), builds the fleet of
``bench/web_pages.py`` (``--shipments`` in transit plus one 30-day shipment), and serves the app
as ``coldchain web`` does, in a process of its own (default settings: a pool of 8 connections).

Each client is its own keep-alive HTTP connection (httpx) with a viewer's bearer token, and loops
for ``--seconds`` over a mix of reads: the fleet list, one shipment, its readings (one day), its
excursions, the open alerts. Printed: requests per second, p50/p95/p99 wall time, the count of
each status, and transport errors (connection reset, timeout). Target: no 5xx other than 503
(a refusal with ``Retry-After`` when the server is saturated), no transport error, p95 < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx

from bench._common import local_stack
from bench.web_pages import LONG_REF, USERNAME, add_viewer, build, web_process

P95_TARGET_S = 1.0


async def client_loop(
    url: str,
    token: str,
    until: float,
    paths: list[str],
    latencies: list[float],
    codes: Counter[str],
) -> None:
    """One client: requests one after the other until ``until`` (perf_counter)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        i = secrets.randbelow(len(paths))
        while time.perf_counter() < until:
            path = paths[i % len(paths)]
            i += 1
            started = time.perf_counter()
            try:
                response = await client.get(path)
            except httpx.HTTPError as exc:
                codes[f"transport {type(exc).__name__}"] += 1
                continue
            latencies.append(time.perf_counter() - started)
            codes[str(response.status_code)] += 1


async def run_load(url: str, token: str, clients: int, seconds: float, now: datetime) -> bool:
    """Run the clients and print the figures; True when the target is met."""
    day_ago = (now - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    paths = [
        "/api/v1/shipments?limit=50",
        f"/api/v1/shipments/{LONG_REF}",
        f"/api/v1/shipments/{LONG_REF}/readings?start={day_ago}",
        f"/api/v1/shipments/{LONG_REF}/excursions",
        "/api/v1/alerts?state=open",
    ]
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(
        *(client_loop(url, token, until, paths, latencies, codes) for _ in range(clients))
    )
    elapsed = time.perf_counter() - started
    done = sum(codes.values())
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    print(
        f"{clients} clients, {elapsed:.1f} s: {done:,} requests, {done / elapsed:,.1f} req/s; "
        f"p50 {q[49] * 1000:,.0f} ms, p95 {q[94] * 1000:,.0f} ms, p99 {q[98] * 1000:,.0f} ms"
    )
    print("statuses: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(codes.items())))
    bad = sum(v for k, v in codes.items() if k.startswith(("5", "transport")) and k != "503")
    ok = bad == 0 and q[94] < P95_TARGET_S
    print(
        f"{'PASS' if ok else 'FAIL'}: {bad} errors other than 503, "
        f"p95 target {P95_TARGET_S * 1000:.0f} ms"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--shipments", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    password = secrets.token_urlsafe(18)
    now = datetime.now(UTC).replace(microsecond=0)
    with local_stack() as stack:
        settings = stack.new_database()
        build(settings.db.dsn, args.shipments, args.days, now)
        add_viewer(settings.db.dsn, password)
        with web_process(settings, stack.root / "web.log") as url:
            login = httpx.post(
                url + "/api/v1/auth/login",
                json={"username": USERNAME, "password": password},
                timeout=30,
            )
            login.raise_for_status()
            token = login.json()["access_token"]
            asyncio.run(run_load(url, token, args.clients, args.seconds, now))
        errors = [
            line
            for line in (stack.root / "web.log").read_text(errors="replace").splitlines()
            if "Error" in line or "Timeout" in line
        ]
        print(
            f"web log: {len(errors)} lines naming an error"
            + (f"; first: {errors[0]}" if errors else "")
        )


if __name__ == "__main__":
    main()
