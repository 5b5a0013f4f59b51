"""docker-compose.yml cannot run here (no Docker engine); these checks keep it honest by reading
it, and by running its broker configuration on the real Mosquitto with the files that its
`provision` service's command writes."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import psycopg
import pytest
import yaml
from pydantic import BaseModel
from typer.main import get_command
from typer.testing import CliRunner

from coldchain.settings import Settings
from coldchain.telemetry import Reading, reading_payload, telemetry_topic
from launcher.cli import app
from launcher.localstack import auth_plugin, free_port, wait_for_port
from security import devices
from tests.fixtures.web import add_device

ROOT = Path(__file__).resolve().parents[1]
RAW = (ROOT / "docker-compose.yml").read_text()
MOSQUITTO_CONF = (ROOT / "deploy" / "mosquitto.conf").read_text()
PROJECT_SERVICES = {"migrate", "provision", "ingest", "rules", "automate", "web", "simulate"}
#: The services that run the platform's stages, against the services' database role.
STAGES = PROJECT_SERVICES - {"migrate"}

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def _interpolate(value: Any) -> Any:
    """What compose makes of the file with no variable set: ``${VAR:-default}`` is the default,
    ``$$`` a dollar. Any other form (a bare ``$VAR``, ``${VAR}`` without default, ``:?``) would
    need a ``.env`` to start, so it is refused here."""
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    if not isinstance(value, str):
        return value

    def default(m: re.Match[str]) -> str:
        assert m.group(2) is not None, f"{m.group(0)} has no default"
        return m.group(2).removeprefix(":-")

    text = _VARIABLE.sub(default, value.replace("$$", "\0"))
    assert "$" not in text, f"unsupported interpolation in {value!r}"
    return text.replace("\0", "$")


COMPOSE = _interpolate(yaml.safe_load(RAW))
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_names_every_service() -> None:
    assert set(SERVICES) == {"timescaledb", "mosquitto"} | PROJECT_SERVICES


def _subcommand(command: list[str]) -> Any:
    cli: Any = get_command(app)  # typer's group; not a click.Group subclass in every version
    sub: Any = cli.commands[command[0]]
    if hasattr(sub, "commands"):
        assert command[1] in sub.commands
        sub = sub.commands[command[1]]
    return sub


def _option_value(command: list[str], option: str) -> str:
    assert command.count(option) == 1, f"{option} given {command.count(option)} times"
    return command[command.index(option) + 1]


@pytest.mark.parametrize("name", sorted(PROJECT_SERVICES))
def test_project_services_use_the_one_image_and_real_subcommands(name: str) -> None:
    service = SERVICES[name]
    assert service["build"] == "."
    command = service["command"]
    sub = _subcommand(command)
    # every option the compose file passes exists on that subcommand, and takes a value exactly
    # when the next word is one
    params = {opt: p for p in sub.params for opt in p.opts + p.secondary_opts}
    for i, word in enumerate(command):
        if word.startswith("--"):
            assert word in params, f"{name}: {word} is not an option of `coldchain {command[0]}`"
            takes_value = not params[word].is_flag
            has_value = i + 1 < len(command) and not command[i + 1].startswith("--")
            assert takes_value == has_value, f"{name}: {word}"


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


def _password_variables(service: dict[str, Any]) -> set[str]:
    """The environment variables a command reads passwords from (``--…-password-env VAR``)."""
    command = service.get("command", [])
    return {command[i + 1] for i, w in enumerate(command) if w.endswith("-password-env")}


def _settings_of(name: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in os.environ if k.startswith("COLDCHAIN_")]:
        monkeypatch.delenv(key)
    for key, value in _env_of(SERVICES[name]).items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)


@pytest.mark.parametrize("name", sorted(PROJECT_SERVICES))
def test_environment_matches_the_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env_of(SERVICES[name])
    extra = _password_variables(SERVICES[name])
    for key in env:
        if key in extra:
            continue
        assert key.startswith("COLDCHAIN_"), key
        path = key.removeprefix("COLDCHAIN_").lower().split("__")
        assert _settings_path_exists(Settings, path), f"{key} is not a setting"
    assert extra <= set(env), f"{name} reads a password from a variable it is not given"
    s = _settings_of(name, monkeypatch)
    db = SERVICES["timescaledb"]["environment"]
    assert (s.db.host, s.db.port) == ("timescaledb", 5432)
    assert s.db.name == db["POSTGRES_DB"]
    listener = re.search(r"^listener (\d+)", MOSQUITTO_CONF, re.M)
    assert listener is not None
    assert (s.mqtt.host, s.mqtt.port) == ("mosquitto", int(listener.group(1)))
    assert s.stack.manage_services is False


def test_only_migrate_connects_as_the_image_superuser(monkeypatch: pytest.MonkeyPatch) -> None:
    db = SERVICES["timescaledb"]["environment"]
    superuser, superuser_password = db["POSTGRES_USER"], db["POSTGRES_PASSWORD"]
    migrate = _settings_of("migrate", monkeypatch)
    assert migrate.db.owner_user == superuser
    assert migrate.db.owner_password is not None
    assert migrate.db.owner_password.get_secret_value() == superuser_password
    # ... and it creates the services' role (a member of coldchain_app) before migrating
    assert "--ensure-app-role" in SERVICES["migrate"]["command"]
    app_roles = set()
    for name in sorted(STAGES):
        s = _settings_of(name, monkeypatch)
        assert s.db.user != superuser, name
        assert s.db.owner_user is None, name
        assert superuser_password not in _env_of(SERVICES[name]).values(), name
        app_roles.add((s.db.user, s.db.password.get_secret_value()))
    # one services' role, the one migrate creates
    assert app_roles == {(migrate.db.user, migrate.db.password.get_secret_value())}
    assert migrate.db.password.get_secret_value() != superuser_password


def test_every_password_comes_from_one_variable_with_a_local_default() -> None:
    variables = _VARIABLE.findall(RAW)
    names = [name for name, _ in variables]
    assert {n for n in names if "PASSWORD" in n} == {
        "DB_OWNER_PASSWORD",
        "DB_APP_PASSWORD",
        "MQTT_INGEST_PASSWORD",
        "MQTT_SIMULATOR_PASSWORD",
    }
    assert len(names) == len(set(names)), "a variable is spelled out in more than one place"
    assert all(default for _, default in variables)
    # no password written out anywhere else in the file
    for default in {d.removeprefix(":-") for _, d in variables}:
        assert RAW.count(default) == 1, default


def _mount(service: dict[str, Any], volume: str) -> tuple[str, str]:
    """(target, mode) of a named volume in a service."""
    found = [v.split(":") for v in service["volumes"] if v.split(":")[0] == volume]
    assert len(found) == 1, f"{volume} is mounted {len(found)} times"
    target, *mode = found[0][1:]
    return target, (mode[0] if mode else "rw")


def test_the_broker_requires_passwords_and_reads_the_provisioned_files() -> None:
    conf = dict(
        line.split(" ", 1) for line in MOSQUITTO_CONF.splitlines() if line and line[0] != "#"
    )
    assert conf["allow_anonymous"] == "false"
    broker_target, broker_mode = _mount(SERVICES["mosquitto"], "mosquitto-auth")
    assert broker_mode == "ro"
    assert conf["password_file"] == f"{broker_target}/{devices.PASSWORD_FILE}"
    assert conf["acl_file"] == f"{broker_target}/{devices.ACL_FILE}"
    provision = SERVICES["provision"]
    target, mode = _mount(provision, "mosquitto-auth")
    assert mode == "rw" and _option_value(provision["command"], "--out") == target
    assert "mosquitto-auth" in COMPOSE["volumes"]


def test_provision_writes_files_the_broker_account_can_read() -> None:
    # eclipse-mosquitto starts as root and reads the (0600) files as its mosquitto account,
    # uid/gid 1883; the Dockerfile gives our image that account and the folder the volume copies.
    assert SERVICES["provision"]["user"] == "1883:1883"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "groupadd --system --gid 1883 mosquitto" in dockerfile
    assert "useradd --system --uid 1883 --gid 1883" in dockerfile
    target, _ = _mount(SERVICES["provision"], "mosquitto-auth")
    assert f"install -d -o mosquitto -g mosquitto -m 0700 {target}" in dockerfile


def _mqtt_account(service: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    s = _settings_of(service, monkeypatch)
    assert s.mqtt.username is not None and s.mqtt.password is not None, service
    return s.mqtt.username, s.mqtt.password.get_secret_value()


def test_ingester_and_simulator_log_in_with_the_accounts_provision_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provision = SERVICES["provision"]
    command, env = provision["command"], _env_of(provision)
    ingest_password = env[_option_value(command, "--ingest-password-env")]
    sim_password = env[_option_value(command, "--simulator-password-env")]
    assert _mqtt_account("ingest", monkeypatch) == (
        devices.INGEST_ACCOUNT.username,
        ingest_password,
    )
    assert _mqtt_account("simulate", monkeypatch) == (
        devices.SIMULATOR_ACCOUNT.username,
        sim_password,
    )
    for name in ("migrate", "rules", "automate", "web"):  # no MQTT client, no MQTT password
        assert _settings_of(name, monkeypatch).mqtt.password is None, name
    health = SERVICES["mosquitto"]["healthcheck"]["test"]
    assert health[:2] == ["CMD", "mosquitto_pub"]
    assert (_option_value(health, "-u"), _option_value(health, "-P")) == (
        devices.INGEST_ACCOUNT.username,
        ingest_password,
    )
    # Its own client id: the ingester's (the user name alone) would be taken over.
    assert _option_value(health, "-i").startswith(f"{devices.INGEST_ACCOUNT.username}:")


def test_the_broker_is_the_image_with_the_plugin_the_config_loads() -> None:
    assert SERVICES["mosquitto"]["build"] == "deploy/mosquitto-plugin"
    dockerfile = (ROOT / "deploy" / "mosquitto-plugin" / "Dockerfile").read_text()
    assert "FROM eclipse-mosquitto:2.0\n" in dockerfile
    assert "COPY --from=plugin /src/build/coldchain_auth.so /mosquitto/plugins/" in dockerfile
    conf = dict(
        line.split(" ", 1) for line in MOSQUITTO_CONF.splitlines() if line and line[0] != "#"
    )
    assert conf["plugin"] == "/mosquitto/plugins/coldchain_auth.so"
    assert conf["plugin_opt_subscribers"].split(",") == [
        devices.INGEST_ACCOUNT.username,
        devices.SIMULATOR_ACCOUNT.username,
    ]


def _waits_for(service: str, dependency: str) -> str:
    return str(SERVICES[service]["depends_on"][dependency]["condition"])


def test_services_wait_for_what_they_need() -> None:
    for name in ("timescaledb", "mosquitto", "web"):
        assert "healthcheck" in SERVICES[name], name
    assert _waits_for("migrate", "timescaledb") == "service_healthy"
    assert _waits_for("provision", "migrate") == "service_completed_successfully"
    # the broker starts only with its password file and ACL written
    assert _waits_for("mosquitto", "provision") == "service_completed_successfully"
    for name in ("ingest", "rules", "automate", "web"):
        assert _waits_for(name, "migrate") == "service_completed_successfully"
    for name in ("ingest", "simulate"):
        assert _waits_for(name, "mosquitto") == "service_healthy"
    assert _waits_for("simulate", "web") == "service_healthy"


def test_dockerfile_copies_every_package() -> None:
    """Every package the wheel installs, and the wheel installs every package beside the README
    but the tests and the benchmarks: a new package cannot be left out of the image."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.removesuffix("*") for pattern in include}
    folders = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages == folders
    assert {"coldchain", "launcher"} <= packages
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile


