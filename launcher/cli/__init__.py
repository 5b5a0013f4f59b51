"""The ``coldchain`` command: one entry point, a subcommand per running stage.

Settings come from ``COLDCHAIN_…`` environment variables (and ``.env``); see the README.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from coldchain.settings import Settings

if TYPE_CHECKING:
    from db.queries.web import Conn

app = typer.Typer(
    help="Cold-chain telemetry for pharmaceutical shipments.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

log = logging.getLogger("coldchain")


def _settings() -> Settings:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("yoyo").setLevel(logging.WARNING)  # one line per step is noise
    return settings


def _run_until_signal(main: object) -> None:
    """Run an ``async def main(stop)`` until SIGINT/SIGTERM, then let it finish cleanly."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)  # type: ignore[operator]

    asyncio.run(runner())


@db_app.command("migrate")
def db_migrate(
    ensure_app_role: Annotated[
        bool,
        typer.Option(
            help="First create (or update) the services' login role COLDCHAIN_DB__USER with "
            "COLDCHAIN_DB__PASSWORD, a member of coldchain_app that owns nothing; run as the "
            "owner COLDCHAIN_DB__OWNER_USER, who may create roles."
        ),
    ] = False,
) -> None:
    """Apply pending database migrations (idempotent)."""
    from db.migrate import migrate

    settings = _settings()
    if ensure_app_role:
        _ensure_app_role(settings)
    # As the schema owner when one is set (COLDCHAIN_DB__OWNER_USER), else as the services' role.
    applied = migrate(settings.db.migration_dsn)
    typer.echo(
        f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
    )


