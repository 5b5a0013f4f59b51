-- Core schema: devices, products, shipments and legs, device assignments, readings.
-- The extensions are created by the cluster bootstrap as superuser; these are no-ops then.

CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- GS1 mod-10 check digit over all digits but the last (weights 3,1,3,1... from the right).
CREATE FUNCTION gs1_check_digit_ok(code text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT code ~ '^[0-9]+$' AND length(code) >= 2 AND (
        (10 - (
            SELECT sum(substr(code, length(code) - i, 1)::int * CASE WHEN i % 2 = 1 THEN 3 ELSE 1 END)
            FROM generate_series(1, length(code) - 1) AS i
        ) % 10) % 10
    ) = substr(code, length(code), 1)::int
$$;

CREATE TABLE devices (
    device_id           text PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
    model               text NOT NULL DEFAULT 'generic',
    calibration_cert    text,
    calibration_due     date,
    interval_s          integer NOT NULL DEFAULT 300 CHECK (interval_s > 0),
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    gtin                char(14) PRIMARY KEY CHECK (gs1_check_digit_ok(gtin)),
    name                text NOT NULL,
    temp_min_c          double precision,
    temp_max_c          double precision,
    freeze_limit_c      double precision,
    alarm_delay_s       integer NOT NULL DEFAULT 0 CHECK (alarm_delay_s >= 0),
    stability_budget_s  integer CHECK (stability_budget_s >= 0),
    mkt_delta_h_j_mol   double precision NOT NULL DEFAULT 83144 CHECK (mkt_delta_h_j_mol > 0),
    mkt_limit_c         double precision,
    rh_min              double precision,
    rh_max              double precision,
    CHECK (temp_min_c IS NULL OR temp_max_c IS NULL OR temp_min_c < temp_max_c)
);

CREATE TABLE shipments (
    shipment_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reference           text NOT NULL UNIQUE,
    product_gtin        char(14) REFERENCES products (gtin),
    origin              text NOT NULL,
    destination         text NOT NULL,
    planned_departure   timestamptz,
    planned_arrival     timestamptz,
    status              text NOT NULL DEFAULT 'planned'
                        CHECK (status IN ('planned', 'in_transit', 'delivered', 'cancelled')),
    carrier             text,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shipment_legs (
    shipment_id         bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    seq                 integer NOT NULL CHECK (seq >= 1),
    mode                text NOT NULL CHECK (mode IN ('road', 'air', 'sea', 'rail', 'warehouse')),
    origin              text NOT NULL,
    destination         text NOT NULL,
    carrier             text,
    planned_departure   timestamptz,
    planned_arrival     timestamptz,
    PRIMARY KEY (shipment_id, seq)
);

-- A logger rides in a shipment for an interval; a logger is reused across shipments, and a
-- shipment may carry several. Readings belong to a shipment through this interval, never by
-- guessing; the exclusion constraint keeps one logger in one shipment at a time.
CREATE TABLE device_assignments (
    assignment_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id           text NOT NULL REFERENCES devices,
    shipment_id         bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    during              tstzrange NOT NULL CHECK (NOT isempty(during)),
    EXCLUDE USING gist (device_id WITH =, during WITH &&)
);
CREATE INDEX device_assignments_shipment ON device_assignments (shipment_id);

-- Readings on the logger's own measurement time. The primary key makes a re-sent reading a
-- no-op and serves both "one device over a time range" and "latest reading of a device".
CREATE TABLE readings (
    device_id           text NOT NULL,
    ts                  timestamptz NOT NULL,
    temp_c              double precision,
    rh                  double precision,
    lat                 double precision,
    lon                 double precision,
    battery             real,
    received_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, ts)
);
DO $$ BEGIN
    PERFORM create_hypertable('readings', 'ts', chunk_time_interval => INTERVAL '1 day');
END $$;

-- The newest reading per device, kept by the ingester so the fleet view never scans readings.
CREATE TABLE device_state (
    device_id           text PRIMARY KEY,
    ts                  timestamptz NOT NULL,
    temp_c              double precision,
    rh                  double precision,
    lat                 double precision,
    lon                 double precision,
    battery             real,
    received_at         timestamptz NOT NULL,
    online              boolean NOT NULL DEFAULT true,
    firmware            text,
    status_at           timestamptz
);

-- Messages the ingester refused, with the raw bytes and the reason.
CREATE TABLE dead_letters (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at         timestamptz NOT NULL DEFAULT now(),
    topic               text NOT NULL,
    device_id           text,
    reason              text NOT NULL,
    batch_index         integer,
    payload             bytea NOT NULL
);
CREATE INDEX dead_letters_received ON dead_letters (received_at DESC);

-- What each ingest commit changed, so the rules engine evaluates only that (and re-evaluates
-- late data) without scanning. The engine keeps its position in engine_cursor.
CREATE TABLE reading_changes (
    change_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id           text NOT NULL,
    ts_min              timestamptz NOT NULL,
    ts_max              timestamptz NOT NULL,
    n_readings          integer NOT NULL,
    committed_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE engine_cursor (
    name                text PRIMARY KEY,
    last_change_id      bigint NOT NULL DEFAULT 0,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