@pytest.mark.parametrize("password", [None, "", "short"])
def test_provision_refuses_a_missing_or_short_service_password(password: str | None) -> None:
    command = SERVICES["provision"]["command"]
    env: dict[str, str | None] = {
        **_env_of(SERVICES["provision"]),
        "MQTT_INGEST_PASSWORD": password,
    }
    result = CliRunner().invoke(app, command, env=env)
    assert result.exit_code == 2 and "MQTT_INGEST_PASSWORD" in result.output, result.output


# --- the compose broker configuration on the real Mosquitto --------------------------------------


class ComposeBroker:
    """deploy/mosquitto.conf run by the local mosquitto, its container paths moved to ``root``
    and its listener to a free loopback port; ``provision()`` runs the provision service's
    command against the test database, as that service does before the broker starts."""

    def __init__(self, root: Path, cli_env: dict[str, str]) -> None:
        self.root, self.cli_env = root, cli_env
        self.port = free_port()
        self.auth = root / "auth"
        self.data = root / "data"
        self.log = root / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        command = list(SERVICES["provision"]["command"])
        command[command.index("--out") + 1] = str(self.auth)
        self.command = command
        target, _ = _mount(SERVICES["mosquitto"], "mosquitto-auth")
        conf = MOSQUITTO_CONF
        for old, new in (
            ("listener 1883 0.0.0.0", f"listener {self.port} 127.0.0.1"),
            (f"{target}/", f"{self.auth}/"),
            ("/mosquitto/data/", f"{self.data}/"),
            ("/mosquitto/plugins/coldchain_auth.so", str(auth_plugin())),
        ):
            assert old in conf, old
            conf = conf.replace(old, new)
        self.config = root / "mosquitto.conf"
        self.config.write_text(conf)

    def provision(self) -> str:
        result = CliRunner().invoke(app, self.command, env=self.cli_env)
        assert result.exit_code == 0, result.output
        self.data.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            # In compose the files are written as the broker's account (`user: 1883:1883`);
            # here the broker, started as root, drops to the local mosquitto account alike.
            account = pwd.getpwnam("mosquitto")
            for path in [self.auth, *self.auth.iterdir(), self.data]:
                os.chown(path, account.pw_uid, account.pw_gid)
        return result.output

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [binary, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_for_port("127.0.0.1", self.port, 15)
        except Exception:
            self.stop()
            raise AssertionError(self.log.read_text()) from None

    def reload(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def logger_passwords(self) -> dict[str, str]:
        """Every logger password issued so far, from the credentials files provision wrote."""
        out: dict[str, str] = {}
        for path in sorted(self.auth.glob("device-credentials-*.csv")):
            with path.open() as f:
                out.update({r["mqtt_username"]: r["mqtt_password"] for r in csv.DictReader(f)})
        return out

    def healthcheck(self, password: str | None = None) -> int:
        """The mosquitto service's own health check, pointed at this broker."""
        test = list(SERVICES["mosquitto"]["healthcheck"]["test"][1:])
        test[test.index("-h") + 1] = "127.0.0.1"
        if password is not None:
            test[test.index("-P") + 1] = password
        return subprocess.run([*test, "-p", str(self.port)], capture_output=True).returncode


@pytest.fixture
def compose_broker(settings: Settings) -> Iterator[ComposeBroker]:
    # Not tmp_path: its parents are closed to others, and the broker reads as its own account.
    root = Path(tempfile.mkdtemp(prefix="coldchain-compose-"))
    root.chmod(0o755)
    env = _env_of(SERVICES["provision"])
    db = settings.db
    env.update(
        {
            "COLDCHAIN_DB__HOST": db.host,
            "COLDCHAIN_DB__PORT": str(db.port),
            "COLDCHAIN_DB__NAME": db.name,
            "COLDCHAIN_DB__USER": db.user,
            "COLDCHAIN_DB__PASSWORD": db.password.get_secret_value(),
            "COLDCHAIN_LOG_LEVEL": "WARNING",
        }
    )
    broker = ComposeBroker(root, env)
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)


def _client(port: int, user: str | None, password: str | None, name: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username=user,
        password=password,
        identifier=name,
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=5,
    )


async def _received(client: aiomqtt.Client, seconds: float) -> list[str]:
    got: list[str] = []

    async def read() -> None:
        async for m in client.messages:
            got.append(str(m.topic))

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), seconds)
    return got


