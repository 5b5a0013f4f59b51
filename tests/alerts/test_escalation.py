"""Tests for alerts.escalation: when each on-call tier is due, and who they are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.escalation import Target, escalation_target, targets, tier_delay
from alerts.rules import EscalationPolicy, EscalationTier

OPENED = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
POLICY = EscalationPolicy(
    tiers=[
        EscalationTier(name="tower", webhooks=["https://h.example/x"], emails=["t@example.com"]),
        EscalationTier(name="qa", emails=["qa@example.com"]),  # default: 1 × 15 min
        EscalationTier(name="qp", after_min=40, emails=["qp@example.com"]),
    ]
)


def due(level: int, minutes: float, state: str = "open") -> int | None:
    return escalation_target(
        POLICY,
        state=state,
        level=level,
        opened_at=OPENED,
        now=OPENED + timedelta(minutes=minutes),
        default_minutes=15,
    )


@pytest.mark.parametrize(
    ("level", "minutes", "expected"),
    [
        (0, 0, None),
        (0, 14.9, None),
        (0, 15, 1),
        (1, 30, None),
        (1, 40, 2),
        (0, 41, 2),  # the engine was down: catch up, every skipped tier is told
        (2, 999, None),  # the last tier was told
    ],
)
def test_escalation_target(level: int, minutes: float, expected: int | None) -> None:
    assert due(level, minutes) == expected


def test_acknowledged_or_resolved_alerts_do_not_escalate() -> None:
    assert due(0, 60, "acknowledged") is None
    assert due(0, 60, "resolved") is None


def test_tier_delays_and_targets() -> None:
    assert tier_delay(POLICY, 0, 15) == timedelta(0)
    assert tier_delay(POLICY, 1, 15) == timedelta(minutes=15)
    assert tier_delay(POLICY, 2, 15) == timedelta(minutes=40)
    assert targets(POLICY, range(0, 1)) == [
        Target("webhook", "https://h.example/x", 0),
        Target("email", "t@example.com", 0),
    ]
    assert targets(POLICY, range(1, 3)) == [
        Target("email", "qa@example.com", 1),
        Target("email", "qp@example.com", 2),
    ]
    assert targets(POLICY, range(3, 9)) == []
    assert targets(EscalationPolicy(), range(0, 1)) == []
