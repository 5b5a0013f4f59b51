"""Project-owned PostgreSQL (with TimescaleDB) and Mosquitto processes on chosen ports.

``coldchain up`` runs them from ``.coldchain/`` in the checkout; the test fixtures run them from
temporary directories on free ports. PostgreSQL refuses to run as root, so when we are root the
server runs as the distribution's ``postgres`` account (its data directory is handed to it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from coldchain.errors import SetupError
from db import roles

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on the loopback interface that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SetupError(
                    f"nothing listens on {host}:{port} after {timeout:.0f} s"
                ) from None
            time.sleep(0.05)


def _pg_bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3])
    )
    if not versions:
        raise SetupError(
            "PostgreSQL server binaries not found: run `make setup` (scripts/setup-system.sh)"
        )
    return versions[-1].parent


def _as_server_user() -> tuple[list[str], str | None]:
    """The command prefix that runs a PostgreSQL binary as a non-root account, and its name."""
    if os.geteuid() != 0:
        return [], None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise SetupError(
            "running as root needs the 'postgres' account (installed with PostgreSQL)"
        ) from None
    return ["runuser", "-u", "postgres", "--"], "postgres"


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port``.

    The superuser ``postgres`` connects over loopback without a password (trust): the cluster
    listens on 127.0.0.1 only. Application roles get passwords (see :meth:`ensure_database`).
    """

    data_dir: Path
    port: int
    extra_conf: dict[str, str] | None = None

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgresql.log"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix, _ = _as_server_user()
        return subprocess.run([*prefix, *args], check=check, capture_output=True, text=True)

    def init(self) -> None:
        """Create the cluster unless it exists."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.touch()
        _, user = _as_server_user()
        if user:
            shutil.chown(self.data_dir, user, user)
            shutil.chown(self.log_file, user, user)
            if not self._reachable_by(user, self.data_dir):
                raise SetupError(
                    f"{self.data_dir} is not reachable by the '{user}' account (a parent folder is "
                    "closed to others); set COLDCHAIN_STACK__DATA_DIR to a folder under /var/lib or /tmp"
                )
        self.data_dir.chmod(0o700)
        bindir = _pg_bindir()
        res = self._run(
            str(bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", check=False,
        )  # fmt: skip
        if res.returncode != 0:
            raise SetupError(f"initdb failed: {res.stderr.strip() or res.stdout.strip()}")
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "''",
            "shared_preload_libraries": "'timescaledb'",
            "timescaledb.telemetry_level": "off",
            "max_connections": "200",
            "shared_buffers": "256MB",
            "synchronous_commit": "on",
            "log_min_messages": "warning",
            "max_locks_per_transaction": "256",
            **(self.extra_conf or {}),
        }
        with (self.data_dir / "postgresql.auto.conf").open("a") as f:
            for key, value in conf.items():
                f.write(f"{key} = {value}\n")

    @staticmethod
    def _reachable_by(user: str, path: Path) -> bool:
        res = subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(path)], check=False)
        return res.returncode == 0

    def is_running(self) -> bool:
        res = self._run(
            str(_pg_bindir() / "pg_ctl"), "-D", str(self.data_dir), "status", check=False
        )
        return res.returncode == 0

    def start(self, timeout: float = 60.0) -> None:
        """Start the server (initialising it first if needed) and wait until it accepts connections."""
        self.init()
        if not self.is_running():
            res = self._run(
                str(_pg_bindir() / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
                "-o", f"-p {self.port}", "-w", "-t", str(int(timeout)), "start", check=False,
            )  # fmt: skip
            if res.returncode != 0:
                tail = (
                    self.log_file.read_text(errors="replace")[-2000:]
                    if self.log_file.exists()
                    else ""
                )
                raise SetupError(
                    f"PostgreSQL did not start on port {self.port}: {res.stderr.strip()}\n{tail}"
                )
        wait_for_port("127.0.0.1", self.port, timeout)

    def stop(self) -> None:
        """Fast shutdown: open transactions roll back, everything committed is on disk."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run(
                str(_pg_bindir() / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "stop",
                check=False,
            )

    def superuser_dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def ensure_database(
        self,
        name: str,
        owner: str,
        password: str,
        *,
        template: str | None = None,
        app_user: str | None = None,
        app_password: str | None = None,
    ) -> None:
        """Create the roles and the database with TimescaleDB in it, unless they exist.

        ``owner`` owns the database and runs the migrations. With ``app_user``, the services
        connect as that second role, a member of ``coldchain_app`` (the group the migrations
        grant to) that owns nothing: the database then refuses it any change of the audit
        trail and of signed records. A database the app role owned before (an older
        ``.coldchain``) is handed over to ``owner``.
        """
        with psycopg.connect(self.superuser_dsn(), autocommit=True) as conn:
            roles.ensure_login_role(conn, owner, password)
            roles.ensure_app_group(conn)
            if app_user is not None and app_user != owner:
                roles.ensure_app_role(conn, app_user, app_password or password)
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                stmt = sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(owner)
                )
                if template:
                    stmt = stmt + sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
                conn.execute(stmt)
            else:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                        sql.Identifier(name), sql.Identifier(owner)
                    )
                )
        with psycopg.connect(self.superuser_dsn(name), autocommit=True) as conn:
            # Extensions need a superuser; the migrations then run as the owner.
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
            if app_user is not None and app_user != owner:
                owns = conn.execute(
                    "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = %s LIMIT 1",
                    (app_user,),
                ).fetchone()
                if owns:
                    log.info("handing the tables of %s over from %s to %s", name, app_user, owner)
                    conn.execute(
                        sql.SQL("REASSIGN OWNED BY {} TO {}").format(
                            sql.Identifier(app_user), sql.Identifier(owner)
                        )
                    )


