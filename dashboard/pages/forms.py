"""What the master-data editors (products, loggers) share: labelled inputs, the caller of a
form's action, and a service's refusal as one sentence a person can act on.

The editors change records through :mod:`services` like the API and the CLI do: the service
checks the role (whatever the page shows), writes the audit context, and raises the errors of
:mod:`coldchain.errors`; :func:`refusal` words them for the screen, naming the form's field
where the service names one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flask
from dash import dcc, html

from coldchain.errors import (
    ColdchainError,
    InvalidRecordError,
    PermissionDeniedError,
    VersionConflictError,
)
from dashboard.pages.login import current_principal
from services.caller import Caller

#: How long a reason may be (the services' ``Reason``).
REASON_MAX = 2000


def labelled(label: str, component: Any, *, grow: bool = False) -> html.Label:
    """A field with its label above it (``.form-row label``)."""
    return html.Label([html.Span(label), component], className="grow" if grow else None)


def text_input(id: str, *, placeholder: str = "", max_length: int = 200) -> dcc.Input:
    """A one-line text field."""
    return dcc.Input(id=id, type="text", placeholder=placeholder, maxLength=max_length, value="")


def number_input(id: str, *, placeholder: str = "", step: float | str = "any") -> dcc.Input:
    """A number field (empty: None)."""
    return dcc.Input(id=id, type="number", placeholder=placeholder, step=step, value=None)


def caller() -> Caller | None:
    """The logged-in person acting from this browser (their address as the source); None when
    the session has ended."""
    principal = current_principal()
    if principal is None:
        return None
    source = flask.request.remote_addr if flask.has_request_context() else None
    return Caller.of(principal, source)


def field_label(field: str, labels: Mapping[str, str]) -> str:
    """The form's name of a field the service named: ``labels`` by exact name, then the band
    of a stability profile (``stability.allowances[1].budget_s`` is "Band 2"), else the name."""
    if field in labels:
        return labels[field]
    for prefix in ("stability.allowances[", "stability.allowances.", "allowances["):
        if field.startswith(prefix):
            index = field[len(prefix) :].split("]")[0].split(".")[0]
            if index.isdigit():
                return f"Band {int(index) + 1}"
    last = field.rsplit(".", 1)[-1]
    return labels.get(last, field)


#: What a form's callback says when the person's session ended before they pressed the button.
SESSION_ENDED = "Log in again: your session has ended."


def refusal(exc: ColdchainError, *, what: str, role: str, labels: Mapping[str, str]) -> str:
    """One sentence for a refused change of ``what`` ("products", "loggers")."""
    if isinstance(exc, PermissionDeniedError):
        return f"Your role ({role}) cannot change {what}: nothing was saved."
    if isinstance(exc, InvalidRecordError):
        detail = str(exc).removeprefix(f"{exc.field}: ")
        return f"Not saved — {field_label(exc.field, labels)}: {detail}"
    if isinstance(exc, VersionConflictError):
        return (
            f"Not saved: someone changed it since you opened it ({exc}). Press Reload to load "
            "the current version, then redo your change."
        )
    # RecordConflictError (the key is another record's, or it is retired), NotFoundError, …
    return f"Not saved: {exc}"
