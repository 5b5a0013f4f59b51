"""``coldchain policies list|add|revoke`` against a real TimescaleDB: a QA person signs and
revokes as themselves (``--user``, their password on standard input), nobody else can, and each
step is in the audit trail under their name with their reason."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.fixtures.auth import Person
from tests.fixtures.web import gtin
from tests.launcher.test_masterdata_cli import env  # noqa: F401  # the command's environment
from tests.security.test_cli import run

pytestmark = pytest.mark.integration

PRODUCT = gtin("0950600088001")


def _policies(dsn: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT policy_id, gtin, lane_id, reason, signer_username, revoked_at,"
            " revoked_by_username, revoke_reason FROM release_policies ORDER BY policy_id"
        ).fetchall()


def test_qa_signs_lists_and_revokes_a_policy(
    env: dict[str, str],  # noqa: F811  # the fixture imported above
    db_dsn: str,
    people: dict[str, Person],
) -> None:
    qa = people["qa"]
    code, out = run(env, "products", "add", PRODUCT, "Vaxigrip", "-s", "temp_min_c=2",
                    "-s", "temp_max_c=8")  # fmt: skip
    assert code == 0, out

    add = ("policies", "add", "--user", qa.username, "--gtin", PRODUCT, "--password-stdin")
    code, out = run(env, *add, "--reason", "stability study QS-12", stdin=qa.password + "\n")
    assert code == 0, out
    (policy,) = _policies(db_dsn)
    assert out.startswith("signed:")
    assert f"policy {policy['policy_id']}: GTIN {PRODUCT}, signed by {qa.username}" in out
    assert "(stability study QS-12); active; 0 release(s)" in out
    assert (policy["signer_username"], policy["reason"]) == (qa.username, "stability study QS-12")

    # The same again: the active policy; another reason for the scope: refused.
    code, out = run(env, *add, "--reason", "stability study QS-12", stdin=qa.password + "\n")
    assert code == 0 and out.startswith("already active:"), out
    code, out = run(env, *add, "--reason", "another study", stdin=qa.password + "\n")
    assert code == 1 and "revoke it first" in out, out
    assert len(_policies(db_dsn)) == 1

    code, out = run(env, "policies", "list", "--active")
    assert code == 0 and f"policy {policy['policy_id']}: GTIN {PRODUCT}" in out, out
    code, out = run(env, "policies", "list", "--revoked")
    assert code == 0 and out.strip() == "", out

    revoke = ("policies", "revoke", str(policy["policy_id"]), "--user", qa.username,
              "--reason", "study superseded by QS-13", "--password-stdin")  # fmt: skip
    code, out = run(env, *revoke, stdin="not-the-password\n")
    assert code == 1 and _policies(db_dsn)[0]["revoked_at"] is None, out
    code, out = run(env, *revoke, stdin=qa.password + "\n")
    assert code == 0 and f"revoked by {qa.username}" in out, out
    (revoked,) = _policies(db_dsn)
    assert (revoked["revoked_by_username"], revoked["revoke_reason"]) == (
        qa.username,
        "study superseded by QS-13",
    )
    code, out = run(env, *revoke, stdin=qa.password + "\n")
    assert code == 1 and "already revoked" in out, out
    code, out = run(env, "policies", "list", "--revoked")
    assert f"policy {policy['policy_id']}: GTIN {PRODUCT}" in out and "revoked by" in out
    code, out = run(env, "policies", "list", "--active")
    assert out.strip() == "", out

    with psycopg.connect(db_dsn, row_factory=dict_row) as conn:
        trail = conn.execute(
            "SELECT action, actor, reason FROM audit_log WHERE entity = 'release_policies'"
            " ORDER BY seq"
        ).fetchall()
    assert [(e["action"], e["actor"]) for e in trail] == [
        ("insert", qa.username),
        ("update", qa.username),
    ]
    assert "stability study QS-12" in trail[0]["reason"]
    assert "study superseded by QS-13" in trail[1]["reason"]


def test_only_a_qa_person_with_their_password_signs(
    env: dict[str, str],  # noqa: F811  # the fixture imported above
    db_dsn: str,
    people: dict[str, Person],
) -> None:
    code, out = run(env, "products", "add", PRODUCT, "Vaxigrip", "-s", "temp_min_c=2",
                    "-s", "temp_max_c=8")  # fmt: skip
    assert code == 0, out
    for role in ("viewer", "operator", "admin"):
        person = people[role]
        code, out = run(
            env, "policies", "add", "--user", person.username, "--gtin", PRODUCT,
            "--reason", "mine", "--password-stdin", stdin=person.password + "\n",
        )  # fmt: skip
        assert code == 1 and "policies.sign" in out, (role, out)
    qa = people["qa"]
    code, out = run(
        env, "policies", "add", "--user", qa.username, "--gtin", PRODUCT,
        "--reason", "mine", "--password-stdin", stdin="not-the-password\n",
    )  # fmt: skip
    assert code == 1 and re.search(r"wrong|password", out), out
    code, out = run(
        env, "policies", "add", "--user", qa.username, "--lane", "4242",
        "--reason", "mine", "--password-stdin", stdin=qa.password + "\n",
    )  # fmt: skip
    assert code == 1 and "lane_id" in out and "4242" in out, out
    assert _policies(db_dsn) == []