#: The broker plugin (deploy/mosquitto-plugin/coldchain_auth.c): only the accounts it names may
#: subscribe, and a client id must be its user name or ``user name:suffix``.
AUTH_PLUGIN_DIR = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto-plugin"

#: Seconds between the broker's saves of its sessions and queued messages to disk. What a broker
#: *crash* (SIGKILL, power loss) can lose is what it PUBACKed in this window and had not yet
#: handed to the ingester; a clean stop saves everything (docs/PROTOCOL.md, "Acknowledgement").
#: Each save rewrites the whole state and blocks the broker while it does, so it costs in
#: proportion to the backlog: cheap while the ingester keeps up, heavy with a large backlog.
AUTOSAVE_INTERVAL_S = 5


def auth_plugin() -> Path:
    """The built broker plugin, (re)built with ``make`` when missing or older than its source."""
    res = subprocess.run(
        ["make", "-s", "-C", str(AUTH_PLUGIN_DIR)], check=False, capture_output=True, text=True
    )
    built = AUTH_PLUGIN_DIR / "build" / "coldchain_auth.so"
    if res.returncode != 0 or not built.exists():
        raise SetupError(
            f"the broker plugin did not build ({res.stderr.strip() or res.stdout.strip()}): "
            "run `make setup` (it installs gcc, mosquitto-dev and libmosquitto-dev)"
        )
    return built


@dataclass
class MosquittoBroker:
    """A Mosquitto broker in the foreground, with its own config and persistence folder."""

    data_dir: Path
    port: int
    password_file: Path | None = None
    acl_file: Path | None = None
    # With a password file and an ACL: load :func:`auth_plugin`, which lets only these
    # accounts subscribe and binds every client id to its account.
    subscribers: tuple[str, ...] = ()
    autosave_interval_s: int = AUTOSAVE_INTERVAL_S
    # TLS on the listener (PEM files); clients then connect with TLS and the CA that signed it.
    certfile: Path | None = None
    keyfile: Path | None = None
    # Larger MQTT packets are refused by the broker itself (the client is disconnected).
    max_packet_size: int | None = None
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def config_file(self) -> Path:
        return self.data_dir / "mosquitto.conf"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "mosquitto.log"

    def write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "persist").mkdir(exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1"]
        if self.certfile is not None and self.keyfile is not None:
            lines += [f"certfile {self.certfile}", f"keyfile {self.keyfile}"]
        lines += [
            "persistence true",
            f"persistence_location {self.data_dir / 'persist'}/",
            f"autosave_interval {self.autosave_interval_s}",
            # The ingester acknowledges after commit; its in-flight window is what lets it batch.
            "max_inflight_messages 1000",
            # A logger fleet's backlog for a disconnected ingester is kept, not dropped.
            "max_queued_messages 2000000",
            "max_queued_bytes 0",
            "persistent_client_expiration 14d",
            "set_tcp_nodelay true",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        if self.password_file is not None:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.password_file is not None and self.acl_file is not None:
            # The plugin defers everything but its two rules to the two files, so it needs both.
            lines.append(f"plugin {auth_plugin()}")
            if self.subscribers:
                lines.append(f"plugin_opt_subscribers {','.join(self.subscribers)}")
        if self.max_packet_size is not None:
            lines.append(f"max_packet_size {self.max_packet_size}")
        self.config_file.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 15.0) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise SetupError("mosquitto not found: run `make setup` (scripts/setup-system.sh)")
        self.write_config()
        self._proc = subprocess.Popen(
            [binary, "-c", str(self.config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Not in the terminal's process group: Ctrl-C reaches ``coldchain up``, which stops
            # the broker after the stages that use it (it used to die first, and the ingester
            # and the simulator logged lost connections instead of stopping in order).
            start_new_session=True,
        )
        try:
            wait_for_port("127.0.0.1", self.port, timeout)
        except SetupError:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """Hard stop, for tests of broker crashes."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            self._proc.wait()
            self._proc = None


@dataclass(frozen=True)
class LocalTls:
    """A local certificate authority and a server certificate it signed (PEM files)."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_local_tls(
    folder: Path, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> LocalTls:
    """A CA and a server certificate for ``hosts`` in ``folder`` (openssl), unless they exist.

    For the local broker only: a real deployment uses certificates from its own CA. The CA's key
    stays in ``folder`` (owner-readable), so clients trust exactly this CA's certificates.
    """
    tls = LocalTls(folder / "ca.crt", folder / "server.crt", folder / "server.key")
    if tls.ca_file.exists() and tls.cert_file.exists() and tls.key_file.exists():
        return tls
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SetupError("openssl not found: install it (apt-get install openssl) for MQTT TLS")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    sans = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hosts)
    ca_key, csr = folder / "ca.key", folder / "server.csr"
    steps = [
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
         "-subj", "/CN=coldchain local CA", "-keyout", str(ca_key), "-out", str(tls.ca_file),
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={hosts[0]}",
         "-keyout", str(tls.key_file), "-out", str(csr)],
    ]  # fmt: skip
    for step in steps:
        _openssl(step)
    ext = folder / "server.ext"
    ext.write_text(
        f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(tls.ca_file), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "825", "-out", str(tls.cert_file), "-extfile", str(ext)]
    )  # fmt: skip
    for path in (ca_key, tls.key_file):
        path.chmod(0o600)
    return tls


def _openssl(args: list[str]) -> None:
    res = subprocess.run(args, check=False, capture_output=True, text=True)
    if res.returncode != 0:
        raise SetupError(f"openssl failed: {res.stderr.strip() or res.stdout.strip()}")
