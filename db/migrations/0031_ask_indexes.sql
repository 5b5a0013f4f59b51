-- Ask (issue 17): what the default answerer looks identifiers up by. A question names a shipment,
-- a purchase order or a logger in whatever case it was typed ("shp-0001", "po-5829"), so
-- db/queries/ask.py compares upper(...) = ANY(...): at 5,000 shipments each of the three was a
-- sequential scan (EXPLAIN in bench/ask_latency.py's data: 1-13 ms each, per question).
-- depends: 0023_people_contacts

CREATE INDEX shipments_reference_upper ON shipments (upper(reference));
CREATE INDEX shipment_references_value_upper ON shipment_references (upper(value));
CREATE INDEX devices_device_id_upper ON devices (upper(device_id));