def _ensure_app_role(settings: Settings) -> None:
    """The services' role for a deployment without ``coldchain up`` (Docker Compose)."""
    import psycopg

    from db.roles import APP_GROUP, ensure_app_role

    db = settings.db
    if not db.owner_user or db.owner_user == db.user:
        typer.echo(
            "error: --ensure-app-role needs a schema owner other than the services' role: set "
            "COLDCHAIN_DB__OWNER_USER (and …OWNER_PASSWORD) to a role that may create roles",
            err=True,
        )
        raise typer.Exit(2)
    try:
        with psycopg.connect(db.migration_dsn, autocommit=True) as conn:
            ensure_app_role(conn, db.user, db.password.get_secret_value())
    except psycopg.errors.InsufficientPrivilege as exc:
        typer.echo(f"error: {db.owner_user} may not create the role {db.user}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"role {db.user}: login, member of {APP_GROUP}, password set")


@app.command()
def ingest() -> None:
    """Consume device telemetry from MQTT and store it in TimescaleDB."""
    from psycopg_pool import AsyncConnectionPool

    from ingest.service import Ingester, wait_for_database
    from ingest.sink import TimescaleSink

    settings = _settings()

    async def main(stop: asyncio.Event) -> None:
        # Started before the database (or while it recovers): wait, saying so, until it answers
        # or we are stopped. Later outages are the ingester's to ride out (it retries commits);
        # the pool's short timeout lets each retry, and a stop, happen within seconds.
        if not await wait_for_database(settings.db.dsn, stop):
            return
        pool = AsyncConnectionPool(settings.db.dsn, min_size=1, max_size=2, open=False, timeout=5)
        await pool.open()
        try:
            await Ingester(settings, TimescaleSink(pool)).run(stop)
        finally:
            await pool.close(timeout=1)

    _run_until_signal(main)


@app.command()
def rules() -> None:
    """Run the rules engine: excursions, MKT, budgets, alerts and their delivery."""
    from alerts.service import run_rules_engine

    settings = _settings()
    _run_until_signal(lambda stop: run_rules_engine(settings, stop))


@app.command()
def web(
    host: Annotated[
        str | None, typer.Option(help="Listen address (default from settings).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
) -> None:
    """Serve the HTTP API and the dashboard on one port."""
    import gc

    import uvicorn

    from api.app import create_app

    settings = _settings()
    web_app = create_app(settings)
    # What is loaded by now (Dash, Plotly, pandas: about a million objects) lives as long as
    # the process: keep it out of the collector's full passes, which otherwise add ~100 ms to
    # every other request that allocates a lot (bench/web_pages.py: the MKT/budget callback).
    gc.freeze()
    uvicorn.run(
        web_app,
        host=host or settings.web.host,
        port=port or settings.web.port,
        log_level=settings.log_level.lower(),
    )


@app.command()
def simulate(
    scenario: Annotated[
        str | None, typer.Option(help="Bundled scenario name (demo, ...) or a scenario file.")
    ] = None,
    speed: Annotated[
        float | None, typer.Option(help="Time acceleration (1 = real time); default from settings.")
    ] = None,
    fast: Annotated[
        bool, typer.Option(help="As fast as possible, with back-dated timestamps.")
    ] = False,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; default: the scenario's own.")
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(help="Simulated start time (UTC); fixed start + seed = identical bytes."),
    ] = None,
    ground_truth: Annotated[
        Path | None, typer.Option(help="Write what really happened (ground truth JSON) here.")
    ] = None,
    provision: Annotated[
        bool, typer.Option(help="Register the fleet (products, shipments, loggers) first.")
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Drive the platform with a simulated fleet of loggers, faults included."""
    from simulator.service import run_simulation

    settings = _settings()
    _run_until_signal(
        lambda stop: run_simulation(
            settings,
            scenario=scenario or settings.simulator.scenario,
            speed=None if fast else (speed or settings.simulator.speed),
            seed=seed if seed is not None else settings.simulator.seed,
            dsn=settings.db.dsn if provision else None,
            ground_truth_path=ground_truth,
            progress=progress and sys.stderr.isatty(),
            stop_event=stop,
            start=start.replace(tzinfo=UTC) if start and start.tzinfo is None else start,
        )
    )


@app.command()
def logger(
    device_id: Annotated[str, typer.Option(help="The virtual logger's id.")] = "SIM-VIRTUAL-01",
    temp: Annotated[float, typer.Option(help="Starting temperature, °C.")] = 5.0,
    interval: Annotated[float, typer.Option(help="Seconds between readings.")] = 10.0,
    register: Annotated[
        bool, typer.Option(help="Register the logger in the database if it is not known.")
    ] = True,
) -> None:
    """One virtual logger for manual testing: type a temperature (e.g. 12) and Enter to set it.

    It also obeys {"temp_c": 12} published to {root}/sim/{device_id}/set.
    """
    from simulator.service import run_virtual_logger

    settings = _settings()
    if register:
        import psycopg

        with psycopg.connect(settings.db.dsn) as conn:
            conn.execute(
                "INSERT INTO devices (device_id, model, interval_s) VALUES (%s, 'virtual', %s)"
                " ON CONFLICT (device_id) DO NOTHING",
                (device_id, max(1, round(interval))),
            )
    typer.echo(
        f"virtual logger {device_id}: type a temperature and Enter to change it; Ctrl-C stops"
    )
    _run_until_signal(
        lambda stop: run_virtual_logger(
            settings,
            device_id=device_id,
            temp_c=temp,
            interval_s=interval,
            read_stdin=sys.stdin.isatty(),
            stop_event=stop,
        )
    )


@app.command()
def up(
    simulator: Annotated[
        bool, typer.Option(help="Also run the simulator with the demo fleet.")
    ] = True,
    scenario: Annotated[str, typer.Option(help="Scenario for the simulator.")] = "demo",
) -> None:
    """Start the whole platform locally (database, broker, ingester, rules, web, simulator)."""
    from launcher.supervisor import run_stack

    settings = _settings()
    raise typer.Exit(run_stack(settings, simulator=simulator, scenario=scenario))


# --- track and trace --------------------------------------------------------------------------

epcis_app = typer.Typer(help="EPCIS 2.0 documents: import and export.", no_args_is_help=True)
app.add_typer(epcis_app, name="epcis")


def _trace_conn(settings: Settings) -> Conn:
    """A dict-row connection for the track-and-trace commands (imports open their own
    transaction)."""
    import psycopg
    from psycopg.rows import dict_row

    return psycopg.connect(
        settings.db.dsn, autocommit=True, row_factory=dict_row, options="-c TimeZone=UTC"
    )


@epcis_app.command("import")
def epcis_import(
    files: Annotated[list[Path], typer.Argument(help="EPCIS 2.0 JSON / JSON-LD documents.")],
) -> None:
    """Import EPCIS documents: each is validated against the official schema and stored whole,
    or refused with every reason and nothing stored. Importing again changes nothing."""
    from traceability.epcis_import import EPCISRejected, import_document, load_document

    settings = _settings()
    refused = 0
    with _trace_conn(settings) as conn:
        for path in files:
            try:
                document = load_document(path.read_bytes())
                result = import_document(
                    conn, document, source=path.name, today=datetime.now(UTC).date()
                )
            except EPCISRejected as error:
                refused += 1
                typer.echo(f"{path}: refused, nothing stored", err=True)
                for problem in error.problems:
                    typer.echo(f"  {problem}", err=True)
                continue
            except OSError as error:
                refused += 1
                typer.echo(f"{path}: cannot read: {error}", err=True)
                continue
            untracked = (
                f", {len(result.untracked)} identifier(s) not tracked" if result.untracked else ""
            )
            typer.echo(
                f"{path}: {result.n_new} new event(s), {result.n_known} already known, "
                f"{result.units_created} unit(s) created{untracked}"
            )
    if refused:
        raise typer.Exit(1)


@epcis_app.command("export")
def epcis_export(
    shipment: Annotated[str | None, typer.Option(help="Shipment id or reference.")] = None,
    unit: Annotated[
        str | None, typer.Option(help="SGTIN or SSCC in any form (EPC URI, Digital Link, ...).")
    ] = None,
    interval_min: Annotated[int, typer.Option(help="Sensor report interval, minutes.")] = 60,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export a shipment or a unit as an EPCIS 2.0 JSON-LD document."""
    import json

    from coldchain.errors import NotFoundError
    from coldchain.gs1 import IdentifierError
    from traceability.epcis_export import build_document, gather_shipment, gather_unit

    if (shipment is None) == (unit is None):
        raise typer.BadParameter("give exactly one of --shipment or --unit")
    settings = _settings()
    now = datetime.now(UTC)
    try:
        with _trace_conn(settings) as conn:
            if shipment is not None:
                data = gather_shipment(conn, shipment, bucket_s=interval_min * 60)
            else:
                assert unit is not None
                data = gather_unit(conn, unit, today=now.date(), bucket_s=interval_min * 60)
    except (NotFoundError, IdentifierError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    text = json.dumps(build_document(data, now=now), indent=2, ensure_ascii=False)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


@app.command()
def passport(
    identifier: Annotated[
        str, typer.Argument(help="SGTIN or SSCC: EPC URI, Digital Link, scanned element string.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="The full passport as JSON.")] = False,
) -> None:
    """A unit's temperature passport: verdict, custody, excursions, budget use and MKT."""
    import json

    from coldchain.errors import NotFoundError
    from coldchain.gs1 import IdentifierError
    from traceability import lookup
    from traceability.passport import passport_json
    from traceability.report import passport_text

    settings = _settings()
    now = datetime.now(UTC)
    with _trace_conn(settings) as conn:
        verification = lookup.verify(conn, identifier, today=now.date())
        try:
            from reports.service import ReportSettings

            result = lookup.load_passport(
                conn,
                identifier,
                today=now.date(),
                now=now,
                gap_factor=settings.alerts.gap_factor,
                rules=ReportSettings.from_settings(settings),
            )
        except (NotFoundError, IdentifierError) as error:
            typer.echo(f"{verification.status}: {error}", err=True)
            raise typer.Exit(1) from None
    if as_json:
        body = passport_json(result, include_readings=True)
        body["verification"] = {
            "status": verification.status,
            "reasons": list(verification.reasons),
        }
        typer.echo(json.dumps(body, indent=2, default=str, ensure_ascii=False))
    else:
        typer.echo(passport_text(result, verification))


recalls_app = typer.Typer(
    help="Product recalls: lots that must not be sold (recorded by QA, never edited).",
    no_args_is_help=True,
)
app.add_typer(recalls_app, name="recalls")


@recalls_app.command("add")
def recalls_add(
    gtin: Annotated[str, typer.Argument(help="GTIN-8/12/13/14, with its check digit.")],
    reason: Annotated[str, typer.Option(help="Why; shown with every recalled unit, and audited.")],
    user: Annotated[str, typer.Option(help="Your user name: a person with the qa role.")],
    lot: Annotated[
        str | None, typer.Option(help="The lot, as printed; omitted: every lot of the GTIN.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read your password from standard input instead of asking.")
    ] = False,
) -> None:
    """Record a recall as yourself, a QA person (your password is asked).

    From then on every unit of the lot (or of the GTIN) verifies as recalled.
    """
    import socket

    from security.accounts import Principal, authenticate
    from security.errors import SecurityError
    from security.ratelimit import LoginLimiter
    from traceability.recalls import parse_recall, record_recall

    try:
        recall = parse_recall(gtin=gtin, lot=lot, reason=reason)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    settings = _settings()
    password = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt(f"password of {user}", hide_input=True)
    )
    source = f"cli@{socket.gethostname()}"
    limiter = LoginLimiter(
        max_failures=settings.security.login_max_failures,
        window_s=settings.security.login_window_s,
    )
    try:
        with _trace_conn(settings) as conn:
            person = authenticate(
                conn, username=user, password=password, limiter=limiter, client=source
            )
            principal = Principal(
                kind="user",
                id=int(person["user_id"]),
                name=person["username"],
                display_name=person["full_name"],
                role=person["role"],
            )
            row = record_recall(conn, recall, principal=principal, source=source)
    except SecurityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    scope = f"lot {row['lot']}" if row["lot"] else "every lot"
    product = f" ({row['product_name']})" if row["product_name"] else " (not a known product)"
    typer.echo(
        f"recall {row['recall_id']} recorded by {row['recalled_by']}: GTIN {row['gtin']}"
        f"{product}, {scope}; {row['units_on_record']} serialised item(s) on record"
    )


@recalls_app.command("list")
def recalls_list(
    gtin: Annotated[str | None, typer.Option(help="Only this product's recalls.")] = None,
    lot: Annotated[
        str | None, typer.Option(help="Only those covering this lot (whole-GTIN ones too).")
    ] = None,
) -> None:
    """Every recall, oldest first."""
    from coldchain.gs1 import IdentifierError, check_lot, normalize_gtin
    from db.queries import trace as sql

    try:
        gtin = None if gtin is None else normalize_gtin(gtin.strip())
        lot = None if lot is None else check_lot(lot)
    except IdentifierError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    settings = _settings()
    with _trace_conn(settings) as conn:
        rows = sql.list_recalls(conn=conn, gtin=gtin, lot=lot)
    for r in rows:
        typer.echo(
            f"{r['recall_id']:>5} {r['recalled_at']:%Y-%m-%d %H:%M} {r['gtin']} "
            f"{r['lot'] or '(every lot)':<20} {r['recalled_by']:<16} "
            f"{r['units_on_record']:>6} item(s)  {r['reason']}"
        )
    if not rows:
        typer.echo("no recalls")


# --- security: people, API keys, device credentials, the audit trail --------------------------

users_app = typer.Typer(
    help="People who log in to the API and the dashboard (roles: viewer, operator, qa, admin).",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")
apikeys_app = typer.Typer(help="API keys of machine clients.", no_args_is_help=True)
app.add_typer(apikeys_app, name="apikeys")
devices_app = typer.Typer(help="Loggers' MQTT credentials.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _connect(settings: Settings) -> Any:
    """An autocommit, dict-row connection as the services' role (what the audit records)."""
    import psycopg
    from psycopg.rows import dict_row

    return psycopg.connect(
        settings.db.dsn, autocommit=True, row_factory=dict_row, options="-c TimeZone=UTC"
    )


def _cli_context(reason: str | None = None) -> Any:
    """Who acts from the command line: the operating-system user, on this host."""
    import getpass
    import socket

    from security.audit import AuditContext

    return AuditContext(f"cli:{getpass.getuser()}", "admin", f"cli@{socket.gethostname()}", reason)


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Log-in name (lower case).")],
    role: Annotated[str, typer.Option(help="viewer, operator, qa or admin.")],
    name: Annotated[str, typer.Option(help="Printed name, shown with signatures.")],
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input instead of generating one.")
    ] = False,
) -> None:
    """Create a person (the first admin comes from here). Prints a generated password once."""
    from security import accounts, passwords
    from security.errors import SecurityError

    settings = _settings()
    generated = not password_stdin
    password = (
        passwords.generate_password(username=username)
        if generated
        else sys.stdin.readline().rstrip("\n")
    )
    try:
        with _connect(settings) as conn:
            row = accounts.create_user(
                conn,
                username=username,
                full_name=name,
                role=role,
                password=password,
                min_length=settings.security.password_min_length,
                ctx=_cli_context("user created"),
            )
    except SecurityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"user {row['username']} ({row['role']}, {row['full_name']}) created")
    if generated:
        typer.echo(f"password: {password}")
        typer.echo("(shown once; the database keeps only its argon2 hash)")


@users_app.command("list")
def users_list() -> None:
    """Everyone, active or not."""
    from db.queries import security as q

    settings = _settings()
    with _connect(settings) as conn:
        rows = q.list_users(conn=conn)
    for r in rows:
        state = "active" if r["active"] else f"deactivated {r['deactivated_at']:%Y-%m-%d}"
        typer.echo(f"{r['username']:<24} {r['role']:<9} {state:<22} {r['full_name']}")


@users_app.command("revoke")
def users_revoke(
    username: Annotated[str, typer.Argument(help="The person to deactivate.")],
    reason: Annotated[str | None, typer.Option(help="Why (goes into the audit trail).")] = None,
) -> None:
    """Deactivate a person and revoke every token and session they hold."""
    from security import accounts
    from security.errors import SecurityError

    settings = _settings()
    try:
        with _connect(settings) as conn:
            accounts.deactivate_user(
                conn, username=username, ctx=_cli_context(reason or "user deactivated")
            )
    except SecurityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"user {username} deactivated; their tokens and sessions are revoked")


@apikeys_app.command("create")
def apikeys_create(
    name: Annotated[str, typer.Argument(help="A name for the client (unique, never reused).")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")] = "viewer",
    days: Annotated[int | None, typer.Option(help="Expire after this many days.")] = None,
) -> None:
    """Create an API key; prints it once (send it as the X-API-Key header)."""
    from datetime import timedelta

    from security import accounts
    from security.errors import SecurityError

    settings = _settings()
    expires = None if days is None else datetime.now(UTC) + timedelta(days=days)
    try:
        with _connect(settings) as conn:
            secret, row = accounts.create_api_key(
                conn, name=name, role=role, expires_at=expires, ctx=_cli_context("API key created")
            )
    except SecurityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"API key {row['name']} ({row['role']}) created")
    typer.echo(f"key: {secret}")
    typer.echo("(shown once; the database keeps only its SHA-256)")


@apikeys_app.command("revoke")
def apikeys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke an API key at once."""
    from security import accounts
    from security.errors import SecurityError

    settings = _settings()
    try:
        with _connect(settings) as conn:
            accounts.revoke_api_key(conn, name=name, ctx=_cli_context("API key revoked"))
    except SecurityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"API key {name} revoked")


@devices_app.command("provision")
def devices_provision(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write Mosquitto's passwd and acl (default: the local stack's)."
        ),
    ] = None,
    rotate: Annotated[bool, typer.Option(help="New passwords for every logger.")] = False,
    ingest_account: Annotated[
        bool, typer.Option(help="Create or re-key the ingester's service account.")
    ] = False,
    simulator_account: Annotated[
        bool,
        typer.Option(help="Create or re-key the simulator's account (test fleets only)."),
    ] = False,
    ingest_password_env: Annotated[
        str | None,
        typer.Option(
            metavar="VAR",
            help="Give the ingester's account the password held in this environment variable "
            "instead of a new one (implies --ingest-account; for Docker Compose).",
        ),
    ] = None,
    simulator_password_env: Annotated[
        str | None,
        typer.Option(
            metavar="VAR",
            help="The same for the simulator's account (implies --simulator-account).",
        ),
    ] = None,
) -> None:
    """Issue MQTT passwords to registered loggers and write the broker's password file and ACL.

    New logger passwords go to a credentials file (owner-readable only) in the same folder;
    Mosquitto reloads both files on SIGHUP.
    """
    import os

    from security import devices

    settings = _settings()
    folder = out or settings.stack.data_dir / "mosquitto"
    services = []
    from_env: dict[str, str] = {}  # service user -> the variable its password came from
    passwords: dict[str, str] = {}
    for account, wanted, var in (
        (devices.INGEST_ACCOUNT, ingest_account, ingest_password_env),
        (devices.SIMULATOR_ACCOUNT, simulator_account, simulator_password_env),
    ):
        if not (wanted or var):
            continue
        services.append(account)
        if var:
            password = os.environ.get(var, "")
            if len(password) < settings.security.password_min_length:
                typer.echo(
                    f"error: the environment variable {var} must hold the password of "
                    f"{account.username} (at least {settings.security.password_min_length} "
                    "characters)",
                    err=True,
                )
                raise typer.Exit(2)
            from_env[account.username], passwords[account.username] = var, password
    with _connect(settings) as conn:
        result = devices.provision(
            conn,
            topic_root=settings.mqtt.topic_root,
            out_dir=folder,
            rotate=rotate,
            services=services,
            service_passwords=passwords,
            ctx=_cli_context("MQTT credentials provisioned"),
        )
    typer.echo(f"password file: {result.password_file}")
    typer.echo(f"ACL:           {result.acl_file}")
    typer.echo(
        f"{result.devices_with_credentials} logger(s) with credentials, "
        f"{len(result.issued)} new password(s)"
    )
    if result.credentials_file is not None:
        typer.echo(f"new logger passwords: {result.credentials_file} (load them, then delete it)")
    for user, password in result.services.items():
        if user in from_env:
            typer.echo(f"service account {user}: password from ${from_env[user]}")
        else:
            typer.echo(f"service account {user}: password {password} (shown once)")
    for device_id in result.skipped:
        typer.echo(f"skipped {device_id!r}: not usable as an MQTT user name (':' or too long)")
    typer.echo("reload the broker (SIGHUP) or restart it to apply")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the whole hash chain; exit 1 and name the first broken entry if any."""
    import contextlib

    from db.queries import security as q
    from security.audit import verify_chain

    settings = _settings()
    with (
        _connect(settings) as conn,
        contextlib.closing(q.iter_audit_entries(conn=conn)) as entries,
    ):
        verdict = verify_chain(entries)
    typer.echo(verdict.summary())
    if not verdict.ok:
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry
    app()
