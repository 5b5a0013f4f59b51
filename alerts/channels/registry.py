"""The channels the settings configure, and how each channel's target is shown to people.

:func:`senders_from_settings` is the one place a channel name becomes a sender: the delivery
worker, and anything that sends outside the outbox (a test notification), take their senders
from it. :func:`configured_channels` says, without building them, which channels can send, so
the rules engine does not queue notifications nobody could deliver (they would only fail ten
times each): webhooks, Slack, Teams and PagerDuty need nothing but their targets; e-mail needs
an SMTP host, Opsgenie its API keys, SMS the gateway's account, token and sender number.
"""

from __future__ import annotations

import httpx

from alerts.channels.base import IncomingWebhookSender, Sender, mask_secret, mask_url
from alerts.channels.email import EmailSender
from alerts.channels.opsgenie import OpsgenieSender
from alerts.channels.pagerduty import PagerDutySender
from alerts.channels.slack import slack_message
from alerts.channels.sms import SmsSender
from alerts.channels.teams import teams_message
from alerts.channels.webhook import WebhookSender
from coldchain.settings import AlertsSettings

__all__ = ["CHANNELS", "configured_channels", "display_target", "senders_from_settings"]

#: Every channel name (``notifications.channel``, the rules file's keys).
CHANNELS = ("webhook", "email", "slack", "teams", "pagerduty", "opsgenie", "sms")


def configured_channels(settings: AlertsSettings) -> set[str]:
    """The channels :func:`senders_from_settings` builds a sender for."""
    found = {"webhook", "slack", "teams", "pagerduty"}
    if settings.smtp_host is not None:
        found.add("email")
    if settings.opsgenie_api_keys:
        found.add("opsgenie")
    if settings.sms_account_sid and settings.sms_auth_token is not None and settings.sms_from:
        found.add("sms")
    return found


def senders_from_settings(settings: AlertsSettings, client: httpx.AsyncClient) -> dict[str, Sender]:
    """A sender per configured channel, all sharing ``client`` (its timeout is the send timeout)."""
    channels = configured_channels(settings)
    secret = settings.webhook_secret
    found: dict[str, Sender] = {
        "webhook": WebhookSender(
            client, secret=secret.get_secret_value().encode() if secret is not None else None
        ),
        "slack": IncomingWebhookSender(client, slack_message),
        "teams": IncomingWebhookSender(client, teams_message),
        "pagerduty": PagerDutySender(client, url=settings.pagerduty_url),
    }
    if "email" in channels:
        found["email"] = EmailSender(settings)
    if "opsgenie" in channels:
        found["opsgenie"] = OpsgenieSender(
            client, url=settings.opsgenie_url, api_keys=settings.opsgenie_api_keys
        )
    if "sms" in channels:
        assert settings.sms_account_sid and settings.sms_auth_token and settings.sms_from
        found["sms"] = SmsSender(
            client,
            url=settings.sms_gateway_url,
            account_sid=settings.sms_account_sid,
            auth_token=settings.sms_auth_token,
            sender=settings.sms_from,
            max_chars=settings.sms_max_chars,
        )
    return found


def display_target(channel: str, target: str) -> str:
    """A target as logs, the alerts page and the API show it: secrets masked (Slack and Teams
    URLs' paths, PagerDuty routing keys); addresses, numbers and key names as they are."""
    if channel in ("slack", "teams"):
        return mask_url(target)
    if channel == "pagerduty":
        return mask_secret(target)
    return target
