"""Loggers: register (with MQTT credentials), change, retire, import.

A logger's **serial number is its device_id**: the identifier printed on it, scanned at the
dock, used as its MQTT user name and in its topic, so no mapping can disagree (migration 0010).

Registering a logger issues its MQTT password, returned once (the database keeps Mosquitto's
hash only), and rewrites the broker's password file and ACL in ``broker_dir``
(:func:`security.devices.write_broker_files`). Mosquitto reads them at start and on SIGHUP: the
web process cannot signal a broker it did not start (another process, often another container),
so whoever runs the broker reloads it (README "Master data"); without ``broker_dir`` (no broker
files on this host) the credential is stored and ``coldchain devices provision`` writes the
files later. A retried registration (same serial, same fields) returns the stored logger and
issues no new password; retiring a logger revokes its credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from coldchain.errors import InvalidRecordError, RecordConflictError
from coldchain.settings import Settings
from db.queries import devices as q
from db.queries import security as credentials_q
from db.types import Conn, Row
from security import devices as mqtt
from services.caller import Caller, acting
from services.csvimport import ImportResult, RowProblem, parse_rows
from services.records import require_live

#: What a serial may be: also an MQTT user name and a topic segment (no ':', '/', '+', '#').
SERIAL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class LoggerIn(BaseModel):
    """A logger as registered: serial (its device id), model, interval, calibration."""

    model_config = ConfigDict(extra="forbid")

    device_id: Annotated[str, StringConstraints(strip_whitespace=True, pattern=SERIAL_PATTERN)] = (
        Field(description="the serial number: also the MQTT user name and topic segment")
    )
    model: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    interval_s: Annotated[int, Field(ge=1, le=86400)] = 300
    calibration_cert: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
        | None
    ) = None
    calibration_due: date | None = None


@dataclass(frozen=True)
class Registered:
    """A registration's outcome: the logger, whether it is new, and its password (once)."""

    logger: Row
    created: bool
    mqtt_password: str | None
    broker_files_written: bool


def _spec_of(row: Row) -> LoggerIn:
    return LoggerIn.model_validate({"device_id": row["device_id"], **{f: row[f] for f in q.FIELDS}})


def _fields(spec: LoggerIn) -> dict[str, Any]:
    return {f: getattr(spec, f) for f in q.FIELDS}


def broker_dir(settings: Settings) -> Path | None:
    """The broker's password file and ACL folder on this host (the local stack's), or None when
    this host has none (the broker runs elsewhere)."""
    folder = settings.stack.data_dir / "mosquitto"
    return folder if folder.is_dir() else None


def _write_files(conn: Conn, topic_root: str, broker_dir: Path | None) -> bool:
    if broker_dir is None:
        return False
    mqtt.write_broker_files(conn, topic_root=topic_root, out_dir=broker_dir)
    return True


def list_loggers(conn: Conn) -> list[Row]:
    """Every logger with its latest state and current shipment."""
    return q.list_devices(conn=conn)


def get_logger(conn: Conn, device_id: str) -> Row:
    """One logger with its assignments; NotFoundError."""
    return q.get_device(conn=conn, device_id=device_id)


def register_logger(
    conn: Conn,
    caller: Caller,
    *,
    logger: LoggerIn,
    topic_root: str,
    broker_dir: Path | None,
    reason: str = "logger registered",
) -> Registered:
    """Register a logger and issue its MQTT password (returned once); a retry of the same
    registration returns the stored logger without a new password."""
    caller.require("devices.manage")
    with acting(conn, caller, reason):
        with conn.transaction():
            existing = q.lock_device(conn=conn, device_id=logger.device_id)
            if existing is not None:
                if _spec_of(existing) != logger:
                    raise RecordConflictError(
                        f"logger {logger.device_id} is already registered with other values "
                        f"(version {existing['version']}): change it with PATCH and its version"
                    )
                return Registered(get_logger(conn, logger.device_id), False, None, False)
            q.insert_devices(
                conn=conn, devices=[{"device_id": logger.device_id, **_fields(logger)}]
            )
            password = mqtt.issue_device_password(conn, logger.device_id)
        # After the commit: the files never admit a logger the database does not have.
        written = _write_files(conn, topic_root, broker_dir)
    return Registered(get_logger(conn, logger.device_id), True, password, written)


