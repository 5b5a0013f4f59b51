"""MQTT credentials of the loggers and the service accounts, and Mosquitto's files from them.

:func:`provision` issues a password to every registered logger that has none (or to all, with
``rotate``), creates or re-keys the service accounts asked for, and writes the broker's password
file and ACL from what the database holds (:mod:`security.mosquitto` for the formats). New
plaintext passwords are returned once (and written, for loggers, to a credentials file readable
by its owner only): the database keeps Mosquitto's hashes only.

Mosquitto reads both files at start and again on SIGHUP; ``coldchain up`` provisions before it
starts the broker, and so does docker-compose.yml's ``provision`` service.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from db.queries import security as q
from db.types import Conn
from security.audit import AuditContext, audit_context
from security.errors import AccountError
from security.mosquitto import (
    ServiceAccount,
    acl_file,
    check_topic_root,
    mosquitto_hash,
    new_device_password,
    password_file,
    valid_username,
    write_private,
)

PASSWORD_FILE = "passwd"
ACL_FILE = "acl"

#: The service accounts ``coldchain up`` runs its stages with.
INGEST_ACCOUNT = ServiceAccount("coldchain-ingest", "ingest")
SIMULATOR_ACCOUNT = ServiceAccount("coldchain-sim", "simulator")


@dataclass
class ProvisionResult:
    """What :func:`provision` did; the plaintext passwords are the only copy."""

    password_file: Path
    acl_file: Path
    devices_with_credentials: int
    issued: dict[str, str] = field(default_factory=dict)  # device id -> new password
    services: dict[str, str] = field(default_factory=dict)  # service user -> its password
    skipped: list[str] = field(default_factory=list)  # ids that cannot be MQTT user names
    credentials_file: Path | None = None


def provision(
    conn: Conn,
    *,
    topic_root: str,
    out_dir: Path,
    ctx: AuditContext,
    rotate: bool = False,
    services: Sequence[ServiceAccount] = (),
    service_passwords: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> ProvisionResult:
    """Issue missing (or, with ``rotate``, all) logger passwords, (re-)key ``services``, and
    write the password file and the ACL into ``out_dir``.

    A service account gets the password ``service_passwords`` gives for its user name (a
    deployment that hands it to the service itself, as Docker Compose does from its
    environment), else a new random one.
    """
    check_topic_root(topic_root)
    issued: dict[str, str] = {}
    skipped: list[str] = []
    new_services: dict[str, str] = {}
    with audit_context(conn, ctx), conn.transaction():
        devices = q.devices_for_credentials(conn=conn)
        device_ids = {d["device_id"] for d in devices}
        for account in services:
            if account.username in device_ids:
                raise AccountError(
                    f"service account {account.username!r} has the name of a registered logger"
                )
            password = (service_passwords or {}).get(account.username) or new_device_password()
            q.set_service_account(
                conn=conn,
                username=account.username,
                kind=account.kind,
                password_hash=mosquitto_hash(password),
            )
            new_services[account.username] = password
        for d in devices:
            device_id = d["device_id"]
            if not valid_username(device_id):
                skipped.append(device_id)
                continue
            if rotate or d["password_hash"] is None or d["revoked_at"] is not None:
                password = new_device_password()
                q.set_device_credential(
                    conn=conn, device_id=device_id, password_hash=mosquitto_hash(password)
                )
                issued[device_id] = password
    # Written once the new hashes are committed, so the files never admit an uncommitted one.
    files = write_broker_files(conn, topic_root=topic_root, out_dir=out_dir)
    result = ProvisionResult(
        password_file=files.password_file,
        acl_file=files.acl_file,
        devices_with_credentials=files.devices_with_credentials,
        issued=issued,
        services=new_services,
        skipped=skipped,
    )
    if issued:
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        result.credentials_file = write_private(
            out_dir / f"device-credentials-{stamp}.csv", credentials_csv(topic_root, issued)
        )
    return result


@dataclass(frozen=True)
class BrokerFiles:
    """The password file and ACL written, and how many loggers they let in."""

    password_file: Path
    acl_file: Path
    devices_with_credentials: int


def write_broker_files(conn: Conn, *, topic_root: str, out_dir: Path) -> BrokerFiles:
    """Write Mosquitto's password file and ACL into ``out_dir`` from the live credentials the
    database holds (read in the caller's transaction, if any). The broker reads them on SIGHUP."""
    check_topic_root(topic_root)
    active = q.active_device_credentials(conn=conn)
    accounts = q.active_service_accounts(conn=conn)
    entries = [(r["device_id"], r["password_hash"]) for r in active]
    entries += [(a["username"], a["password_hash"]) for a in accounts]
    return BrokerFiles(
        password_file=write_private(out_dir / PASSWORD_FILE, password_file(entries)),
        acl_file=write_private(
            out_dir / ACL_FILE,
            acl_file(topic_root, [ServiceAccount(a["username"], a["kind"]) for a in accounts]),
        ),
        devices_with_credentials=len(active),
    )


def issue_device_password(conn: Conn, device_id: str) -> str:
    """A new MQTT password for one registered logger (its hash stored, any earlier one replaced);
    the plaintext is returned, the only copy. AccountError if the id cannot be a user name."""
    if not valid_username(device_id):
        raise AccountError(
            f"logger {device_id!r} cannot be an MQTT user name (':' or longer than 64 characters)"
        )
    password = new_device_password()
    q.set_device_credential(conn=conn, device_id=device_id, password_hash=mosquitto_hash(password))
    return password


def credentials_csv(topic_root: str, issued: dict[str, str]) -> str:
    """What to load into each logger: user name, password, and the topic it may publish to."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["device_id", "mqtt_username", "mqtt_password", "telemetry_topic", "status_topic"])
    for device_id, password in sorted(issued.items()):
        w.writerow(
            [
                device_id,
                device_id,
                password,
                f"{topic_root}/devices/{device_id}/telemetry",
                f"{topic_root}/devices/{device_id}/status",
            ]
        )
    return out.getvalue()
