"""Password hashing and policy, token secrets, roles (pure); the limiter: test_ratelimit.py."""

from __future__ import annotations

import pytest

from security import passwords, tokens
from security.errors import WeakPasswordError
from security.roles import GRANTS, ROLES, can, default_permission, roles_with


def test_argon2id_hash_verifies_only_the_right_password() -> None:
    h = passwords.hash_password("correct-horse-battery-staple")
    assert h.startswith("$argon2id$")
    assert passwords.verify_password(h, "correct-horse-battery-staple")
    assert not passwords.verify_password(h, "correct-horse-battery-stapl")
    assert not passwords.verify_password("not a hash", "anything")
    assert not passwords.verify_password(h, "x" * (passwords.MAX_LENGTH + 1))
    assert not passwords.needs_rehash(h)
    assert passwords.needs_rehash("$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo")
    assert passwords.hash_password("same") != passwords.hash_password("same")  # salted


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short", "at least 12"),
        ("aaaaaaaaaaaaaaaa", "repeated"),
        ("xx-ana.ruiz-xx-1", "user name"),
        ("y" * 2000, "at most"),
    ],
)
def test_policy_says_which_rule_a_password_breaks(password: str, rule: str) -> None:
    with pytest.raises(WeakPasswordError, match=rule):
        passwords.check_policy(password, min_length=12, username="ana.ruiz")


def test_generated_passwords_pass_the_policy_and_differ() -> None:
    made = {passwords.generate_password() for _ in range(50)}
    assert len(made) == 50
    for p in made:
        passwords.check_policy(p, min_length=12, username="admin")
        assert len(p) == 23


def test_a_generated_password_never_contains_a_short_user_name() -> None:
    # "qa" is inside a random 23-character password about once in fifty draws: the demo's start
    # failed on it. Two thousand draws would meet it about forty times.
    for _ in range(2000):
        passwords.check_policy(
            passwords.generate_password(username="qa"), min_length=12, username="qa"
        )


def test_token_secrets_are_random_prefixed_and_stored_as_sha256() -> None:
    a, b = tokens.new_secret("person"), tokens.new_secret("api_key")
    assert a.startswith("cct_") and b.startswith("cck_") and len(a) > 40
    assert tokens.kind_of(a) == "person" and tokens.kind_of(b) == "api_key"
    assert tokens.kind_of("Bearer x") is None and tokens.kind_of("cct_" + "x" * 300) is None
    assert tokens.secret_hash(a) != a and len(tokens.secret_hash(a)) == 64
    assert tokens.same(tokens.secret_hash(a), tokens.secret_hash(a))


def test_roles_matrix() -> None:
    assert ROLES == ("viewer", "operator", "qa", "admin")
    assert all(can(r, "read") for r in ROLES)
    assert roles_with("alerts.act") == ("operator", "admin")
    assert roles_with("dispositions.sign") == ("qa",)
    assert roles_with("recalls.record") == ("qa",)  # a quality decision, never an admin's
    assert roles_with("admin") == ("admin",)
    assert not can("nobody", "read")
    assert default_permission("GET") == "read" and default_permission("DELETE") == "admin"
    # no role both signs and administers
    assert not any({"dispositions.sign", "admin"} <= grants for grants in GRANTS.values())
