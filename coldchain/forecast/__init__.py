"""Forecasts for a shipment in transit, learnt from its lane's finished shipments (issue 17).

Pure, like :mod:`coldchain.thermal`: plain values and ``now`` in, plain values out.

- :mod:`~coldchain.forecast.model`: expected arrival with an interval, the chance of an excursion
  before arrival and the chance of exhausting the stability budget before arrival, from a
  :class:`~.model.LaneHistory` and the shipment's state (:class:`~.model.InTransit`);
- :mod:`~coldchain.forecast.rows`: those inputs from the rows of :mod:`db.queries.forecast`, one
  reading for the pages and for the rules engine's ``excursion_risk`` rule (same rows, same
  figure).

Reading the history and the state from the database is :mod:`services.forecast`'s; the trend
(:func:`coldchain.thermal.forecast.forecast_breach`) is fitted by the caller and handed in.
"""
