"""Stored rules ("/admin/rules"): the alert rules stored for one product or one shipment, every
version with who stored it, when and why, and which one is in force; one version's definition
and what it changed from the one before; and, for administrators, storing a new version.

QA and administrators read this page (:data:`dashboard.pages.admin.RULES_READ`); storing a
version is an administrator's (the service checks). A version is never edited: a change is a
new version, validated exactly as the API's ``PUT .../rules`` validates it (the same
:mod:`services.rules` function: a misspelt field is refused with the field named, and nothing
is stored), with the reason typed here as the audit entry's why. The highest version is in
force; the rules engine takes it at its next round.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from coldchain.errors import ColdchainError, NotFoundError, PermissionDeniedError
from dashboard.pages import PageContext, badge, data_attrs, fmt_ts, table
from dashboard.pages.forms import REASON_MAX, SESSION_ENDED, caller, labelled, text_input
from db.types import Row
from security.accounts import Principal
from services import products as product_s
from services import rules as service
from services import shipments as shipment_s

SCOPE = "rules-scope"
PRODUCT = "rules-product"
SHIPMENT = "rules-shipment"
CHANGED = "rules-changed"
LOADED = "rules-loaded"  # dcc.Store: fires the product list's first load
VERSIONS = "rules-versions"
VERSIONS_DATA = "rules-versions-data"
PICK = "rules-pick"
VIEW = "rules-view"
EDITOR = "rules-editor"
DEFINITION = "rules-definition"
REASON = "rules-reason"
STORE = "rules-store"
FEEDBACK = "rules-feedback"
EXAMPLE = {"temperature": {"alarm_delay_min": 15}}


# ---- pure ---------------------------------------------------------------------------------------


def pretty(definition: Any) -> str:
    """A definition as people read and edit it: indented JSON, keys sorted."""
    return json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=False)


def rule_diff(before: Any, after: Any) -> list[str]:
    """The lines that changed from ``before`` (None: nothing stored before) to ``after``."""
    old = [] if before is None else pretty(before).splitlines()
    lines = difflib.unified_diff(old, pretty(after).splitlines(), lineterm="", n=2)
    return [line for line in lines if not line.startswith(("---", "+++"))]


def version_rows(versions: list[dict[str, Any]]) -> list[html.Tr]:
    """Newest first; the last stored is in force."""
    last = versions[-1]["version"] if versions else None
    return [
        html.Tr(
            [
                html.Td(f"v{v['version']}"),
                html.Td(v["created_by"]),
                html.Td(v["created_at"]),
                html.Td(v["reason"] or "—"),
                html.Td(
                    badge("in force", "ok")
                    if v["version"] == last
                    else badge("earlier", "offline"),
                    className="cell-in-force",
                ),
            ],
            className="rule-version-row",
            **data_attrs(version=str(v["version"]), in_force=str(v["version"] == last).lower()),
        )
        for v in reversed(versions)
    ]


def shown(rows: list[Row]) -> list[dict[str, Any]]:
    """The versions as the browser keeps them (times formatted in the person's zone)."""
    return [
        {
            "version": r["version"],
            "definition": r["definition"],
            "created_by": r["created_by"],
            "created_at": fmt_ts(r["created_at"]),
            "reason": r["reason"],
        }
        for r in rows
    ]


def parse_definition_text(text: str | None) -> Any:
    """The JSON typed in the box; ValueError saying where it is not JSON."""
    try:
        return json.loads(text or "")
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"the definition is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def view(versions: list[dict[str, Any]], number: int | None) -> Any:
    """One version's definition and its changes from the version before."""
    by_number = {v["version"]: i for i, v in enumerate(versions)}
    if number not in by_number:
        return html.P("Pick a version to see its definition.", className="muted")
    i = by_number[number]
    current = versions[i]
    before = versions[i - 1]["definition"] if i > 0 else None
    diff = rule_diff(before, current["definition"])
    kinds = {"+": "diff-add", "-": "diff-del", "@": "diff-hunk"}
    return html.Div(
        className="grid-2",
        children=[
            html.Div(
                className="card",
                children=[
                    html.H3(f"v{current['version']} as stored"),
                    html.Pre(pretty(current["definition"]), className="code", id="rules-json"),
                ],
            ),
            html.Div(
                className="card",
                children=[
                    html.H3(
                        "What it changed"
                        + (f" from v{versions[i - 1]['version']}" if i > 0 else " (the first)")
                    ),
                    html.Pre(
                        [html.Div(line, className=kinds.get(line[:1], "")) for line in diff]
                        or "nothing: the same definition again",
                        className="code diff",
                        id="rules-diff",
                    ),
                ],
            ),
        ],
    )


# ---- layout -------------------------------------------------------------------------------------


def layout(principal: Principal | None) -> html.Div:
    """The scope picker, the versions, one version's view and (administrators) the editor."""
    can_store = principal is not None and principal.can("admin")
    role = principal.role if principal is not None else "none"
    return html.Div(
        className="page page-rules",
        children=[
            dcc.Store(id=CHANGED, data=0),
            dcc.Store(id=LOADED, data=0),
            dcc.Store(id=VERSIONS_DATA, data=[]),
            html.Div(className="page-header", children=[html.H1("Stored rules")]),
            html.P(
                "Alert rules stored for a product or a shipment, on top of the rules file. "
                "Every change is a new version; the newest is in force.",
                className="muted",
            ),
            html.Div(
                className="card",
                children=[
                    html.Div(
                        className="form-row",
                        children=[
                            labelled(
                                "Rules of",
                                dcc.RadioItems(
                                    id=SCOPE,
                                    options=[
                                        {"label": " a product", "value": "product"},
                                        {"label": " a shipment", "value": "shipment"},
                                    ],
                                    value="product",
                                    inline=True,
                                ),
                            ),
                            labelled(
                                "Product",
                                dcc.Dropdown(id=PRODUCT, options=[], value=None),
                                grow=True,
                            ),
                            labelled(
                                "Shipment (reference)",
                                dcc.Input(id=SHIPMENT, type="text", value="", debounce=True),
                            ),
                        ],
                    ),
                    html.Div(id=VERSIONS),
                    labelled("Version", dcc.Dropdown(id=PICK, options=[], value=None)),
                ],
            ),
            html.Div(id=VIEW),
            html.Div(
                className="card editor",
                id=EDITOR,
                style=None if can_store else {"display": "none"},
                children=[
                    html.H2("Store a new version"),
                    html.P(
                        "One layer in the rules file's format (rules/example.toml), as JSON: "
                        "sections temperature, budget, mkt, humidity, offline, battery, "
                        "forecast, risk, each with only the fields it changes.",
                        className="muted",
                    ),
                    dcc.Textarea(
                        id=DEFINITION,
                        value=pretty(EXAMPLE),
                        style={"width": "100%", "height": "180px", "fontFamily": "monospace"},
                    ),
                    labelled(
                        "Reason (required; stored with the version and in the audit trail)",
                        text_input(REASON, max_length=REASON_MAX),
                        grow=True,
                    ),
                    html.Div(
                        className="toolbar",
                        children=[
                            html.Button(
                                "Store as the version in force",
                                id=STORE,
                                className="btn btn-ack",
                                n_clicks=0,
                            )
                        ],
                    ),
                ],
            ),
            html.Div(id=FEEDBACK, className="feedback", role="status"),
            None
            if can_store
            else html.P(
                f"Your role ({role}) reads the stored rules; administrators store new versions.",
                className="muted",
            ),
        ],
    )


# ---- callbacks ----------------------------------------------------------------------------------


def register(app: Dash, page: PageContext) -> None:
    """The versions of the scope picked, one version's view, and storing a new version."""
    cfg = shipment_s.rule_sources(page.settings)

    @app.callback(
        Output(PRODUCT, "options"),
        Output(PRODUCT, "value"),
        Input(LOADED, "data"),
        State(PRODUCT, "value"),
    )
    def product_choices(_loaded: Any, current: str | None) -> tuple[Any, Any]:
        with page.connection() as conn:
            products = product_s.list_products(conn, include_retired=False)
        options = [{"label": f"{p['name']} ({p['gtin']})", "value": p["gtin"]} for p in products]
        first = products[0]["gtin"] if products else None
        return options, current or first

    @app.callback(
        Output(VERSIONS, "children"),
        Output(VERSIONS_DATA, "data"),
        Output(PICK, "options"),
        Output(PICK, "value"),
        Input(SCOPE, "value"),
        Input(PRODUCT, "value"),
        Input(SHIPMENT, "value"),
        Input(CHANGED, "data"),
    )
    def versions(scope: str, gtin: str | None, reference: str | None, _c: Any) -> tuple[Any, ...]:
        key = gtin if scope == "product" else (reference or "").strip()
        if not key:
            what = "a product" if scope == "product" else "a shipment's reference"
            return html.P(f"Pick {what}.", className="muted"), [], [], None
        try:
            with page.connection() as conn:
                rows = (
                    service.product_versions(conn, gtin=key)
                    if scope == "product"
                    else service.shipment_versions(conn, key=key)
                )
        except NotFoundError as exc:
            return html.P(f"{exc}.", className="muted"), [], [], None
        data = shown(rows)
        body = version_rows(data)
        headers = ["Version", "Stored by", "When", "Reason", ""]
        empty = "No rules stored: the rules file alone applies."
        options = [{"label": f"v{v['version']}", "value": v["version"]} for v in reversed(data)]
        return (
            table(headers, body, empty=empty, id="rules-table"),
            data,
            options,
            data[-1]["version"] if data else None,
        )

    @app.callback(Output(VIEW, "children"), Input(PICK, "value"), State(VERSIONS_DATA, "data"))
    def one(number: int | None, data: list[dict[str, Any]] | None) -> Any:
        return view(data or [], number) if data else None

    @app.callback(
        Output(FEEDBACK, "children"),
        Output(FEEDBACK, "className"),
        Output(CHANGED, "data"),
        Input(STORE, "n_clicks"),
        State(SCOPE, "value"),
        State(PRODUCT, "value"),
        State(SHIPMENT, "value"),
        State(DEFINITION, "value"),
        State(REASON, "value"),
        State(CHANGED, "data"),
        prevent_initial_call=True,
    )
    def store(
        clicks: int | None,
        scope: str,
        gtin: str | None,
        reference: str | None,
        text: str | None,
        reason: str | None,
        changed: int | None,
    ) -> tuple[Any, ...]:
        if not clicks:
            raise PreventUpdate
        who = caller()
        if who is None:
            return SESSION_ENDED, "feedback error", no_update
        key = gtin if scope == "product" else (reference or "").strip()
        why = (reason or "").strip()
        try:
            if not key:
                raise ValueError(f"pick the {scope} first")
            if not why:
                raise ValueError("say why (the reason is required)")
            definition = parse_definition_text(text)
            source = "the definition"
            with page.connection() as conn:
                if scope == "product":
                    stored = service.add_product_version(
                        conn, who, cfg, gtin=key, definition=definition, reason=why, source=source
                    )
                else:
                    stored = service.add_shipment_version(
                        conn, who, cfg, key=key, definition=definition, reason=why, source=source
                    )
        except PermissionDeniedError:
            text = f"Your role ({who.role}) cannot store rules: nothing was stored."
            return text, "feedback error", no_update
        except (ColdchainError, ValueError) as exc:
            return f"Not stored — {exc}", "feedback error", no_update
        version = stored.current["version"] if stored.current else "?"
        message = f"Stored v{version}: it is in force from the rules engine's next round."
        return message, "feedback ok", (changed or 0) + 1
