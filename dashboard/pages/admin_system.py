"""System ("/admin/system", administrators): how the pipeline keeps up, and test notifications.

The figures are those of ``/healthz`` and ``/metrics`` (:func:`services.health.pipeline_figures_on`:
the engines' lag, the outbox's oldest waiting notification, retrying and given-up
notifications, the engines that beat), refreshed with the other pages. Below them, a "Send a
test" button per channel target the settings and the rules file configure and per person with
an e-mail address or a phone number; a click sends one now through :func:`services.notify.send_test`
(the API's and the CLI's own: recorded in ``deliveries`` and the audit trail) and shows what
happened, delivered or the error. Targets are shown redacted (a URL's host, a key's first
characters), and a button names its target by position or by user name, never by the target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from coldchain.errors import ColdchainError, PermissionDeniedError
from dashboard.pages import PageContext, badge, data_attrs, fmt_duration, table
from dashboard.pages.forms import SESSION_ENDED, caller
from services import health
from services import notify as service

FIGURES = "system-figures"
TARGETS = "system-targets"
RESULT = "system-test-result"
TICK = "system-tick"
TEST = "system-test"  # the pattern-matching buttons: {"type": TEST, "key": "target:3" | "person:…"}


# ---- pure ---------------------------------------------------------------------------------------


def figure_cards(figures: health.PipelineFigures | None) -> list[html.Div]:
    """The pipeline's figures as cards; one card saying so when the database did not answer."""
    if figures is None:
        return [html.Div("The database does not answer.", className="card figure warning")]
    lag_kind = "ok" if figures.engine_lag_s < 60 else "warning"
    cards = [
        ("Engine lag", fmt_duration(figures.engine_lag_s), lag_kind, "engine-lag"),
        ("Oldest unsent notification", fmt_duration(figures.outbox_oldest_s), "info", "outbox"),
        ("Notifications retrying", str(figures.notifications_retrying), "info", "retrying"),
        (
            "Given up (last hour)",
            str(figures.deliveries_failed_1h),
            "warning" if figures.deliveries_failed_1h else "ok",
            "failed",
        ),
        (
            "Rules engines running",
            str(figures.engines),
            "ok" if figures.engines else "warning",
            "engines",
        ),
    ]
    return [
        html.Div(
            [html.Div(label, className="muted"), html.Div(badge(value, kind), className="value")],
            className="card figure",
            **data_attrs(figure=key),
        )
        for label, value, kind, key in cards
    ]


def test_rows(
    targets: Sequence[service.Target], people: Sequence[Mapping[str, Any]]
) -> list[html.Tr]:
    """One row per configured target and per person with a contact, each with its button."""
    rows = []
    for n, t in enumerate(targets):
        rows.append(_row(t.channel, t.shown, t.where, f"target:{n}"))
    for p in people:
        contacts = ", ".join(str(c) for c in (p["email"], p["phone"]) if c)
        if contacts:
            who = f"{p['full_name']} ({p['role']})"
            rows.append(_row("person", contacts, who, f"person:{p['username']}"))
    return rows


def result_lines(results: Sequence[service.TestResult]) -> list[html.Div]:
    """What a test gave: per target, delivered (the receiver's answer) or the error."""
    return [
        html.Div(
            [
                badge("delivered" if r.ok else "failed", "ok" if r.ok else "offline"),
                f" {r.channel} {r.target}: {r.response}",
            ],
            className="test-result",
            **data_attrs(ok=str(r.ok).lower(), channel=r.channel),
        )
        for r in results
    ]


def _row(channel: str, shown: str, where: str, key: str) -> html.Tr:
    return html.Tr(
        [
            html.Td(channel),
            html.Td(html.Code(shown)),
            html.Td(where, className="muted"),
            html.Td(
                html.Button(
                    "Send a test", id={"type": TEST, "key": key}, className="btn", n_clicks=0
                )
            ),
        ],
        className="test-target",
        **data_attrs(key=key),
    )


# ---- layout -------------------------------------------------------------------------------------


def layout(page: PageContext) -> html.Div:
    """The figures and the test notifications."""
    return html.Div(
        className="page page-system",
        children=[
            dcc.Interval(id=TICK, interval=page.refresh_ms),
            html.Div(className="page-header", children=[html.H1("System")]),
            html.Div(id=FIGURES, className="figures"),
            html.Div(
                className="card",
                children=[
                    html.H2("Test notifications"),
                    html.P(
                        "Send a test now to a configured target or to a person's e-mail and "
                        "phone; it is recorded with your name.",
                        className="muted",
                    ),
                    html.Div(id=RESULT, className="feedback", role="status"),
                    html.Div(id=TARGETS),
                ],
            ),
        ],
    )


# ---- callbacks ----------------------------------------------------------------------------------


def register(app: Dash, page: PageContext) -> None:
    """The figures (refreshed), the list of targets and the test buttons."""

    @app.callback(Output(FIGURES, "children"), Input(TICK, "n_intervals"))
    def figures(_tick: int | None) -> Any:
        who = caller()
        if who is None or not who.can("admin"):
            raise PreventUpdate
        with page.connection() as conn:
            return figure_cards(health.pipeline_figures_on(conn, page.settings.alerts))

    @app.callback(Output(TARGETS, "children"), Input(TICK, "id"))
    def targets(_id: str) -> Any:
        who = caller()
        if who is None:
            raise PreventUpdate
        try:
            with page.connection() as conn:
                people = service.people(conn, who)
        except PermissionDeniedError:
            return html.P(f"Your role ({who.role}) cannot send test notifications.")
        rows = test_rows(service.configured_targets(page.settings), people)
        return table(
            ["Channel", "Target", "Configured for", ""],
            rows,
            empty="No channel targets configured and nobody has an e-mail address or phone.",
            id="system-targets-table",
        )

    @app.callback(
        Output(RESULT, "children"),
        Input({"type": TEST, "key": ALL}, "n_clicks"),
        State({"type": TEST, "key": ALL}, "id"),
        prevent_initial_call=True,
    )
    def send(clicks: list[int | None], _ids: list[dict[str, str]]) -> Any:
        key = (ctx.triggered_id or {}).get("key") if isinstance(ctx.triggered_id, dict) else None
        if key is None or not any(clicks):
            raise PreventUpdate
        who = caller()
        if who is None:
            return SESSION_ENDED
        kind, _, name = str(key).partition(":")
        try:
            with page.connection() as conn:
                if kind == "person":
                    results = service.send_test(conn, who, page.settings, person=name)
                else:
                    t = service.configured_targets(page.settings)[int(name)]
                    results = service.send_test(
                        conn, who, page.settings, channel=t.channel, to=t.target
                    )
        except (ColdchainError, IndexError, ValueError) as exc:
            return html.Div(f"Not sent: {exc}", className="feedback error")
        return result_lines(results) or no_update
