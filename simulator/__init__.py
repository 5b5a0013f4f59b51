"""The device simulator: realistic and nasty logger traffic, with the ground truth beside it.

The pure core, in the order data flows::

    scenario.py     load_scenario("demo")           → Scenario   (validated TOML/YAML)
    fleet.py        build_fleet(scenario, start=…)  → Fleet      (shipments, loggers, units, events;
                                                                  units.py numbers and packs units)
    streams.py      generate_chunks(fleet)          → ReadingChunk…   (physics.py, routes.py)
    faults.py       FaultInjector / message_stream  → OutgoingMessage… (topic, payload, send time)
    groundtruth.py  GroundTruthBuilder              → GroundTruth (true excursions, MKT, faults)

and the edges: ``epcis.py`` (the fleet's units and packing as an EPCIS document; the fleet is
registered through :mod:`services.fleet`), ``publisher.py`` (MQTT), ``service.py``
(``run_simulation``, ``register_scenario``, ``run_virtual_logger``). :func:`simulate` runs the
core in memory.
"""

from __future__ import annotations

from datetime import datetime

from simulator.faults import FaultInjector, OutgoingMessage, message_stream
from simulator.fleet import Fleet, build_fleet
from simulator.groundtruth import GroundTruth, GroundTruthBuilder
from simulator.scenario import Scenario, load_scenario

__all__ = [
    "Fleet",
    "GroundTruth",
    "OutgoingMessage",
    "Scenario",
    "build_fleet",
    "load_scenario",
    "simulate",
]


def simulate(
    scenario: Scenario,
    *,
    start: datetime | None = None,
    seed: int | None = None,
    root: str = "coldchain/v1",
) -> tuple[Fleet, list[OutgoingMessage], GroundTruth]:
    """Every message of a run, in send order, and its ground truth, in memory (pure)."""
    fleet = build_fleet(scenario, seed=seed, start=start)
    injector = FaultInjector(fleet, root=root)
    truth = GroundTruthBuilder(fleet)
    messages = list(message_stream(fleet, injector, observe=truth.observe))
    return fleet, messages, truth.finish(injector.log)
