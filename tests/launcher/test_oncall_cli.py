"""``coldchain oncall add|now|override|list`` against a real TimescaleDB: the same service as
the API, so the console sees the same person on call; a refusal is ``error: …`` and exit 1."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from coldchain.oncall import Rotation, who_is_on_call
from tests.fixtures.auth import Person
from tests.launcher.test_masterdata_cli import env  # noqa: F401  # the command's environment
from tests.security.test_cli import run

pytestmark = pytest.mark.integration


def test_create_ask_and_override_a_rotation_from_the_console(
    env: dict[str, str],  # noqa: F811  # the fixture imported above
    people: dict[str, Person],
) -> None:
    members = [people["operator"].username, people["admin"].username]
    start = date.today() - timedelta(days=3)
    code, out = run(env, "oncall", "add", "qa-oncall", "--team", "QA", "--members",
                    ",".join(members), "--time-zone", "America/New_York", "--handover", "08:00",
                    "--shift-days", "1", "--start", start.isoformat())  # fmt: skip
    assert code == 0, out
    rotation = Rotation(
        "qa-oncall", "QA", "America/New_York", datetime.strptime("08:00", "%H:%M").time(), 1, start
    )
    expected = who_is_on_call(rotation, members, [], datetime.now(UTC))
    code, out = run(env, "oncall", "now", "qa-oncall")
    assert code == 0 and out.split("\t")[:2] == ["qa-oncall", expected], out

    now = datetime.now(UTC)
    code, out = run(env, "oncall", "override", "qa-oncall", people["qa"].username,
                    "--starts", (now - timedelta(minutes=1)).isoformat(),
                    "--ends", (now + timedelta(hours=2)).isoformat(), "--reason", "cover")  # fmt: skip
    assert code == 0, out
    code, out = run(env, "oncall", "now")
    assert out.split("\t")[:2] == ["qa-oncall", people["qa"].username], out
    code, out = run(env, "oncall", "list")
    assert code == 0 and "override: " in out and "(cover)" in out, out

    code, out = run(env, "oncall", "override", "nope", people["qa"].username, "--starts",
                    now.isoformat(), "--ends", now.isoformat(), "--reason", "x")  # fmt: skip
    assert code == 1 and out.startswith("error: ends_at"), out
    code, out = run(env, "oncall", "now", "nope")
    assert code == 1 and "rotation 'nope' not found" in out, out
