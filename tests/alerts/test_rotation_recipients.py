"""Who a rotation tier reaches (alerts.escalation.recipients): the person on call by their own
contacts on each channel of ``via``, the tier's fixed addresses beside them, and a notice for
everything that kept someone from being told; never silently nobody."""

from __future__ import annotations

import pytest

from alerts.escalation import Notice, Person, Target, recipients
from alerts.rules import EscalationPolicy, EscalationTier, rules_from_dict
from coldchain.errors import ConfigError

POLICY = EscalationPolicy(
    tiers=[
        EscalationTier(
            name="tower", rotation="tower", via=["sms", "email"], webhooks=["https://h/x"]
        ),
        EscalationTier(name="qa", after_min=15, rotation="qa", via=["email"]),
    ]
)
ANA = Person("ana", "Ana", "ana@example.com", "+41791234567")
CHANNELS = {"webhook", "email", "sms"}


def test_the_person_on_call_is_told_on_every_channel_of_via() -> None:
    found = recipients(POLICY, range(0, 2), {"tower": ANA, "qa": ANA}, channels=CHANNELS)
    assert found.targets == [
        Target("webhook", "https://h/x", 0),
        Target("sms", "+41791234567", 0),
        Target("email", "ana@example.com", 0),
        Target("email", "ana@example.com", 1),
    ]
    assert found.warnings == []


@pytest.mark.parametrize(
    ("on_call", "channels", "told", "said"),
    [
        # No phone: told by e-mail, and the missing number said.
        ({"tower": Person("ben", "Ben", "ben@example.com", None)}, CHANNELS,
         ["webhook", "email"], ["ben (on call in 'tower') has no mobile number"]),
        # SMS not configured: said, not silently skipped.
        ({"tower": ANA}, {"webhook", "email"}, ["webhook", "email"], ["sms is not configured"]),
        ({"tower": None}, CHANNELS, ["webhook"], ["rotation 'tower' has nobody on call now"]),
        ({}, CHANNELS, ["webhook"], ["rotation 'tower' does not exist"]),
        ({"tower": Person("cleo", "Cleo", "c@example.com", None, active=False)}, CHANNELS,
         ["webhook"], ["cleo (on call in 'tower') is deactivated"]),
    ],
)  # fmt: skip
def test_what_keeps_someone_from_being_told_is_said(
    on_call: dict[str, Person | None], channels: set[str], told: list[str], said: list[str]
) -> None:
    found = recipients(POLICY, range(0, 1), on_call, channels=channels)
    assert [t.channel for t in found.targets] == told
    assert len(found.warnings) == len(said)
    for notice, text in zip(found.warnings, said, strict=True):
        assert notice.text.startswith(text) and notice.tier == 0 and not notice.nobody


def test_a_tier_left_with_nobody_is_a_notice_of_its_own() -> None:
    found = recipients(POLICY, range(1, 2), {"qa": Person("d", "D", None, "+41790000000")},
                       channels=CHANNELS)  # fmt: skip
    assert found.targets == []
    assert found.warnings[-1] == Notice(1, "tier 1 (qa): nobody could be notified", nobody=True)


@pytest.mark.parametrize(
    ("tier", "message"),
    [
        ({"name": "t", "rotation": "tower"}, "needs via"),
        ({"name": "t", "via": ["email"]}, "set rotation"),
        ({"name": "t", "rotation": "tower", "via": ["pager"]}, "via"),
        ({"name": "t", "rotation": "Tower Team", "via": ["email"]}, "rotation"),
    ],
)
def test_a_bad_rotation_tier_is_a_config_error_naming_the_field(
    tier: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        rules_from_dict({"escalation": {"tiers": [tier]}}, source="rules.toml")
