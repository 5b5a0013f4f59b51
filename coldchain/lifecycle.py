"""A shipment's life: its states and the named transitions between them, each defined once.

Pure: no I/O. The services (:mod:`services.lifecycle`) and the signing of a disposition
(:mod:`reports.service`) ask :func:`transition` where a shipment goes and store the move with its
timeline entry; the database CHECK of ``shipments.status`` lists the same states
(``db/migrations/0011_shipment_lifecycle.sql``).

::

    planned ──start──▶ in_transit ──arrive──▶ arrived ──review──▶ under_review
       │                                         │                    │
       └──cancel──▶ cancelled                    └──── a signed disposition ────┐
                                                                                 ▼
                                   released / quarantined / rejected / returned (release,
                                   quarantine, reject, return)

* ``review`` is what the arrival verdict does: every product on board judged against its stability
  profile, then the shipment waits for QA (:mod:`services.lifecycle`).
* The dispositions (``release``, ``quarantine``, ``reject``, ``return``) are QA's signed decisions
  (:func:`services.reports.sign`). They leave from ``arrived`` (a shipment that arrived
  before verdicts existed), ``under_review``, and from any disposed state: a signed record is never
  edited but may be superseded by a new one (a quarantine lifted by a release, a release
  withdrawn by a quarantine), and the shipment's state follows the record in force. A disposition
  of one lot does not move the whole shipment.
* No disposition while the goods are ``planned`` or ``in_transit``: QA decides on goods that are
  back under control, and a release also needs every excursion closed (the signing checks that).
* ``cancel`` leaves only from ``planned``: a shipment that has moved has readings, and those are
  evidence that a cancellation would hide. ``cancelled`` is the only final state.
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
Event = Literal["start", "arrive", "review", "release", "quarantine", "reject", "return", "cancel"]

STATES: Final[tuple[State, ...]] = get_args(State)
EVENTS: Final[tuple[Event, ...]] = get_args(Event)

#: States a signed disposition may be recorded in (see the module docstring).
DISPOSABLE: Final[frozenset[State]] = frozenset(
    {"arrived", "under_review", "released", "quarantined", "rejected", "returned"}
)

#: Each transition: the states it may leave from, and the state it leads to.
TRANSITIONS: Final[dict[Event, tuple[frozenset[State], State]]] = {
    "start": (frozenset({"planned"}), "in_transit"),
    "arrive": (frozenset({"in_transit"}), "arrived"),
    "review": (frozenset({"arrived"}), "under_review"),
    "release": (DISPOSABLE, "released"),
    "quarantine": (DISPOSABLE, "quarantined"),
    "reject": (DISPOSABLE, "rejected"),
    "return": (DISPOSABLE, "returned"),
    "cancel": (frozenset({"planned"}), "cancelled"),
}

#: The transition a signed decision makes (:data:`security.signatures.Decision` → event).
DISPOSITIONS: Final[frozenset[Event]] = frozenset({"release", "quarantine", "reject", "return"})

#: A *finished* shipment: it arrived and its goods are back under control, judged or not (every
#: state a disposition may be recorded in). The one definition of "finished": a lane's history
#: (forecasts, lane risk, carrier scores) is its finished shipments. Cancelled shipments never
#: travelled; planned and in-transit ones have not finished.
FINISHED: Final[frozenset[State]] = DISPOSABLE

#: States no transition leaves.
FINAL: Final[frozenset[State]] = frozenset(
    s for s in STATES if not any(s in sources for sources, _ in TRANSITIONS.values())
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
    sources = ", ".join(s for s in STATES if s in TRANSITIONS[event][0])
    return ShipmentStateError(f"cannot {event} a shipment that is {state}: only from {sources}")


def transition(state: str, event: str) -> Move:
    """Where ``event`` takes a shipment in ``state``; :class:`ShipmentStateError` (naming the
    states it may leave from) if nowhere."""
    if event not in TRANSITIONS or state not in STATES:
        raise _refused(event, state)
    sources, after = TRANSITIONS[event]
    if state not in sources:
        raise _refused(event, state)
    return Move(event, state, after)


def allowed(state: str) -> tuple[Event, ...]:
    """The transitions that may leave ``state``, in the order of :data:`EVENTS`."""
    return tuple(e for e in EVENTS if state in TRANSITIONS[e][0])


#: Each state in plain words, as pages show it to logistics, on-call and QA people.
STATE_LABELS: Final[dict[State, str]] = {
    "planned": "Planned",
    "in_transit": "In transit",
    "arrived": "Arrived",
    "under_review": "Under QA review",
    "released": "Released",
    "quarantined": "Quarantined",
    "rejected": "Rejected",
    "returned": "Returned",
    "cancelled": "Cancelled",
}

#: What QA has made of a shipment, by its state, in plain words: awaiting a decision, or the
#: signed disposition in force. States before arrival (and ``cancelled``) are not QA's yet.
QA_STATES: Final[dict[str, str]] = {
    "arrived": "awaiting review",
    "under_review": "under review",
    "released": "released",
    "quarantined": "quarantined",
    "rejected": "rejected",
    "returned": "returned",
}


def qa_state(state: str) -> str | None:
    """The QA state of a shipment in ``state`` in plain words (:data:`QA_STATES`); None before
    arrival and for a cancelled shipment."""
    return QA_STATES.get(state)
