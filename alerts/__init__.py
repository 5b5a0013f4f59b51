"""Pure computation core of the rules engine: excursions, MKT, stability budget, forecasts."""
