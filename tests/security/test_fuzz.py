"""Schemathesis against the live app (uvicorn), authenticated: no input makes a server error,
and no role gets a 2xx from an operation its role may not use.

Bounded on purpose (a few examples per operation) so it stays well under a minute; it runs the
whole API twice, as an admin and as a viewer. The logout route is left out: it would revoke the
token the run uses.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.fixtures.auth import Person
from tests.fixtures.web import LiveServer

pytestmark = pytest.mark.integration

EXAMPLES = 6
SKIP = {("POST", "/api/v1/auth/logout")}
BUDGET_S = 90.0


def test_fuzz_finds_no_server_error_and_no_authorisation_bypass(
    web_server: LiveServer, people: dict[str, Person], fleet: dict[str, Any]
) -> None:
    schema = schemathesis.openapi.from_url(f"{web_server.url}/api/openapi.json")
    problems: list[str] = []
    statuses: list[int] = []
    started = time.monotonic()
    operations = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 30
    for role in ("admin", "viewer"):
        person = people[role]
        for op in operations:
            method, path = op.method.upper(), op.path
            if (method, op.full_path) in SKIP or (method, path) in SKIP:
                continue
            extra = op.definition.raw

            _fuzz(op, web_server.url, person, extra.get("x-roles"), problems, statuses)()
            if time.monotonic() - started > BUDGET_S:
                problems.append(f"fuzzing took longer than {BUDGET_S:.0f} s; stopped early")
                break
    assert problems == []
    assert len(statuses) > 300  # it did run (both roles, every operation)
    assert 200 in statuses and 403 in statuses and 422 in statuses


def _fuzz(
    op: Any,
    base_url: str,
    person: Person,
    allowed: Any,
    problems: list[str],
    statuses: list[int],
) -> Any:
    """A hypothesis test of one operation as one person, recording what goes wrong."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(case=op.as_strategy())
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers={**person.headers}, timeout=30)
        status = response.status_code
        statuses.append(status)
        where = f"{person.role} {case.method} {case.formatted_path} -> {status}"
        if status >= 500:
            problems.append(f"server error: {where}: {response.text[:200]}")
        if allowed is not None and person.role not in allowed and 200 <= status < 300:
            problems.append(f"authorisation bypass: {where}")

    return run
