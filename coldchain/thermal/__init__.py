"""The temperature maths every stage shares: pure functions of plain values and of ``now``.

No I/O, no clock reads, no globals, and no import of the project above :mod:`coldchain`: the
rules engine (``alerts``), the excursion report (``reports``), the unit passport
(``traceability``) and the dashboard all compute with these modules, so a figure means the same
wherever it is shown, and none of those stages has to import another to get it.

- :mod:`~coldchain.thermal.series`: the reading value type (:class:`~.series.Point`) and the
  rules every other module builds on: order and duplicates, data gaps, the step rule.
- :mod:`~coldchain.thermal.excursions`: excursions (high, low, freezing, with the alarm delay)
  and data gaps; :class:`~.excursions.TempLimits` is the thresholds plus the gap length.
- :mod:`~coldchain.thermal.mkt`: mean kinetic temperature, time-weighted, with accumulators and
  rolling windows.
- :mod:`~coldchain.thermal.budget`: cumulative time out of range against a stability budget.
- :mod:`~coldchain.thermal.forecast`: whether the recent trend crosses a limit soon.
- :mod:`~coldchain.thermal.limits`: a shipment's effective limits (:class:`~.limits.Limits`, from
  the merged rules) and the one definition of a logger being *offline*.

Working the rules out (which layers apply to a shipment, read from the rules file and the
database) is not here: that is I/O, in :mod:`alerts.in_force`; it hands its result to
:mod:`~coldchain.thermal.limits`.
"""
