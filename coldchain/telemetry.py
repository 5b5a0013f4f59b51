"""The payload contract between loggers and the platform, parsed once at the boundary.

Loggers publish to ``{root}/devices/{device_id}/telemetry`` (QoS 1) either one reading::

    {"device_id": "LOG-000123", "ts": "2026-11-26T03:00:00Z", "temp_c": 5.2, "rh": 45.1,
     "lat": 52.37, "lon": 4.89, "battery": 0.87}

or a batch of readings buffered while out of coverage::

    {"device_id": "LOG-000123", "readings": [{"ts": ..., "temp_c": ...}, ...]}

or SenML (RFC 8428) records: a JSON array whose records carry ``bn``/``n``, ``bt``/``t`` (seconds)
and ``u`` in ``Cel``, ``%RH``, ``lat``, ``lon``, ``/`` (battery ratio). Timestamps are ISO 8601
with an offset, or epoch milliseconds. Status goes to ``{root}/devices/{device_id}/status``.

:func:`parse_payload` is the one definition of what is accepted: the simulator's tests and the docs
use it, and the ingester's fast path is held equal to it.
A batch with one bad reading yields the good readings plus one :class:`Rejection` per bad one.
It never raises, whatever the bytes (a 5,000-digit integer, nesting deeper than the stack, or
anything else Python's JSON decoder refuses is a rejection, and a last-resort guard turns any
other exception into one). Types are strict, as in the JSON Schemas: a number given as text
(``"5.5"``) or as a boolean is refused, and so is text holding control characters (NUL cannot be
stored in PostgreSQL text). Measurement times before :data:`EARLIEST_TS` (2000-01-01: negative
epochs, year 0001, a logger whose clock was never set) are refused. Plain readings take a hand-written fast path that accepts
only what the full (pydantic) validation accepts and builds the same :class:`Reading`; anything
else, and every rejection, goes through the full validation.
The ingester reads messages through :func:`coldchain.telemetry_columns.parse_into`, which gives
exactly what :func:`parse_payload` gives (property-tested) but decodes well-formed messages
straight into columns, and calls :func:`check_envelope` and :func:`parse_body` for the rest.
The simulator builds payloads with :func:`reading_payload` / :func:`batch_payload`, so the
two sides cannot drift apart.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from coldchain.senml import json_type, senml_records

DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
_DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)

#: Physical limits; anything outside is a broken sensor or a forged message.
TEMP_MIN_C, TEMP_MAX_C = -100.0, 100.0
#: Each measured quantity's accepted range, inclusive: the one definition the full validation,
#: the hand-written fast path and the ingester's columnar decoder (coldchain/telemetry_columns.py)
#: all check against.
RANGES: dict[str, tuple[float, float]] = {
    "temp_c": (TEMP_MIN_C, TEMP_MAX_C),
    "rh": (0.0, 100.0),
    "lat": (-90.0, 90.0),
    "lon": (-180.0, 180.0),
    "battery": (0.0, 1.0),
}
#: The earliest measurement time accepted: older is an unset clock or a forged message (and would
#: make TimescaleDB create chunks for 1969 or year 1).
EARLIEST_TS = datetime(2000, 1, 1, tzinfo=UTC)
#: Printable text only: no C0 control characters and no DEL (PostgreSQL text refuses NUL).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement of one logger at the logger's own measurement time."""

    device_id: str
    ts: datetime
    temp_c: float | None = None
    rh: float | None = None
    lat: float | None = None
    lon: float | None = None
    battery: float | None = None


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A logger's status message (battery, firmware, online/offline from its last will)."""

    device_id: str
    online: bool
    ts: datetime | None = None
    battery: float | None = None
    firmware: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why (part of) a message was refused; the ingester dead-letters it with the raw bytes."""

    reason: str
    device_id: str | None = None
    index: int | None = None  # position in a batch, None for the whole message


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """The outcome of parsing one MQTT message."""

    readings: tuple[Reading, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    status: DeviceStatus | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """Boundary limits, from :class:`coldchain.settings.IngestSettings`."""

    max_payload_bytes: int = 256 * 1024
    max_batch_readings: int = 10_000
    max_future: timedelta = timedelta(minutes=5)
    earliest: datetime = EARLIEST_TS
    known_devices: frozenset[str] | None = field(default=None)


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed device topic."""

    device_id: str
    kind: str  # "telemetry" or "status"


