"""Products ("/products"): every product with its range and stability-profile version; the
editor that registers one, changes one (a new profile version when its profile changes) and
retires one.

Everyone may read the list; the form is shown to the roles with ``products.manage`` (admin,
qa), and the service checks the role again whatever the page shows. An edit names the version
the form was loaded with (kept in the browser): when someone else saved the product meanwhile,
the service refuses it and the page says so, so nothing is silently overwritten. Every change
has a reason, recorded in the audit trail with the person and, for a profile, with the new
profile version.

The form's values are turned into the service's ``ProductIn`` fields by pure functions
(:func:`form_values`, :func:`product_body`); budgets are typed in hours and the alarm delay in
minutes, and stored in seconds.
"""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from pydantic import ValidationError

from coldchain.errors import ColdchainError, InvalidRecordError, NotFoundError
from dashboard.pages import PageContext, badge, data_attrs, fmt_range, fmt_temp, table
from dashboard.pages.forms import (
    REASON_MAX,
    SESSION_ENDED,
    caller,
    labelled,
    number_input,
    refusal,
    text_input,
)
from db.types import Conn, Row
from security.accounts import Principal
from security.roles import Permission
from services import products as service
from services.caller import Caller
from services.products import DEFAULT_DELTA_H_J_MOL, ProductIn

PATH = "/products"
NAV = "nav-products"
PERMISSION: Permission = "products.manage"

# Component ids of this page.
TABLE = "products-table"
SHOW_RETIRED = "products-show-retired"
CHANGED = "products-changed"  # dcc.Store bumped after a change, to refresh the list
EDITING = "products-editing"  # dcc.Store: {"gtin", "version", "thaw_hysteresis_c"} or None
FORM = "products-form"
FORM_TITLE = "products-form-title"
SELECT = "products-select"  # which product the form edits ("" for a new one)
REASON = "products-reason"
SAVE = "products-save"
RELOAD = "products-reload"  # loads the picked record again (after a refused stale edit)
RETIRE = "products-retire"
FEEDBACK = "products-feedback"
NEW = ""

#: The product's own fields on the form: (form key, label). The keys are the service's field
#: names, except the alarm delay (typed in minutes) and the freeze–thaw cycles (of ``stability``).
FIELDS: tuple[tuple[str, str], ...] = (
    ("gtin", "GTIN"),
    ("name", "Name"),
    ("temp_min_c", "Storage low (°C)"),
    ("temp_max_c", "Storage high (°C)"),
    ("freeze_limit_c", "Freeze limit (°C)"),
    ("alarm_delay_min", "Alarm delay (min)"),
    ("mkt_delta_h_j_mol", "ΔH for MKT (J/mol)"),
    ("mkt_limit_c", "MKT limit (°C)"),
    ("mkt_window_days", "MKT window (days)"),
    ("rh_min", "Humidity low (%)"),
    ("rh_max", "Humidity high (%)"),
    ("max_freeze_thaw_cycles", "Max freeze–thaw cycles"),
)
TEXT_FIELDS = ("gtin", "name")
#: Rows of the stability-profile table on the form (the service allows up to 50 bands).
BAND_ROWS = 4
BAND_COLUMNS = ("low_c", "high_c", "budget_h")

#: The form's label of every field the service may name in an error.
LABELS: dict[str, str] = {
    **dict(FIELDS),
    "alarm_delay_s": "Alarm delay (min)",
    "stability.max_freeze_thaw_cycles": "Max freeze–thaw cycles",
    "max_freeze_thaw_cycles": "Max freeze–thaw cycles",
    "storage_low_c": "Storage low (°C)",
    "storage_high_c": "Storage high (°C)",
    "reason": "Reason",
}


def field_id(key: str) -> str:
    """The component id of a product field on the form."""
    return f"product-{key.replace('_', '-')}"


def band_id(row: int, column: str) -> str:
    """The component id of one cell of the stability-profile table (row from 0)."""
    return f"product-band-{row}-{column.replace('_', '-')}"


