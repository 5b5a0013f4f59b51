"""The per-shipment excursion report: pure assembly from plain values, and its renderers.

- :mod:`reports.assemble`  the report's inputs (plain values, as loaded from the database) →
  evidence (a JSON-ready dict) and its content hash (pure)
- :mod:`reports.render`    evidence (+ signed dispositions) → JSON, CSV and PDF bytes
- :mod:`reports.pdf_sections`  the PDF's page and one renderer per section, called by ``render_pdf``
- :mod:`reports.pdf_chart`  the PDF's temperature chart (readings, range band, excursions shaded),
  drawn as vector paths so the bytes stay reproducible
- :mod:`reports.csv_files`  the two CSV files: readings (one row per reading), summary (one row
  per figure)
- :mod:`reports.queue`     the QA exceptions queue: which shipments need a decision, riskiest
  first (pure; read by :func:`services.reports.qa_index`)
- :mod:`reports.service`   loads the inputs as of an instant; builds the report live or from the
  snapshot frozen when it was signed (signing is :func:`services.reports.sign`)

Canonical JSON and SHA-256, shared with the signatures and EPCIS, are :mod:`coldchain.canonical`.

The *evidence* is everything the report says about what happened (product, shipment, loggers,
readings, rules and thresholds, excursions, MKT, budget, alerts, arrival verdicts) as of one
instant. Its content
hash is SHA-256 over its canonical JSON; a signed disposition names that hash, and the evidence
is frozen in the database when it is signed, so the signed report renders again byte for byte.
"""
