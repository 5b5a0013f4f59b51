"""The Ask box in the navigation bar, on every page (README "Ask"): a question in plain words,
answered in a panel under the bar.

Enter in the field (Dash's ``n_submit``, no script of ours: the app's CSP allows no inline
script) or the button asks :func:`services.ask.ask` as the logged-in person, so the answer, the
log entry and what may be shown are the same as through the API and ``coldchain ask``. The panel
shows the answer's text, its figures with their source, links to the pages that show them
(``dcc.Link``: no page reload), suggestions when the question was not understood, and "from:"
the queries; it closes with its button or when the person follows a link. Every role may ask.

The pure part (:func:`answer_view`, :func:`refusal_view`) builds the panel from an answer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import flask
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from coldchain.ask.answer import Answer
from coldchain.errors import InvalidQuestionError
from dashboard import ids
from dashboard.pages import PageContext
from dashboard.pages.forms import SESSION_ENDED
from dashboard.pages.login import current_principal
from services import ask as ask_s
from services.caller import Caller

PLACEHOLDER = "Ask a question…"


def box(*, shown: bool = True) -> html.Div:
    """The field and its button; always in the shell (so the callback's inputs always exist),
    shown to a logged-in person only."""
    return html.Div(
        className="ask-box",
        role="search",
        style=None if shown else {"display": "none"},
        children=[
            html.Label(
                "Ask a question about shipments, alerts, units or loggers",
                htmlFor=ids.ASK_INPUT,
                className="visually-hidden",
            ),
            dcc.Input(
                id=ids.ASK_INPUT,
                type="text",
                placeholder=PLACEHOLDER,
                maxLength=ask_s.MAX_QUESTION_LENGTH,
                value="",
                autoComplete="off",
                className="ask-input",
            ),
            html.Button("Ask", id=ids.ASK_BUTTON, className="ask-button", type="button"),
        ],
    )


def panel() -> html.Section:
    """Where the answer shows, hidden until there is one."""
    return html.Section(
        id=ids.ASK_PANEL,
        className="ask-panel",
        hidden=True,
        children=[
            html.Button("Close", id=ids.ASK_CLOSE, className="ask-close", type="button"),
            html.Div(id=ids.ASK_RESULT, className="ask-result"),
        ],
    )


def answer_view(answer: Answer) -> list[Any]:
    """The panel's content for an answer (pure)."""
    kind = "understood" if answer.understood else "not-understood"
    out: list[Any] = [
        html.P(answer.text, className=f"ask-text ask-{kind}", id=ids.ASK_TEXT),
    ]
    if answer.figures:
        out.append(
            html.Dl(
                className="ask-figures",
                children=[
                    part
                    for f in answer.figures
                    for part in (
                        html.Dt(f.label),
                        html.Dd([html.Strong(f.value), html.Span(f.source, className="sub")]),
                    )
                ],
            )
        )
    if answer.links:
        out.append(
            html.P(
                className="ask-links",
                children=[
                    dcc.Link(link.label, href=link.href, className="ask-link")
                    for link in answer.links
                ],
            )
        )
    if answer.suggestions:
        out.append(
            html.Div(
                className="ask-suggestions",
                children=[
                    html.Span("Try: ", className="sub"),
                    *[html.Code(s, className="ask-suggestion") for s in answer.suggestions],
                ],
            )
        )
    queries = ", ".join(answer.queries) if answer.queries else "no query"
    who = "the language model" if answer.answerer == "llm" else "the default answerer"
    out.append(html.P(f"from: {queries} · answered by {who}", className="sub ask-from"))
    return out


def refusal_view(message: str) -> list[Any]:
    """The panel's content when the question was not taken (pure)."""
    return [html.P(message, className="ask-text ask-refused", id=ids.ASK_TEXT)]


def _caller() -> Caller | None:
    principal = current_principal()
    if principal is None:
        return None
    source = flask.request.remote_addr if flask.has_request_context() else None
    return Caller.of(principal, source)


def register(app: Dash, page: PageContext) -> None:
    """Ask on Enter or the button; close on the button or when the page changes."""

    @app.callback(
        Output(ids.ASK_RESULT, "children"),
        Output(ids.ASK_PANEL, "hidden"),
        Input(ids.ASK_BUTTON, "n_clicks"),
        Input(ids.ASK_INPUT, "n_submit"),
        Input(ids.ASK_CLOSE, "n_clicks"),
        Input(ids.URL, "pathname"),
        State(ids.ASK_INPUT, "value"),
        prevent_initial_call=True,
    )
    def ask(
        _clicks: int | None,
        _submits: int | None,
        _close: int | None,
        _path: str | None,
        question: str | None,
    ) -> tuple[Any, bool]:
        if ctx.triggered_id in (ids.ASK_CLOSE, ids.URL):
            return no_update, True
        caller = _caller()
        if caller is None:
            return refusal_view(SESSION_ENDED), False
        try:
            with page.connection() as conn:
                answer = ask_s.ask(
                    conn, caller, question or "", now=datetime.now(UTC), settings=page.settings
                )
        except InvalidQuestionError as exc:
            why = str(exc).removeprefix(f"{exc.field}: ")
            return refusal_view(why[:1].upper() + why[1:]), False
        return answer_view(answer), False
