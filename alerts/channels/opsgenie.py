"""Opsgenie Alerts API: ``POST {opsgenie_url}/v2/alerts`` with ``Authorization: GenieKey <key>``.

The rules file names an API key (``opsgenie = ["quality"]``), never holds it: the keys are in
``COLDCHAIN_ALERTS__OPSGENIE_API_KEYS`` (a JSON object, name → key; each key is a team's API
integration, so the name picks who is paged). One Opsgenie alert per alert, under a stable
``alias`` (``coldchain-alert-<id>``, Opsgenie's de-duplication key):

* opened, re-opened, upgraded, escalated (and any other event): create, with ``message`` (the
  headline, at most 130 characters), ``priority`` (critical P1, major P2, warning P3, info P5),
  ``description``, ``details`` (string values, as the API requires), ``entity``, ``source``
  and ``tags``; Opsgenie counts a repeat of an open alias instead of opening another;
* acknowledged: ``POST /v2/alerts/{alias}/acknowledge?identifierType=alias``;
* cleared and resolved: ``POST /v2/alerts/{alias}/close?identifierType=alias``.

A digest is one alert of its own (alias ``coldchain-digest-<first id>-<count>``). Opsgenie
answers 202 (processed asynchronously); 401/403/422 are permanent; 429 is retried after its
Retry-After. A key name the settings do not have is a permanent failure that says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from alerts.channels.base import USER_AGENT, Outgoing, about_alert, alert_link, headline, post
from alerts.channels.pagerduty import dedup_key, event_action
from coldchain import severity as sev
from coldchain.errors import DeliveryError

__all__ = ["OpsgenieSender", "opsgenie_request", "priority"]

PRIORITY = {"critical": "P1", "major": "P2", "warning": "P3", "info": "P5"}
MESSAGE_CHARS = 130
DESCRIPTION_CHARS = 15000


def priority(payload: Mapping[str, Any]) -> str:
    """P1–P5 from the alert's severity (a digest's strongest)."""
    if not about_alert(payload):
        found = [str(a["severity"]) for a in payload.get("alerts") or []]
        return PRIORITY.get(sev.strongest(found) or "warning", "P3")
    return PRIORITY.get(str(payload["alert"]["severity"]), "P3")


def opsgenie_request(payload: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The path (below the API's base URL) and JSON body for an alert event or a digest."""
    alias = dedup_key(payload)
    action = event_action(str(payload.get("event")))
    if action != "trigger":
        verb = "acknowledge" if action == "acknowledge" else "close"
        by = payload.get("acknowledged_by") or payload.get("resolved_by")
        body: dict[str, Any] = {"source": "coldchain", "note": headline(payload)[:25000]}
        if by:
            body["user"] = str(by)[:100]
        return f"/v2/alerts/{quote(alias, safe='')}/{verb}?identifierType=alias", body
    digest = not about_alert(payload)
    alert = {} if digest else payload["alert"]
    details = {
        k: str(v)
        for k, v in (
            {"held_back": payload.get("held_back"), "alerts": len(payload.get("alerts") or [])}
            if digest
            else {k: v for k, v in alert.items() if k != "thresholds"}
        ).items()
        if v is not None
    }
    link = alert_link(payload)
    description = "\n".join(
        [headline(payload), *([f"Open: {link}"] if link else [])]
    )  # the one-time ack link stays out: Opsgenie shows descriptions to the whole team
    body = {
        "message": headline(payload)[:MESSAGE_CHARS],
        "alias": alias,
        "description": description[:DESCRIPTION_CHARS],
        "priority": priority(payload),
        "source": "coldchain",
        "entity": str(alert.get("device_id") or payload.get("shipment_reference") or "coldchain"),
        "tags": ["coldchain", str(alert.get("rule_key") or "digest")],
        "details": details,
    }
    return "/v2/alerts", body


class OpsgenieSender:
    """Sends to the Alerts API (the target is the name of an API key in the settings)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        url: str,
        api_keys: Mapping[str, SecretStr],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._url = url.rstrip("/")
        self._keys = dict(api_keys)
        self._clock = clock

    async def send(self, item: Outgoing) -> str:
        key = self._keys.get(item.target)
        if key is None:
            raise DeliveryError(
                f"no Opsgenie API key named {item.target!r} in COLDCHAIN_ALERTS__OPSGENIE_API_KEYS",
                permanent=True,
            )
        secret = key.get_secret_value()
        path, body = opsgenie_request(item.payload)
        return await post(
            self._client,
            self._url + path,
            secrets=(secret,),
            clock=self._clock,
            json=body,
            headers={"Authorization": f"GenieKey {secret}", "User-Agent": USER_AGENT},
        )