def telemetry_topic(root: str, device_id: str) -> str:
    """The topic a logger publishes its readings to."""
    return f"{root}/devices/{device_id}/telemetry"


def status_topic(root: str, device_id: str) -> str:
    """The topic a logger publishes its status (and last will) to."""
    return f"{root}/devices/{device_id}/status"


def parse_topic(root: str, topic: str) -> Topic | None:
    """Split ``{root}/devices/{id}/{kind}``; None when the topic is not a device topic."""
    prefix = f"{root}/devices/"
    if not topic.startswith(prefix):
        return None
    rest = topic[len(prefix) :].split("/")
    if len(rest) != 2 or rest[1] not in ("telemetry", "status") or not rest[0]:
        return None
    return Topic(device_id=rest[0], kind=rest[1])


# --- wire models ---------------------------------------------------------------------------


def _parse_ts(value: Any) -> datetime:
    if isinstance(value, bool):
        raise ValueError("timestamp must be ISO 8601 text or epoch milliseconds")
    if isinstance(value, int | float):
        try:
            seconds = value / 1000.0  # an integer past the float range overflows here
        except OverflowError:
            raise ValueError("timestamp is out of range") from None
        if not math.isfinite(seconds):
            raise ValueError("timestamp is not a finite number")
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):  # far beyond any calendar date
            raise ValueError(f"timestamp {value!r} is out of range") from None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z") or text.endswith("z"):
            text = text[:-1] + "+00:00"
        try:
            ts = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"timestamp {value!r} is not ISO 8601") from exc
        if ts.tzinfo is None:
            raise ValueError(f"timestamp {value!r} has no UTC offset")
        try:
            return ts.astimezone(UTC)
        except OverflowError as exc:  # year 1 or 9999 pushed past the calendar by its offset
            raise ValueError(f"timestamp {value!r} is out of range") from exc
    raise ValueError("timestamp must be ISO 8601 text or epoch milliseconds")


def _finite(value: float | None, name: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{name} is not a finite number")
    return value


class _ReadingIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=False)

    device_id: str | None = Field(default=None, pattern=DEVICE_ID_PATTERN)
    ts: datetime
    temp_c: float | None = Field(
        default=None, ge=RANGES["temp_c"][0], le=RANGES["temp_c"][1], allow_inf_nan=True
    )
    rh: float | None = Field(
        default=None, ge=RANGES["rh"][0], le=RANGES["rh"][1], allow_inf_nan=True
    )
    lat: float | None = Field(
        default=None, ge=RANGES["lat"][0], le=RANGES["lat"][1], allow_inf_nan=True
    )
    lon: float | None = Field(
        default=None, ge=RANGES["lon"][0], le=RANGES["lon"][1], allow_inf_nan=True
    )
    battery: float | None = Field(
        default=None, ge=RANGES["battery"][0], le=RANGES["battery"][1], allow_inf_nan=True
    )

    @field_validator("ts", mode="before")
    @classmethod
    def _ts(cls, v: Any) -> datetime:
        return _parse_ts(v)

    @field_validator("temp_c", "rh", "lat", "lon", "battery", mode="before")
    @classmethod
    def _no_nan(cls, v: Any, info: Any) -> Any:
        return _json_number(v)


def _json_number(v: Any) -> Any:
    """A JSON number (or null) as it came; text and booleans are refused, not converted."""
    if v is None:
        return v
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"must be a JSON number, not {json_type(v)}")
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError("is not a finite number (NaN or infinity)")
    return v


