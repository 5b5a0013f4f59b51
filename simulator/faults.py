"""From reading streams to the MQTT messages the loggers send, with faults on purpose (pure).

:class:`FaultInjector` turns each :class:`~simulator.streams.ReadingChunk` into
:class:`OutgoingMessage` objects (topic, payload bytes, send time), in send-time order, and
injects what real fleets do to an ingester:

* **loss of coverage** (store-and-forward): readings measured during an outage are kept on the
  logger. Back in coverage it sends its current reading, then ``upload_delay_s`` later the
  backlog as batches (``batch_payload``) of at most ``batch_max_readings``, newest batch first:
  the buffered readings arrive after newer ones, out of order. A logger that dies before
  uploading loses them.
* **duplicates**: live messages re-sent 5 s–5 min later (a lost PUBACK, an application retry) and
  batches uploaded twice 1–10 min later.
* **clock skew**: some loggers stamp readings with a clock that is off by a fixed offset.
* **malformed** messages, *in addition to* the good ones: bad JSON, a wrong type, an impossible
  value, or a valid payload on another logger's topic.

Counts are exact, not probabilistic: after ``N`` live messages exactly ``floor(rate × N)``
duplicates and malformed messages have been made (likewise re-uploads per batch, and
``round(share × loggers)`` loggers with outages or skew), so tests can check them.

Every payload is built by :mod:`coldchain.telemetry` (``reading_payload``, ``batch_payload``,
``status_payload``; the malformed ones start from ``reading_dict``), so the simulator cannot drift
from the contract the ingester parses.
"""

from __future__ import annotations

import heapq
import json
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

import numpy as np

from coldchain.telemetry import (
    DeviceStatus,
    Reading,
    batch_payload,
    reading_dict,
    reading_payload,
    status_payload,
    status_topic,
    telemetry_topic,
)
from simulator.fleet import NEVER, STREAM_FAULT, Fleet, from_ms, rng_for
from simulator.streams import ReadingChunk, generate_chunks

MessageKind = Literal["reading", "batch", "status", "duplicate", "reupload", "malformed"]

