"""Microsoft Teams incoming webhooks (the Workflows "post to a channel when a webhook request is
received" template, and the retired Office 365 connectors alike): ``POST`` of a message whose one
attachment is an Adaptive Card::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "contentUrl": null,
                      "content": {"type": "AdaptiveCard", "version": "1.4", "body": [...],
                                  "actions": [{"type": "Action.OpenUrl", ...}]}}]}

The card holds the headline, the alert's facts (a FactSet) or a digest's list, and "Open alert"
/ "Acknowledge" buttons when the payload carries the links. Teams answers 200 (connectors) or
202 (Workflows). The URL carries its signature (``sig=`` in the query): it is masked wherever
the platform shows or logs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.channels.base import (
    about_alert,
    ack_link,
    alert_link,
    digest_lines,
    headline,
)

__all__ = ["ADAPTIVE_CARD", "teams_message"]

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
_COLOUR = {"critical": "Attention", "major": "Attention", "warning": "Warning", "info": "Default"}


def _body(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not about_alert(payload):
        severities = [str(a.get("severity")) for a in payload.get("alerts") or []]
        colour = "Attention" if {"critical", "major"} & set(severities) else "Warning"
        head = {"type": "TextBlock", "text": headline(payload), "weight": "Bolder", "wrap": True}
        return [
            {**head, "color": colour, "size": "Medium"},
            *({"type": "TextBlock", "text": line, "wrap": True} for line in digest_lines(payload)),
        ]
    alert = payload["alert"]
    facts = [
        ("Shipment", alert.get("shipment_reference") or alert.get("shipment_id") or "fleet"),
        ("Rule", alert["rule_key"]),
        ("Severity", alert["severity"]),
        ("State", alert["state"]),
        ("Device", alert.get("device_id") or "-"),
        ("Value", alert.get("value")),
        ("Triggered", alert.get("triggered_at")),
    ]
    if payload.get("comment"):
        facts.append(("Comment", payload["comment"]))
    return [
        {
            "type": "TextBlock",
            "text": headline(payload),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": _COLOUR.get(str(alert["severity"]), "Default"),
        },
        {"type": "FactSet", "facts": [{"title": t, "value": str(v)} for t, v in facts]},
    ]


def teams_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The webhook message (one Adaptive Card attachment) for an alert event or a digest."""
    actions: list[dict[str, Any]] = []
    if (link := alert_link(payload)) is not None:
        title = "Open alerts" if payload.get("event") == "digest" else "Open alert"
        actions.append({"type": "Action.OpenUrl", "title": title, "url": link})
    if (ack := ack_link(payload)) is not None:
        actions.append({"type": "Action.OpenUrl", "title": "Acknowledge", "url": ack})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": _body(payload),
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}],
    }