class _StatusIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    device_id: str | None = Field(default=None, pattern=DEVICE_ID_PATTERN)
    online: bool = Field(default=True, strict=True)
    ts: datetime | None = None
    battery: float | None = Field(default=None, ge=0.0, le=1.0)
    firmware: str | None = Field(default=None, max_length=64, pattern=TEXT_PATTERN)

    @field_validator("ts", mode="before")
    @classmethod
    def _ts(cls, v: Any) -> datetime | None:
        if v is None:
            return None
        ts = _parse_ts(v)
        if ts < EARLIEST_TS:
            raise ValueError(_too_early(ts, EARLIEST_TS))
        return ts

    @field_validator("battery", mode="before")
    @classmethod
    def _number(cls, v: Any) -> Any:
        return _json_number(v)


def _too_early(ts: datetime, earliest: datetime) -> str:
    return f"timestamp {ts.isoformat()} is before {earliest.date().isoformat()}"


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "payload"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


# --- the parser ----------------------------------------------------------------------------


def parse_payload(
    topic: str, payload: bytes, *, root: str, now: datetime, limits: Limits
) -> ParsedMessage:
    """Parse one MQTT message into readings, a status, or rejections. Never raises."""
    try:
        return _parse_payload(topic, payload, root=root, now=now, limits=limits)
    except Exception as exc:  # a case the checks below missed: refuse the message, stay up
        return ParsedMessage(
            rejections=(Rejection(f"payload could not be parsed ({type(exc).__name__})"),)
        )


def _parse_payload(
    topic: str, payload: bytes, *, root: str, now: datetime, limits: Limits
) -> ParsedMessage:
    checked = check_envelope(topic, payload, root=root, limits=limits)
    if isinstance(checked, ParsedMessage):
        return checked
    return parse_body(checked, payload, now=now, limits=limits)


def check_envelope(
    topic: str, payload: bytes, *, root: str, limits: Limits
) -> Topic | ParsedMessage:
    """What is checked before the payload is read (topic, device id, size, registry): the
    device's topic, or the message's rejection."""
    parsed_topic = _device_topic(root, topic)
    if isinstance(parsed_topic, Rejection):
        return ParsedMessage(rejections=(parsed_topic,))
    device = parsed_topic.device_id
    if len(payload) > limits.max_payload_bytes:
        return ParsedMessage(
            rejections=(
                Rejection(
                    f"payload of {len(payload)} bytes exceeds the limit of "
                    f"{limits.max_payload_bytes}",
                    device,
                ),
            )
        )
    if limits.known_devices is not None and device not in limits.known_devices:
        return ParsedMessage(rejections=(Rejection(f"unknown device {device!r}", device),))
    return parsed_topic


@lru_cache(maxsize=16_384)
def _device_topic(root: str, topic: str) -> Topic | Rejection:
    """The topic's device and kind, or why it is refused; cached, as a fleet's topics repeat."""
    parsed_topic = parse_topic(root, topic)
    if parsed_topic is None:
        return Rejection(f"topic {topic!r} is not a device topic")
    if not _DEVICE_ID_RE.fullmatch(parsed_topic.device_id):
        return Rejection(f"device id {parsed_topic.device_id!r} in the topic is malformed")
    return parsed_topic


def device_of_topic(root: str, topic: str) -> str | None:
    """The device a message's topic names, or None when it is no device's topic (cached)."""
    parsed = _device_topic(root, topic)
    return None if isinstance(parsed, Rejection) else parsed.device_id


def parse_body(topic: Topic, payload: bytes, *, now: datetime, limits: Limits) -> ParsedMessage:
    """The payload of a message whose envelope passed :func:`check_envelope`. Never raises."""
    try:
        return _parse_body(topic, payload, now=now, limits=limits)
    except Exception as exc:  # a case the checks below missed: refuse the message, stay up
        return ParsedMessage(
            rejections=(Rejection(f"payload could not be parsed ({type(exc).__name__})"),)
        )


