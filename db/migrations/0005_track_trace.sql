-- depends: 0004_rules_delivery
-- Track and trace: EPCIS 2.0 events as received and the packing and custody they imply, known
-- read point locations, recalls by lot, QA clearance of excursions, and the indexes that the
-- containment walks (child -> parent -> shipment, and back down for recalls) need.

-- One physical unit, one row. An EPC URI carries a company prefix length, a Digital Link or an
-- element string does not, so the same unit can be written several ways; GTIN + serial (or the
-- SSCC's digits) is the identity that does not depend on it. Identifiers are matched on these
-- keys first (traceability.identifiers), and the unique indexes keep a second spelling out.
CREATE UNIQUE INDEX units_sgtin_key ON units (gtin, serial) WHERE kind = 'sgtin';
CREATE UNIQUE INDEX units_sscc_key ON units (sscc) WHERE kind = 'sscc';

-- Upward walks start from a child and custody lookups from an EPC: plain btrees beat the GiST
-- indexes of the exclusion constraints for equality (several times on a million units).
CREATE INDEX aggregations_child ON aggregations (child_epc);
CREATE INDEX shipment_units_epc ON shipment_units (epc);

-- One imported EPCIS document that brought at least one new event (a re-import of known events
-- changes nothing, so it leaves no row either).
CREATE TABLE epcis_imports (
    import_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at         timestamptz NOT NULL DEFAULT now(),
    source              text NOT NULL,          -- 'api', or the file name given to the CLI
    document_id         text,                   -- the document's own "id", when it has one
    document_sha256     text NOT NULL,
    n_events            integer NOT NULL,
    n_new               integer NOT NULL
);

-- Every event as received. event_key is the EPCIS eventID when the event has one, else
-- 'sha256:' + the hash of the event's canonical JSON: importing the same event again is a no-op.
-- The same eventID with a different content is refused (content_sha256 tells them apart).
CREATE TABLE epcis_events (
    event_key           text PRIMARY KEY,
    event_id            text,
    content_sha256      text NOT NULL,
    event_type          text NOT NULL,
    action              text,
    biz_step            text,
    disposition         text,
    event_time          timestamptz NOT NULL,
    tz_offset           text NOT NULL,
    read_point          text,
    biz_location        text,
    parent_epc          text,
    -- Position reported in the event's own sensor data (Angle latitude/longitude), if any.
    lat                 double precision CHECK (lat BETWEEN -90 AND 90),
    lon                 double precision CHECK (lon BETWEEN -180 AND 180),
    body                jsonb NOT NULL,
    import_id           bigint NOT NULL REFERENCES epcis_imports,
    imported_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX epcis_events_time ON epcis_events (event_time);

-- The tracked units (SGTIN, SSCC; canonical EPC URIs) each event names, by role. Identifiers we
-- do not track (GRAI, GIAI, classes...) stay in the body only.
CREATE TABLE epcis_event_epcs (
    event_key           text NOT NULL REFERENCES epcis_events ON DELETE CASCADE,
    role                text NOT NULL CHECK (role IN ('epc', 'parent', 'child')),
    epc                 text NOT NULL REFERENCES units,
    PRIMARY KEY (event_key, role, epc)
);
CREATE INDEX epcis_event_epcs_epc ON epcis_event_epcs (epc);

-- Packing and custody rows derived from EPCIS events name the event that opened them; rows
-- without one were provisioned otherwise (the simulator) and an import never rewrites them.
ALTER TABLE aggregations ADD COLUMN event_key text REFERENCES epcis_events;
ALTER TABLE shipment_units ADD COLUMN event_key text REFERENCES epcis_events;

-- Read points and business locations with known coordinates (SGLN URIs or any id), for the
-- impossible-travel check when an event carries no GPS of its own.
CREATE TABLE locations (
    location_id         text PRIMARY KEY,
    name                text,
    lat                 double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon                 double precision NOT NULL CHECK (lon BETWEEN -180 AND 180)
);

-- Recalls by product and lot (lot NULL: every lot of the GTIN). Rows are never edited.
CREATE TABLE recalls (
    recall_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gtin                char(14) NOT NULL CHECK (gs1_check_digit_ok(gtin)),
    lot                 text,
    reason              text NOT NULL,
    recalled_by         text NOT NULL,
    recalled_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recalls_gtin_lot ON recalls (gtin, lot);

-- QA's disposition of one excursion (an interim, minimal notion until the QA review feature
-- owns it). Append-only: the latest review of an excursion row is the one in force, and the
-- excursion is "cleared" when that is 'release'. A review belongs to the excursion row as it was
-- reviewed: when late data supersedes the row, the new version needs a review of its own.
CREATE TABLE excursion_reviews (
    review_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    excursion_id        bigint NOT NULL REFERENCES excursions ON DELETE CASCADE,
    disposition         text NOT NULL
                        CHECK (disposition IN ('release', 'quarantine', 'reject', 'return')),
    reviewed_by         text NOT NULL,
    reviewed_at         timestamptz NOT NULL DEFAULT now(),
    comment             text
);
CREATE INDEX excursion_reviews_excursion ON excursion_reviews (excursion_id, reviewed_at DESC);

-- The time a unit in the logger's shipment was exposed to an excursion: from its first
-- out-of-range reading to the first reading back in range (inclusive: that reading is when we
-- learnt it was over), or still running when the excursion is open.
CREATE FUNCTION excursion_exposure(start_ts timestamptz, end_ts timestamptz) RETURNS tstzrange
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN end_ts IS NULL THEN tstzrange(start_ts, NULL)
                ELSE tstzrange(start_ts, end_ts, '[]') END
$$;

-- Passports and lot impact look excursions up by logger (and shipment) over a piece of time.
CREATE INDEX excursions_device ON excursions (device_id, start_ts) WHERE superseded_at IS NULL;
