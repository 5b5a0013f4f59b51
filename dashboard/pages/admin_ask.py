"""Administration › Questions asked ("/admin/questions", ``admin``): the log of every question
asked of the platform (the Ask box, ``POST /api/v1/ask``, ``coldchain ask``) and the answer
given: who, in which role and from where, when, which answerer, whether it was understood,
the queries its figures came from and how long it took; newest first, optionally one person's.

The same read as ``GET /api/v1/ask/log`` (:func:`services.ask.list_ask_log`, which checks the
role again). The rows are built by :func:`log_rows` (pure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from coldchain.errors import PermissionDeniedError
from dashboard.pages import PageContext, badge, data_attrs, fmt_ts, table
from dashboard.pages.forms import caller, labelled, text_input
from db.types import Row
from services import ask as service

LOADED = "ask-log-loaded"
ACTOR = "ask-log-actor"
FILTER = "ask-log-filter"
LIST = "ask-log-list"
ROW = "ask-log-row"  # <tr> with data-actor and data-answerer
#: The newest entries shown.
SHOWN = 200


def layout() -> html.Div:
    """The filter and the list."""
    return html.Div(
        className="page page-ask-log",
        children=[
            dcc.Store(id=LOADED, data=0),
            html.Div(className="page-header", children=[html.H1("Questions asked")]),
            html.P(
                "Every question asked of the platform and the answer given, newest first: who "
                "asked, from where, which answerer, and the queries every figure came from.",
                className="muted",
            ),
            html.Div(
                className="form-row",
                children=[
                    labelled("Who asked (user name; empty: everyone)", text_input(ACTOR)),
                    html.Button("Show", id=FILTER, className="btn", n_clicks=0),
                ],
            ),
            html.Div(className="card", children=[html.Div(id=LIST)]),
        ],
    )


def _answer_text(row: Row) -> str:
    answer = row.get("answer") or {}
    text = str(answer.get("text") or "")
    return text if len(text) <= 240 else text[:239] + "…"


def log_rows(rows: Sequence[Row]) -> list[html.Tr]:
    """One table row per question (pure but for the reader's time zone)."""
    return [
        html.Tr(
            className=ROW,
            **data_attrs(actor=str(r["actor"]), answerer=str(r["answerer"])),
            children=[
                html.Td(fmt_ts(r["asked_at"]), className="nowrap"),
                html.Td([html.Div(r["actor"]), html.Span(r["role"], className="sub")]),
                html.Td(r["question"]),
                html.Td(
                    [
                        badge(
                            "understood" if r["understood"] else "not understood",
                            "ok" if r["understood"] else "warning",
                        ),
                        html.Div(_answer_text(r), className="sub"),
                    ]
                ),
                html.Td(r["answerer"]),
                html.Td(", ".join(r["queries"]) or "—", className="sub"),
                html.Td(f"{r['duration_ms']:.0f} ms", className="nowrap"),
                html.Td(r["source"] or "—", className="sub"),
            ],
        )
        for r in rows
    ]


def register(app: Dash, page: PageContext) -> None:
    """The list, on opening and on "Show"."""

    @app.callback(
        Output(LIST, "children"),
        Input(LOADED, "data"),
        Input(FILTER, "n_clicks"),
        State(ACTOR, "value"),
    )
    def refresh(_loaded: int | None, _clicks: int | None, actor: str | None) -> Any:
        who = caller()
        if who is None:
            raise PreventUpdate
        try:
            with page.connection() as conn:
                rows, total = service.list_ask_log(
                    conn, who, actor=(actor or "").strip() or None, limit=SHOWN
                )
        except PermissionDeniedError:
            return html.P(f"Your role ({who.role}) cannot read the questions asked.")
        headers = ["When", "Who", "Question", "Answer", "By", "Queries", "Took", "From"]
        shown = f"{len(rows)} of {total}" if total > len(rows) else str(total)
        return [
            html.P(f"{shown} question(s)", className="sub", id="ask-log-count"),
            table(headers, log_rows(rows), empty="No question asked yet.", id="ask-log-table"),
        ]