def _parse_body(topic: Topic, payload: bytes, *, now: datetime, limits: Limits) -> ParsedMessage:
    device = topic.device_id
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return ParsedMessage(rejections=(Rejection(f"payload is not JSON: {exc}", device),))
    except ValueError:  # an integer longer than sys.get_int_max_str_digits() (4,300 digits)
        return ParsedMessage(
            rejections=(Rejection("payload is not JSON we accept: a number is too long", device),)
        )
    except RecursionError:  # "[[[[…" deeper than the interpreter's stack: hostile, not data
        return ParsedMessage(
            rejections=(Rejection("payload is not JSON: nested too deeply", device),)
        )
    if topic.kind == "status":
        return _parse_status(doc, device)
    return _parse_telemetry(doc, device, now=now, limits=limits)


def _parse_status(doc: Any, device: str) -> ParsedMessage:
    if isinstance(doc, str):  # a bare "offline"/"online", as many last-will messages are
        doc = {"online": doc.strip().lower() == "online"}
    if not isinstance(doc, Mapping):
        return ParsedMessage(rejections=(Rejection("status payload is not a JSON object", device),))
    try:
        model = _StatusIn.model_validate(doc)
    except ValidationError as exc:
        return ParsedMessage(rejections=(Rejection(_explain(exc), device),))
    if model.device_id is not None and model.device_id != device:
        return ParsedMessage(
            rejections=(
                Rejection(
                    f"device {model.device_id!r} in the payload differs from the topic", device
                ),
            )
        )
    return ParsedMessage(
        status=DeviceStatus(device, model.online, model.ts, model.battery, model.firmware)
    )


def _parse_telemetry(doc: Any, device: str, *, now: datetime, limits: Limits) -> ParsedMessage:
    items: list[tuple[int | None, Any]]
    if isinstance(doc, list):
        try:
            items = [(i, r) for i, r in senml_records(doc, device)]
        except (TypeError, ValueError, OverflowError) as exc:
            return ParsedMessage(rejections=(Rejection(f"SenML: {exc}", device),))
        if not items:
            return ParsedMessage(
                rejections=(Rejection("SenML pack has no known quantity", device),)
            )
    elif isinstance(doc, Mapping):
        outer = doc.get("device_id")
        if outer is not None and outer != device:
            return ParsedMessage(
                rejections=(
                    Rejection(f"device {outer!r} in the payload differs from the topic", device),
                )
            )
        if "readings" in doc:
            batch = doc["readings"]
            if not isinstance(batch, list):
                return ParsedMessage(rejections=(Rejection("'readings' must be a list", device),))
            if len(batch) > limits.max_batch_readings:
                return ParsedMessage(
                    rejections=(
                        Rejection(
                            f"batch of {len(batch)} readings exceeds the limit of "
                            f"{limits.max_batch_readings}",
                            device,
                        ),
                    )
                )
            items = list(enumerate(batch))
        else:
            items = [(None, doc)]
    else:
        return ParsedMessage(
            rejections=(Rejection("payload is not a JSON object or array", device),)
        )

    latest_allowed = now + limits.max_future
    earliest = limits.earliest
    readings: list[Reading] = []
    rejections: list[Rejection] = []
    for index, item in items:
        fast = _fast_reading(item, device, earliest, latest_allowed) if _FAST_PATH else None
        outcome = (
            fast
            if fast is not None
            else _validate_reading(item, device, index, earliest, latest_allowed)
        )
        if isinstance(outcome, Reading):
            readings.append(outcome)
        else:
            rejections.append(outcome)
    return ParsedMessage(readings=tuple(readings), rejections=tuple(rejections))


def _validate_reading(
    item: Any, device: str, index: int | None, earliest: datetime, latest_allowed: datetime
) -> Reading | Rejection:
    """The full check of one reading: pydantic, then device and time; the reason if refused."""
    if not isinstance(item, Mapping):
        return Rejection("reading is not a JSON object", device, index)
    try:
        model = _ReadingIn.model_validate(item)
    except ValidationError as exc:
        return Rejection(_explain(exc), device, index)
    if model.device_id is not None and model.device_id != device:
        return Rejection(
            f"device {model.device_id!r} in the payload differs from the topic", device, index
        )
    if model.ts > latest_allowed:
        return Rejection(f"timestamp {model.ts.isoformat()} is in the future", device, index)
    if model.ts < earliest:
        return Rejection(_too_early(model.ts, earliest), device, index)
    return Reading(device, model.ts, model.temp_c, model.rh, model.lat, model.lon, model.battery)


