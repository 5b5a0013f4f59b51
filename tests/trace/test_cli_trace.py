"""``coldchain epcis import|export`` and ``coldchain passport`` against the real database."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from coldchain.settings import Settings
from launcher.cli import app
from tests.fixtures.auth import PASSWORD, add_user
from tests.trace.scenario import LOT, T0, document, event, scenario_document, seed_rows
from tests.trace.test_api_trace import official_validator
from tests.trace.test_epcis_import import official_documents

pytestmark = pytest.mark.integration


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI pointed at this test's database through the environment, as in production."""
    db = settings.db
    for key, value in {
        "HOST": db.host,
        "PORT": str(db.port),
        "NAME": db.name,
        "USER": db.user,
        "PASSWORD": db.password.get_secret_value(),
    }.items():
        monkeypatch.setenv(f"COLDCHAIN_DB__{key}", value)
    monkeypatch.setenv("COLDCHAIN_LOG_LEVEL", "WARNING")
    return CliRunner()


def test_import_export_and_passport_commands(
    runner: CliRunner, db_dsn: str, tmp_path: Path
) -> None:
    s = seed_rows(db_dsn)
    ours = tmp_path / "multi-leg.jsonld"
    ours.write_text(json.dumps(scenario_document(s)))
    files = [str(p) for p in official_documents()] + [str(ours)]
    result = runner.invoke(app, ["epcis", "import", *files])
    assert result.exit_code == 0, result.output
    assert "multi-leg.jsonld: 11 new event(s), 0 already known, 8 unit(s) created" in result.output
    assert "SensorDataExample14.jsonld: 1 new event(s)" in result.output
    assert "1 identifier(s) not tracked" in result.output  # the GRAI

    again = runner.invoke(app, ["epcis", "import", str(ours)])
    assert again.exit_code == 0 and "0 new event(s), 11 already known" in again.output

    broken = tmp_path / "broken.json"
    bad = event("ObjectEvent", T0, epcList=[s.epc("S4")], action="OBSERVE")
    bad["eventTime"] = "soon"
    broken.write_text(json.dumps(document([bad])))
    copy = tmp_path / "copy.jsonld"
    shutil.copy(ours, copy)
    refused = runner.invoke(app, ["epcis", "import", str(broken), str(copy)])
    assert refused.exit_code == 1
    assert "broken.json: refused, nothing stored" in refused.output
    assert "/epcisBody/eventList/0/eventTime: 'soon' is not a 'date-time'" in refused.output
    assert "copy.jsonld: 0 new event(s)" in refused.output  # the other file still went in

    out = tmp_path / "shp1.jsonld"
    exported = runner.invoke(app, ["epcis", "export", "--shipment", "SHP-1", "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    assert list(official_validator().iter_errors(json.loads(out.read_text()))) == []
    unit = runner.invoke(app, ["epcis", "export", "--unit", s.sgtin("S1").digital_link])
    assert unit.exit_code == 0
    assert list(official_validator().iter_errors(json.loads(unit.stdout))) == []
    assert runner.invoke(app, ["epcis", "export"]).exit_code != 0

    passport = runner.invoke(app, ["passport", f"]d201{s.gtin}17301231" + "10LOT-A\x1d21S1"])
    assert passport.exit_code == 0, passport.output
    text = passport.stdout
    assert text.startswith(f"{s.epc('S1')}  [EXPOSED]")
    assert f"Lot       {LOT}" in text and "in SHP-1" in text and "in SHP-2" in text
    assert "Out of range 1 h 00 min" in text
    as_json = json.loads(runner.invoke(app, ["passport", s.epc("S3"), "--json"]).stdout)
    assert as_json["verification"]["status"] == "exposed"
    assert len(as_json["pieces"]) == 1
    missing = runner.invoke(app, ["passport", s.epc("NOPE")])
    assert missing.exit_code == 1 and "unknown" in missing.output


def test_recalls_add_as_an_authenticated_qa_person_and_list(runner: CliRunner, db_dsn: str) -> None:
    gtin = seed_rows(db_dsn).gtin
    add_user(db_dsn, "quinn.qa", "qa", full_name="Quinn Quality")
    add_user(db_dsn, "adam.admin", "admin", full_name="Adam Admin")

    def add(*args: str, stdin: str = f"{PASSWORD}\n") -> Any:
        return runner.invoke(
            app, ["recalls", "add", *args, "--password-stdin"], input=stdin, catch_exceptions=False
        )

    ok = add(gtin, "--lot", LOT, "--reason", "Sub-potent", "--user", "quinn.qa")
    assert ok.exit_code == 0, ok.output
    assert f"recorded by quinn.qa: GTIN {gtin} (Vaxigrip 10 x 0.5 ml), lot {LOT}" in ok.output
    wrong = add(gtin, "--reason", "x", "--user", "quinn.qa", stdin="not-my-password\n")
    assert wrong.exit_code == 1 and "wrong user name or password" in wrong.output
    admin = add(gtin, "--reason", "x", "--user", "adam.admin")
    assert admin.exit_code == 1 and "qa role" in admin.output
    bad = add(gtin[:-1] + "0", "--reason", "x", "--user", "quinn.qa")
    assert bad.exit_code == 1 and "check digit" in bad.output
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute("SELECT gtin, lot, reason, recalled_by FROM recalls").fetchall()
        actor = conn.execute("SELECT actor FROM audit_log WHERE entity = 'recalls'").fetchall()
    assert rows == [(gtin, LOT, "Sub-potent", "quinn.qa")]  # only the first one went in
    assert actor == [("quinn.qa",)]

    listed = runner.invoke(app, ["recalls", "list", "--lot", LOT])
    assert listed.exit_code == 0, listed.output
    (line,) = listed.stdout.splitlines()
    assert gtin in line and LOT in line and "quinn.qa" in line and line.endswith("Sub-potent")
    none = runner.invoke(app, ["recalls", "list", "--lot", "OTHER"])
    assert none.stdout.strip() == "no recalls"
