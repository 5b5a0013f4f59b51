"""docker-compose.yml cannot run here (no Docker engine); these checks keep it honest by reading."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from typer.main import get_command

from coldchain.cli import app
from coldchain.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PROJECT_SERVICES = {"migrate", "ingest", "rules", "web", "simulate"}


def test_names_every_service() -> None:
    assert set(COMPOSE["services"]) == {"timescaledb", "mosquitto"} | PROJECT_SERVICES


@pytest.mark.parametrize("name", sorted(PROJECT_SERVICES))
def test_project_services_use_the_one_image_and_real_subcommands(name: str) -> None:
    service = COMPOSE["services"][name]
    assert service["build"] == "."
    cli: Any = get_command(app)  # typer's group; not a click.Group subclass in every version
    command = service["command"]
    sub: Any = cli.commands[command[0]]
    if hasattr(sub, "commands"):
        assert command[1] in sub.commands
    # every option the compose file passes exists on that subcommand
    options = {opt for p in sub.params for opt in p.opts + p.secondary_opts}
    for word in command[1:]:
        if word.startswith("--"):
            assert word in options, f"{name}: {word} is not an option of `coldchain {command[0]}`"


def _settings_path_exists(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    sub = field.annotation
    return (
        isinstance(sub, type)
        and issubclass(sub, BaseModel)
        and _settings_path_exists(sub, path[1:])
    )


def _env_of(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in service.get("environment", {}).items()}


@pytest.mark.parametrize("name", sorted(PROJECT_SERVICES))
def test_environment_matches_the_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env_of(COMPOSE["services"][name])
    for key in env:
        assert key.startswith("COLDCHAIN_"), key
        path = key.removeprefix("COLDCHAIN_").lower().split("__")
        assert _settings_path_exists(Settings, path), f"{key} is not a setting"
    for key in [k for k in os.environ if k.startswith("COLDCHAIN_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = Settings(_env_file=None)
    db = COMPOSE["services"]["timescaledb"]["environment"]
    assert (s.db.host, s.db.port) == ("timescaledb", 5432)
    assert s.db.name == db["POSTGRES_DB"]
    assert s.db.user == db["POSTGRES_USER"]
    assert s.db.password.get_secret_value() == db["POSTGRES_PASSWORD"]
    conf = (ROOT / "deploy" / "mosquitto.conf").read_text()
    listener = re.search(r"^listener (\d+)", conf, re.M)
    assert listener is not None
    assert (s.mqtt.host, s.mqtt.port) == ("mosquitto", int(listener.group(1)))
    assert s.stack.manage_services is False


def test_services_wait_for_what_they_need() -> None:
    services = COMPOSE["services"]
    for name in ("timescaledb", "mosquitto", "web"):
        assert "healthcheck" in services[name], name
    assert services["migrate"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    for name in ("ingest", "rules", "web"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["ingest"]["depends_on"]["mosquitto"]["condition"] == "service_healthy"


def test_dockerfile_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in (
        "coldchain",
        "ingest",
        "alerts",
        "dashboard",
        "simulator",
        "db",
        "api",
        "traceability",
        "security",
        "reports",
    ):
        assert f"COPY {package} ./{package}" in dockerfile
