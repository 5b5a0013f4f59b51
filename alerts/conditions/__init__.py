"""What each rule finds in one logger's readings: pure functions of arrays, rules and ``now``.

The rules engine loads the readings of many (shipment, device) pairs at once as arrays
(:class:`~alerts.conditions.arrays.Series`) and calls
:func:`~alerts.conditions.pair.evaluate_pair` for each. No I/O, no clock.

The package is cut along what each part does:

- :mod:`~alerts.conditions.arrays`: a logger's readings as arrays, and the excursions found in
  them, vectorised and identical to :func:`coldchain.thermal.excursions.detect_excursions`;
- :mod:`~alerts.conditions.states`: episodes and the condition state stored per rule;
- :mod:`~alerts.conditions.history`: the rules recomputed from all readings (humidity, MKT,
  stability budget, battery);
- :mod:`~alerts.conditions.present`: the rules that look only at the present (predicted breach,
  device offline);
- :mod:`~alerts.conditions.pair`: every data-driven rule on one (shipment, device).

Episodes and condition states
-----------------------------
Every rule other than the temperature range (whose excursions are stored rows of their own)
reduces a pair's readings to **episodes**: periods in which the rule's condition held and
alarmed. Humidity episodes are humidity excursions (the excursion contract applied to %RH, with
the rule's delay); MKT episodes are runs of readings whose trailing-window MKT is above the limit;
the budget episode starts when the counted time reaches the warning share and becomes stronger
when it reaches the budget; battery episodes run from the first reading below the threshold to
the first one at or above threshold + hysteresis. These are recomputed from all readings, so late
data gives the in-order answer.

Two rules look only at the present and carry their episode over from the previous state: the
**predicted breach** (:mod:`coldchain.thermal.forecast` at the latest reading) and **device
offline** (silence longer than the rule's threshold, judged against ``now``).

:class:`~alerts.conditions.states.ConditionState` is what is stored per (shipment, device, rule):
whether the condition holds at ``as_of`` (the latest reading's time, or ``now`` for offline), the
latest alarmed episode, and ``trigger_at``: the earliest alarm of the episodes that no alert has
taken yet (the caller passes ``alerted_since``, the start of the episode the last alert took),
which is when a new alert opens.
"""
