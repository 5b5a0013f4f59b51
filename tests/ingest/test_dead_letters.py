"""What a dead letter holds: the payload once, bounded reasons, storable text (pure)."""

from __future__ import annotations

import json

import psycopg
import pytest

from coldchain.telemetry import Rejection
from ingest.refusals import caused_by_data, refused_by_database
from ingest.sink import (
    MAX_REASONS,
    REASON_CHARS,
    REASONS_BYTES,
    SUMMARY_CHARS,
    clip,
    dead_letter_for,
    storable,
)

TOPIC = "coldchain/v1/devices/LOG-1/telemetry"


def test_a_whole_message_refusal_keeps_its_reason() -> None:
    dead = dead_letter_for(TOPIC, b"{not json", [Rejection("payload is not JSON: x", "LOG-1")])
    assert (dead.reason, dead.index, dead.refused, dead.device_id) == (
        "payload is not JSON: x", None, 1, "LOG-1",
    )  # fmt: skip
    assert json.loads(dead.reasons or "") == [{"index": None, "reason": "payload is not JSON: x"}]


def test_many_refused_readings_are_one_bounded_dead_letter() -> None:
    payload = b"x" * 250_000
    rejections = [Rejection("temp_c: " + "y" * 10_000, "LOG-1", i) for i in range(6000)]
    dead = dead_letter_for(TOPIC, payload, rejections, accepted=4)
    assert dead.payload is payload
    assert dead.refused == 6000
    listed = json.loads(dead.reasons or "")
    assert 0 < len(listed) <= MAX_REASONS
    assert len(dead.reasons or "") <= REASONS_BYTES
    assert all(len(e["reason"]) <= REASON_CHARS + 40 for e in listed)
    assert [e["index"] for e in listed] == list(range(len(listed)))
    assert dead.reason.startswith(f"6,000 of 6,004 readings refused ({len(listed)} listed); ")
    assert len(dead.reason) <= SUMMARY_CHARS + 40


def test_short_reasons_are_listed_up_to_the_count_cap() -> None:
    rejections = [
        Rejection("temp_c: must be a JSON number, not text", "LOG-1", i) for i in range(500)
    ]
    dead = dead_letter_for(TOPIC, b"{}", rejections)
    assert len(json.loads(dead.reasons or "")) == MAX_REASONS


def test_text_is_made_storable() -> None:
    assert storable("a\x00b") == "a\\x00b"
    assert storable("a\ud800b") == "a\\ud800b"
    dead = dead_letter_for("t\x00", b"", [Rejection("r\x00\ud800", "d\x00")])
    for text in (dead.topic, dead.reason, dead.device_id or "", dead.reasons or ""):
        assert "\x00" not in text and "\\u0000" not in text
        text.encode()


def test_clip() -> None:
    assert clip("abc", 5) == "abc"
    assert clip("a" * 250, 200) == "a" * 200 + "… (50 more characters)"


@pytest.mark.parametrize(
    ("exc", "refused"),
    [
        (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), True),
        (psycopg.errors.CheckViolation("check"), True),
        (psycopg.errors.NumericValueOutOfRange("out of range"), True),
        (psycopg.errors.UndefinedTable("no such table"), True),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), True),
        (psycopg.OperationalError("server closed the connection unexpectedly"), False),
        (psycopg.errors.AdminShutdown("terminating connection"), False),
        (psycopg.errors.DeadlockDetected("deadlock"), False),
        (psycopg.errors.DiskFull("disk full"), False),
        (psycopg.InterfaceError("the connection is closed"), False),
        (OSError("network unreachable"), False),
        (TimeoutError(), False),
    ],
)
def test_what_counts_as_refused_by_the_database(exc: BaseException, refused: bool) -> None:
    assert refused_by_database(exc) is refused


@pytest.mark.parametrize(
    ("exc", "data"),
    [
        (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), True),
        (psycopg.errors.CheckViolation("check"), True),
        (psycopg.errors.NumericValueOutOfRange("out of range"), True),
        (psycopg.errors.ProgramLimitExceeded("index row size exceeds maximum"), True),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), True),
        (psycopg.errors.UndefinedTable("no such table"), False),
        (psycopg.errors.InsufficientPrivilege("permission denied for table readings"), False),
        (psycopg.OperationalError("server closed the connection unexpectedly"), False),
    ],
)
def test_only_a_refusal_about_data_dead_letters_a_lone_message(
    exc: BaseException, data: bool
) -> None:
    """A missing grant or table refuses every message alike: that is the deployment, not the
    message, and dead-lettering the whole fleet's readings one by one would be the wrong cure."""
    assert caused_by_data(exc) is data