#: The form's values by key (a product field, or ``band-<row>-<column>``), and their ids.
FORM_KEYS: tuple[str, ...] = (
    *(k for k, _ in FIELDS),
    *(f"band-{r}-{c}" for r in range(BAND_ROWS) for c in BAND_COLUMNS),
)
FORM_IDS: tuple[str, ...] = (
    *(field_id(k) for k, _ in FIELDS),
    *(band_id(r, c) for r in range(BAND_ROWS) for c in BAND_COLUMNS),
)


# ---- pure: the form and the service's fields ---------------------------------------------------


def _number(value: Any, label: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidRecordError(label, "is not a number")
    try:
        return float(value)
    except ValueError:
        raise InvalidRecordError(label, f"{value!r} is not a number") from None


def _whole(value: float | None, key: str) -> int | None:
    if value is None:
        return None
    if value != int(value):
        raise InvalidRecordError(key, f"{value:g} is not a whole number")
    return int(value)


def product_body(values: dict[str, Any]) -> dict[str, Any]:
    """The service's product fields from the form's values (by form key, and the bands as
    ``band-<row>-<column>``); raises InvalidRecordError naming the field (a band half filled:
    "stability.allowances[1].budget_s"). Empty bands are left out; an empty field is absent."""
    text = {k: str(values.get(k) or "").strip() for k in TEXT_FIELDS}
    num = {k: _number(values.get(k), k) for k, _ in FIELDS if k not in TEXT_FIELDS}
    delay = num.pop("alarm_delay_min")
    cycles = _whole(num.pop("max_freeze_thaw_cycles"), "max_freeze_thaw_cycles")
    window = _whole(num.pop("mkt_window_days"), "mkt_window_days")
    body: dict[str, Any] = {
        **text,
        **num,
        "mkt_window_days": window,
        # Seconds, as stored: rounded, so that 1.5 min is 90 s and not 89.99999.
        "alarm_delay_s": 0 if delay is None else round(delay * 60),
        "mkt_delta_h_j_mol": DEFAULT_DELTA_H_J_MOL
        if num["mkt_delta_h_j_mol"] is None
        else num["mkt_delta_h_j_mol"],
    }
    allowances: list[dict[str, Any]] = []
    for row in range(BAND_ROWS):
        cells = {
            c: _number(values.get(f"band-{row}-{c}"), f"stability.allowances[{row}].{c}")
            for c in BAND_COLUMNS
        }
        if all(v is None for v in cells.values()):
            continue
        where = f"stability.allowances[{len(allowances)}]"
        if cells["budget_h"] is None:
            raise InvalidRecordError(f"{where}.budget_s", "a band needs its budget in hours")
        if cells["low_c"] is None and cells["high_c"] is None:
            raise InvalidRecordError(where, "a band needs a low or a high temperature (or both)")
        allowances.append(
            {
                "low_c": cells["low_c"],
                "high_c": cells["high_c"],
                "budget_s": round(cells["budget_h"] * 3600, 3),
            }
        )
    body["stability"] = {"allowances": allowances, "max_freeze_thaw_cycles": cycles}
    return body


def form_values(product: Row | None) -> dict[str, Any]:
    """The form's values for a stored product (empty for a new one), by form key; the
    inverse of :func:`product_body` for what the form shows."""
    values: dict[str, Any] = {k: None for k, _ in FIELDS}
    values.update({k: "" for k in TEXT_FIELDS})
    values["mkt_delta_h_j_mol"] = DEFAULT_DELTA_H_J_MOL
    values.update({f"band-{r}-{c}": None for r in range(BAND_ROWS) for c in BAND_COLUMNS})
    if product is None:
        return values
    for key, _ in FIELDS:
        if key in product:
            values[key] = product[key]
    delay = product.get("alarm_delay_s")
    values["alarm_delay_min"] = None if delay is None else delay / 60
    stability = product.get("stability") or {}
    values["max_freeze_thaw_cycles"] = stability.get("max_freeze_thaw_cycles")
    for row, band in enumerate(stability.get("allowances", [])[:BAND_ROWS]):
        values[f"band-{row}-low_c"] = band.get("low_c")
        values[f"band-{row}-high_c"] = band.get("high_c")
        values[f"band-{row}-budget_h"] = band["budget_s"] / 3600
    return values


def _validation_problem(exc: ValidationError) -> InvalidRecordError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "product"
    return InvalidRecordError(where, first["msg"])


def bands_text(stability: dict[str, Any] | None) -> str:
    """``8–25 °C 72 h · ≤ 2 °C 12 h · 3 freeze–thaw``, or an em dash."""
    stability = stability or {}
    parts = [
        f"{fmt_range(a.get('low_c'), a.get('high_c'))} {a['budget_s'] / 3600:g} h"
        for a in stability.get("allowances", [])
    ]
    if stability.get("max_freeze_thaw_cycles") is not None:
        parts.append(f"{stability['max_freeze_thaw_cycles']} freeze–thaw")
    return " · ".join(parts) or "—"


# ---- layout -------------------------------------------------------------------------------------


def _band_table() -> html.Table:
    head = html.Thead(
        html.Tr([html.Th(h) for h in ("Band", "Low (°C)", "High (°C)", "Budget (h)")])
    )
    rows = [
        html.Tr(
            [
                html.Td(str(r + 1)),
                *(
                    html.Td(
                        number_input(band_id(r, c), placeholder="open" if c != "budget_h" else "")
                    )
                    for c in BAND_COLUMNS
                ),
            ]
        )
        for r in range(BAND_ROWS)
    ]
    return html.Table(
        [head, html.Tbody(rows)], className="data-table band-table", id="product-bands"
    )


def _field(key: str, label: str) -> html.Label:
    if key in TEXT_FIELDS:
        placeholder = "GTIN-8/12/13/14" if key == "gtin" else ""
        return labelled(label, text_input(field_id(key), placeholder=placeholder))
    step: float | str = 1 if key in ("mkt_window_days", "max_freeze_thaw_cycles") else "any"
    return labelled(label, number_input(field_id(key), step=step))


def _form(visible: bool) -> html.Div:
    """The editor (always in the layout, so its callbacks exist; shown to the managing roles)."""
    return html.Div(
        id=FORM,
        className="card editor",
        style=None if visible else {"display": "none"},
        children=[
            html.H2("Register a product", id=FORM_TITLE),
            html.Div(
                className="form-row",
                children=[
                    labelled(
                        "Edit",
                        dcc.Dropdown(
                            id=SELECT,
                            options=[{"label": "New product", "value": NEW}],
                            value=NEW,
                            clearable=False,
                        ),
                        grow=True,
                    )
                ],
            ),
            html.Div(className="form-row", children=[_field(k, label) for k, label in FIELDS[:2]]),
            html.Div(className="form-row", children=[_field(k, label) for k, label in FIELDS[2:6]]),
            html.Div(
                className="form-row", children=[_field(k, label) for k, label in FIELDS[6:11]]
            ),
            html.H3("Stability profile"),
            html.P(
                "Each band is a temperature range with its cumulative budget over the whole "
                "journey (e.g. 8–25 °C for 72 h). Leave a row empty for no band; an empty low or "
                "high is an open end. A change is saved as a new profile version.",
                className="muted",
            ),
            _band_table(),
            html.Div(className="form-row", children=[_field(*FIELDS[11])]),
            html.Div(
                className="form-row",
                children=[
                    labelled(
                        "Reason (recorded in the audit trail; required for a change or retirement)",
                        dcc.Textarea(
                            id=REASON,
                            maxLength=REASON_MAX,
                            value="",
                            style={"width": "100%", "height": "56px"},
                        ),
                        grow=True,
                    )
                ],
            ),
            html.Div(
                className="toolbar",
                children=[
                    html.Button("Save", id=SAVE, className="btn btn-ack", n_clicks=0),
                    html.Button("Reload", id=RELOAD, className="btn", n_clicks=0),
                    html.Button(
                        "Retire", id=RETIRE, className="btn", n_clicks=0, style={"display": "none"}
                    ),
                ],
            ),
            html.Div(id=FEEDBACK, className="feedback", role="status"),
        ],
    )


def layout(page: PageContext, principal: Principal | None = None) -> html.Div:
    """The list, and the editor for the roles that may change products."""
    can_manage = principal is not None and principal.can(PERMISSION)
    role = principal.role if principal is not None else "none"
    note = (
        html.P(
            f"Your role ({role}) can read the products; administrators and QA register and "
            "change them.",
            className="muted",
        )
        if not can_manage
        else None
    )
    return html.Div(
        className="page page-products",
        children=[
            dcc.Store(id=CHANGED, data=0),
            dcc.Store(id=EDITING, data=None),
            html.Div(className="page-header", children=[html.H1("Products")]),
            html.Div(
                className="card",
                children=[
                    html.Div(
                        className="toolbar",
                        children=[
                            dcc.Checklist(
                                id=SHOW_RETIRED,
                                options=[{"label": "Show retired", "value": "yes"}],
                                value=[],
                                className="checks",
                            )
                        ],
                    ),
                    html.Div(id=TABLE),
                    note,
                ],
            ),
            _form(can_manage),
        ],
    )


def picker_options(rows: list[Row]) -> list[dict[str, str]]:
    """The editor's picker: a new product, then every live one."""
    return [{"label": "New product", "value": NEW}] + [
        {"label": f"{r['name']} ({r['gtin']})", "value": r["gtin"]}
        for r in rows
        if r["retired_at"] is None
    ]


def product_rows(rows: list[Row]) -> list[html.Tr]:
    """The list's rows (retired ones marked)."""
    out = []
    for r in rows:
        retired = r["retired_at"] is not None
        out.append(
            html.Tr(
                [
                    html.Td(r["gtin"], className="cell-gtin"),
                    html.Td(r["name"], className="cell-name"),
                    html.Td(fmt_range(r["temp_min_c"], r["temp_max_c"]), className="cell-range"),
                    html.Td(fmt_temp(r["freeze_limit_c"])),
                    html.Td(fmt_temp(r["mkt_limit_c"])),
                    html.Td(bands_text(r.get("stability")), className="wrap cell-bands"),
                    html.Td(
                        "—" if r["profile_version"] is None else f"v{r['profile_version']}",
                        className="cell-profile",
                    ),
                    html.Td(badge("retired", "offline") if retired else badge("in use", "ok")),
                ],
                className="product-row" + (" retired" if retired else ""),
                **data_attrs(gtin=r["gtin"], retired="true" if retired else "false"),
            )
        )
    return out


# ---- callbacks ----------------------------------------------------------------------------------


def register(app: Dash, page: PageContext) -> None:
    """The products page's callbacks."""

    @app.callback(
        Output(TABLE, "children"),
        Output(SELECT, "options"),
        Input(CHANGED, "data"),
        Input(SHOW_RETIRED, "value"),
    )
    def refresh(_changed: int | None, show_retired: list[str] | None) -> tuple[Any, Any]:
        with page.connection() as conn:
            rows = service.list_products(conn, include_retired=True)
        shown = rows if show_retired else [r for r in rows if r["retired_at"] is None]
        headers = ["GTIN", "Name", "Range", "Freeze", "MKT limit", "Stability bands", "Profile", ""]
        return table(
            headers, product_rows(shown), empty="No product yet.", id="products-list"
        ), picker_options(rows)

    @app.callback(
        *(Output(i, "value") for i in FORM_IDS),
        Output(EDITING, "data"),
        Input(SELECT, "value"),
        Input(RELOAD, "n_clicks"),
    )
    def load(gtin: str | None, _reloads: int | None) -> tuple[Any, ...]:
        product = None
        if gtin:
            try:
                with page.connection() as conn:
                    product = service.get_product(conn, gtin)
            except NotFoundError:
                product = None  # not (or no longer) there: an empty form

        values = form_values(product)
        editing = (
            None
            if product is None
            else {
                "gtin": product["gtin"],
                "version": product["version"],
                "thaw_hysteresis_c": product["stability"]["thaw_hysteresis_c"],
            }
        )
        return (*(values[k] for k in FORM_KEYS), editing)

    @app.callback(
        Output(FORM_TITLE, "children"),
        Output(field_id("gtin"), "disabled"),
        Output(RETIRE, "style"),
        Input(EDITING, "data"),
    )
    def title(editing: dict[str, Any] | None) -> tuple[Any, bool, Any]:
        if not editing:
            return "Register a product", False, {"display": "none"}
        return f"Edit product {editing['gtin']} (version {editing['version']})", True, None

    @app.callback(
        Output(FEEDBACK, "children"),
        Output(FEEDBACK, "className"),
        Output(CHANGED, "data"),
        Output(EDITING, "data", allow_duplicate=True),
        Output(SELECT, "options", allow_duplicate=True),
        Output(SELECT, "value"),
        Input(SAVE, "n_clicks"),
        Input(RETIRE, "n_clicks"),
        State(EDITING, "data"),
        State(REASON, "value"),
        State(CHANGED, "data"),
        *(State(i, "value") for i in FORM_IDS),
        prevent_initial_call=True,
    )
    def act(
        _saves: int | None,
        _retirements: int | None,
        editing: dict[str, Any] | None,
        reason: str | None,
        changed: int | None,
        *form: Any,
    ) -> tuple[Any, ...]:
        if not ctx.triggered or not ctx.triggered[0].get("value"):
            raise PreventUpdate
        who = caller()
        if who is None:
            return SESSION_ENDED, "feedback error", *[no_update] * 4
        values = dict(zip(FORM_KEYS, form, strict=True))
        reason = (reason or "").strip()
        try:
            with page.connection() as conn:
                if ctx.triggered_id == RETIRE:
                    row, message = _retire(conn, who, editing, reason)
                else:
                    row, message = _save(conn, who, editing, reason, values)
                # With the new product among them: a picked value missing from the options
                # would be cleared by the dropdown.
                options = picker_options(service.list_products(conn, include_retired=True))
        except ColdchainError as exc:
            text = refusal(exc, what="products", role=who.role, labels=LABELS)
            return text, "feedback error", *[no_update] * 4
        editing = {
            "gtin": row["gtin"],
            "version": row["version"],
            "thaw_hysteresis_c": row["stability"]["thaw_hysteresis_c"],
        }
        if row["retired_at"] is not None:
            editing = None
        # The picker shows what the form now edits (choosing it reloads the stored values).
        selected = NEW if editing is None else editing["gtin"]
        return message, "feedback ok", (changed or 0) + 1, editing, options, selected


def _save(
    conn: Conn, who: Caller, editing: dict[str, Any] | None, reason: str, values: dict[str, Any]
) -> tuple[Row, str]:
    body = product_body(values)
    if editing is None:
        try:
            spec = ProductIn.model_validate(body)
        except ValidationError as exc:
            raise _validation_problem(exc) from None
        row, created = service.create_product(
            conn, who, product=spec, reason=reason or "product registered"
        )
        if not created:
            return row, f"{row['name']} ({row['gtin']}) was already registered as given."
        return (
            row,
            f"Registered {row['name']} ({row['gtin']}), profile version {row['profile_version']}.",
        )
    if not reason:
        raise InvalidRecordError("reason", "say why you change this product (required)")
    body.pop("gtin", None)
    body["stability"]["thaw_hysteresis_c"] = editing.get("thaw_hysteresis_c", 0.5)
    row = service.update_product(
        conn,
        who,
        gtin=editing["gtin"],
        changes=body,
        expected_version=int(editing["version"]),
        reason=reason,
    )
    if row["version"] == editing["version"]:
        return row, "Nothing changed: the form is the same as the stored product."
    return row, (
        f"Saved {row['name']} ({row['gtin']}): version {row['version']}, "
        f"stability profile version {row['profile_version']}."
    )


def _retire(
    conn: Conn, who: Caller, editing: dict[str, Any] | None, reason: str
) -> tuple[Row, str]:
    if editing is None:
        raise InvalidRecordError("gtin", "pick the product to retire in the list first")
    if not reason:
        raise InvalidRecordError("reason", "say why you retire this product (required)")
    row = service.retire_product(
        conn, who, gtin=editing["gtin"], expected_version=int(editing["version"]), reason=reason
    )
    return (
        row,
        f"Retired {row['name']} ({row['gtin']}): it can no longer be used for a new shipment.",
    )
