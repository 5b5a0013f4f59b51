"""The administration screens' pure parts: who may open which screen, a key's state, the
expiry picked, the rules' diff and the definition box's JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.pages import admin, admin_keys, admin_rules, admin_system
from security.accounts import Principal
from security.roles import ROLES, Role
from services import notify
from services.health import PipelineFigures

NOW = datetime(2026, 12, 5, 14, 0, tzinfo=UTC)


def _person(role: Role) -> Principal:
    return Principal(kind="user", id=1, name=f"p.{role}", display_name=role, role=role)


@pytest.mark.parametrize(
    ("role", "screens"),
    [
        ("viewer", []),
        ("operator", []),
        ("qa", ["Stored rules", "Products"]),
        ("admin", ["People", "API keys", "Stored rules", "System", "Products", "Questions asked"]),
    ],
)
def test_who_opens_which_screen(role: Role, screens: list[str]) -> None:
    person = _person(role)
    assert [s.title for s in admin.screens_for(person)] == screens
    assert bool(admin.nav_links(person)) == bool(screens)
    for screen in admin.SCREENS:
        refused = admin.guard(person, screen.path)
        assert (refused is None) == (screen.title in screens)


def test_not_allowed_says_who_may() -> None:
    page = admin.guard(_person("operator"), admin.PEOPLE_PATH)
    assert page is not None
    assert "Your role (operator) cannot open People. It is for: admin." in str(page)
    assert set(ROLES) == {"viewer", "operator", "qa", "admin"}  # the table above covers them all


def test_a_keys_state() -> None:
    key = {"revoked_at": None, "expires_at": None}
    assert admin_keys.key_state(key, NOW) == "live"
    assert admin_keys.key_state({**key, "expires_at": NOW}, NOW) == "expired"
    assert admin_keys.key_state({**key, "revoked_at": NOW, "expires_at": NOW}, NOW) == "revoked"


def test_the_expiry_is_the_end_of_the_day_picked() -> None:
    assert admin_keys.expiry(None) is None and admin_keys.expiry("") is None
    assert admin_keys.expiry("2027-01-31") == datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC)


def test_the_diff_shows_what_a_version_changed() -> None:
    before = {"temperature": {"alarm_delay_min": 30}}
    after = {"temperature": {"alarm_delay_min": 20}, "mkt": {"limit_c": 8.0}}
    diff = admin_rules.rule_diff(before, after)
    assert '-    "alarm_delay_min": 30' in diff
    assert '+    "alarm_delay_min": 20' in diff
    assert '+    "limit_c": 8.0' in diff
    assert admin_rules.rule_diff(after, after) == []
    assert all(line.startswith(("+", "@")) for line in admin_rules.rule_diff(None, before))


def test_the_definition_box_must_hold_json() -> None:
    assert admin_rules.parse_definition_text('{"mkt": {"limit_c": 8}}') == {"mkt": {"limit_c": 8}}
    with pytest.raises(ValueError, match=r"not JSON \(line 1, column 9"):
        admin_rules.parse_definition_text('{"mkt": }')


def test_the_system_figures_and_the_test_targets() -> None:
    figures = PipelineFigures(
        engine_lag_s=125.0,
        outbox_oldest_s=30.0,
        notifications_retrying=2,
        deliveries_failed_1h=1,
        engines=0,
    )
    text = str(admin_system.figure_cards(figures))
    assert "Engine lag" in text and "2 min" in text
    assert "data-figure='failed'" in text
    assert "does not answer" in str(admin_system.figure_cards(None))

    targets = [notify.Target("webhook", "https://hooks.example/T0/secret", "settings")]
    people = [
        {
            "username": "ann",
            "full_name": "Ann",
            "role": "qa",
            "email": "a@x.example",
            "phone": None,
        },
        {"username": "bob", "full_name": "Bob", "role": "viewer", "email": None, "phone": None},
    ]
    rows = admin_system.test_rows(targets, people)
    assert [r.to_plotly_json()["props"]["data-key"] for r in rows] == ["target:0", "person:ann"]
    assert "secret" not in str(rows)  # the target is shown redacted
    shown = admin_system.result_lines(
        [notify.TestResult("sms", "+41791234567", False, "no sms sender configured")]
    )
    assert "failed" in str(shown) and "no sms sender configured" in str(shown)
