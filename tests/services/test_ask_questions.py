"""The default answerer against a seeded database: questions in varied phrasing (typos, every
GS1 form, relative dates, external references, unknown references, unanswerable questions), each
checked against a figure computed here from the seeded facts by a plain route (a filter over the
list of what was seeded), never against a pasted answer.

One database for the module (seeded once, read only by the answerer); ``NOW`` is the real clock
at seeding, because the fleet's condition and "riding now" are the database's ``now()``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from coldchain.ask.answer import Answer
from coldchain.ask.dates import find_period
from coldchain.ask.text import tokens
from coldchain.calibration import calibration_status
from coldchain.gs1 import GTIN, SGTIN, SSCC, check_digit
from coldchain.lifecycle import STATE_LABELS
from coldchain.settings import Settings
from coldchain.telemetry import Reading
from db.types import Conn
from launcher.localstack import PostgresCluster
from security.accounts import principal_for_secret
from security.roles import Role
from services.ask_default import EXAMPLES, MAX_QUESTION_LENGTH, answer
from services.caller import Caller
from tests.fixtures.auth import PEOPLE, add_user, issue_token
from tests.fixtures.services import APP_PASSWORD, APP_USER, OWNER_USER, TEMPLATE_DB, _dsn
from tests.fixtures.web import gtin, ingest

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
CP = 7  # company prefix length of the seeded GS1 keys (9506000)
SETTINGS = Settings(_env_file=None)


@dataclass
class Ship:
    ref: str
    origin: str
    destination: str
    status: str
    carrier: str
    gtin: str
    departed: datetime
    po: str | None = None
    lots: tuple[str, ...] = ()
    excursions: list[tuple[datetime, datetime | None]] = field(default_factory=list)


@dataclass
class World:
    dsn: str
    ships: list[Ship]
    products: dict[str, str]  # name -> gtin
    loggers: dict[str, dict[str, Any]]
    alerts: list[tuple[str, str, str]]  # (reference, severity, state)
    decisions: list[tuple[str, str, str, datetime]]  # (reference, decision, signer, at)
    unit: SGTIN
    pallet: SSCC
    callers: dict[Role, Caller] = field(default_factory=dict)

    def ship(self, ref: str) -> Ship:
        return next(s for s in self.ships if s.ref == ref)


def _sscc(n: int) -> SSCC:
    body = f"3{'9506000'}{n:09d}"
    return SSCC(body + str(check_digit(body)))


def _seed(dsn: str) -> World:
    vax = gtin("0950600013435")
    pen = gtin("0950600099887")
    products = {"Vaxigrip 10 x 0.5 ml": vax, "Insulin Pen 3 ml": pen}
    s = [
        Ship("SHP-0001", "Basel", "New York JFK", "in_transit", "SkyCold Air", vax, NOW - 2 * DAY,
             po="5829", lots=("L123",)),
        Ship("SHP-0002", "Basel", "Milan", "in_transit", "Frigo Express", pen, NOW - DAY),
        Ship("SHP-0003", "Basel", "New York JFK", "arrived", "SkyCold Air", vax, NOW - 40 * DAY,
             po="PO-7001"),
        Ship("SHP-0004", "Rotterdam", "Milan", "under_review", "Frigo Express", vax, NOW - 10 * DAY,
             lots=("L123",)),
        Ship("SHP-0005", "Amsterdam", "Milan", "released", "Frigo Express", pen, NOW - 8 * DAY),
        Ship("SHP-0006", "Amsterdam", "Basel", "quarantined", "Frigo Express", vax, NOW - 6 * DAY),
        Ship("SHP-0007", "Rotterdam", "Basel", "planned", "Frigo Express", pen, NOW + 3 * DAY),
        Ship("SHP-0008", "Basel", "Milan", "in_transit", "Frigo Express", vax, NOW - 3 * DAY),
        Ship("SHP-0009", "Milan", "Rotterdam", "cancelled", "SkyCold Air", pen, NOW - 20 * DAY),
        Ship("SHP-0010", "Basel", "New York JFK", "released", "SkyCold Air", vax, NOW - 35 * DAY),
    ]  # fmt: skip
    # Excursions: an open one now, one 3 days ago, a month or so back, and a recent closed one.
    s[0].excursions.append((NOW - 5 * timedelta(hours=1), None))
    s[2].excursions.append((NOW - 38 * DAY, NOW - 38 * DAY + timedelta(hours=1)))
    s[9].excursions += [
        (NOW - 33 * DAY, NOW - 33 * DAY + timedelta(minutes=40)),
        (NOW - 32 * DAY, NOW - 32 * DAY + timedelta(minutes=20)),
    ]
    s[5].excursions.append((NOW - 5 * DAY, NOW - 5 * DAY + timedelta(hours=2)))
    loggers: dict[str, dict[str, Any]] = {
        "LOG-1": {"ship": "SHP-0001", "battery": 0.81, "due": NOW.date() + 400 * DAY, "age": 60},
        "LOG-2": {"ship": "SHP-0002", "battery": 0.12, "due": NOW.date() + 10 * DAY, "age": 120},
        "LOG-3": {
            "ship": "SHP-0008",
            "battery": 0.55,
            "due": NOW.date() - 2 * DAY,
            "age": 5 * 3600,
        },
        "LOG-4": {"ship": None, "battery": 0.09, "due": NOW.date() + 90 * DAY, "age": 7200},
    }
    alerts = [("SHP-0001", "critical", "open"), ("SHP-0002", "warning", "acknowledged"),
              ("SHP-0008", "major", "open"), ("SHP-0003", "major", "resolved")]  # fmt: skip
    decisions = [("SHP-0005", "release", "Quinn Quality", NOW - 3 * DAY),
                 ("SHP-0006", "quarantine", "Quinn Quality", NOW - DAY)]  # fmt: skip
    unit = SGTIN(GTIN(vax), "ABC123")
    pallet = _sscc(4711)
    # before the seeding transaction: the audit trail's chain takes one writer at a time
    qa_id = add_user(dsn, PEOPLE["qa"][0], "qa", full_name=PEOPLE["qa"][1])
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT set_config('coldchain.actor', 'test-seed', false)")
        for name, code in products.items():
            conn.execute(
                "INSERT INTO products (gtin, name, temp_min_c, temp_max_c) VALUES (%s, %s, 2, 8)",
                (code, name),
            )
        ids: dict[str, int] = {}
        for x in s:
            started = x.departed if x.status not in ("planned", "cancelled") else None
            arrived = started + DAY if started and x.status not in ("in_transit",) else None
            row = conn.execute(
                "INSERT INTO shipments (reference, product_gtin, origin, destination, status,"
                " carrier, planned_departure, started_at, arrived_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING shipment_id",
                (x.ref, x.gtin, x.origin, x.destination, x.status, x.carrier, x.departed,
                 started, arrived),
            ).fetchone()  # fmt: skip
            assert row is not None
            ids[x.ref] = int(row[0])
            if x.po:
                conn.execute(
                    "INSERT INTO shipment_references (shipment_id, kind, value)"
                    " VALUES (%s, 'purchase_order', %s)",
                    (ids[x.ref], x.po),
                )
            for lot in x.lots:
                conn.execute(
                    "INSERT INTO shipment_items (shipment_id, gtin, lot, quantity)"
                    " VALUES (%s, %s, %s, 100)",
                    (ids[x.ref], x.gtin, lot),
                )
        for device, info in loggers.items():
            conn.execute(
                "INSERT INTO devices (device_id, model, calibration_due, interval_s)"
                " VALUES (%s, 'TL-300', %s, 60)",
                (device, info["due"]),
            )
            if info["ship"]:
                conn.execute(
                    "INSERT INTO device_assignments (device_id, shipment_id, during)"
                    " VALUES (%s, %s, tstzrange(%s, NULL))",
                    (device, ids[info["ship"]], NOW - 4 * DAY),
                )
        for x in s:
            for start, end in x.excursions:
                device = "LOG-1"
                conn.execute(
                    "INSERT INTO excursions (shipment_id, device_id, direction, start_ts, end_ts,"
                    " last_out_ts, min_c, max_c, degree_minutes, n_readings, alarm, alarm_at,"
                    " rule_key, thresholds) VALUES (%s, %s, 'high', %s, %s, %s, 8.2, 11.5, 42,"
                    " 20, true, %s, 'temp-high', %s)",
                    (ids[x.ref], device, start, end, end or NOW, start, Jsonb({"max": 8})),
                )
        for ref, severity, state in alerts:
            conn.execute(
                "INSERT INTO alerts (shipment_id, rule_key, severity, state, title, triggered_at,"
                " value, thresholds) VALUES (%s, %s, %s, %s, %s, %s, 9.4, %s)",
                (ids[ref], f"r-{ref}", severity, state, f"Alert of {ref}", NOW - DAY,
                 Jsonb({"max": 8})),
            )  # fmt: skip
        for ref, decision, signer, at in decisions:
            snap = conn.execute(
                "INSERT INTO report_snapshots (shipment_id, as_of, content_hash, evidence,"
                " created_by) VALUES (%s, %s, %s, '{}', 'quinn.qa') RETURNING snapshot_id",
                (ids[ref], at, secrets.token_hex(32)),
            ).fetchone()
            assert snap is not None
            conn.execute(
                "INSERT INTO dispositions (shipment_id, decision, reason, meaning,"
                " signer_user_id, signer_username, signer_name, signer_role, signed_at,"
                " snapshot_id, report_hash, signature_hash) VALUES (%s, %s, 'seeded', 'approval',"
                " %s, 'quinn.qa', %s, 'qa', %s, %s, %s, %s)",
                (ids[ref], decision, qa_id, signer, at, snap[0], secrets.token_hex(32),
                 secrets.token_hex(32)),
            )  # fmt: skip
        # A unit of lot L123 packed on a pallet, both on board SHP-0001.
        conn.execute(
            "INSERT INTO units (epc, kind, gtin, serial, lot, commissioned_at)"
            " VALUES (%s, 'sgtin', %s, %s, 'L123', %s)",
            (unit.epc_uri(CP), vax, unit.serial, NOW - 9 * DAY),
        )
        conn.execute(
            "INSERT INTO units (epc, kind, sscc, commissioned_at) VALUES (%s, 'sscc', %s, %s)",
            (pallet.epc_uri(CP), pallet.value, NOW - 9 * DAY),
        )
        conn.execute(
            "INSERT INTO aggregations (parent_epc, child_epc, during)"
            " VALUES (%s, %s, tstzrange(%s, NULL))",
            (pallet.epc_uri(CP), unit.epc_uri(CP), NOW - 3 * DAY),
        )
        conn.execute(
            "INSERT INTO shipment_units (shipment_id, epc, during) VALUES (%s, %s, tstzrange(%s, NULL))",
            (ids["SHP-0001"], pallet.epc_uri(CP), NOW - 2 * DAY),
        )
    ingest(
        dsn,
        [
            Reading(
                d, NOW - timedelta(seconds=info["age"]), 5.0, None, 47.56, 7.59, info["battery"]
            )
            for d, info in loggers.items()
        ],
    )
    return World(dsn, s, products, loggers, alerts, decisions, unit, pallet)


@pytest.fixture(scope="module")
def world(pg_cluster: PostgresCluster) -> Iterator[World]:
    """One database for the module, seeded once; a caller of every role."""
    name = f"t_ask_questions_{secrets.token_hex(3)}"
    with psycopg.connect(pg_cluster.superuser_dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE_DB), sql.Identifier(OWNER_USER)
            )
        )
    try:
        w = _seed(pg_cluster.superuser_dsn(name))
        w.dsn = _dsn(pg_cluster.port, name, user=APP_USER, password=APP_PASSWORD)
        with psycopg.connect(w.dsn) as conn:
            roles: tuple[Role, ...] = ("viewer", "operator", "admin")
            for role in roles:
                username, full = PEOPLE[role]
                add_user(w.dsn, username, role, full_name=full)
            users: dict[Role, int] = dict(
                conn.execute("SELECT role, user_id FROM app_users").fetchall()
            )
        with psycopg.Connection[DictRow].connect(w.dsn, row_factory=dict_row) as conn:
            for role, user_id in users.items():
                principal = principal_for_secret(conn, issue_token(w.dsn, user_id))
                assert principal is not None
                w.callers[role] = Caller.of(principal, "203.0.113.7")
        yield w
    finally:
        with psycopg.connect(pg_cluster.superuser_dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="module")
def conn(world: World) -> Iterator[Conn]:
    with psycopg.Connection[DictRow].connect(
        world.dsn, autocommit=True, row_factory=dict_row, options="-c TimeZone=UTC"
    ) as c:
        yield c


def ask(conn: Conn, world: World, question: str, role: Role = "viewer") -> Answer:
    return answer(conn, world.callers[role], question, now=NOW, settings=SETTINGS)


def figure(a: Answer, label: str) -> str:
    found = [f.value for f in a.figures if f.label == label]
    assert found, f"no figure {label!r} in {[f.label for f in a.figures]}: {a.text}"
    return found[0]


# ---- the hand computations ----------------------------------------------------------------


def period_of(phrase: str) -> tuple[datetime, datetime]:
    """The range a phrase names, read by the pure date reader (tested on its own below)."""
    found = find_period(tokens(phrase), NOW)
    assert found is not None
    return found[0].since, found[0].until


def ships(w: World, **want: Any) -> list[Ship]:
    """The seeded shipments with every given attribute (``status`` may be a tuple)."""
    out = []
    for x in w.ships:
        ok = True
        for key, value in want.items():
            have = getattr(x, key)
            ok &= have in value if isinstance(value, tuple) else have == value
        out.append(x) if ok else None
    return out


def departed_in(xs: list[Ship], since: datetime, until: datetime) -> list[Ship]:
    return [x for x in xs if since <= x.departed < until]


def excursions_in(xs: list[Ship], since: datetime, until: datetime) -> list[tuple[str, Any]]:
    return [(x.ref, e) for x in xs for e in x.excursions if e[0] < until and (e[1] or NOW) >= since]


# ---- the questions -------------------------------------------------------------------------

Check = Callable[[Answer, World], object]


def count_of(label: str, expected: Callable[[World], int]) -> Check:
    def check(a: Answer, w: World) -> None:
        assert a.understood, a.text
        assert int(figure(a, label)) == expected(w), a.text

    return check


def status_of(ref: str) -> Check:
    def check(a: Answer, w: World) -> None:
        assert a.understood and a.intent in ("status", "shipments"), a.text
        assert figure(a, f"{ref} status") == STATE_LABELS[w.ship(ref).status]  # type: ignore[index]
        assert int(figure(a, f"{ref} excursions")) == len(w.ship(ref).excursions)
        assert any(link.href == f"/shipments/{ref}" for link in a.links)

    return check


def not_found(word: str, suggests: str | None = None) -> Check:
    def check(a: Answer, w: World) -> None:
        assert a.understood and a.text.startswith("I could not find"), a.text
        assert word in a.text and not a.figures
        if suggests:
            assert any(suggests in s for s in a.suggestions), a.suggestions

    return check


def not_understood(a: Answer, w: World) -> None:
    assert not a.understood and a.text.startswith("I could not understand"), a.text
    assert 3 <= len(a.suggestions) <= 5 and set(a.suggestions) <= set(EXAMPLES)
    assert not a.figures


def refused(permission: str) -> Check:
    def check(a: Answer, w: World) -> None:
        assert a.understood and a.text.startswith("You may not see"), a.text
        assert permission in a.text and not a.figures and a.extra["refused"] == permission

    return check


def refs_are(expected: Callable[[World], list[str]]) -> Check:
    def check(a: Answer, w: World) -> None:
        assert a.understood, a.text
        assert sorted(a.extra["references"]) == sorted(expected(w)), a.text

    return check


def both(*checks: Check) -> Check:
    def check(a: Answer, w: World) -> None:
        for c in checks:
            c(a, w)

    return check


def where_of(ref: str) -> Check:
    def check(a: Answer, w: World) -> None:
        assert a.intent == "where", a.text
        assert figure(a, f"{ref} position") == "47.5600, 7.5900"

    return check


def unit_in(ref: str, status: str) -> Check:
    def check(a: Answer, w: World) -> None:
        assert a.intent in ("unit", "where"), a.text
        assert any(f.label.endswith("shipment") and f.value == ref for f in a.figures), a.text
        assert any(f.label.endswith("verdict") and f.value == status for f in a.figures), a.text
        assert any(link.href.startswith("/passport?id=") for link in a.links)

    return check


def lot_count(lot: str) -> Check:
    return count_of(
        f"Shipments with lot {lot}", lambda w: len([x for x in w.ships if lot in x.lots])
    )


def battery_low(w: World) -> int:
    return sum(1 for i in w.loggers.values() if i["battery"] < SETTINGS.alerts.battery_threshold)


def calibration_due(w: World) -> int:
    return sum(1 for i in w.loggers.values() if calibration_status(i["due"], NOW.date()) != "ok")


def offline(w: World) -> int:
    limit = 60 * SETTINGS.alerts.offline_factor
    return sum(1 for i in w.loggers.values() if i["ship"] and i["age"] > limit)


def in_condition(w: World, condition: str) -> list[str]:
    """The fleet's condition by hand: the worst unresolved alert (all seeded readings are in
    range, and every offline logger rides in a shipment with a stronger alert)."""
    worst: dict[str, str] = {}
    rank = {"warning": 1, "major": 2, "critical": 3}
    for ref, severity, state in w.alerts:
        if state != "resolved" and rank[severity] > rank.get(worst.get(ref, ""), 0):
            worst[ref] = severity
    want = ("major", "critical") if condition == "alarm" else (condition,)
    return [ref for ref, severity in worst.items() if severity in want]


def alerts_where(
    states: tuple[str, ...], severities: tuple[str, ...] = ()
) -> Callable[[World], int]:
    return lambda w: sum(
        1 for _, sev, st in w.alerts if st in states and (not severities or sev in severities)
    )


def decisions_in(kind: str | None, phrase: str) -> Callable[[World], int]:
    since, until = period_of(phrase)
    return lambda w: sum(
        1 for _, d, _, at in w.decisions if (kind is None or d == kind) and since <= at < until
    )


ALL = ("open", "acknowledged")
QUESTIONS: list[tuple[str, Check]] = [
    # shipment status, by reference, by purchase order, with typos
    ("What is the status of SHP-0001?", status_of("SHP-0001")),
    ("status of shp-0003", status_of("SHP-0003")),
    ("SHP-0006?", status_of("SHP-0006")),
    ("How is shipment SHP-0002 doing", status_of("SHP-0002")),
    ("staus of SHP-0004 please", status_of("SHP-0004")),
    ("what's the status of PO 5829?", status_of("SHP-0001")),
    ("status PO-7001", status_of("SHP-0003")),
    ("order 5829 status", status_of("SHP-0001")),
    # unknown references
    ("What is the status of SHP-9999?", not_found("SHP-9999", "SHP-")),
    ("where is PO 424242", not_found("424242")),
    ("status of SHP-00011", not_found("SHP-00011", "SHP-0001")),
    # where is
    ("Where is SHP-0001?", where_of("SHP-0001")),
    ("where's shipment SHP-0002 right now", where_of("SHP-0002")),
    ("location of PO 5829", where_of("SHP-0001")),
    # units and pallets, every GS1 form
    ("where is pallet {pallet}?", unit_in("SHP-0001", "exposed")),
    ("where is pallet (00){pallet}", unit_in("SHP-0001", "exposed")),
    ("is unit {unit_element} exposed?", unit_in("SHP-0001", "exposed")),
    ("is {unit_link} recalled", unit_in("SHP-0001", "exposed")),
    ("where is {unit_epc}", unit_in("SHP-0001", "exposed")),
    (
        "is unit {unknown_unit} sellable?",
        lambda a, w: ("I could not find" in a.text) or pytest.fail(a.text),
    ),
    # lots
    ("which shipments carried lot L123?", lot_count("L123")),
    ("lot l123", lot_count("L123")),
    ("{lot_element}", lot_count("L123")),
    ("which shipments carried lot NOPE9?", both(lot_count("NOPE9"), lambda a, w: None)),
    # shipments matching filters
    (
        "How many shipments are in transit?",
        count_of("Shipments", lambda w: len(ships(w, status="in_transit"))),
    ),
    ("shipmnets in tranist", count_of("Shipments", lambda w: len(ships(w, status="in_transit")))),
    ("which shipments from Basel", count_of("Shipments", lambda w: len(ships(w, origin="Basel")))),
    (
        "shipments from basle to milan",
        refs_are(lambda w: [x.ref for x in ships(w, origin="Basel", destination="Milan")]),
    ),
    (
        "how many shipments to Milan",
        count_of("Shipments", lambda w: len(ships(w, destination="Milan"))),
    ),
    (
        "Amsterdam → Milan shipments",
        count_of("Shipments", lambda w: len(ships(w, origin="Amsterdam", destination="Milan"))),
    ),
    (
        "shipments with SkyCold Air",
        count_of("Shipments", lambda w: len(ships(w, carrier="SkyCold Air"))),
    ),
    (
        "how many shipments did Frigo Expres carry",
        count_of("Shipments", lambda w: len(ships(w, carrier="Frigo Express"))),
    ),
    (
        "shipments of Insulin Pen",
        count_of("Shipments", lambda w: len(ships(w, gtin=w.products["Insulin Pen 3 ml"]))),
    ),
    (
        "Vaxigrip shipments in transit",
        count_of(
            "Shipments",
            lambda w: len(ships(w, gtin=w.products["Vaxigrip 10 x 0.5 ml"], status="in_transit")),
        ),
    ),
    ("quarantined shipments", count_of("Shipments", lambda w: len(ships(w, status="quarantined")))),
    (
        "list cancelled shipments",
        count_of("Shipments", lambda w: len(ships(w, status="cancelled"))),
    ),
    (
        "how many shipments are planned",
        count_of("Shipments", lambda w: len(ships(w, status="planned"))),
    ),
    (
        "shipments from Basel last month",
        count_of(
            "Shipments",
            lambda w: len(departed_in(ships(w, origin="Basel"), *period_of("last month"))),
        ),
    ),
    (
        "shipments in the past 48 hours",
        count_of("Shipments", lambda w: len(departed_in(w.ships, *period_of("past 48 hours")))),
    ),
    (
        "shipments this week",
        count_of("Shipments", lambda w: len(departed_in(w.ships, *period_of("this week")))),
    ),
    (
        "shipments since {since_day}",
        count_of(
            "Shipments",
            lambda w: len(departed_in(w.ships, *period_of(_fill("since {since_day}", w)))),
        ),
    ),
    (
        "which shipments are in alarm",
        refs_are(
            lambda w: sorted(
                {r for r, sev, st in w.alerts if st != "resolved" and sev in ("major", "critical")}
            )
        ),
    ),
    (
        "Vaxigrip shipments in alarm",
        refs_are(
            lambda w: [
                r
                for r in in_condition(w, "alarm")
                if w.ship(r).gtin == w.products["Vaxigrip 10 x 0.5 ml"]
            ]
        ),
    ),
    (
        "shipments from Basel with a warning",
        refs_are(lambda w: [r for r in in_condition(w, "warning") if w.ship(r).origin == "Basel"]),
    ),
    (
        "shipments to New York JFK",
        count_of("Shipments", lambda w: len(ships(w, destination="New York JFK"))),
    ),
    # excursions
    (
        "Which shipments from Basel had excursions last month?",
        count_of(
            "Excursions",
            lambda w: len(excursions_in(ships(w, origin="Basel"), *period_of("last month"))),
        ),
    ),
    (
        "excursions in the past 48 hours",
        count_of("Excursions", lambda w: len(excursions_in(w.ships, *period_of("past 48 hours")))),
    ),
    (
        "excurions yesterday",
        count_of("Excursions", lambda w: len(excursions_in(w.ships, *period_of("yesterday")))),
    ),
    (
        "how many excursions this week",
        count_of("Excursions", lambda w: len(excursions_in(w.ships, *period_of("this week")))),
    ),
    (
        "excursions of SHP-0010",
        count_of("SHP-0010 excursions", lambda w: len(w.ship("SHP-0010").excursions)),
    ),
    ("did SHP-0002 have any excursions", count_of("SHP-0002 excursions", lambda w: 0)),
    (
        "temperature excursions to New York JFK",
        count_of(
            "Excursions",
            lambda w: len(
                excursions_in(ships(w, destination="New York JFK"), NOW - 1000 * DAY, NOW + DAY)
            ),
        ),
    ),
    (
        "excursions in {month_name}",
        count_of(
            "Excursions",
            lambda w: len(excursions_in(w.ships, *period_of(_fill("in {month_name}", w)))),
        ),
    ),
    # alerts
    (
        "Which alerts are unacknowledged?",
        count_of("Unacknowledged alerts", alerts_where(("open",))),
    ),
    (
        "open critical alerts",
        count_of("Unresolved critical alerts", alerts_where(ALL, ("critical",))),
    ),
    ("how many alarms", count_of("Unresolved alerts", alerts_where(ALL))),
    ("major alerts", count_of("Unresolved major alerts", alerts_where(ALL, ("major",)))),
    ("resolved alerts", count_of("Resolved alerts", alerts_where(("resolved",)))),
    (
        "alerts of SHP-0001",
        count_of(
            "Unresolved alerts",
            lambda w: sum(1 for r, _, st in w.alerts if r == "SHP-0001" and st != "resolved"),
        ),
    ),
    # loggers
    (
        "Which loggers have a low battery?",
        count_of(
            f"Loggers with a battery below {SETTINGS.alerts.battery_threshold:.0%}", battery_low
        ),
    ),
    (
        "loggers due for calibraton",
        lambda a, w: count_of(a.figures[0].label, calibration_due)(a, w),
    ),
    ("which loggers are offline", lambda a, w: count_of(a.figures[0].label, offline)(a, w)),
    (
        "when was LOG-3 last seen",
        lambda a, w: (
            figure(a, "LOG-3 last seen").startswith(
                f"{NOW - timedelta(seconds=5 * 3600):%Y-%m-%d %H:%M}"
            )
            or pytest.fail(a.text)
        ),
    ),
    (
        "battery of logger LOG-2",
        lambda a, w: (
            figure(a, "LOG-2 battery") == f"{w.loggers['LOG-2']['battery']:.0%}"
            or pytest.fail(a.text)
        ),
    ),
    # QA decisions
    (
        "Which shipments are awaiting QA review?",
        count_of(
            "Shipments awaiting review or under review",
            lambda w: len(ships(w, status=("arrived", "under_review"))),
        ),
    ),
    (
        "who signed SHP-0005?",
        lambda a, w: (
            figure(a, "SHP-0005 signed by")
            == next(s for r, _, s, _ in w.decisions if r == "SHP-0005")
            or pytest.fail(a.text)
        ),
    ),
    (
        "shipments released last week",
        count_of("Signed release decisions last week", decisions_in("release", "last week")),
    ),
    (
        "what was quarantined in the past 48 hours",
        count_of(
            "Signed quarantine decisions in the past 48 hours",
            decisions_in("quarantine", "past 48 hours"),
        ),
    ),
    ("who signed SHP-0001", count_of("SHP-0001 signed dispositions", lambda w: 0)),
    # restricted reads
    ("show the audit trail", refused("audit.read")),
    ("list users", refused("admin")),
    # help and what is not understood
    (
        "help",
        lambda a, w: (
            (a.intent == "help" and set(a.suggestions) == set(EXAMPLES)) or pytest.fail(a.text)
        ),
    ),
    ("what is the meaning of life?", not_understood),
    ("", not_understood),
    ("asdf qwerty", not_understood),
    ("book me a flight to Paris", not_understood),
]


def _fill(template: str, w: World) -> str:
    other = SGTIN(GTIN(w.unit.gtin.value), "NOSUCH1")
    since_day = NOW - 4 * DAY
    month = (NOW.replace(day=1) - DAY).strftime("%B")
    return template.format(
        pallet=w.pallet.value,
        unit_element=w.unit.element_string,
        unit_link=w.unit.digital_link,
        unit_epc=w.unit.epc_uri(CP),
        unknown_unit=other.element_string,
        lot_element=f"(01){w.unit.gtin.value}(10)L123",
        since_day=f"{since_day.day} {since_day:%b}",
        month_name=month,
    )


def test_there_are_sixty_questions_or_more() -> None:
    assert len(QUESTIONS) >= 60


@pytest.mark.parametrize(("question", "check"), QUESTIONS, ids=[q for q, _ in QUESTIONS])
def test_the_question_is_answered(conn: Conn, world: World, question: str, check: Check) -> None:
    text = _fill(question, world)
    a = ask(conn, world, text)
    check(a, world)
    # never invented: every figure names its source, and every source is listed
    assert all(f.source in a.queries for f in a.figures), (a.figures, a.queries)
    assert a.answerer == "default" and a.question == text.strip()


def test_the_restricted_reads_answer_those_allowed(conn: Conn, world: World) -> None:
    trail = ask(conn, world, "show the audit trail", "qa" if "qa" in world.callers else "admin")
    total = conn.execute("SELECT count(*) AS n FROM audit_log").fetchone()
    assert total is not None and int(figure(trail, "Audit entries")) == total["n"]
    people = ask(conn, world, "list users", "admin")
    n = conn.execute("SELECT count(*) AS n FROM app_users").fetchone()
    assert n is not None and int(figure(people, "People")) == n["n"]
    assert ask(conn, world, "list users", "operator").text.startswith("You may not see")


@pytest.mark.parametrize(
    "question",
    [
        "'; DROP TABLE shipments; --",
        "status of SHP-0001'; --",
        "🙂 where is my 📦?",
        "(01)12345(21)",
        "urn:epc:id:sgtin:not.an.epc",
        "https://id.gs1.org/01/123/21/x",
        "since 31 feb",
        "excursions of LOG-1",
        "x" * 5000,
    ],
)
def test_bad_input_gets_an_answer_and_changes_nothing(
    conn: Conn, world: World, question: str
) -> None:
    before = conn.execute("SELECT count(*) AS n FROM shipments").fetchone()
    a = ask(conn, world, question)
    assert a.text and len(a.question) <= MAX_QUESTION_LENGTH
    assert all(f.source in a.queries for f in a.figures)
    assert conn.execute("SELECT count(*) AS n FROM shipments").fetchone() == before


def test_a_logger_named_is_answered_about_the_logger(conn: Conn, world: World) -> None:
    a = ask(conn, world, "excursions of LOG-1")
    assert a.intent == "loggers" and "LOG-1 battery" in {f.label for f in a.figures}


def test_a_reference_not_found_beside_one_found_is_said(conn: Conn, world: World) -> None:
    a = ask(conn, world, "status of SHP-0001 and SHP-9999")
    assert figure(a, "SHP-0001 status") == STATE_LABELS[world.ship("SHP-0001").status]  # type: ignore[index]
    assert a.text.endswith("I could not find SHP-9999.")


@pytest.mark.parametrize(
    "identifier", ["https://id.gs1.org/01/123/21/x", "urn:epc:id:sgtin:not.an.epc", "(01)12(21)A"]
)
def test_an_unreadable_identifier_is_said_with_why(
    conn: Conn, world: World, identifier: str
) -> None:
    a = ask(conn, world, f"where is {identifier}")
    assert a.text.startswith(f"I could not read the identifier {identifier}: ") and not a.figures
