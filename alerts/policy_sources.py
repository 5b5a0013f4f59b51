"""Where the escalation policy in force comes from: stored through the API, else the rules
file's ``[escalation]``, else tier 0 from the settings.

* A version stored through the API (``PUT /api/v1/escalation``, :mod:`services.escalation`)
  wins over the rules file from the engine's next turn (:meth:`PolicySources.reload`); a
  version the engine cannot read is logged once (field paths only: the values are secrets) and
  the previous policy kept.
* The rules file's tiers come next; a file with reminders, quiet hours or limits but no tiers
  lends them to the settings' tier 0.
* Flood control's limits are the policy's ``limits`` (unset fields: the settings').
* Recipients on a channel whose settings are missing are not queued, and that is said once per
  policy (:func:`alerts.escalation.unconfigured`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Set

from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from alerts.escalation import unconfigured
from alerts.rules import EscalationPolicy, EscalationTier, FloodLimits
from coldchain.settings import Settings
from coldchain.validation import format_validation_error
from db.queries import escalation as eq

__all__ = ["PolicySources", "policy_from_settings"]

log = logging.getLogger(__name__)


def policy_from_settings(settings: Settings) -> EscalationPolicy:
    """Tier 0 from the settings' webhook URLs and addresses (when the rules file has no tiers)."""
    a = settings.alerts
    if not a.webhook_urls and not a.smtp_to:
        return EscalationPolicy()
    return EscalationPolicy(
        tiers=[EscalationTier(name="on call", webhooks=a.webhook_urls, emails=a.smtp_to)]
    )


class PolicySources:
    """The escalation policy in force, from its three sources."""

    def __init__(
        self,
        settings: Settings,
        channels: Set[str],
        rules_file: Callable[[], EscalationPolicy | None],
        *,
        pool: AsyncConnectionPool,
    ) -> None:
        self._pool = pool
        self._channels = channels
        self._rules_file = rules_file
        self._settings_policy = policy_from_settings(settings)
        # The policy stored through the API (db.queries.escalation), when there is one.
        self._stored: EscalationPolicy | None = None
        self._stored_version: int | None = None
        self.warn_unconfigured()

    @property
    def policy(self) -> EscalationPolicy:
        """Who is told: the policy stored through the API, else the rules file's tiers, else
        tier 0 from the settings (with the rules file's reminders, quiet hours and limits, if it
        has only those)."""
        if self._stored is not None:
            return self._stored
        file = self._rules_file()
        if file is not None and file.tiers:
            return file
        if file is not None:
            return self._settings_policy.model_copy(
                update={
                    "reminders": file.reminders,
                    "quiet_hours": file.quiet_hours,
                    "limits": file.limits,
                }
            )
        return self._settings_policy

    @property
    def flood_limits(self) -> FloodLimits:
        """The policy's ``limits`` (unset fields: the settings' limits)."""
        return self.policy.limits

    async def reload(self) -> None:
        """Take a new version of the policy stored through the API (at every turn)."""
        async with self._pool.connection() as conn:
            row = await (await conn.execute(eq.CURRENT_POLICY)).fetchone()
        if row is None or int(row[0]) == self._stored_version:
            return
        self._stored_version = int(row[0])
        try:
            self._stored = EscalationPolicy.model_validate(row[1])
        except ValidationError as exc:
            # Field paths and messages only: pydantic's own text quotes the values (secrets).
            why = format_validation_error(
                exc, f"escalation policy v{row[0]}", EscalationPolicy, what="stored"
            )
            log.error("%s; keeping the previous policy", why)
            return
        log.info("escalation policy version %d in force", row[0])
        self.warn_unconfigured()

    def warn_unconfigured(self) -> None:
        """Say once per policy which recipients cannot be told (their channel's settings are
        missing, so nothing is queued for them)."""
        for missing in sorted(unconfigured(self.policy, self._channels)):
            log.warning("%s recipients are configured but the %s channel is not", missing, missing)
