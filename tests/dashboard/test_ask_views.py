"""The Ask panel's and the questions log's pure parts: what an answer shows (text, figures with
their source, links as in-app links, suggestions, "from:" the queries) and one log row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dash import dcc, html

from coldchain.ask.answer import Answer, Figure, Link
from dashboard import ask_box, ids
from dashboard.pages import admin_ask


def _walk(component: Any) -> list[Any]:
    """Every component in a tree, depth first."""
    out = [component]
    children = getattr(component, "children", None)
    if isinstance(children, (list, tuple)):
        for child in children:
            out += _walk(child)
    elif children is not None and not isinstance(children, str):
        out += _walk(children)
    return out


def _all(view: list[Any]) -> list[Any]:
    return [c for part in view for c in _walk(part)]


def test_an_answer_shows_its_figures_links_and_queries() -> None:
    source = "services.shipments.shipment_detail"
    answer = Answer(
        question="status of SHP-1?",
        understood=True,
        text="SHP-1 is in transit.",
        figures=(Figure("SHP-1 status", "in_transit", source),),
        links=(Link("Shipment SHP-1", "/shipments/SHP-1"),),
        queries=(source,),
        answerer="llm",
    )
    parts = _all(ask_box.answer_view(answer))
    (text,) = [c for c in parts if getattr(c, "id", None) == ids.ASK_TEXT]
    assert text.children == answer.text and "ask-understood" in text.className
    assert [(c.children, getattr(c, "href", None)) for c in parts if isinstance(c, dcc.Link)] == [
        ("Shipment SHP-1", "/shipments/SHP-1")
    ]
    terms = [c.children for c in parts if isinstance(c, html.Dt)]
    values = [c.children for c in parts if isinstance(c, html.Strong)]
    assert terms == ["SHP-1 status"] and values == ["in_transit"]
    (last,) = [c for c in parts if "ask-from" in (getattr(c, "className", "") or "")]
    assert last.children == f"from: {source} · answered by the language model"


def test_a_question_not_understood_shows_the_suggestions() -> None:
    answer = Answer("huh?", False, "I could not understand that.", suggestions=("a?", "b?"))
    parts = _all(ask_box.answer_view(answer))
    assert [c.children for c in parts if isinstance(c, html.Code)] == ["a?", "b?"]
    assert not [c for c in parts if isinstance(c, (dcc.Link, html.Dl))]
    assert any(
        getattr(c, "children", None) == "from: no query · answered by the default answerer"
        for c in parts
    )


def test_a_log_row() -> None:
    row = {
        "asked_at": datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
        "actor": "vera.viewer",
        "role": "viewer",
        "source": "203.0.113.7",
        "question": "status of SHP-1?",
        "answerer": "default",
        "understood": False,
        "answer": {"text": "x" * 300},
        "queries": [],
        "duration_ms": 12.4,
    }
    (tr,) = admin_ask.log_rows([row])
    cells = [c.children for c in tr.children]
    assert cells[0] == "2026-12-05 12:00 UTC" and cells[2] == "status of SHP-1?"
    assert cells[5] == "—" and cells[6] == "12 ms" and cells[7] == "203.0.113.7"
    shown = _all(tr.children[3].children)
    assert any(getattr(c, "children", None) == "x" * 239 + "…" for c in shown)
