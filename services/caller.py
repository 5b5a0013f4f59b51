"""Who asks a service for something, in which role and from where; and the audit context of
what they change.

A caller is a person or an API key authenticated by the API or the dashboard
(:meth:`Caller.of`), whose credential the database checks and records as the actor
(:mod:`security.audit`); or the console (:meth:`Caller.console`: the ``coldchain`` command, run
by someone who can already reach the database, recorded as claimed: ``cli:<os user>``).
"""

from __future__ import annotations

import contextlib
import getpass
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from coldchain.errors import PermissionDeniedError
from db.types import Conn
from security.accounts import Principal
from security.audit import AuditContext, audit_context
from security.roles import Permission, Role, can, roles_with


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: ``actor`` as the audit trail names them, their ``role``, where from."""

    actor: str
    role: Role
    source: str | None
    display_name: str
    # The secret presented (token, session or key); None for the console.
    credential: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, principal: Principal, source: str | None) -> Caller:
        """A person or key the API or the dashboard authenticated, calling from ``source``."""
        return cls(
            principal.actor, principal.role, source, principal.display_name, principal.secret
        )

    @classmethod
    def console(cls) -> Caller:
        """The ``coldchain`` command: the operating-system user on this host, as admin."""
        actor = f"cli:{getpass.getuser()}"
        return cls(actor, "admin", f"cli@{socket.gethostname()}", actor)

    def can(self, permission: Permission) -> bool:
        """Whether the caller's role allows ``permission``."""
        return can(self.role, permission)

    def require(self, permission: Permission) -> None:
        """Raise :class:`PermissionDeniedError` (naming the roles that may) unless allowed."""
        if not self.can(permission):
            raise PermissionDeniedError(
                f"{self.actor} (role {self.role}) may not do this: it needs the "
                f"'{permission}' permission, which roles {', '.join(roles_with(permission))} have"
            )

    def context(self, reason: str | None = None) -> AuditContext:
        """The audit context of a change this caller makes, with its why."""
        return AuditContext(self.actor, self.role, self.source, reason, self.credential)


@contextlib.contextmanager
def acting(conn: Conn, caller: Caller, reason: str | None = None) -> Iterator[Conn]:
    """``with acting(conn, caller, why):`` the changes made inside are recorded as the caller's,
    with ``why``; the context leaves the connection afterwards (it goes back to a pool)."""
    with audit_context(conn, caller.context(reason)):
        yield conn
