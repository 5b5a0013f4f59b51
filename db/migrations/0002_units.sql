-- Serialised units (GS1): SSCC for pallets and cases, SGTIN for saleable items, their packing
-- over time, and which SSCC rode in which shipment. Identifiers are stored as EPC URIs.
-- depends: 0001_core

CREATE TABLE units (
    epc                 text PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('sscc', 'sgtin')),
    gtin                char(14) CHECK (gtin IS NULL OR gs1_check_digit_ok(gtin)),
    serial              text,
    sscc                char(18) CHECK (sscc IS NULL OR gs1_check_digit_ok(sscc)),
    lot                 text,
    expiry              date,
    commissioned_at     timestamptz,
    CHECK ((kind = 'sscc' AND sscc IS NOT NULL) OR (kind = 'sgtin' AND gtin IS NOT NULL AND serial IS NOT NULL))
);
CREATE INDEX units_lot ON units (gtin, lot);

-- A child sits in one parent at a time; unpacking closes the interval.
CREATE TABLE aggregations (
    parent_epc          text NOT NULL REFERENCES units,
    child_epc           text NOT NULL REFERENCES units,
    during              tstzrange NOT NULL CHECK (NOT isempty(during)),
    EXCLUDE USING gist (child_epc WITH =, during WITH &&)
);
CREATE INDEX aggregations_parent ON aggregations (parent_epc);

CREATE TABLE shipment_units (
    shipment_id         bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    epc                 text NOT NULL REFERENCES units,
    during              tstzrange NOT NULL CHECK (NOT isempty(during)),
    EXCLUDE USING gist (epc WITH =, during WITH &&)
);
CREATE INDEX shipment_units_shipment ON shipment_units (shipment_id);
