"""The notification channels: one module per channel, each a real client of its service's
wire format, each rendering an alert event and a digest (many alerts in one message).

==============  ==========================================  =====================================
channel         module                                      target (rules file, outbox)
==============  ==========================================  =====================================
``webhook``     :mod:`alerts.channels.webhook` (signed)     a URL
``email``       :mod:`alerts.channels.email` (SMTP)         an address
``slack``       :mod:`alerts.channels.slack`                an incoming-webhook URL (secret)
``teams``       :mod:`alerts.channels.teams`                an incoming-webhook URL (secret)
``pagerduty``   :mod:`alerts.channels.pagerduty` (v2)       a routing key (secret)
``opsgenie``    :mod:`alerts.channels.opsgenie`             the name of an API key in the settings
``sms``         :mod:`alerts.channels.sms` (Twilio shape)   an E.164 number
==============  ==========================================  =====================================

What they share (the HTTP judgement: retry, Retry-After, permanent 4xx; secrets scrubbed) is
:mod:`alerts.channels.base`; which are configured, :mod:`alerts.channels.registry`. The outbox
and its worker are :mod:`alerts.delivery`.
"""

from alerts.channels.base import Outgoing, Sender
from alerts.channels.registry import (
    CHANNELS,
    configured_channels,
    display_target,
    senders_from_settings,
)

__all__ = [
    "CHANNELS",
    "Outgoing",
    "Sender",
    "configured_channels",
    "display_target",
    "senders_from_settings",
]
