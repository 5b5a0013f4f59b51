"""What the rules engine's parts share: a shipment's context, the counters, the failure report.

:mod:`alerts.rounds` builds these; :mod:`alerts.evaluate` and :mod:`alerts.reconcile` use them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from alerts.layers import EffectiveRules

ReportFailure = Callable[[str, BaseException], None]
"""Counts a skipped pair or shipment and logs it (``what`` failed, the exception)."""


@dataclass
class EngineStats:
    """Counters for logs, metrics and the benchmarks."""

    rounds: int = 0
    pairs_evaluated: int = 0
    readings_evaluated: int = 0
    pairs_from_checkpoint: int = 0  # judged from a checkpoint rather than from the first reading
    checkpoints_written: int = 0
    excursions_written: int = 0
    states_written: int = 0
    alerts_opened: int = 0
    notifications_queued: int = 0
    escalations: int = 0
    reminders: int = 0
    reminders_held: int = 0  # reminders quiet hours held (each also an alert event)
    pair_errors: int = 0  # pairs or shipments skipped because judging them raised


@dataclass(frozen=True, slots=True)
class ShipmentContext:
    """A shipment, its product and its effective rules."""

    shipment_id: int
    reference: str
    gtin: str | None
    product_name: str | None
    rules: EffectiveRules
