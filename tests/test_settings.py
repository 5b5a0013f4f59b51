"""The one settings object: environment variables, defaults, and the README that documents them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from coldchain.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def env_names(model: type[BaseModel], prefix: str = "COLDCHAIN_") -> Iterator[str]:
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from env_names(ann, f"{prefix}{name.upper()}__")
        else:
            yield f"{prefix}{name.upper()}"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("COLDCHAIN_")]:
        monkeypatch.delenv(key)


def test_every_setting_is_documented_in_the_readme_and_nothing_else() -> None:
    documented = set(re.findall(r"`(COLDCHAIN_[A-Z_]+)`", README))
    actual = set(env_names(Settings))
    assert actual - documented == set(), "settings missing from the README"
    assert documented - actual == set(), "the README documents settings that do not exist"


def test_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLDCHAIN_DB__PORT", "6543")
    monkeypatch.setenv("COLDCHAIN_MQTT__TOPIC_ROOT", "acme/v1")
    monkeypatch.setenv("COLDCHAIN_INGEST__BATCH_MAX_READINGS", "10")
    s = Settings(_env_file=None)
    assert s.db.port == 6543
    assert s.mqtt.topic_root == "acme/v1"
    assert s.ingest.batch_max_readings == 10
    assert s.db.dsn == "postgresql://coldchain:coldchain@127.0.0.1:6543/coldchain"


def test_dot_env_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("COLDCHAIN_WEB__PORT=9000\n")
    assert Settings(_env_file=env).web.port == 9000


def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLDCHAIN_INGEST__BATCH_MAX_READINGS", "0")
    with pytest.raises(ValidationError, match="batch_max_readings"):
        Settings(_env_file=None)


def test_password_is_escaped_in_the_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLDCHAIN_DB__PASSWORD", "p@ss/w:rd")
    assert "p%40ss%2Fw%3Ard@" in Settings(_env_file=None).db.dsn