def update_logger(
    conn: Conn,
    caller: Caller,
    *,
    device_id: str,
    changes: Mapping[str, Any],
    expected_version: int,
    reason: str,
) -> Row:
    """Change a logger's model, interval or calibration (a new certificate after calibration)."""
    caller.require("devices.manage")
    if "device_id" in changes:
        raise InvalidRecordError("device_id", "is the logger's serial and cannot change")
    with acting(conn, caller, reason), conn.transaction():
        row = require_live(
            q.lock_device(conn=conn, device_id=device_id), f"logger {device_id}", expected_version
        )
        try:
            after = LoggerIn.model_validate({**_spec_of(row).model_dump(), **changes})
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidRecordError(".".join(map(str, first["loc"])), first["msg"]) from None
        if after != _spec_of(row):
            q.update_device(
                conn=conn,
                device_id=device_id,
                expected_version=expected_version,
                fields=_fields(after),
            )
        return get_logger(conn, device_id)


def retire_logger(
    conn: Conn,
    caller: Caller,
    *,
    device_id: str,
    expected_version: int,
    reason: str,
    topic_root: str,
    broker_dir: Path | None,
) -> Row:
    """Retire a logger: its MQTT credential is revoked and the broker files rewritten without it;
    it keeps its readings and history and cannot ride in a new shipment."""
    caller.require("devices.manage")
    with acting(conn, caller, reason):
        with conn.transaction():
            require_live(
                q.lock_device(conn=conn, device_id=device_id),
                f"logger {device_id}",
                expected_version,
            )
            q.retire_device(conn=conn, device_id=device_id, expected_version=expected_version)
            credentials_q.revoke_device_credential(conn=conn, device_id=device_id)
        _write_files(conn, topic_root, broker_dir)
    return get_logger(conn, device_id)


#: The columns of a loggers file.
CSV_COLUMNS = ("device_id", *q.FIELDS)


def import_loggers(
    conn: Conn,
    caller: Caller,
    *,
    text: str,
    reason: str,
    topic_root: str,
    broker_dir: Path | None,
    skip_bad: bool = False,
) -> ImportResult:
    """Register the loggers of a CSV file (:data:`CSV_COLUMNS`), each with a new MQTT password
    (in ``issued``, shown once): validated whole, every bad row reported, applied in one
    transaction only if all are good (or the good ones with ``skip_bad``)."""
    caller.require("devices.manage")
    good, problems = parse_rows(text, LoggerIn, required_columns=("device_id", "model"))
    seen: dict[str, int] = {}
    unique: list[tuple[int, LoggerIn]] = []
    for line, logger in good:
        if logger.device_id in seen:
            problems.append(
                RowProblem(
                    line,
                    "device_id",
                    f"{logger.device_id} is also on line {seen[logger.device_id]}",
                )
            )
        else:
            seen[logger.device_id] = line
            unique.append((line, logger))
    result = ImportResult()
    with acting(conn, caller, reason):
        with conn.transaction():
            existing = q.devices_by_id(conn=conn, device_ids=list(seen))
            new: list[LoggerIn] = []
            for line, logger in unique:
                stored = existing.get(logger.device_id)
                if stored is None:
                    new.append(logger)
                elif _spec_of(stored) == logger:
                    result.unchanged += 1
                else:
                    problems.append(
                        RowProblem(
                            line, "device_id", f"{logger.device_id} is registered with other values"
                        )
                    )
            result.problems = sorted(problems, key=lambda p: p.line)
            if result.problems and not skip_bad:
                return result
            result.skipped_lines = sorted({p.line for p in result.problems})
            q.insert_devices(
                conn=conn, devices=[{"device_id": d.device_id, **_fields(d)} for d in new]
            )
            for d in new:
                result.issued[d.device_id] = mqtt.issue_device_password(conn, d.device_id)
            result.applied = len(new)
        if new:
            _write_files(conn, topic_root, broker_dir)
    return result
