"""Acknowledging an alert from the message: one-time links, SMS reply codes and the PIN.

Every notification sent while its alert is open carries a one-time link (``{base}/ack/{token}``,
:mod:`alerts.outbox`), and an SMS a reply code too. Using one acknowledges the alert through
:func:`services.alerts.acknowledge`, as the person who confirmed it, in one transaction with
marking the link used:

* **who**: the dashboard's logged-in person, or a user name with that person's acknowledgement
  PIN (argon2-hashed like passwords, rate-limited like logins); an SMS reply, the person whose
  phone number it came from. A link sent to a known person (their e-mail or phone) is accepted
  from that person only; a link sent to a shared address (a webhook, a team mailbox) from anyone
  allowed to act on alerts.
* **refused**, each with an audit entry (``ack_refused``, entity ``ack_links``, the reason
  code and the words shown to the person): a link used already ("already used by X at …"),
  expired, unknown or tampered with, used by someone else or from another phone, shown for
  another alert, a wrong PIN, an alert no longer open.
* **audited**: the acknowledgement itself as any other (the alert's row change, the caller as
  actor, the comment as why), its source saying which channel's link was used
  ("… via slack link 42").

The acknowledging person's actor is the user name they proved with the PIN or the SMS phone;
without a session the database records it as claimed ("actor not verified" in the source, see
:mod:`security.audit`), the service having checked it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from coldchain.ack import looks_like_token, reply_code_of, token_hash
from coldchain.errors import AckRefusedError, NotFoundError, WeakPasswordError
from db.queries import ack as ack_q
from db.queries import security as security_q
from db.types import Conn, Row
from security import passwords
from security.accounts import normalise_username
from security.ratelimit import LoginLimiter
from security.roles import Role
from services import alerts as alert_service
from services.caller import Caller, acting

__all__ = [
    "PIN_PATTERN",
    "acknowledge_by_link",
    "acknowledge_by_sms",
    "link_for_page",
    "set_ack_pin",
    "signatures_match",
    "twilio_signature",
]

#: An acknowledgement PIN: 6 to 12 digits (typed on a phone).
PIN_PATTERN: Final = re.compile(r"^[0-9]{6,12}$")
SMS_COMMENT: Final = "Acknowledged by SMS reply"


def default_comment(channel: str) -> str:
    """The comment the confirmation page offers (the person may change it)."""
    return f"Acknowledged from {channel}"


def _refuse(
    conn: Conn,
    reason: str,
    message: str,
    *,
    actor: str | None,
    link: Row | None,
    client: str | None,
) -> AckRefusedError:
    """Audit a refusal (committed whatever follows) and return the error to raise."""
    security_q.append_audit(
        conn=conn,
        actor=(actor or "(anonymous)")[:64],
        actor_role=None,
        action="ack_refused",
        entity="ack_links",
        entity_id=None if link is None else str(link["id"]),
        after={
            "reason": reason,
            "alert_id": None if link is None else link["alert_id"],
            "channel": None if link is None else link["channel"],
        },
        reason=message,
        source=client,
    )
    return AckRefusedError(reason, message)


def _link_problem(link: Row | None, now: datetime) -> tuple[str, str] | None:
    """Why a link cannot be used at all (whoever asks), or None."""
    if link is None:
        return "unknown", "this acknowledgement link is not valid (cut short or altered?)"
    if link["used_at"] is not None:
        return "used", (
            f"this link was already used by {link['used_by']} at "
            f"{link['used_at']:%Y-%m-%d %H:%M} UTC"
        )
    if now >= link["expires_at"]:
        return "expired", (
            f"this link expired at {link['expires_at']:%Y-%m-%d %H:%M} UTC: open the alert "
            "on the dashboard to acknowledge it"
        )
    if link["alert_state"] != "open":
        by = f" by {link['acked_by']}" if link["acked_by"] else ""
        return "not_open", f"alert {link['alert_id']} is {link['alert_state']} already{by}"
    return None


def _find(conn: Conn, token: str) -> Row | None:
    if not looks_like_token(token):
        return None
    return ack_q.link_by_hash(conn=conn, token_hash=token_hash(token))


def link_for_page(conn: Conn, *, token: str, now: datetime, client: str | None) -> Row:
    """The link's alert as the confirmation page shows it (severity, shipment, title, since
    when, the channel, the person it was sent to); AckRefusedError, audited, when it cannot be
    used."""
    with conn.transaction():
        link = _find(conn, token)
    problem = _link_problem(link, now)
    if problem is not None:
        raise _refuse(conn, *problem, actor=None, link=link, client=client)
    assert link is not None
    return {k: link[k] for k in link if k not in ("reply_code",)}


def _person_by_pin(
    conn: Conn, *, username: str, pin: str, limiter: LoginLimiter, client: str | None
) -> Row | None:
    """The active person with this PIN, or None; counted by the login limiter (RateLimitedError
    when over it) and as costly for an unknown name."""
    name = normalise_username(username)
    attempt = limiter.begin(user=f"ack-pin:{name}", client=client)
    person = ack_q.person_for_ack(conn=conn, username=name) if len(name) <= 64 else None
    stored = person["ack_pin_hash"] if person is not None else None
    ok = passwords.verify_password(stored or passwords.dummy_hash(), pin)
    if not ok or person is None or not person["active"] or stored is None:
        return None
    limiter.succeeded(attempt)
    return person


def acknowledge_by_link(
    conn: Conn,
    *,
    token: str,
    comment: str | None,
    now: datetime,
    client: str | None,
    limiter: LoginLimiter,
    caller: Caller | None = None,
    username: str | None = None,
    pin: str | None = None,
    alert_id: int | None = None,
) -> Row:
    """Acknowledge the link's alert as ``caller`` (a dashboard session) or as the person
    ``username`` + ``pin`` prove; the alert with its timeline. ``alert_id``: the alert the
    person was shown (a link is refused for any other). AckRefusedError (audited) when refused;
    InvalidAlertActionError without a comment (the link stays unused)."""
    claimed = caller.actor if caller is not None else (username or None)
    refusal: tuple[str, str] | None = None
    with conn.transaction():
        link = _find(conn, token)
        refusal = _link_problem(link, now)
        if refusal is None and link is not None and alert_id not in (None, link["alert_id"]):
            refusal = (
                "other_alert",
                f"this link acknowledges alert {link['alert_id']}, not alert {alert_id}",
            )
        acting_as: Caller | None = None
        if refusal is None and link is not None:
            acting_as, refusal = _who(conn, link, caller, username, pin, limiter, client)
        if refusal is None and link is not None and acting_as is not None:
            ack_q.use_link(conn=conn, link_id=link["id"], by=acting_as.actor, at=now)
            return alert_service.acknowledge(
                conn, acting_as, alert_id=link["alert_id"], comment=comment
            )
    assert refusal is not None
    raise _refuse(conn, *refusal, actor=claimed, link=link, client=client)


def _who(
    conn: Conn,
    link: Row,
    caller: Caller | None,
    username: str | None,
    pin: str | None,
    limiter: LoginLimiter,
    client: str | None,
) -> tuple[Caller | None, tuple[str, str] | None]:
    """The caller the acknowledgement is made as, or why not."""
    via = f"via {link['channel']} link {link['id']}"
    if caller is not None:
        who: Caller = dataclasses.replace(caller, source=f"{caller.source or '?'} {via}")
    else:
        if not username or not pin:
            return None, ("no_pin", "give your user name and acknowledgement PIN, or log in")
        person = _person_by_pin(conn, username=username, pin=pin, limiter=limiter, client=client)
        if person is None:
            return None, (
                "wrong_pin",
                "wrong user name or PIN, no PIN set, or the account is inactive",
            )
        who = _person_caller(person, f"{client or '?'} {via} (PIN)")
    if link["username"] is not None and who.actor != link["username"]:
        return None, ("other_person", f"this link was sent to {link['username']}")
    return who, None


def _person_caller(person: Mapping[str, Any], source: str) -> Caller:
    role: Role = person["role"]
    return Caller(person["username"], role, source, person["full_name"] or person["username"])


def acknowledge_by_sms(
    conn: Conn, *, from_phone: str, body: str, now: datetime, client: str | None
) -> Row:
    """Acknowledge from an SMS reply "ACK 123456", as the person whose phone it came from (it
    must be the phone the code was sent to); the alert with its timeline. AckRefusedError
    (audited) otherwise."""
    phone = (from_phone or "").strip()
    refusal: tuple[str, str] | None = None
    link: Row | None = None
    with conn.transaction():
        code = reply_code_of(body)
        link = None if code is None else ack_q.link_by_reply_code(conn=conn, code=code)
        if code is None:
            refusal = ("unknown", "reply ACK followed by the six-digit code of the message")
        elif link is None:
            refusal = ("unknown", f"code {code} is not a live acknowledgement code")
        elif link["target"] != phone:
            refusal = ("other_phone", f"code {code} was not sent to this phone")
        else:
            refusal = _link_problem(link, now)
        person = ack_q.person_by_phone(conn=conn, phone=phone) if refusal is None else None
        if refusal is None and (person is None or not person["active"]):
            refusal = ("no_person", "this phone number is not an active person's")
        if refusal is None and link is not None and person is not None:
            if link["username"] is not None and link["username"] != person["username"]:
                refusal = ("other_person", f"this code was sent to {link['username']}")
            else:
                who = _person_caller(person, f"{client or '?'} via sms reply {link['id']}")
                ack_q.use_link(conn=conn, link_id=link["id"], by=who.actor, at=now)
                return alert_service.acknowledge(
                    conn, who, alert_id=link["alert_id"], comment=SMS_COMMENT
                )
    assert refusal is not None
    raise _refuse(conn, *refusal, actor=phone or None, link=link, client=client)


def set_ack_pin(conn: Conn, caller: Caller, *, username: str, pin: str | None) -> None:
    """Set (or with None remove) a person's acknowledgement PIN: the person themselves, or an
    administrator. WeakPasswordError for a PIN that is not 6 to 12 digits; NotFoundError for no such
    person; PermissionDeniedError for someone else's PIN without ``admin``."""
    name = normalise_username(username)
    if name != caller.actor:
        caller.require("admin")
    if pin is not None and not PIN_PATTERN.match(pin):
        raise WeakPasswordError("pin: 6 to 12 digits")
    pin_hash = None if pin is None else passwords.hash_password(pin)
    with acting(conn, caller, "acknowledgement PIN set" if pin else "acknowledgement PIN removed"):
        if not ack_q.set_ack_pin(conn=conn, username=name, pin_hash=pin_hash):
            raise NotFoundError(f"no user {name!r}")


def twilio_signature(token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's ``X-Twilio-Signature`` of a form-encoded webhook: base64 of HMAC-SHA1 over the
    full URL followed by each parameter's name and value, sorted by name."""
    material = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    mac = hmac.new(token.encode(), material.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def signatures_match(expected: str, given: str) -> bool:
    """Constant-time comparison of two signatures."""
    return hmac.compare_digest(expected.encode(), given.encode())
