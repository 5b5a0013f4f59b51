"""Who is told of alerts, through the API: the escalation policy in force and its stored
versions (everyone may read them, secrets masked), and a new version (admins).

The policy is the rules file's ``[escalation]`` table (``rules/example.toml``), as JSON, validated
by the same model (:func:`alerts.rules.parse_escalation`: a misspelt field is a
:class:`~coldchain.errors.ConfigError` naming it). A change is never an edit: it is stored as the
next version with who (the caller) and why (``reason``, also the audit entry's "why"). The policy
in force is the latest stored version if there is one, else the rules file's tiers, else tier 0
from the settings (``COLDCHAIN_ALERTS__WEBHOOK_URLS`` / ``SMTP_TO``); the rules engine takes a
new version at its next turn (:meth:`alerts.policy_sources.PolicySources.reload`).

Secrets (Slack and Teams webhook URLs, PagerDuty routing keys) are shown masked
(:func:`alerts.escalation.shown_policy`); a masked value sent back is refused, so the mask never
replaces the secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from alerts.escalation import shown_policy
from alerts.in_force import RuleSources
from alerts.rules import parse_escalation
from db.queries import escalation as escalation_q
from db.types import Conn, Row
from services.caller import Caller, acting

__all__ = ["EscalationInForce", "escalation_in_force", "set_escalation"]


@dataclass(frozen=True, slots=True)
class EscalationInForce:
    """The policy in force (masked), where it comes from, and every stored version."""

    source: Literal["stored", "rules file", "settings"]
    version: int | None  # the stored version in force, None when not a stored one
    policy: dict[str, Any]
    versions: list[Row]


def escalation_in_force(conn: Conn, cfg: RuleSources) -> EscalationInForce:
    """The escalation policy in force and its stored versions, oldest first; secrets masked."""
    versions = escalation_q.policy_versions(conn=conn)
    if versions:
        latest = versions[-1]
        return EscalationInForce("stored", int(latest["version"]), latest["definition"], versions)
    file_policy = cfg.rules_file.escalation
    if file_policy is not None and file_policy.tiers:
        return EscalationInForce("rules file", None, shown_policy(file_policy), versions)
    return EscalationInForce("settings", None, {"tiers": []}, versions)


def set_escalation(
    conn: Conn,
    caller: Caller,
    cfg: RuleSources,
    *,
    definition: Any,
    reason: str,
    source: str = "definition",
) -> EscalationInForce:
    """Store a new version of the escalation policy (admins), with a reason; in force at the
    engine's next turn. ConfigError naming each bad field; nothing is stored then."""
    caller.require("admin")
    policy = parse_escalation(definition, source=source)
    with acting(conn, caller, reason):
        escalation_q.add_policy_version(
            conn=conn,
            definition=shown_policy(policy),
            full=policy.model_dump(mode="json", exclude_unset=True),
            created_by=caller.actor,
            reason=reason,
        )
    return escalation_in_force(conn, cfg)
