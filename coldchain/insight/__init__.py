"""What the platform learns from finished shipments (issue 17, README "Insight"), pure.

* :mod:`coldchain.insight.lanes`: a lane's risk (excursion rate, time out of range, the
  temperature band of 90% of its readings, transit time against plan, alarm rate) and its risk
  score with the parts shown, overall and by calendar month;
* :mod:`coldchain.insight.carriers`: carriers compared on the same lanes, leg by leg;
* :mod:`coldchain.insight.weeks`: the calendar weeks of the weekly lane quality report.

Plain functions of plain rows (what :mod:`services.insight` reads through
``db/queries/insight.py``): no I/O, no clock. A *finished* shipment is
:data:`coldchain.lifecycle.FINISHED`.
"""
