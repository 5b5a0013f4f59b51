"""The database roles the services connect as (README "Security", "Database roles").

The migrations run as the schema owner and grant the services' privileges to the group role
``coldchain_app`` (db/migrations/0006_security.sql, 0008_evidence_append_only.sql). The services
log in as a second role that is a member of that group and owns nothing, so PostgreSQL itself
refuses it any change of the audit trail, of signed records, of readings and (beyond
superseding and linking them once) of excursions, and any audit entry it did not prove the
actor of. ``coldchain up`` creates both roles with the superuser of its
own cluster (:meth:`launcher.localstack.PostgresCluster.ensure_database`); elsewhere
``coldchain db migrate --ensure-app-role`` creates the services' role as the owner (Docker
Compose does this).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

#: The group role the migrations grant the services' privileges to (db/migrations/0006).
APP_GROUP = "coldchain_app"


def ensure_login_role(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """Create ``role`` (or reset it) as a plain login role with ``password``.

    Never a superuser, never able to create roles or databases: a role the services use must
    not be able to lift its own limits.
    """
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(role), sql.Literal(password)
        )
    )


def ensure_app_group(conn: psycopg.Connection[Any]) -> None:
    """Create the ``coldchain_app`` group unless it exists (the migrations do the same)."""
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_GROUP,)).fetchone():
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(APP_GROUP)))


def ensure_app_role(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """Create or update the services' login ``role``: a member of ``coldchain_app``, with
    ``password``. ``conn`` needs the right to create roles (a superuser, or CREATEROLE)."""
    ensure_app_group(conn)
    ensure_login_role(conn, role, password)
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_GROUP), sql.Identifier(role)))
