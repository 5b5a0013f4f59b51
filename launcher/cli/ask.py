"""``coldchain ask "…"``: ask the platform in plain words from the command line (README "Ask").

The same service as the API and the dashboard's Ask box (:func:`services.ask.ask`), as the
console (``cli:<os user>``, admin), logged like any other question. Printed: the answer's text,
its figures with their source, its links as full addresses (``web.public_url``, else the
dashboard's host and port) and the queries; ``--json`` prints the answer as the API returns it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from coldchain.ask.answer import Answer
from launcher.cli.common import connect, load_settings


def render(answer: Answer, base_url: str) -> str:
    """The answer as lines for a terminal (pure)."""
    lines = [answer.text]
    if answer.figures:
        lines.append("")
        lines += [f"  {f.label}: {f.value}   ({f.source})" for f in answer.figures]
    if answer.links:
        lines.append("")
        lines += [f"  {link.label}: {base_url}{link.href}" for link in answer.links]
    if answer.suggestions:
        lines.append("")
        lines.append("Try:")
        lines += [f"  {s}" for s in answer.suggestions]
    lines.append("")
    lines.append("from: " + (", ".join(answer.queries) if answer.queries else "no query"))
    lines.append(f"answered by: {answer.answerer}")
    return "\n".join(lines)


def ask(
    question: Annotated[str, typer.Argument(help="the question, in plain words (quote it)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Ask about shipments, excursions, alerts, units and lots, loggers or QA decisions."""
    from coldchain.errors import InvalidQuestionError
    from services import ask as service
    from services.caller import Caller

    settings = load_settings()
    try:
        with connect(settings) as conn:
            answer = service.ask(
                conn, Caller.console(), question, now=datetime.now(UTC), settings=settings
            )
    except InvalidQuestionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(answer.to_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo(render(answer, settings.web.base_url()))