FIRMWARE: Final = "coldchain-sim/1.0"
#: A dead logger's last will reaches subscribers after the broker misses 1.5 keep-alives.
LAST_WILL_DELAY_MS: Final = 90_000
DUPLICATE_DELAY_MS: Final = (5_000, 300_000)
REUPLOAD_DELAY_MS: Final = (60_000, 600_000)
#: An impossible temperature for the "impossible_value" fault (the contract allows -100..100).
IMPOSSIBLE_TEMP_C: Final = 412.0


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One MQTT message as a logger sends it, at simulated time ``send_ms`` (epoch ms)."""

    send_ms: int
    topic: str
    payload: bytes
    device_id: str
    kind: MessageKind
    readings: tuple[Reading, ...] = ()  # what a well-formed payload carries
    fault: str | None = None  # the malformed kind

    @property
    def send_time(self) -> datetime:
        """When the logger sends it (simulated time)."""
        return from_ms(self.send_ms)


@dataclass(frozen=True, slots=True)
class Outage:
    """A logger without coverage over [start, end); it uploads its buffer at ``upload_ms``."""

    device_index: int
    device_id: str
    start_ms: int
    end_ms: int
    upload_ms: int


@dataclass(frozen=True)
class FaultPlan:
    """Which loggers lose coverage when, and whose clocks are off (decided up front)."""

    outages: tuple[Outage, ...]
    skew_ms: Mapping[int, int]  # device index → clock offset


def plan_faults(fleet: Fleet) -> FaultPlan:
    """Choose outage windows and skewed clocks from the fault seed (pure)."""
    cfg = fleet.scenario.faults
    n = len(fleet.devices)
    interval_ms = fleet.interval_s * 1000
    cov = cfg.coverage_loss
    rng = rng_for(fleet.seed, STREAM_FAULT, 0)
    outages: list[Outage] = []
    chosen = np.sort(rng.choice(n, size=round(cov.devices * n), replace=False))
    upload_ms = round(cov.upload_delay_s * 1000)
    # Outages fit inside the run, so every buffer is uploaded before the scenario ends.
    win_start = fleet.start_ms + interval_ms
    win_end = fleet.end_ms - upload_ms - 2 * interval_ms
    slot = (win_end - win_start) / cov.outages_per_device
    for d in chosen.tolist():
        for i in range(cov.outages_per_device):
            want = rng.uniform(cov.min_duration_min, cov.max_duration_min) * 60_000
            dur = min(want, 0.9 * slot)
            offset = rng.uniform(0, max(0.0, slot - dur))
            if dur < interval_ms:
                continue  # the run is too short for an outage that buffers anything
            begin = round(win_start + i * slot + offset)
            end = begin + round(dur)
            # Back in coverage, the logger sends its current reading first and then the backlog,
            # so the batch always arrives after a newer live reading.
            first_live = fleet.start_ms + fleet.devices[d].phase_ms
            first_live += -(-(end - first_live) // interval_ms) * interval_ms
            outages.append(
                Outage(d, fleet.devices[d].device_id, begin, end, first_live + upload_ms)
            )
    srng = rng_for(fleet.seed, STREAM_FAULT, 1)
    skewed = np.sort(srng.choice(n, size=round(cfg.clock_skew_devices * n), replace=False))
    max_ms = round(cfg.clock_skew_max_s * 1000)
    skew = {
        int(d): int(srng.integers(min(1000, max_ms), max_ms + 1)) * int(srng.choice([-1, 1]))
        for d in skewed.tolist()
    }
    return FaultPlan(tuple(outages), skew)


@dataclass
class FaultLog:
    """What the injector did; part of the ground truth."""

    outages: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    reuploads: list[dict[str, Any]] = field(default_factory=list)
    malformed: list[dict[str, Any]] = field(default_factory=list)
    clock_skew_ms: dict[str, int] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, int]:
        """How many faults of each kind were injected."""
        return {
            "coverage_losses": len(self.outages),
            "buffered_readings": self.counts["batch_readings"],
            "batches": self.counts["batch"],
            "lost_readings": sum(o["lost_readings"] for o in self.outages),
            "duplicates": self.counts["duplicate"],
            "reuploads": self.counts["reupload"],
            "malformed": self.counts["malformed"],
            "skewed_clocks": len(self.clock_skew_ms),
        }

    def messages(self) -> dict[str, int]:
        """How many messages of each kind were made (reading, batch, status, duplicate, ...)."""
        return {k: v for k, v in sorted(self.counts.items()) if k != "batch_readings"}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "summary": self.summary(),
            "messages": self.messages(),
            "outages": self.outages,
            "duplicates": self.duplicates,
            "reuploads": self.reuploads,
            "malformed": self.malformed,
            "clock_skew_ms": self.clock_skew_ms,
        }


def _iso(ms: int) -> str:
    return from_ms(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def exact_count(rate: float, total: int) -> int:
    """floor(rate × total), robust to binary fractions (0.29 × 100 is 29, not 28)."""
    return math.floor(rate * total + 1e-9)


def corrupt(msg: OutgoingMessage, kind: str, *, other_topic: str) -> tuple[str, bytes]:
    """A broken copy of a single-reading message: (topic, payload)."""
    reading = msg.readings[0]
    if kind == "bad_json":
        return msg.topic, msg.payload[: max(1, len(msg.payload) * 2 // 3)]
    if kind == "wrong_type":
        doc = reading_dict(reading)
        doc["temp_c"] = "warm"
        return msg.topic, json.dumps(doc, separators=(",", ":")).encode()
    if kind == "impossible_value":
        doc = reading_dict(reading)
        doc["temp_c"] = IMPOSSIBLE_TEMP_C
        return msg.topic, json.dumps(doc, separators=(",", ":")).encode()
    if kind == "wrong_device":
        return other_topic, msg.payload
    raise ValueError(f"unknown malformed kind {kind!r}")


_Keyed = tuple[int, int, int, OutgoingMessage]


class FaultInjector:
    """Turns reading chunks into outgoing messages, in send order, with the planned faults."""

    def __init__(self, fleet: Fleet, *, root: str, plan: FaultPlan | None = None) -> None:
        self.fleet = fleet
        self.cfg = fleet.scenario.faults
        self.plan = plan or plan_faults(fleet)
        self.rng = rng_for(fleet.seed, STREAM_FAULT, 2)
        self.ids = [d.device_id for d in fleet.devices]
        self.index = {device_id: i for i, device_id in enumerate(self.ids)}
        self.topics = [telemetry_topic(root, i) for i in self.ids]
        self.stranger = telemetry_topic(root, f"{self.ids[0]}-X") if self.ids else ""
        self.status_topics = [status_topic(root, i) for i in self.ids]
        n = len(self.ids)
        self.skew = np.zeros(n, dtype=np.int64)
        for d, ms in self.plan.skew_ms.items():
            self.skew[d] = ms
        per_dev: dict[int, list[int]] = {}
        for i, o in enumerate(self.plan.outages):
            per_dev.setdefault(o.device_index, []).append(i)
        k = max((len(v) for v in per_dev.values()), default=1)
        self.out_start = np.full((n, k), NEVER, dtype=np.int64)
        self.out_end = np.full((n, k), NEVER, dtype=np.int64)
        self.out_id = np.full((n, k), -1, dtype=np.int64)
        for d, idx in per_dev.items():
            for j, i in enumerate(idx):
                o = self.plan.outages[i]
                self.out_start[d, j], self.out_end[d, j], self.out_id[d, j] = (
                    o.start_ms,
                    o.end_ms,
                    i,
                )
        self.buffers: dict[int, list[tuple[int, Reading]]] = {
            i: [] for i in range(len(self.plan.outages))
        }
        self.unflushed = sorted(
            range(len(self.plan.outages)), key=lambda i: self.plan.outages[i].end_ms
        )
        self.heap: list[_Keyed] = []
        self.seq = 0
        self.online = np.zeros(n, dtype=bool)
        self.live_total = self.dup_done = self.mal_done = self.batch_total = self.reup_done = 0
        self.log = FaultLog(
            clock_skew_ms={self.ids[d]: ms for d, ms in sorted(self.plan.skew_ms.items())}
        )
        for dev in fleet.devices:
            if dev.dies_at_ms is not None and dev.dies_at_ms < fleet.end_ms:
                will = status_payload(DeviceStatus(dev.device_id, online=False))
                self._push(
                    OutgoingMessage(
                        dev.dies_at_ms + LAST_WILL_DELAY_MS,
                        self.status_topics[dev.index],
                        will,
                        dev.device_id,
                        "status",
                    )
                )

    def _push(self, msg: OutgoingMessage) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (msg.send_ms, 1, self.seq, msg))

    def process(self, chunk: ReadingChunk) -> list[OutgoingMessage]:
        """Messages from this chunk and earlier ones that leave before ``chunk.horizon_ms``."""
        live = self._live(chunk)
        self._flush_outages(chunk.horizon_ms)
        return self._emit(live, chunk.horizon_ms)

    def finish(self) -> list[OutgoingMessage]:
        """Everything still buffered or delayed, after the last chunk."""
        self._flush_outages(NEVER)
        return self._emit([], NEVER)

    def _live(self, chunk: ReadingChunk) -> list[_Keyed]:
        d_idx, j_idx = np.nonzero(chunk.recorded)
        t = chunk.t_ms[d_idx, j_idx]
        order = np.lexsort((d_idx, t))
        d_idx, j_idx, t = d_idx[order], j_idx[order], t[order]
        inside = (t[:, None] >= self.out_start[d_idx]) & (t[:, None] < self.out_end[d_idx])
        outage = np.where(inside.any(axis=1), self.out_id[d_idx, inside.argmax(axis=1)], -1)
        stamps = t + self.skew[d_idx]
        cols = (
            chunk.temp_c[d_idx, j_idx].tolist(),
            chunk.rh[d_idx, j_idx].tolist(),
            chunk.lat[d_idx, j_idx].tolist(),
            chunk.lon[d_idx, j_idx].tolist(),
            chunk.battery[d_idx, j_idx].tolist(),
        )
        live: list[_Keyed] = []
        reading_pos: list[int] = []
        for i, (d, send, stamp, out) in enumerate(
            zip(d_idx.tolist(), t.tolist(), stamps.tolist(), outage.tolist(), strict=True)
        ):
            r = Reading(
                self.ids[d],
                from_ms(stamp),
                cols[0][i],
                cols[1][i],
                cols[2][i],
                cols[3][i],
                cols[4][i],
            )
            if out >= 0:
                self.buffers[out].append((send, r))
                continue
            if not self.online[d]:
                # The logger announces itself the first time it has coverage.
                self.online[d] = True
                status = DeviceStatus(self.ids[d], True, r.ts, r.battery, FIRMWARE)
                msg = OutgoingMessage(
                    send, self.status_topics[d], status_payload(status), self.ids[d], "status"
                )
                live.append((send, 0, len(live), msg))
            reading_pos.append(len(live))
            msg = OutgoingMessage(
                send, self.topics[d], reading_payload(r), self.ids[d], "reading", (r,)
            )
            live.append((send, 0, len(live), msg))
        self.log.counts["status"] += len(live) - len(reading_pos)
        self.log.counts["reading"] += len(reading_pos)
        self._duplicates(live, reading_pos)
        self._malformed(live, reading_pos)
        return live

    def _choose(self, rate: float, done: int, total: int, among: int) -> np.ndarray:
        k = exact_count(rate, total) - done
        if k <= 0 or among == 0:
            return np.empty(0, dtype=np.int64)
        return np.sort(self.rng.choice(among, size=min(k, among), replace=False))

    def _duplicates(self, live: list[_Keyed], reading_pos: list[int]) -> None:
        self.live_total += len(reading_pos)
        picks = self._choose(
            self.cfg.duplicate_rate, self.dup_done, self.live_total, len(reading_pos)
        )
        self.dup_done += len(picks)
        for p in picks.tolist():
            orig = live[reading_pos[p]][3]
            delay = int(self.rng.integers(DUPLICATE_DELAY_MS[0], DUPLICATE_DELAY_MS[1] + 1))
            dup = OutgoingMessage(
                orig.send_ms + delay,
                orig.topic,
                orig.payload,
                orig.device_id,
                "duplicate",
                orig.readings,
            )
            self._push(dup)
            self.log.counts["duplicate"] += 1
            self.log.duplicates.append(
                {
                    "device_id": orig.device_id,
                    "ts": _iso_reading(orig),
                    "sent": _iso(orig.send_ms),
                    "resent": _iso(dup.send_ms),
                }
            )

    def _malformed(self, live: list[_Keyed], reading_pos: list[int]) -> None:
        picks = self._choose(
            self.cfg.malformed_rate, self.mal_done, self.live_total, len(reading_pos)
        )
        self.mal_done += len(picks)
        kinds = self.cfg.malformed_kinds
        for p in picks.tolist():
            orig = live[reading_pos[p]][3]
            kind = kinds[int(self.rng.integers(len(kinds)))]
            d = self.index[orig.device_id]
            # Another logger's topic; a one-logger fleet gets a made-up neighbour.
            other = self.topics[(d + 1) % len(self.ids)] if len(self.ids) > 1 else self.stranger
            topic, payload = corrupt(orig, kind, other_topic=other)
            self._push(
                OutgoingMessage(
                    orig.send_ms + 1, topic, payload, orig.device_id, "malformed", (), kind
                )
            )
            self.log.counts["malformed"] += 1
            self.log.malformed.append(
                {
                    "device_id": orig.device_id,
                    "kind": kind,
                    "topic": topic,
                    "sent": _iso(orig.send_ms + 1),
                }
            )

    def _flush_outages(self, horizon_ms: int) -> None:
        """Upload the buffers of outages that are over (nothing more can fall into them)."""
        batch_max = self.cfg.coverage_loss.batch_max_readings
        made: list[OutgoingMessage] = []
        while self.unflushed and self.plan.outages[self.unflushed[0]].end_ms <= horizon_ms:
            i = self.unflushed.pop(0)
            o = self.plan.outages[i]
            buffered = [r for _, r in sorted(self.buffers.pop(i), key=lambda x: x[0])]
            dies = self.fleet.devices[o.device_index].dies_at_ms
            lost = dies is not None and dies <= o.upload_ms
            entry: dict[str, Any] = {
                "device_id": o.device_id,
                "start": _iso(o.start_ms),
                "end": _iso(o.end_ms),
                "upload": _iso(o.upload_ms),
                "buffered_readings": len(buffered),
                "batches": 0,
                "lost_readings": len(buffered) if lost else 0,
            }
            self.log.outages.append(entry)
            if lost or not buffered:
                continue
            groups = [buffered[k : k + batch_max] for k in range(0, len(buffered), batch_max)]
            # Newest first: many loggers upload their most recent data first after an outage.
            for n, group in enumerate(reversed(groups)):
                payload = batch_payload(o.device_id, group)
                msg = OutgoingMessage(
                    o.upload_ms + n,
                    self.topics[o.device_index],
                    payload,
                    o.device_id,
                    "batch",
                    tuple(group),
                )
                self._push(msg)
                made.append(msg)
            entry["batches"] = len(groups)
            self.log.counts["batch"] += len(groups)
            self.log.counts["batch_readings"] += len(buffered)
        self.batch_total += len(made)
        picks = self._choose(self.cfg.reupload_rate, self.reup_done, self.batch_total, len(made))
        self.reup_done += len(picks)
        for p in picks.tolist():
            orig = made[p]
            delay = int(self.rng.integers(REUPLOAD_DELAY_MS[0], REUPLOAD_DELAY_MS[1] + 1))
            self._push(
                OutgoingMessage(
                    orig.send_ms + delay,
                    orig.topic,
                    orig.payload,
                    orig.device_id,
                    "reupload",
                    orig.readings,
                )
            )
            self.log.counts["reupload"] += 1
            self.log.reuploads.append(
                {
                    "device_id": orig.device_id,
                    "readings": len(orig.readings),
                    "sent": _iso(orig.send_ms),
                    "resent": _iso(orig.send_ms + delay),
                }
            )

    def _emit(self, live: list[_Keyed], horizon_ms: int) -> list[OutgoingMessage]:
        due: list[_Keyed] = []
        while self.heap and self.heap[0][0] < horizon_ms:
            due.append(heapq.heappop(self.heap))
        return [k[3] for k in heapq.merge(live, due)]


def _iso_reading(msg: OutgoingMessage) -> str:
    return msg.readings[0].ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_stream(
    fleet: Fleet, injector: FaultInjector, *, observe: Callable[[ReadingChunk], None] | None = None
) -> Iterator[OutgoingMessage]:
    """All messages of the run in send order; ``observe`` sees every chunk (ground truth)."""
    for chunk in generate_chunks(fleet):
        if observe is not None:
            observe(chunk)
        yield from injector.process(chunk)
    yield from injector.finish()
