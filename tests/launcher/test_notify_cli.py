"""``coldchain notify test`` against a real TimescaleDB and a real webhook receiver: the result
printed, the exit status saying whether it was delivered, the attempt recorded as the console's."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tests.fixtures.auth import Person
from tests.fixtures.webhooks import SECRET, WebhookReceiver
from tests.launcher.test_masterdata_cli import env  # noqa: F401  # the command's environment
from tests.security.test_cli import run

pytestmark = pytest.mark.integration


async def test_notify_test_to_a_webhook_and_to_a_person(
    env: dict[str, str],  # noqa: F811  # the fixture imported above
    db_dsn: str,
    people: dict[str, Person],
) -> None:
    env = {**env, "COLDCHAIN_ALERTS__WEBHOOK_SECRET": SECRET.decode()}
    async with WebhookReceiver() as hook:
        code, out = await asyncio.to_thread(
            run, env, "notify", "test", "--channel", "webhook", "--to", hook.url
        )
    assert code == 0, out
    host = hook.url.split("/hooks")[0]
    assert out.strip() == f"webhook {host}/…: delivered: HTTP 200 ok"
    [(headers, payload, _signed)] = hook.received
    assert payload["event"] == "test" and headers["x-coldchain-event"] == "test"

    # A person with a phone only, and no SMS channel here: printed as failed, exit status 1.
    qa = people["qa"]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE app_users SET phone = '+41791234567' WHERE username = %s", (qa.username,)
        )
    # The command runs its own event loop: off this test's loop, as from a shell.
    code, out = await asyncio.to_thread(run, env, "notify", "test", "--person", qa.username)
    assert code == 1
    assert out.strip() == "sms +41791234567: FAILED: no sms sender configured"

    code, out = await asyncio.to_thread(
        run, env, "notify", "test", "--channel", "webhook", "--to", "not-a-url"
    )
    assert code == 1 and "error: to: a webhook target must be an http:// or https:// URL" in out

    with psycopg.connect(db_dsn) as conn:
        audited = conn.execute(
            "SELECT actor, actor_role, after->>'channel', (after->>'ok')::bool FROM audit_log"
            " WHERE action = 'notification_test' ORDER BY seq"
        ).fetchall()
    assert [(a[0].startswith("cli:"), a[1], a[2], a[3]) for a in audited] == [
        (True, "admin", "webhook", True),
        (True, "admin", "sms", False),
    ]
