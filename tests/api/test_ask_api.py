"""POST /api/v1/ask and GET /api/v1/ask/log against the real app and TimescaleDB: any reader
asks and gets the answer's JSON (logged as them); an empty or too long question is a 422 naming
``question``; only administrators read the log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from coldchain.settings import Settings
from services.ask import MAX_QUESTION_LENGTH
from tests.fixtures.auth import Person

pytestmark = pytest.mark.integration

ASK = "/api/v1/ask"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def test_every_reader_asks_and_the_answer_is_logged_as_theirs(
    client: TestClient, people: dict[str, Person]
) -> None:
    admin = people["admin"].headers
    for n, (role, person) in enumerate(people.items(), start=1):
        question = f"status of PO 5829? ({role})"
        r = client.post(ASK, json={"question": question}, headers=person.headers)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["question"] == question and answer["answerer"] == "default"
        assert set(answer) == {
            "question", "understood", "text", "figures", "links", "queries", "suggestions",
            "answerer", "intent", "extra",
        }  # fmt: skip
        log = client.get(f"{ASK}/log", headers=admin).json()
        entry = log["items"][0]
        assert log["total"] == n and entry["actor"] == person.username
        assert entry["role"] == role and entry["answer"] == answer


def test_an_empty_or_too_long_question_is_a_422_naming_it(
    client: TestClient, people: dict[str, Person]
) -> None:
    viewer = people["viewer"].headers
    too_long = "x" * (MAX_QUESTION_LENGTH + 1)
    for question, says in (("", "empty"), ("  ", "empty"), (too_long, "at most")):
        r = client.post(ASK, json={"question": question}, headers=viewer)
        assert r.status_code == 422 and r.json()["detail"].startswith("question:"), r.text
        assert says in r.json()["detail"]
    missing = client.post(ASK, json={}, headers=viewer)
    assert missing.status_code == 422 and "question" in missing.text
    assert client.get(f"{ASK}/log", headers=people["admin"].headers).json()["total"] == 0


def test_the_log_is_for_administrators(client: TestClient, people: dict[str, Person]) -> None:
    for n, role in enumerate(["viewer", "qa", "viewer"]):
        client.post(ASK, json={"question": f"question {n}?"}, headers=people[role].headers)
    for role in ("viewer", "operator", "qa"):
        r = client.get(f"{ASK}/log", headers=people[role].headers)
        assert r.status_code == 403 and "'admin' permission" in r.json()["detail"]
    admin = people["admin"].headers
    page = client.get(f"{ASK}/log", params={"limit": 2}, headers=admin).json()
    assert page["total"] == 3 and [e["question"] for e in page["items"]] == [
        "question 2?",
        "question 1?",
    ]
    qa = people["qa"].username
    mine = client.get(f"{ASK}/log", params={"actor": qa}, headers=admin).json()
    assert [e["question"] for e in mine["items"]] == ["question 1?"]
