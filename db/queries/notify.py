"""Test notifications (services/notify.py): whom they can reach, and the record of each one.

A test is recorded like every delivery attempt, in ``deliveries`` (event ``test``, no alert, no
outbox row), and in the audit trail (who asked: :func:`db.queries.security.append_audit`).
"""

from __future__ import annotations

from typing import Any

from db.queries.rules import RECORD_DELIVERY
from db.types import Conn, Row

# Active people and how to reach them (app_users.email / phone: db/migrations/0023).
PEOPLE_CONTACTS = """
SELECT username, full_name, role, email, phone FROM app_users
WHERE active AND (%(username)s::text IS NULL OR username = %(username)s)
ORDER BY username
"""


def people_contacts(*, conn: Conn, username: str | None = None) -> list[Row]:
    """Active people with their e-mail and phone (one person when ``username`` is given)."""
    return conn.execute(PEOPLE_CONTACTS, {"username": username}).fetchall()


def record_test_delivery(
    *,
    conn: Conn,
    channel: str,
    target: str,
    ok: bool,
    response: str,
    duration_ms: float,
) -> None:
    """One ``deliveries`` row for a test notification (event ``test``, attempt 1)."""
    params: tuple[Any, ...] = (None, channel, target, "test", 1, ok, response, None, duration_ms)
    conn.execute(RECORD_DELIVERY, params)
