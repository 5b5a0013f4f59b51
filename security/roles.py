"""The roles and what each may do: the one place the permission matrix is written down.

========  =======================================================================
viewer    logistics: reads everything (fleet, shipments, alerts, reports)
operator  on-call: viewer + acknowledge, comment, assign and resolve alerts,
          book shipments and move them (shipments.manage)
qa        quality: viewer + sign dispositions, record recalls, read the audit trail,
          register and change products and their stability profiles, sign and revoke
          auto-release policies (policies.sign)
admin     viewer + act on alerts + users, API keys, products, rules, devices,
          loggers, locations, carriers and lanes, book shipments, read and verify the audit
          trail
========  =======================================================================

Master data (issue 13): ``products.manage`` (admin, qa: a stability profile is a quality
decision), ``devices.manage`` (admin: registering a logger issues MQTT credentials),
``locations.manage`` (admin: locations, carriers and lanes). Shipments (booking, loggers,
start / arrive / cancel): ``shipments.manage`` (operator and admin: logistics work; QA decides
by signing, not by booking). Auto-release policies: ``policies.sign`` (qa alone: a policy
releases shipments in QA's name, so only a QA person signs or revokes one, with their password).

No role signs *and* administers: an administrator cannot create a QA account and sign with it
without leaving two audited steps, and signing always needs a person's password. Recording a
recall is a quality decision too (it stops every unit of the lot from being sold), so it is
QA's alone, and never a machine's: no API key carries the qa role.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Role = Literal["viewer", "operator", "qa", "admin"]
Permission = Literal[
    "read",
    "alerts.act",
    "dispositions.sign",
    "recalls.record",
    "audit.read",
    "admin",
    "products.manage",
    "devices.manage",
    "locations.manage",
    "shipments.manage",
    "policies.sign",
]

ROLES: Final[tuple[Role, ...]] = get_args(Role)
PERMISSIONS: Final[tuple[Permission, ...]] = get_args(Permission)

#: What each role may do.
GRANTS: Final[dict[Role, frozenset[Permission]]] = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "alerts.act", "shipments.manage"}),
    "qa": frozenset(
        {
            "read",
            "dispositions.sign",
            "recalls.record",
            "audit.read",
            "products.manage",
            "policies.sign",
        }
    ),
    "admin": frozenset(
        {
            "read",
            "alerts.act",
            "audit.read",
            "admin",
            "products.manage",
            "devices.manage",
            "locations.manage",
            "shipments.manage",
        }
    ),
}

#: Roles an API key may carry: machines never sign.
API_KEY_ROLES: Final[tuple[Role, ...]] = ("viewer", "operator", "admin")

DESCRIPTIONS: Final[dict[Role, str]] = {
    "viewer": "logistics: reads everything",
    "operator": "on-call: acknowledges, comments, assigns and resolves alerts",
    "qa": "quality assurance: reviews reports, signs dispositions, records recalls, "
    "registers products and their stability profiles, signs auto-release policies",
    "admin": "administrator: users, API keys, products, rules, loggers, locations, lanes",
}


def can(role: str, permission: Permission) -> bool:
    """Whether ``role`` has ``permission`` (an unknown role has none)."""
    grants = GRANTS.get(role)  # type: ignore[call-overload]
    return grants is not None and permission in grants


def roles_with(permission: Permission) -> tuple[Role, ...]:
    """The roles that have ``permission``, in the order of :data:`ROLES`."""
    return tuple(r for r in ROLES if permission in GRANTS[r])


def default_permission(method: str) -> Permission:
    """What an API route needs when it declares nothing: reading for GET/HEAD/OPTIONS, else
    administration. New routes are therefore closed to writes until they say who may write."""
    return "read" if method.upper() in ("GET", "HEAD", "OPTIONS") else "admin"
