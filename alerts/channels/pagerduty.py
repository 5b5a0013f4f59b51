"""PagerDuty Events API v2: ``POST {pagerduty_url}`` (https://events.pagerduty.com/v2/enqueue).

One incident per alert: every event of an alert carries the same ``dedup_key``
(``coldchain-alert-<id>``, :func:`dedup_key`), so PagerDuty folds them into one incident that
follows the alert:

* opened, re-opened, upgraded, escalated (and any other event): ``trigger``, with
  ``payload.summary`` (the headline, at most 1024 characters), ``payload.severity`` (ours
  mapped: critical → critical, major → error, warning → warning, info → info),
  ``payload.source`` (the logger, else the shipment), ``payload.custom_details`` (the alert)
  and ``links`` (the alert's page, the one-time acknowledgement); reminders are never
  queued for PagerDuty (:data:`alerts.reminders.NOT_REMINDED`): it pages again by itself;
* acknowledged: ``acknowledge``;
* cleared and resolved: ``resolve`` — the incident closes when the alert clears.

A digest (many alerts in one message) triggers one incident of its own
(``coldchain-digest-<first alert id>-<count>``) that somebody resolves in PagerDuty: it stands for
a batch, not one alert. The target is the integration's routing key, a secret: only its last
four characters are ever shown or logged. PagerDuty answers 202; 400 (an invalid event or
routing key) is permanent; 429 is retried after its Retry-After, or the backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import httpx

from alerts.channels.base import (
    USER_AGENT,
    Outgoing,
    about_alert,
    ack_link,
    alert_link,
    headline,
    post,
)
from coldchain import severity as sev

__all__ = ["PagerDutySender", "dedup_key", "event_action", "pagerduty_event"]

Action = Literal["trigger", "acknowledge", "resolve"]

SEVERITY = {"critical": "critical", "major": "error", "warning": "warning", "info": "info"}
SUMMARY_CHARS = 1024


def event_action(event: str) -> Action:
    """The Events API action for one of our alert events."""
    if event == "acknowledged":
        return "acknowledge"
    if event in ("cleared", "resolved"):
        return "resolve"
    return "trigger"


def dedup_key(payload: Mapping[str, Any]) -> str:
    """The same for every event of one alert (and for one digest)."""
    if payload.get("event") == "digest":
        alerts = payload.get("alerts") or []
        first = min((int(a["id"]) for a in alerts), default=0)
        return f"coldchain-digest-{first}-{len(alerts)}"
    if not about_alert(payload):
        return f"coldchain-{payload.get('event')}"
    return f"coldchain-alert-{payload['alert']['id']}"


def _severity(payload: Mapping[str, Any]) -> str:
    if not about_alert(payload):
        found = [str(a["severity"]) for a in payload.get("alerts") or []]
        return SEVERITY.get(sev.strongest(found) or "warning", "warning")
    return SEVERITY.get(str(payload["alert"]["severity"]), "error")


def pagerduty_event(payload: Mapping[str, Any], *, routing_key: str) -> dict[str, Any]:
    """The Events API v2 document for an alert event or a digest."""
    action = event_action(str(payload.get("event")))
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(payload),
    }
    if action != "trigger":
        return event  # acknowledge and resolve take only the key
    digest = not about_alert(payload)
    alert = {} if digest else payload["alert"]
    source = alert.get("device_id") or alert.get("shipment_reference") or "coldchain"
    details = (
        {"alerts": payload.get("alerts"), "held_back": payload.get("held_back")}
        if digest
        else {"event": payload["event"], "tier": payload.get("tier"), **alert}
    )
    event["payload"] = {
        "summary": headline(payload)[:SUMMARY_CHARS],
        "severity": _severity(payload),
        "source": str(source),
        "component": str(alert.get("rule_key") or "digest"),
        "group": str(alert.get("shipment_reference") or payload.get("shipment_reference") or ""),
        "class": "cold chain",
        "custom_details": details,
    }
    links = []
    if (link := alert_link(payload)) is not None:
        links.append({"href": link, "text": "Open in coldchain"})
    if (ack := ack_link(payload)) is not None:
        links.append({"href": ack, "text": "Acknowledge (one-time link)"})
    if links:
        event["links"] = links
    event["client"] = "coldchain"
    return event


class PagerDutySender:
    """Sends Events API v2 events (the target is the routing key)."""

    def __init__(
        self, client: httpx.AsyncClient, *, url: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._url = url
        self._clock = clock

    async def send(self, item: Outgoing) -> str:
        return await post(
            self._client,
            self._url,
            secrets=(item.target,),
            clock=self._clock,
            json=pagerduty_event(item.payload, routing_key=item.target),
            headers={"User-Agent": USER_AGENT},
        )
