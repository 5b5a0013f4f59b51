"""Slack incoming webhooks: ``POST`` of ``{"text", "blocks"}`` to the webhook URL.

``text`` is the one-line headline (what the notification on a phone and the channel list show);
``blocks`` are a section with the alert's facts (or a digest's list) and, when the payload
carries links, an actions block with an "Open alert" and an "Acknowledge" button (the
one-time link). Slack answers 200 ``ok``; 400/403/404/410 (``invalid_payload``,
``invalid_token``, ``no_service``, ``channel_is_archived``) are permanent, 429 comes with a
Retry-After. The URL's path is the secret (anyone holding it can post to the channel): it is
masked wherever the platform shows or logs it.
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

__all__ = ["slack_message"]

#: Slack refuses a section text over 3000 characters.
SECTION_CHARS = 3000


def _mrkdwn(text: str) -> str:
    """Text with Slack's three control characters escaped (a title could hold ``<`` or ``&``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _facts(payload: Mapping[str, Any]) -> str:
    if not about_alert(payload):
        return "\n".join(_mrkdwn(line) for line in digest_lines(payload))
    alert = payload["alert"]
    lines = [
        f"*Rule:* {alert['rule_key']}   *Severity:* {alert['severity']}   *State:* {alert['state']}",
        f"*Device:* {alert.get('device_id') or '-'}   *Value:* {alert.get('value')}",
        f"*Triggered:* {alert.get('triggered_at')}",
    ]
    if payload.get("comment"):
        lines.append(f"*Comment:* {_mrkdwn(str(payload['comment']))}")
    return "\n".join(lines)


def slack_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The incoming-webhook message for an alert event or a digest."""
    title = headline(payload)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_mrkdwn(title)}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _facts(payload)[:SECTION_CHARS]}},
    ]
    buttons: list[dict[str, Any]] = []
    if (link := alert_link(payload)) is not None:
        label = "Open alerts" if payload.get("event") == "digest" else "Open alert"
        buttons.append(
            {"type": "button", "text": {"type": "plain_text", "text": label}, "url": link}
        )
    if (ack := ack_link(payload)) is not None:
        buttons.append(
            {
                "type": "button",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "url": ack,
            }
        )
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return {"text": title, "blocks": blocks}
