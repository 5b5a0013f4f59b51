"""Flood control and backlog grouping: which claimed notifications are sent, held or grouped.

Pure decisions over the notifications the delivery worker has claimed; the worker
(:mod:`alerts.delivery`) reads the counts and writes the outcome. Two cases, one shape of
summary (the *digest*, ``payload["event"] == "digest"``, that every channel renders):

* **Backlog** (``reason = "backlog"``): a logger's backlog upload can open many alerts in one
  round. When one claim holds two or more alert notifications for the same recipient and
  shipment, at least one of them "opened", they go out as *one* digest listing the alerts
  instead of one message each, and each is marked delivered as part of it. A backlog digest is
  never held: it already is the summary.
* **Flood** (``reason = "flood"``): a recipient gets at most ``per_device`` notifications an hour
  about one logger, ``per_shipment`` about one shipment and ``per_recipient`` in all (0: no
  limit). A notification beyond a limit is *held*: kept in the outbox, marked held, and
  collected into one pending digest per (recipient, scope), sent ``flood_digest_after_s`` after
  the first hold, saying how many were held back and linking to them. Nothing is dropped.

Critical alerts are never held (they still count toward the limits): a freezing excursion of a
vaccine must reach the person on call even when a hundred warnings reached them first.

In a digest, ``alerts`` lists up to :data:`DIGEST_LISTED` of the alerts it stands for (the
alert dicts of :func:`alerts.delivery.alert_payload`) and ``held_back`` counts the rest, so
``len(alerts) + held_back`` is always the number of alerts it stands for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from alerts.rules import FloodLimits

__all__ = [
    "DIGEST_LISTED",
    "Limits",
    "backlog_groups",
    "digest_payload",
    "hold_scopes",
    "scopes",
]

#: The most alerts a digest lists one by one; the rest are counted (``held_back``).
DIGEST_LISTED = 20


class Claimed(Protocol):
    """What the decisions read of a claimed notification (alerts.delivery.Outgoing)."""

    @property
    def notification_id(self) -> int: ...
    @property
    def alert_id(self) -> int | None: ...
    @property
    def event(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Limits:
    """Notifications per recipient per hour about one device, one shipment, in all (0: none)."""

    per_device: int
    per_shipment: int
    per_recipient: int

    @classmethod
    def of(
        cls,
        *,
        per_device: int,
        per_shipment: int,
        per_recipient: int,
        rules: FloodLimits | None = None,
    ) -> Limits:
        """The settings' limits, each overridden by the rules file's when it sets one."""

        def pick(configured: int | None, default: int) -> int:
            return default if configured is None else configured

        r = rules or FloodLimits()
        return cls(
            pick(r.per_device_per_hour, per_device),
            pick(r.per_shipment_per_hour, per_shipment),
            pick(r.per_recipient_per_hour, per_recipient),
        )


def scopes(item: Claimed) -> list[str]:
    """The counters a notification adds to for its recipient: ``device:<id>``,
    ``shipment:<id>`` (when it is about an alert with them) and ``recipient``."""
    alert = item.payload.get("alert") or {}
    found = []
    if alert.get("device_id"):
        found.append(f"device:{alert['device_id']}")
    if alert.get("shipment_id") is not None:
        found.append(f"shipment:{alert['shipment_id']}")
    found.append("recipient")
    return found


def _limit(limits: Limits, scope: str) -> int:
    if scope.startswith("device:"):
        return limits.per_device
    if scope.startswith("shipment:"):
        return limits.per_shipment
    return limits.per_recipient


def hold_scopes(
    items: Sequence[Claimed], limits: Limits, sent: Mapping[tuple[str, str, str], int]
) -> list[str | None]:
    """Per item (in the order given): the scope whose limit holds it back, or None to send it.

    ``sent`` counts what each (channel, target, scope) was sent in the past hour; what this
    call lets through is counted as it goes. Digests and critical alerts are never held; only
    alert notifications are limited (a shipment's lifecycle events are not alerts).
    """
    counts: Counter[tuple[str, str, str]] = Counter(sent)
    decisions: list[str | None] = []
    for item in items:
        keys = [(item.channel, item.target, s) for s in scopes(item)]
        held = None
        exempt = (
            item.event == "digest"
            or item.alert_id is None
            or (item.payload.get("alert") or {}).get("severity") == "critical"
        )
        if not exempt:
            held = next(
                (k[2] for k in keys if 0 < _limit(limits, k[2]) <= counts[k]),
                None,
            )
        if held is None:
            counts.update(keys)
        decisions.append(held)
    return decisions


C = TypeVar("C", bound=Claimed)


def _shipment(item: Claimed) -> Any:
    return (item.payload.get("alert") or {}).get("shipment_id")


def backlog_groups(items: Sequence[C]) -> list[list[C]]:
    """Groups of first-attempt alert notifications to one recipient about one shipment, two or
    more, with at least one "opened": each goes out as one backlog digest."""
    by_key: dict[tuple[str, str, Any], list[C]] = {}
    for item in items:
        if item.alert_id is None or item.event == "digest" or item.attempt != 1:
            continue
        if _shipment(item) is None:
            continue
        by_key.setdefault((item.channel, item.target, _shipment(item)), []).append(item)
    return [
        sorted(group, key=lambda i: i.notification_id)
        for group in by_key.values()
        if len(group) >= 2 and any(i.event == "opened" for i in group)
    ]


def digest_payload(
    *,
    tier: int,
    reason: str,
    shipment_reference: str | None,
    alerts: Sequence[Mapping[str, Any]],
    base_url: str,
) -> dict[str, Any]:
    """The digest for some notifications' alert dicts (oldest first): each alert listed once,
    in its latest state, up to :data:`DIGEST_LISTED`, the rest counted in ``held_back``."""
    latest: dict[Any, Mapping[str, Any]] = {}
    for alert in alerts:
        latest.pop(alert["id"], None)  # keep first-seen order, latest content
        latest[alert["id"]] = alert
    distinct = sorted(latest.values(), key=lambda a: a["id"])
    link = (
        f"{base_url}/shipments/{shipment_reference}" if shipment_reference else f"{base_url}/alerts"
    )
    return {
        "event": "digest",
        "tier": tier,
        "reason": reason,
        "shipment_reference": shipment_reference,
        "alerts": [dict(a) for a in distinct[:DIGEST_LISTED]],
        "held_back": max(len(distinct) - DIGEST_LISTED, 0),
        "links": {"alerts": link},
    }
