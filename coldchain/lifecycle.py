"""A shipment's life: its states and the named transitions between them, each defined once.

Pure: no I/O. The services (:mod:`services.lifecycle`) and the signing of a disposition
(:mod:`reports.service`) ask :func:`transition` where a shipment goes and store the move with its
timeline entry; the database CHECK of ``shipments.status`` lists the same states
(``db/migrations/0011_shipment_lifecycle.sql``).

::

    planned ──start──▶ in_transit ──arrive──▶ arrived ──review──▶ under_review ──release──▶ released
       │                                                              ├──quarantine──▶ quarantined
       └──cancel──▶ cancelled                                          ├──reject──────▶ rejected
                                                                       └──return──────▶ returned

* ``review`` is what the arrival verdict does: every product on board judged against its stability
  profile, then the shipment waits for QA (:mod:`services.lifecycle`).
* A quarantined shipment may still be released, rejected or returned once QA has decided: a
  quarantine is a hold, not an end. Released, rejected, returned and cancelled are final.
* ``cancel`` leaves only from ``planned``: a shipment that has moved has readings, and those are
  evidence that a cancellation would hide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

from coldchain.errors import ShipmentStateError

State = Literal[
    "planned",
    "in_transit",
    "arrived",
    "under_review",
    "released",
    "quarantined",
    "rejected",
    "returned",
    "cancelled",
]
Event = Literal[
    "start", "arrive", "review", "release", "quarantine", "reject", "return", "cancel"
]

STATES: Final[tuple[State, ...]] = get_args(State)
EVENTS: Final[tuple[Event, ...]] = get_args(Event)

#: Each transition: the states it may leave from, and the state it leads to.
TRANSITIONS: Final[dict[Event, tuple[frozenset[State], State]]] = {
    "start": (frozenset({"planned"}), "in_transit"),
    "arrive": (frozenset({"in_transit"}), "arrived"),
    "review": (frozenset({"arrived"}), "under_review"),
    "release": (frozenset({"under_review", "quarantined"}), "released"),
    "quarantine": (frozenset({"under_review"}), "quarantined"),
    "reject": (frozenset({"under_review", "quarantined"}), "rejected"),
    "return": (frozenset({"under_review", "quarantined"}), "returned"),
    "cancel": (frozenset({"planned"}), "cancelled"),
}

#: States no transition leaves.
FINAL: Final[frozenset[State]] = frozenset(
    s for s in STATES if not any(s in sources for sources, _ in TRANSITIONS.values())
)

#: States in which the shipment's loggers are expected to report (the rules engine watches these).
MOVING: Final[frozenset[State]] = frozenset({"in_transit"})

#: States in which a signed disposition may be recorded: the goods are back under QA's control.
DISPOSABLE: Final[frozenset[State]] = frozenset(
    {"arrived", "under_review", "quarantined", "released", "rejected", "returned"}
)


@dataclass(frozen=True, slots=True)
class Move:
    """A transition that is allowed: ``event`` takes the shipment from ``before`` to ``after``."""

    event: Event
    before: State
    after: State


def _refused(event: str, state: str) -> ShipmentStateError:
    if event not in TRANSITIONS:
        return ShipmentStateError(f"unknown transition {event!r}: one of {', '.join(EVENTS)}")
    sources = ", ".join(s for s in STATES if s in TRANSITIONS[event][0])  # type: ignore[index]
    return ShipmentStateError(f"cannot {event} a shipment that is {state}: only from {sources}")


def transition(state: str, event: str) -> Move:
    """Where ``event`` takes a shipment in ``state``; :class:`ShipmentStateError` (naming the
    states it may leave from) if nowhere."""
    if event not in TRANSITIONS or state not in STATES:
        raise _refused(event, state)
    sources, after = TRANSITIONS[event]  # type: ignore[index]
    if state not in sources:
        raise _refused(event, state)
    return Move(event, state, after)  # type: ignore[arg-type]


def allowed(state: str) -> tuple[Event, ...]:
    """The transitions that may leave ``state``, in the order of :data:`EVENTS`."""
    return tuple(e for e in EVENTS if state in TRANSITIONS[e][0])
