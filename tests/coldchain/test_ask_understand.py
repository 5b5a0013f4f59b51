"""The pure half of the default answerer: dates read against an injected ``now``, typos forgiven,
names found with their role in the sentence, GS1 identifiers in every form, and intents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.ask.dates import find_period
from coldchain.ask.text import closest, match_names, tokens
from coldchain.ask.understand import Vocabulary, understand
from coldchain.gs1 import GTIN, SGTIN, SSCC, check_digit

# A Saturday, so that "this week" and "last week" cross a month boundary.
NOW = datetime(2026, 12, 5, 14, 30, tzinfo=UTC)
MIDNIGHT = NOW.replace(hour=0, minute=0)
VOCAB = Vocabulary(
    sites=("Basel", "New York JFK", "Milan"),
    carriers=("Frigo Express", "SkyCold Air"),
    products=(("09506000134352", "Vaxigrip 10 x 0.5 ml"),),
    lanes=("BSL-JFK",),
)


def _period(text: str) -> tuple[datetime, datetime]:
    found = find_period(tokens(text), NOW)
    assert found is not None, text
    return found[0].since, found[0].until


@pytest.mark.parametrize(
    ("text", "since", "until"),
    [
        ("today", MIDNIGHT, NOW),
        ("yesterday", MIDNIGHT - timedelta(days=1), MIDNIGHT),
        # Monday 30 November is the start of this week; last week is the one before
        ("this week", datetime(2026, 11, 30, tzinfo=UTC), NOW),
        ("last week", datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)),
        ("last month", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        ("this month", datetime(2026, 12, 1, tzinfo=UTC), NOW),
        ("last year", datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
        ("past 48 hours", NOW - timedelta(hours=48), NOW),
        ("in the last 7 days", NOW - timedelta(days=7), NOW),
        ("in November", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        ("in novembr", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        # a month not begun this year is last year's
        ("in march", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
        ("since 3 Dec", datetime(2026, 12, 3, tzinfo=UTC), NOW),
        ("since Dec 3rd", datetime(2026, 12, 3, tzinfo=UTC), NOW),
        ("since 24 dec", datetime(2025, 12, 24, tzinfo=UTC), NOW),
        ("on 2026-11-02", datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)),
        ("in 2025", datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)
def test_dates_and_ranges(text: str, since: datetime, until: datetime) -> None:
    assert _period(text) == (since, until)


def test_in_december_is_the_one_under_way() -> None:
    assert _period("in december") == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )


@given(st.integers(min_value=1, max_value=2000))
def test_past_n_hours_ends_now_and_spans_n_hours(n: int) -> None:
    since, until = _period(f"past {n} hours")
    assert until == NOW and until - since == timedelta(hours=n)


@pytest.mark.parametrize("text", ["in transit", "shipments in alarm", "48 shipments", "on time"])
def test_words_that_are_not_dates(text: str) -> None:
    assert find_period(tokens(text), NOW) is None


@pytest.mark.parametrize(
    ("typo", "word"),
    [("excurions", "excursions"), ("quarantied", "quarantined"), ("shipmnets", "shipments"),
     ("calibraton", "calibration"), ("alrets", "alerts")],
)  # fmt: skip
def test_typos_are_read_as_the_words_they_nearly_are(typo: str, word: str) -> None:
    known = ["excursions", "quarantined", "shipments", "calibration", "alerts", "status"]
    assert closest(typo, known) == word


def test_short_words_and_numbers_are_not_corrected() -> None:
    assert closest("sta", ["status"]) is None
    assert closest("shp1", ["ship"]) is None


def test_names_are_found_nearly_and_without_overlap() -> None:
    words = tokens("from basle to new york jfk with frigo expres")
    found = match_names(words, ["Basel", "New York JFK", "York", "Frigo Express"])
    assert {name for name, _, _ in found} == {"Basel", "New York JFK", "Frigo Express"}


@pytest.mark.parametrize(
    ("question", "intent", "expected"),
    [
        ("what is the status of PO 5829?", "status", {"references": (("5829", "purchase_order"),)}),
        ("Where is SHP-0001", "where", {"references": (("SHP-0001", None),)}),
        ("shipments from Basel to Milan", "shipments", {"origin": "Basel", "destination": "Milan"}),
        ("Basel → New York JFK", "shipments", {"origin": "Basel", "destination": "New York JFK"}),
        ("shipments to basel", "shipments", {"destination": "Basel"}),
        ("milan shipments", "shipments", {"place": "Milan"}),
        ("shipments on lane BSL-JFK", "shipments", {"lane": "BSL-JFK"}),
        ("Vaxigrip shipments", "shipments", {"product": ("09506000134352", "Vaxigrip 10 x 0.5 ml")}),
        ("skycold air shipments in tranist", "shipments",
         {"carrier": "SkyCold Air", "statuses": ("in_transit",)}),
        ("which shipments are awaiting review", "qa", {"statuses": ("arrived", "under_review")}),
        ("shipments in alarm", "shipments", {"condition": "alarm"}),
        ("unacknowledged critical alerts", "alerts",
         {"alert_states": ("open",), "severities": ("critical",)}),
        ("loggers with low battery", "loggers", {}),
        ("which shipments carried lot L123", "lot", {"lot": "L123"}),
        ("who signed SHP-0005", "qa", {}),
        ("released last week", "qa", {}),
        ("audit trail", "audit", {}),
        ("api keys", "people", {}),
        ("help", "help", {}),
        ("what is the meaning of life", None, {}),
    ],
)  # fmt: skip
def test_intents_and_entities(
    question: str, intent: str | None, expected: dict[str, object]
) -> None:
    q = understand(question, VOCAB, now=NOW)
    assert q.intent == intent
    for name, value in expected.items():
        assert getattr(q, name) == value, name


def _sscc() -> SSCC:
    body = "39506000000004711"
    return SSCC(body + str(check_digit(body)))


UNIT = SGTIN(GTIN("09506000134352"), "ABC123")


@pytest.mark.parametrize(
    "form",
    [UNIT.element_string, UNIT.digital_link, UNIT.epc_uri(7), _sscc().value,
     "(00)" + _sscc().value, _sscc().digital_link, _sscc().epc_uri(7)],
)  # fmt: skip
def test_every_gs1_form_is_a_unit(form: str) -> None:
    q = understand(f"where is {form}?", VOCAB, now=NOW)
    assert q.intent == "unit" and len(q.identifiers) == 1
    parsed = q.identifiers[0][1]
    assert parsed.kind in ("sgtin", "sscc")
    assert (parsed.gtin, parsed.serial) == (
        "09506000134352",
        "ABC123",
    ) or parsed.sscc == _sscc().value


def test_gtin_with_lot_is_a_lot_of_the_product() -> None:
    q = understand("(01)09506000134352(10)L-77", VOCAB, now=NOW)
    assert q.intent == "lot" and q.lot == "L-77"
    assert q.product == ("09506000134352", "Vaxigrip 10 x 0.5 ml")
