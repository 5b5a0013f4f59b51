"""The acknowledgement page ("/ack/<token>"): where a one-time link from a notification leads.

Server-rendered HTML with a plain form (no JavaScript, it opens on any phone), on the
dashboard's Flask server like the login form. ``GET`` shows the alert (severity, shipment,
title, since when, the channel and the person the link was sent to) and asks the person to
confirm: as themselves when they have a dashboard session, else with their user name and
acknowledgement PIN; the comment is prefilled "Acknowledged from <channel>". Only the ``POST``
acknowledges: a mail scanner that opens every link acknowledges nothing. Both go through
:mod:`services.ack`, as the API does (the rules, the refusals and their audit entries are
there); a refused link shows why in words, with a 403.

The page is open without a session (the login gate lets ``/ack/`` through: the token and the
PIN are the proof), and a POST from another origin is refused by the gate like every POST. The
token is a credential while it lives: the web server's access log shows ``/ack/<token>``
instead (:class:`RedactAckTokens`), the page is never cached and sends no referrer.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import flask
from markupsafe import Markup, escape
from psycopg_pool import ConnectionPool

from coldchain.errors import AlertConflictError, InvalidAlertActionError, SecurityError
from db.types import Conn, Row
from security.ratelimit import LoginLimiter
from services import ack as service
from services.caller import Caller

#: The page's path prefix (the login gate lets it through without a session).
ACK_PREFIX = "/ack/"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Acknowledge alert · coldchain</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem}}
label{{display:block;margin-top:.8rem}}input,textarea{{width:100%;font-size:1rem}}
.sev{{font-weight:bold;text-transform:uppercase}}.refused{{color:#a00}}</style></head>
<body><h1>{heading}</h1>{body}</body></html>"""


class RedactAckTokens(logging.Filter):
    """Shows ``/ack/<token>`` for the path of an acknowledgement link in access-log records
    (uvicorn's: ``(client, method, path, http version, status)``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        path = args[2] if isinstance(args, tuple) and len(args) >= 3 else None
        if isinstance(args, tuple) and isinstance(path, str) and path.startswith(ACK_PREFIX):
            record.args = (*args[:2], ACK_PREFIX + "<token>", *args[3:])
        return True


def redact_access_log(logger: logging.Logger) -> None:
    """Add :class:`RedactAckTokens` to ``logger`` (once)."""
    if not any(isinstance(f, RedactAckTokens) for f in logger.filters):
        logger.addFilter(RedactAckTokens())


def _page(heading: str, body: Markup | str, status: int = 200) -> flask.Response:
    html = _PAGE.format(heading=escape(heading), body=body)
    response = flask.Response(html, status=status, mimetype="text/html")
    # The token is in the URL: never cached, never sent on as a referrer.
    response.headers["Cache-Control"] = "no-store"
    return response


def _alert_facts(link: Row) -> Markup:
    since = link["triggered_at"]
    since_text = since.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if since else "-"
    sent_to = link["username"] or link["target"]
    return Markup(
        "<p><span class='sev' data-severity='{sev}'>{sev}</span> · shipment <b>{ref}</b></p>"
        "<p id='ack-title'>{title}</p><p>Since {since} · sent by {channel} to {to}</p>"
    ).format(
        sev=link["severity"],
        ref=link["shipment_reference"],
        title=link["title"],
        since=since_text,
        channel=link["channel"],
        to=sent_to,
    )


def _form(link: Row, principal: Any) -> Markup:
    comment = service.default_comment(link["channel"])
    if principal is not None:
        who = Markup("<p>You are logged in as <b>{}</b>.</p>").format(principal.display_name)
        fields = Markup("")
    else:
        who = Markup("<p>Confirm with your user name and acknowledgement PIN.</p>")
        fields = Markup(
            "<label>User name <input name='username' autocomplete='username' required></label>"
            "<label>PIN <input name='pin' type='password' inputmode='numeric' "
            "autocomplete='one-time-code' required></label>"
        )
    return Markup(
        "{who}<form method='post' id='ack-form'>{fields}"
        "<input type='hidden' name='alert_id' value='{alert_id}'>"
        "<label>Comment <textarea name='comment' rows='3' required>{comment}</textarea></label>"
        "<p><button type='submit' id='ack-submit'>Acknowledge alert {alert_id}</button></p>"
        "</form>"
    ).format(who=who, fields=fields, alert_id=link["alert_id"], comment=comment)


def _refused(words: str, status: int = 403) -> flask.Response:
    body = Markup("<p class='refused' id='ack-refused'>{}</p>").format(words)
    return _page("Not acknowledged", body, status)


def install(
    server: flask.Flask,
    *,
    pool: ConnectionPool[Conn],
    limiter: LoginLimiter,
    principal: Any,
) -> None:
    """The page's routes on the dashboard's Flask server; ``principal()`` is the session's
    person (None without one)."""

    redact_access_log(logging.getLogger("uvicorn.access"))

    def client() -> str | None:
        return flask.request.remote_addr

    @server.get(ACK_PREFIX + "<token>")
    def ack_page(token: str) -> flask.Response:
        try:
            with pool.connection() as conn:
                link = service.link_for_page(
                    conn, token=token[:200], now=datetime.now(UTC), client=client()
                )
        except SecurityError as exc:
            return _refused(str(exc))
        body = _alert_facts(link) + _form(link, principal())
        return _page(f"Acknowledge alert {link['alert_id']}", body)

    @server.post(ACK_PREFIX + "<token>")
    def ack_confirm(token: str) -> flask.Response:
        form = flask.request.form
        person = principal()
        try:
            alert_id = int(form.get("alert_id", ""))
        except ValueError:
            return _refused("alert_id: the form lost the alert's number; open the link again", 422)
        try:
            with pool.connection() as conn:
                row = service.acknowledge_by_link(
                    conn,
                    token=token[:200],
                    comment=form.get("comment", "")[:4000],
                    now=datetime.now(UTC),
                    client=client(),
                    limiter=limiter,
                    caller=None if person is None else Caller.of(person, client()),
                    username=form.get("username", "")[:64] or None,
                    pin=form.get("pin", "")[:64] or None,
                    alert_id=alert_id,
                )
        except InvalidAlertActionError as exc:
            return _refused(str(exc), 422)
        except (SecurityError, AlertConflictError) as exc:
            return _refused(str(exc))
        body = Markup("<p id='ack-done'>Acknowledged by <b>{by}</b> at {at}.</p>").format(
            by=row["acked_by"], at=row["acked_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        )
        return _page(f"Alert {row['id']} acknowledged", body)
