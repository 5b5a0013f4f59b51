"""SMS through an HTTP gateway in the shape of Twilio's Messages API:
``POST {sms_gateway_url}/2010-04-01/Accounts/{sid}/Messages.json``, form-encoded ``To``,
``From`` and ``Body``, HTTP basic authentication ``sid:token``. Twilio answers 201 with the
message's ``sid``; 400 (an invalid number, code 21211 and kin) is permanent; 429 is retried
after its Retry-After.

A message is at most :data:`MAX_CHARS` characters (two concatenated SMS segments): the severity,
the event, the shipment, the link to the alert and — when slice (b)'s payload carries one —
"Reply ACK 123456 to acknowledge"; the title fills what is left (:func:`sms_text`). A digest is
one message: the count, "N more held back" and the link. The gateway's token is never shown or
logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from alerts.channels.base import USER_AGENT, Outgoing, about_alert, alert_link, headline, post

__all__ = ["MAX_CHARS", "SmsSender", "sms_text"]

#: Two GSM segments are 306 characters of text; the worst case, in UCS-2 (a "°" in the
#: title), is 134. A limit of 320 keeps one alert within three segments at most.
MAX_CHARS = 320


def _shorten(text: str, room: int) -> str:
    if len(text) <= room:
        return text
    return text[: max(room - 1, 0)] + "…"


def sms_text(payload: Mapping[str, Any], *, max_chars: int = MAX_CHARS) -> str:
    """The SMS body: what happened, the link and the reply code, the title shortened to fit."""
    tail: list[str] = []
    if (link := alert_link(payload)) is not None:
        tail.append(link)
    if payload.get("reply_code"):
        tail.append(f"Reply ACK {payload['reply_code']} to acknowledge")
    end = (" " + " ".join(tail)) if tail else ""
    if not about_alert(payload):
        text = headline(payload)
        text = text if text.startswith("coldchain") else f"coldchain: {text}"  # a digest's count
        return _shorten(text, max_chars - len(end)) + end
    alert = payload["alert"]
    ref = alert.get("shipment_reference") or alert.get("shipment_id") or "fleet"
    by = payload.get("acknowledged_by") or payload.get("resolved_by")
    head = f"coldchain {str(alert['severity']).upper()} {payload['event']}"
    head += f" by {by}" if by else ""
    head += f" ({ref}): "
    room = max_chars - len(head) - len(end)
    return _shorten(head + _shorten(str(alert["title"]), room), max_chars - len(end)) + end


class SmsSender:
    """Sends through a Twilio-shaped gateway (the target is the E.164 number)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        url: str,
        account_sid: str,
        auth_token: SecretStr,
        sender: str,
        max_chars: int = MAX_CHARS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        base = url.rstrip("/")
        self._url = f"{base}/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages.json"
        self._sid = account_sid
        self._token = auth_token
        self._from = sender
        self._max_chars = max_chars
        self._clock = clock

    async def send(self, item: Outgoing) -> str:
        token = self._token.get_secret_value()
        form = {
            "To": item.target,
            "From": self._from,
            "Body": sms_text(item.payload, max_chars=self._max_chars),
        }
        return await post(
            self._client,
            self._url,
            secrets=(token,),
            clock=self._clock,
            data=form,
            auth=(self._sid, token),
            headers={"User-Agent": USER_AGENT},
        )
