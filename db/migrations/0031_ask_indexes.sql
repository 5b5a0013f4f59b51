-- Ask (issue 17): what the default answerer looks identifiers up by. A question names a shipment
-- or a purchase order in whatever case it was typed ("shp-0001", "po-5829"), so
-- db/queries/ask.py compares upper(...) = ANY(...): at 5,000 shipments each was a sequential scan
-- (EXPLAIN on bench/ask_latency.py's data: 1-13 ms each, per question). Logger serials are
-- compared the same way without an index (1 ms at 5,000 loggers): building one would wait for
-- any transaction writing to devices that is open during the upgrade, and hold up the upgrade
-- (tests/alerts/test_change_log.py upgrades with such a writer in flight).
-- depends: 0029_report_subscriptions

CREATE INDEX shipments_reference_upper ON shipments (upper(reference));
CREATE INDEX shipment_references_value_upper ON shipment_references (upper(value));
