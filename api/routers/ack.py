"""Acknowledging from the message: one-time links, SMS replies, and the acknowledgement PIN.

``POST /api/v1/ack/{token}`` (open: the token and the PIN are the credentials) acknowledges the
link's alert as the person the user name and PIN prove; ``POST /api/v1/sms/inbound`` is the SMS
gateway's inbound webhook (Twilio's shape: form-encoded ``From`` and ``Body``; its
``X-Twilio-Signature`` checked when ``COLDCHAIN_ALERTS__SMS_INBOUND_TOKEN`` is set), answered in
TwiML so the person gets a reply; ``PUT /api/v1/users/{username}/ack-pin`` sets a PIN (the
person themselves, or an administrator). The rules are :mod:`services.ack`; every refusal is a
403 whose ``detail`` says why and whose ``reason`` is the code the audit entry records.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from api.deps import ClientDep, ConnDep, LimiterDep, PrincipalDep, SettingsDep, requires
from api.schemas import AlertDetail, Comment, ErrorOut
from coldchain.errors import AckRefusedError
from services import ack as service
from services.caller import Caller

router = APIRouter(tags=["acknowledgement links"])

Token = Annotated[str, Path(min_length=1, max_length=200)]
Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Pin = Annotated[str, StringConstraints(min_length=1, max_length=64)]

_REFUSED: dict[int | str, dict[str, object]] = {
    403: {"model": ErrorOut, "description": "the link or code was refused (detail says why)"},
    429: {"model": ErrorOut, "description": "too many wrong PINs; see Retry-After"},
}


class AckIn(BaseModel):
    """Who acknowledges (user name and acknowledgement PIN), why, and the alert they were
    shown (optional; a link is refused for any other)."""

    model_config = ConfigDict(extra="forbid")

    username: Username
    pin: Pin
    comment: Comment
    alert_id: int | None = None


class PinIn(BaseModel):
    """A new acknowledgement PIN (6 to 12 digits), or null to remove it."""

    model_config = ConfigDict(extra="forbid")

    pin: Pin | None


@router.post("/ack/{token}", responses=_REFUSED)
def acknowledge_by_link(
    token: Token, body: AckIn, conn: ConnDep, limiter: LimiterDep, client: ClientDep
) -> AlertDetail:
    """Acknowledge the link's alert as the person the user name and PIN prove."""
    row = service.acknowledge_by_link(
        conn,
        token=token,
        comment=body.comment,
        now=datetime.now(UTC),
        client=client,
        limiter=limiter,
        username=body.username,
        pin=body.pin,
        alert_id=body.alert_id,
    )
    return AlertDetail.model_validate(row)


def _twiml(message: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escape(message)}</Message></Response>'
    return Response(content=body, media_type="application/xml")


@router.post(
    "/sms/inbound",
    responses={
        200: {"content": {"application/xml": {}}, "description": "TwiML: the reply to send"},
        403: {"model": ErrorOut, "description": "the gateway's signature is wrong"},
    },
)
async def sms_inbound(
    request: Request, conn: ConnDep, settings: SettingsDep, client: ClientDep
) -> Response:
    """An SMS reply through the gateway: "ACK 123456" acknowledges as the sender's person."""
    raw = (await request.body()).decode("utf-8", "replace")
    form = dict(parse_qsl(raw, keep_blank_values=True))
    token = settings.alerts.sms_inbound_token
    if token is not None:
        url = settings.web.base_url() + request.url.path
        expected = service.twilio_signature(token.get_secret_value(), url, form)
        given = request.headers.get("X-Twilio-Signature", "")
        if not service.signatures_match(expected, given):
            return JSONResponse(
                status_code=403, content={"detail": "X-Twilio-Signature does not match"}
            )
    try:
        row = service.acknowledge_by_sms(
            conn,
            from_phone=form.get("From", ""),
            body=form.get("Body", ""),
            now=datetime.now(UTC),
            client=client,
        )
    except AckRefusedError as exc:
        return _twiml(f"Not acknowledged: {exc}")
    return _twiml(f"Alert {row['id']} acknowledged as {row['acked_by']}.")


@router.put(
    "/users/{username}/ack-pin",
    status_code=204,
    # Every role may set its own PIN; someone else's takes ``admin`` (services.ack says so).
    openapi_extra=requires("read"),
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}},
)
def set_ack_pin(
    username: Annotated[str, Path(min_length=1, max_length=64)],
    body: PinIn,
    principal: PrincipalDep,
    conn: ConnDep,
    client: ClientDep,
) -> Response:
    """Set or remove a person's acknowledgement PIN (yours, or anyone's as an administrator)."""
    service.set_ack_pin(conn, Caller.of(principal, client), username=username, pin=body.pin)
    return Response(status_code=204)
