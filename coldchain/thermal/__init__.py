"""The temperature core every stage shares: pure functions of plain values (no I/O, no clock).

:mod:`coldchain.thermal.limits` is the first piece here: the effective excursion limits of a
shipment and the one definition of a logger being *offline*. It imports nothing of the project
above :mod:`coldchain`, so the rules engine, the reports, traceability and the dashboard can all
use it without importing each other.
"""