# The fast path: most readings are a plain object of known keys with numbers in range. Checking
# those by hand is ~5x cheaper than pydantic, and at tens of thousands of readings a second that
# is most of the ingester's parsing time. It only ever *accepts*: anything it is not sure of
# (a missing or unknown key, a number given as text, a boolean, NaN, a value out of range, a
# timestamp in the future, before EARLIEST_TS or unparseable) returns None and goes through
# _validate_reading,
# which also writes the rejection reason. tests/coldchain/test_telemetry.py holds the two paths
# equal on random valid and invalid readings; _FAST_PATH = False switches it off.
_FAST_PATH = True
_READING_KEYS = frozenset(("device_id", "ts", "temp_c", "rh", "lat", "lon", "battery"))


def _fast_reading(
    item: Any, device: str, earliest: datetime, latest_allowed: datetime
) -> Reading | None:
    """The reading exactly as _validate_reading would build it, or None to let that decide."""
    if type(item) is not dict or not item.keys() <= _READING_KEYS:
        return None
    claimed = item.get("device_id")
    if claimed is not None and (type(claimed) is not str or claimed != device):
        return None
    raw_ts = item.get("ts")
    kind = type(raw_ts)
    if kind is not str and kind is not float and kind is not int:
        return None
    try:
        ts = _parse_ts(raw_ts)
    except ValueError:
        return None
    if ts > latest_allowed or ts < earliest:
        return None
    temp_c = _fast_number(item.get("temp_c"), *RANGES["temp_c"])
    rh = _fast_number(item.get("rh"), *RANGES["rh"])
    lat = _fast_number(item.get("lat"), *RANGES["lat"])
    lon = _fast_number(item.get("lon"), *RANGES["lon"])
    battery = _fast_number(item.get("battery"), *RANGES["battery"])
    if (
        temp_c is _NOT_SURE
        or rh is _NOT_SURE
        or lat is _NOT_SURE
        or lon is _NOT_SURE
        or battery is _NOT_SURE
    ):
        return None
    return Reading(device, ts, temp_c, rh, lat, lon, battery)


_NOT_SURE: Any = object()


def _fast_number(value: Any, low: float, high: float) -> float | None:
    """A JSON number within [low, high] as pydantic would give it (a float); else _NOT_SURE."""
    if value is None:
        return None
    kind = type(value)
    # NaN fails both comparisons and infinity is out of range, so neither gets through.
    if (kind is float or kind is int) and low <= value <= high:
        return float(value)
    return cast("float | None", _NOT_SURE)


# --- building payloads (the simulator's side of the contract) ------------------------------


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def reading_dict(r: Reading, *, include_device: bool = True) -> dict[str, Any]:
    """A reading as the JSON object of the contract (absent fields are left out)."""
    d: dict[str, Any] = {"device_id": r.device_id} if include_device else {}
    d["ts"] = _iso(r.ts)
    for name in ("temp_c", "rh", "lat", "lon", "battery"):
        value = getattr(r, name)
        if value is not None:
            d[name] = value
    return d


def reading_payload(r: Reading) -> bytes:
    """One reading, encoded."""
    return json.dumps(reading_dict(r), separators=(",", ":")).encode()


def batch_payload(device_id: str, readings: Iterable[Reading]) -> bytes:
    """A buffered upload of several readings, encoded."""
    body = {
        "device_id": device_id,
        "readings": [reading_dict(r, include_device=False) for r in readings],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def status_payload(status: DeviceStatus) -> bytes:
    """A status message, encoded."""
    d: dict[str, Any] = {"device_id": status.device_id, "online": status.online}
    if status.ts is not None:
        d["ts"] = _iso(status.ts)
    if status.battery is not None:
        d["battery"] = status.battery
    if status.firmware is not None:
        d["firmware"] = status.firmware
    return json.dumps(d, separators=(",", ":")).encode()
