-- Master data (issue 13): products with versioned stability profiles, loggers, locations,
-- carriers and lanes, each created, updated and retired through services/ with who and why.
-- depends: 0009_dead_letter_reasons
--
-- Rules every master-data table here follows:
--
-- * `version` counts the row's changes (1 on creation). services/ updates a row only
--   `WHERE version = <the version the caller read>` and sets `version = version + 1`, so of two
--   concurrent edits the second fails instead of silently overwriting the first (the API maps it
--   to 412 Precondition Failed through If-Match; README "Master data").
-- * Never deleted: `retired_at` set (who and why are in the audit trail, like every change).
--   A retired product, logger or location cannot be used for a new shipment; the rows stay, so
--   past shipments, reports and the audit trail keep pointing at what they were. The services'
--   role loses DELETE and TRUNCATE on the new tables, so that holds whatever the code does.
-- * Every change is audited by the same audit_row_change triggers as 0006's tables.
--
-- A logger's serial number IS its device_id (the MQTT user name and topic segment): one
-- identifier printed on the logger, scanned at the dock and seen on the wire, so no mapping can
-- disagree. The calibration certificate and due date already exist on devices (0001).

-- ---------------------------------------------------------------------------------------------
-- Products and their stability profiles
-- ---------------------------------------------------------------------------------------------

-- The MKT window: MKT is judged over the whole shipment when NULL, else over each rolling window
-- of that many days (the label's "MKT over 30 days").
ALTER TABLE products
    ADD COLUMN mkt_window_days integer CHECK (mkt_window_days IS NULL OR mkt_window_days > 0),
    ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN retired_at timestamptz,
    ADD CONSTRAINT products_rh_range CHECK (rh_min IS NULL OR rh_max IS NULL OR rh_min < rh_max);

-- A product's stability profile, one row per version, never edited: a change is a new version
-- with its author and reason. `profile` is coldchain.thermal.stability.StabilityProfile as JSON,
-- field for field (services/products.py reads and writes it; budgets in seconds). The version in
-- force at a time t is the highest version created at or before t; a shipment is judged by the
-- version in force when it started.
CREATE TABLE product_profiles (
    gtin                char(14) NOT NULL REFERENCES products (gtin),
    version             integer NOT NULL CHECK (version >= 1),
    profile             jsonb NOT NULL CHECK (jsonb_typeof(profile) = 'object'),
    created_by          text NOT NULL CHECK (length(btrim(created_by)) >= 1),
    reason              text NOT NULL CHECK (length(btrim(reason)) >= 1),
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gtin, version)
);
CREATE INDEX product_profiles_in_force ON product_profiles (gtin, created_at DESC);

CREATE TRIGGER product_profiles_append_only BEFORE UPDATE OR DELETE ON product_profiles
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER product_profiles_no_truncate BEFORE TRUNCATE ON product_profiles
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- ---------------------------------------------------------------------------------------------
-- Loggers
-- ---------------------------------------------------------------------------------------------

ALTER TABLE devices
    ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    ADD COLUMN retired_at timestamptz;

-- ---------------------------------------------------------------------------------------------
-- Locations, carriers, lanes
-- ---------------------------------------------------------------------------------------------

-- A site: warehouse, hospital, airport handler. 0005 made `locations` for EPCIS read points and
-- business locations (location_id: an SGLN URI or any id, with coordinates, for the
-- impossible-travel check); a site is the same notion, so this extends that table rather than
-- making a second one. A site registered as master data has a GLN (its natural key: creation is
-- idempotent by GLN), an address and a geofence, a circle of geofence_m metres around
-- (lat, lon); its location_id is the id its EPCIS events use (the SGLN URI) or, by default, the
-- GLN itself. Rows 0005 knew (read points without a GLN) keep gln and geofence_m NULL.
ALTER TABLE locations
    ADD COLUMN gln char(13) UNIQUE CHECK (gs1_check_digit_ok(gln)),
    ADD COLUMN address text NOT NULL DEFAULT '' CHECK (length(address) <= 500),
    ADD COLUMN geofence_m double precision CHECK (geofence_m > 0),
    ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN retired_at timestamptz;

CREATE TABLE carriers (
    carrier_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text NOT NULL UNIQUE CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    code                text UNIQUE CHECK (code ~ '^[A-Z0-9][A-Z0-9._-]{0,31}$'),  -- SCAC, IATA...
    version             integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at          timestamptz NOT NULL DEFAULT now(),
    retired_at          timestamptz
);

CREATE TABLE lanes (
    lane_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code                text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    origin_location_id  text NOT NULL REFERENCES locations,
    destination_location_id text NOT NULL REFERENCES locations,
    mode                text NOT NULL CHECK (mode IN ('road', 'air', 'sea', 'rail', 'multimodal')),
    version             integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at          timestamptz NOT NULL DEFAULT now(),
    retired_at          timestamptz,
    CHECK (origin_location_id <> destination_location_id)
);
CREATE INDEX lanes_origin ON lanes (origin_location_id);
CREATE INDEX lanes_destination ON lanes (destination_location_id);

-- ---------------------------------------------------------------------------------------------
-- Audit and privileges
-- ---------------------------------------------------------------------------------------------

-- Same triggers as 0006's tables (products and devices have theirs already): every insert and
-- every update that changes something; product_profiles only ever inserts.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('product_profiles', 'gtin'), ('locations', 'location_id'),
        ('carriers', 'carrier_id'), ('lanes', 'lane_id')
    ) AS v(tab, key) LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT OR DELETE ON %I FOR EACH ROW '
            'EXECUTE FUNCTION audit_row_change(%L)', t.tab || '_audit', t.tab, t.key);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER UPDATE ON %I FOR EACH ROW '
            'WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION audit_row_change(%L)',
            t.tab || '_audit_update', t.tab, t.key);
    END LOOP;
END
$$;

-- Retire, never delete; profiles are append-only (0006's default privileges granted the rest).
REVOKE DELETE, TRUNCATE ON locations, carriers, lanes FROM coldchain_app;
REVOKE UPDATE, DELETE, TRUNCATE ON product_profiles FROM coldchain_app;
