"""Queries of the log of questions and answers (db/migrations/0028_ask_log.sql).

Rows are only added and read: the services' role may not change or delete them (0028).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from db.types import Conn, Row

INSERT_ASK = """
INSERT INTO ask_log (asked_at, actor, role, source, question, answerer, understood, intent,
                     answer, queries, duration_ms)
VALUES (%(asked_at)s, %(actor)s, %(role)s, %(source)s, %(question)s, %(answerer)s,
        %(understood)s, %(intent)s, %(answer)s, %(queries)s, %(duration_ms)s)
RETURNING id
"""

LIST_ASKS = """
SELECT id, asked_at, actor, role, source, question, answerer, understood, intent, answer,
       queries, duration_ms, count(*) OVER () AS total
FROM ask_log
WHERE (%(actor)s::text IS NULL OR actor = %(actor)s)
ORDER BY asked_at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""

COUNT_ASKS = """
SELECT count(*) AS total FROM ask_log WHERE (%(actor)s::text IS NULL OR actor = %(actor)s)
"""


def insert_ask(
    *,
    conn: Conn,
    asked_at: datetime,
    actor: str,
    role: str,
    source: str | None,
    question: str,
    answerer: str,
    understood: bool,
    intent: str | None,
    answer: dict[str, Any],
    queries: list[str],
    duration_ms: float,
) -> int:
    """Add one question and its answer to the log; its id."""
    row = conn.execute(
        INSERT_ASK,
        {
            "asked_at": asked_at,
            "actor": actor,
            "role": role,
            "source": source,
            "question": question,
            "answerer": answerer,
            "understood": understood,
            "intent": intent,
            "answer": Jsonb(answer),
            "queries": queries,
            "duration_ms": duration_ms,
        },
    ).fetchone()
    assert row is not None
    return int(row["id"])


def list_asks(
    *, conn: Conn, actor: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Row], int]:
    """Questions and answers, newest first (optionally one person's), and how many in all."""
    params = {"actor": actor, "limit": limit, "offset": offset}
    rows = conn.execute(LIST_ASKS, params).fetchall()
    if rows:
        total = int(rows[0].pop("total"))
        for row in rows[1:]:
            row.pop("total")
        return rows, total
    counted = conn.execute(COUNT_ASKS, params).fetchone()
    return [], int(counted["total"]) if counted else 0
