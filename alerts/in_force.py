"""The rules and limits in force for a shipment: the one derivation every consumer uses.

:func:`rules_of` stacks a shipment's (or a product's) layers, read by :mod:`db.queries.limits`,
with :func:`alerts.layers.rule_layers` (:func:`layers_of`) and merges them with
:func:`alerts.layers.resolve`: exactly what the rules engine judges by.
:func:`alerts.layers.limits_of` turns the merged temperature rule into
:class:`coldchain.thermal.limits.Limits`. The rules engine (:mod:`alerts.service`), the excursion
report (:mod:`reports.service`), the unit passport (:mod:`traceability.lookup`) and the shipment
page's chart all go through these two, and the rules API (:mod:`services.rules`) shows the
merged rules of :func:`load_rules` and checks a new stored layer against :func:`layers_of`, so
a passport or a chart cannot show the product row's range while the engine judges by the rules
file or a stored rule version.

:func:`shipment_limits` and :func:`load_rules` are the synchronous edges (the web process);
the engine runs the same statement on its asynchronous connection and calls :func:`rules_of`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from psycopg import Connection

from alerts.layers import (
    EffectiveRules,
    Layer,
    ProductRow,
    StoredRules,
    limits_of,
    resolve,
    rule_layers,
)
from alerts.rules import RuleSet, RulesFile
from coldchain.errors import ConfigError
from coldchain.thermal.limits import Limits
from db.queries.limits import RuleInputs, rule_inputs

__all__ = [
    "RuleContext",
    "RuleSources",
    "layers_of",
    "load_rules",
    "rules_of",
    "shipment_limits",
]

OnError = Callable[[str, ConfigError], None]


class RuleSources(Protocol):
    """What besides the database the layers come from (``services.reports.ReportSettings``)."""

    @property
    def base_rules(self) -> RuleSet: ...
    @property
    def rules_file(self) -> RulesFile: ...
    @property
    def rules_file_name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RuleContext:
    """The engine's bottom layer and rules file (a plain :class:`RuleSources`)."""

    base_rules: RuleSet
    rules_file: RulesFile
    rules_file_name: str = "rules file"


def _left_out(source: str, exc: ConfigError) -> None:
    """A layer that does not parse or combine is left out, as the running engine leaves it out."""


def layers_of(
    found: RuleInputs, ctx: RuleSources, *, on_error: OnError | None = None
) -> list[Layer]:
    """The layers of one shipment's (or product's) rules, bottom first, as :func:`rule_layers`
    stacks them; the last is the stored version in force of the shipment (or of the product).

    A layer that does not parse is left out (and reported to ``on_error``), as the engine
    leaves it out.
    """
    report = on_error or _left_out
    product = None if found.product is None else ProductRow.from_columns(found.product)
    return rule_layers(
        ctx.base_rules,
        ctx.rules_file,
        ctx.rules_file_name,
        product=product,
        product_stored=None if found.product_stored is None else StoredRules(*found.product_stored),
        shipment=found.reference,
        shipment_stored=(
            None if found.shipment_stored is None else StoredRules(*found.shipment_stored)
        ),
        on_error=report,
    )


def rules_of(
    found: RuleInputs, ctx: RuleSources, *, on_error: OnError | None = None
) -> EffectiveRules:
    """The merged rules of one shipment (or product): :func:`layers_of`, merged.

    A bad layer is left out (and reported to ``on_error``), as the engine leaves it out.
    """
    return resolve(layers_of(found, ctx, on_error=on_error), on_error=on_error or _left_out)


def load_rules(
    conn: Connection[Any],
    ctx: RuleSources,
    *,
    shipment_ids: Iterable[int] = (),
    gtins: Iterable[str] = (),
    as_of: datetime | None = None,
) -> list[tuple[RuleInputs, EffectiveRules]]:
    """The rules in force (as of ``as_of``; None: now) of shipments, then of products alone."""
    found = rule_inputs(conn=conn, shipment_ids=shipment_ids, gtins=gtins, as_of=as_of)
    return [(f, rules_of(f, ctx)) for f in found]


def shipment_limits(
    conn: Connection[Any], ctx: RuleSources, *, shipment_id: int, as_of: datetime | None = None
) -> Limits | None:
    """The temperature limits the rules engine judges one shipment by (None: none in force)."""
    loaded = load_rules(conn, ctx, shipment_ids=[shipment_id], as_of=as_of)
    return limits_of(loaded[0][1]) if loaded else None
