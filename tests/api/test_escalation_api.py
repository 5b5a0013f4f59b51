"""GET/PUT /api/v1/escalation: the policy in force and its versions (any reader, secrets
masked), a new version (admins; validated like the rules file, 422 naming the field), audited
without its secrets, and taken by the rules engine."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool

from alerts.rounds import RulesEngine
from api.app import create_app
from coldchain.settings import Settings
from tests.alerts.test_delivery import pool, rows  # noqa: F401  # pool: a fixture, registered here
from tests.fixtures.auth import Person
from tests.fixtures.channel_servers import ROUTING_KEY

pytestmark = pytest.mark.integration

URL = "/api/v1/escalation"
WHY = "INC-2207: page QA through PagerDuty for critical alerts"
SLACK = "https://hooks.slack.com/services/T0/B0/SECRETPART"
POLICY = {
    "tiers": [
        {"name": "Control tower", "slack": [SLACK], "emails": ["tower@example.com"]},
        {
            "name": "QA on call",
            "after_min": 15,
            "severities": ["critical"],
            "pagerduty": [ROUTING_KEY],
            "sms": ["+447700900123"],
        },
    ]
}


@pytest.fixture
def client(settings: Settings, people: dict[str, Person]) -> Iterator[TestClient]:
    """The app, acting as the administrator."""
    with TestClient(create_app(settings)) as c:
        c.headers.update(people["admin"].headers)
        yield c


async def test_the_policy_is_versioned_masked_audited_and_taken_by_the_engine(
    client: TestClient,
    people: dict[str, Person],
    db_dsn: str,
    settings: Settings,
    pool: AsyncConnectionPool,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    viewer = people["viewer"].headers
    before = client.get(URL, headers=viewer).json()
    assert before == {
        "source": "settings",
        "version": None,
        "policy": {"tiers": []},
        "versions": [],
    }

    r = client.put(URL, params={"reason": WHY}, json=POLICY, headers=people["operator"].headers)
    assert r.status_code == 403 and "'admin' permission" in r.json()["detail"]
    bad = {"tiers": [{"name": "QA", "pagerduty": ["not-a-key"]}]}
    r = client.put(URL, params={"reason": WHY}, json=bad)
    assert r.status_code == 422
    assert r.json()["detail"].startswith("invalid escalation policy request body")
    assert "tiers[0].pagerduty[0]" in r.json()["detail"]
    r = client.put(URL, params={"reason": WHY}, json={"tiers": []})
    assert r.status_code == 422 and "at least one tier" in r.json()["detail"]
    assert rows(db_dsn, "SELECT count(*) FROM escalation_policies") == [(0,)]

    r = client.put(URL, params={"reason": WHY}, json=POLICY)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["source"], body["version"]) == ("stored", 1)
    assert ROUTING_KEY not in r.text and "SECRETPART" not in r.text
    assert body["policy"]["tiers"][0]["slack"] == ["https://hooks.slack.com/…"]
    assert body["policy"]["tiers"][1]["pagerduty"] == [f"…{ROUTING_KEY[-4:]}"]
    assert body["policy"]["tiers"][1]["severities"] == ["critical"]
    assert [(v["version"], v["created_by"], v["reason"]) for v in body["versions"]] == [
        (1, "adam.admin", WHY)
    ]
    assert client.get(URL, headers=viewer).json() == body

    # What a reader sees cannot be stored back: the mask would replace the secret.
    r = client.put(URL, params={"reason": "unchanged"}, json=body["policy"])
    assert r.status_code == 422 and "is masked" in r.json()["detail"]

    ((audited,),) = rows(
        db_dsn, "SELECT after FROM audit_log WHERE entity = 'escalation_policies' ORDER BY seq"
    )
    assert audited["definition_with_secrets"].startswith("redacted:")
    assert ROUTING_KEY not in json.dumps(audited) and "SECRETPART" not in json.dumps(audited)

    engine = RulesEngine(pool, settings)
    assert engine.policy.tiers == []  # the settings configure no one
    with caplog.at_level(logging.WARNING, logger="alerts.rounds"):
        await engine.reload_policy()
    # Neither SMTP nor the SMS gateway is configured here: said, since nothing is queued for them.
    assert "email recipients are configured but the email channel is not" in caplog.text
    assert "sms recipients are configured but the sms channel is not" in caplog.text
    assert [t.name for t in engine.policy.tiers] == ["Control tower", "QA on call"]
    assert engine.policy.tiers[1].pagerduty == [ROUTING_KEY]
    assert engine.policy.tiers[0].slack == [SLACK]

    # A version the engine cannot read (stored by hand, or by an older model) is refused
    # without quoting its secrets, and the previous policy stays in force.
    bad_key = "B" * 31
    broken = json.dumps({"tiers": [{"name": "x", "pagerduty": [bad_key]}]})
    rows(
        db_dsn,
        "INSERT INTO escalation_policies (version, definition, definition_with_secrets,"
        " created_by) VALUES (2, '{}', %s, 'by hand') RETURNING version",
        broken,
    )
    caplog.clear()
    await engine.reload_policy()
    assert engine.policy.tiers[1].pagerduty == [ROUTING_KEY]
    assert "escalation policy v2: tiers[0].pagerduty[0]" in caplog.text
    assert "keeping the previous policy" in caplog.text and bad_key not in caplog.text
