"""Administration ("/admin"): the screens that manage the platform itself, and who may open them.

=============  ==================  ==============================================================
screen         path                who
=============  ==================  ==============================================================
People         /admin/people       ``admin``: add people, change roles, deactivate, reset passwords
API keys       /admin/api-keys     ``admin``: create (the key shown once) and revoke keys
Stored rules   /admin/rules        read: ``audit.read`` (QA and admin: the rules' history is part
                                   of the record QA reviews, like the audit trail); store a new
                                   version: ``admin``
System         /admin/system       ``admin``: the pipeline's figures (engine lag, outbox), test
                                   notifications
Products       /products           the product editor (``products.manage``: admin and QA)
Questions      /admin/questions    ``admin``: every question asked of the platform and the answer
asked                              given (:mod:`dashboard.pages.admin_ask`)
=============  ==================  ==============================================================

The navigation bar links here for the roles that may open at least one screen; anyone else who
types a screen's address gets :func:`not_allowed`, a page saying what it needs, not a blank one.
The page is only the door: every change goes through :mod:`services`, which checks the role
again and records the change with who and why (``acting()``).
"""

from __future__ import annotations

from dataclasses import dataclass

from dash import dcc, html

from dashboard.pages import products
from security.accounts import Principal
from security.roles import Permission, roles_with

PATH = "/admin"
NAV = "nav-admin"
PEOPLE_PATH = "/admin/people"
KEYS_PATH = "/admin/api-keys"
RULES_PATH = "/admin/rules"
SYSTEM_PATH = "/admin/system"
QUESTIONS_PATH = "/admin/questions"
#: Who may read the stored rules' versions on their screen.
RULES_READ: Permission = "audit.read"


@dataclass(frozen=True, slots=True)
class Screen:
    """One administration screen: where, what it is for, and the permission to open it."""

    path: str
    title: str
    purpose: str
    permission: Permission


SCREENS: tuple[Screen, ...] = (
    Screen(
        PEOPLE_PATH,
        "People",
        "Who may log in, with which role; add people, change roles, deactivate or "
        "reactivate them, reset a password.",
        "admin",
    ),
    Screen(
        KEYS_PATH,
        "API keys",
        "Keys for machine clients (ERP, data feeds): create one, see when each was last "
        "used, revoke one at once.",
        "admin",
    ),
    Screen(
        RULES_PATH,
        "Stored rules",
        "The alert rules stored per product and per shipment: every version, who stored it, "
        "when and why, which one is in force.",
        RULES_READ,
    ),
    Screen(
        SYSTEM_PATH,
        "System",
        "How the rules engines and the outbox keep up; send a test notification to a channel "
        "or a person.",
        "admin",
    ),
    Screen(
        products.PATH,
        "Products",
        "Products, their temperature ranges and stability budgets.",
        products.PERMISSION,
    ),
    Screen(
        QUESTIONS_PATH,
        "Questions asked",
        "Every question asked of the platform (Ask box, API, command line) and the answer "
        "given: who, when, which queries.",
        "admin",
    ),
)


def screens_for(principal: Principal | None) -> list[Screen]:
    """The screens ``principal`` may open."""
    if principal is None:
        return []
    return [s for s in SCREENS if principal.can(s.permission)]


def nav_links(principal: Principal | None) -> list[dcc.Link]:
    """The "Admin" link, for the roles that may open at least one screen."""
    if not screens_for(principal):
        return []
    return [dcc.Link("Admin", href=PATH, id=NAV, className="nav-link")]


def not_allowed(principal: Principal, what: str, permission: Permission) -> html.Div:
    """The page for a screen the person's role may not open: what it needs, who has that."""
    roles = ", ".join(roles_with(permission))
    return html.Div(
        className="page not-allowed",
        id="not-allowed",
        children=[
            html.H1("Not allowed"),
            html.P(
                f"Your role ({principal.role}) cannot open {what}. It is for: {roles}. "
                "Ask an administrator if you need it."
            ),
            dcc.Link("Back to the fleet", href="/"),
        ],
    )


def layout(principal: Principal) -> html.Div:
    """The list of the screens the person may open."""
    allowed = screens_for(principal)
    if not allowed:
        return not_allowed(principal, "the administration screens", "admin")
    return html.Div(
        className="page page-admin",
        children=[
            html.Div(className="page-header", children=[html.H1("Administration")]),
            html.Div(
                className="admin-screens",
                children=[
                    dcc.Link(
                        [html.H2(s.title), html.P(s.purpose, className="muted")],
                        href=s.path,
                        className="card admin-screen",
                        id="admin-link-" + s.path.rsplit("/", 1)[-1],
                    )
                    for s in allowed
                ],
            ),
        ],
    )


def guard(principal: Principal, path: str) -> html.Div | None:
    """:func:`not_allowed` for the screen at ``path`` if the person may not open it, else None."""
    for screen in SCREENS:
        if screen.path == path and not principal.can(screen.permission):
            return not_allowed(principal, screen.title, screen.permission)
    return None