@pytest.mark.integration
async def test_the_compose_broker_refuses_anonymous_clients_and_keeps_loggers_to_their_topics(
    compose_broker: ComposeBroker, db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = compose_broker
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        add_device(conn, "LOG-A")
        add_device(conn, "LOG-B")
    out = broker.provision()
    broker.start()
    root = _settings_of("provision", monkeypatch).mqtt.topic_root
    ingest_user, ingest_password = _mqtt_account("ingest", monkeypatch)
    sim_user, sim_password = _mqtt_account("simulate", monkeypatch)
    assert f"{ingest_user}: password from $MQTT_INGEST_PASSWORD" in out
    assert ingest_password not in out and sim_password not in out
    creds = broker.logger_passwords()
    assert set(creds) == {"LOG-A", "LOG-B"}

    with pytest.raises(aiomqtt.MqttError):
        async with _client(broker.port, None, None, "anonymous"):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with _client(broker.port, "LOG-A", creds["LOG-B"], "LOG-A"):
            pass
    assert broker.healthcheck() == 0
    assert broker.healthcheck("not-the-password") != 0

    now = Reading("LOG-A", datetime.now(UTC), 5.0)
    async with _client(broker.port, ingest_user, ingest_password, f"{ingest_user}:t") as sub:
        await sub.subscribe(f"{root}/devices/+/telemetry", qos=1)
        async with _client(broker.port, "LOG-A", creds["LOG-A"], "LOG-A") as a:
            # The plugin: a logger subscribes to nothing, and cannot be the ingester.
            refused = await a.subscribe(f"{root}/devices/+/telemetry", qos=1)
            assert [getattr(c, "value", c) for c in refused] == [0x87]
            await a.publish(telemetry_topic(root, "LOG-B"), reading_payload(now), qos=1)
            await a.publish(telemetry_topic(root, "LOG-A"), reading_payload(now), qos=1)
        with pytest.raises(aiomqtt.MqttError):
            async with _client(broker.port, "LOG-A", creds["LOG-A"], ingest_user):
                pass
        async with _client(broker.port, sim_user, sim_password, f"{sim_user}:t") as sim:
            await sim.publish(telemetry_topic(root, "LOG-B"), reading_payload(now), qos=1)
        got = await _received(sub, 1.5)
    # LOG-A's message on LOG-B's topic never arrived; the simulator's account may use any
    assert got == [telemetry_topic(root, "LOG-A"), telemetry_topic(root, "LOG-B")]

    # A logger registered later: provision again, then SIGHUP (README "Security", "Devices").
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        add_device(conn, "LOG-C")
    assert "1 new password(s)" in broker.provision()
    password_c = broker.logger_passwords()["LOG-C"]
    broker.reload()
    for _ in range(50):
        with contextlib.suppress(aiomqtt.MqttError):
            async with _client(broker.port, "LOG-C", password_c, "LOG-C") as c:
                await c.publish(telemetry_topic(root, "LOG-C"), b"{}", qos=1)
                break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"LOG-C was not let in after SIGHUP:\n{broker.log.read_text()}")
    # The reload re-registers the ACL file's check behind the plugin's: still refused.
    async with _client(broker.port, "LOG-C", password_c, "LOG-C") as c:
        refused = await c.subscribe(f"{root}/devices/+/telemetry", qos=1)
    assert [getattr(code, "value", code) for code in refused] == [0x87]
    # the service accounts kept their passwords through the second run
    assert broker.healthcheck() == 0
