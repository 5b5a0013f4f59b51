-- Shipments from booking to release (issue 13): the lifecycle, external references, items on
-- board, the timeline and the arrival verdicts.
-- depends: 0010_master_data
--
-- * shipments.status takes the states of coldchain/lifecycle.py (planned → in_transit → arrived
--   → under_review → released / quarantined / rejected / returned; cancelled from planned).
--   The old 'delivered' becomes 'arrived': a delivered shipment had arrived, and nobody had
--   judged it yet, which is what 'arrived' says.
-- * `version` counts a shipment's changes, as 0010's master data does: services/bookings.py
--   updates only `WHERE version = <the version the caller read>` (If-Match in the API; 412 when
--   stale), and every transition bumps it too.
-- * create_key / create_hash make creation idempotent for an ERP or WMS that retries: the same
--   Idempotency-Key (or the same external reference) with the same request returns the first
--   shipment; with another request it is refused (409). create_hash is the SHA-256 of the
--   canonical create request (services/bookings.py), not of the shipment as it is now, so a
--   retry still matches after the shipment was updated.
-- * shipment_events is the timeline: one row per transition and per booking change worth
--   showing (logger attached or detached, calibration override, verdict), written in the same
--   transaction as the change it records. Append-only, like 0006's signed records; the audit
--   trail (audit_log) keeps the row-level before/after with who and why as for every table.

-- ---------------------------------------------------------------------------------------------
-- States
-- ---------------------------------------------------------------------------------------------

ALTER TABLE shipments DROP CONSTRAINT shipments_status_check;
UPDATE shipments SET status = 'arrived' WHERE status = 'delivered';
ALTER TABLE shipments ADD CONSTRAINT shipments_status_check CHECK (status IN (
    'planned', 'in_transit', 'arrived', 'under_review',
    'released', 'quarantined', 'rejected', 'returned', 'cancelled'
));

ALTER TABLE shipments
    ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    ADD COLUMN lane_id bigint REFERENCES lanes,
    ADD COLUMN carrier_id bigint REFERENCES carriers,
    ADD COLUMN started_at timestamptz,
    ADD COLUMN arrived_at timestamptz,
    ADD COLUMN create_key text UNIQUE CHECK (length(create_key) BETWEEN 1 AND 200),
    ADD COLUMN create_hash text CHECK (create_hash ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT shipments_arrives_after_start
        CHECK (arrived_at IS NULL OR (started_at IS NOT NULL AND arrived_at >= started_at));
CREATE INDEX shipments_status ON shipments (status);

-- ---------------------------------------------------------------------------------------------
-- External references: what the ERP, the WMS or the customer calls the shipment
-- ---------------------------------------------------------------------------------------------

-- Unique per organisation; one installation serves one organisation today, so unique here. A
-- second organisation would add its id to the key.
CREATE TABLE shipment_references (
    shipment_id         bigint NOT NULL REFERENCES shipments,
    kind                text NOT NULL
                        CHECK (kind IN ('purchase_order', 'sales_order', 'customer', 'other')),
    value               text NOT NULL CHECK (length(btrim(value)) BETWEEN 1 AND 200),
    PRIMARY KEY (kind, value)
);
CREATE INDEX shipment_references_shipment ON shipment_references (shipment_id);
-- Searched by value alone ("PO-4711", whatever its kind).
CREATE INDEX shipment_references_value ON shipment_references (value);

-- ---------------------------------------------------------------------------------------------
-- What is on board: products with lots and quantities (serialised units: shipment_units, 0002)
-- ---------------------------------------------------------------------------------------------

CREATE TABLE shipment_items (
    shipment_id         bigint NOT NULL REFERENCES shipments,
    gtin                char(14) NOT NULL REFERENCES products (gtin),
    lot                 text NOT NULL CHECK (length(lot) BETWEEN 1 AND 20),  -- GS1 AI (10)
    quantity            integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (shipment_id, gtin, lot)
);

-- ---------------------------------------------------------------------------------------------
-- The timeline
-- ---------------------------------------------------------------------------------------------

CREATE TABLE shipment_events (
    event_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id         bigint NOT NULL REFERENCES shipments,
    at                  timestamptz NOT NULL DEFAULT now(),
    event               text NOT NULL CHECK (event IN (
                            -- the transitions of coldchain/lifecycle.py
                            'start', 'arrive', 'review', 'release', 'quarantine', 'reject',
                            'return', 'cancel',
                            -- booking changes shown on the timeline
                            'create', 'update', 'logger_attached', 'logger_detached',
                            'calibration_override', 'verdict')),
    from_state          text,
    to_state            text,
    actor               text NOT NULL CHECK (length(btrim(actor)) >= 1),
    reason              text,
    data                jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object')
);
CREATE INDEX shipment_events_shipment ON shipment_events (shipment_id, at, event_id);

-- ---------------------------------------------------------------------------------------------
-- Verdicts at arrival: each product on board against its stability profile
-- ---------------------------------------------------------------------------------------------

-- `figures` is coldchain.thermal.stability.Verdict.to_dict() (bands with budget used, time in
-- range, gaps, freeze–thaw cycles, MKT); `reasons` its reasons. profile_version is the
-- product_profiles version in force when the shipment started, NULL when the product had none
-- and was judged by its storage range and stability budget (services/lifecycle.py).
CREATE TABLE shipment_verdicts (
    verdict_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id         bigint NOT NULL REFERENCES shipments,
    gtin                char(14) NOT NULL REFERENCES products (gtin),
    verdict             text NOT NULL CHECK (verdict IN ('conforming', 'exception')),
    reasons             jsonb NOT NULL CHECK (jsonb_typeof(reasons) = 'array'),
    figures             jsonb NOT NULL CHECK (jsonb_typeof(figures) = 'object'),
    profile_version     integer,
    evaluated_at        timestamptz NOT NULL,
    evaluated_by        text NOT NULL
);
CREATE INDEX shipment_verdicts_shipment ON shipment_verdicts (shipment_id, evaluated_at DESC);

-- ---------------------------------------------------------------------------------------------
-- Audit and privileges
-- ---------------------------------------------------------------------------------------------

-- References, items and verdicts are audited as 0006's tables are, keyed by the shipment so
-- that a shipment's trail is one query. shipments and device_assignments have theirs already.
-- shipment_events is itself a trail (append-only, with its actor and reason) whose every row
-- goes with an audited change of the shipment, so it is not audited twice; shipment_units is
-- filled by EPCIS imports and the simulator by the thousand, and stays as 0006 left it.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('shipment_references', 'shipment_id'), ('shipment_items', 'shipment_id'),
        ('shipment_verdicts', 'shipment_id')
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

-- The timeline and the verdicts are evidence: read and add, nothing else, for anyone.
CREATE TRIGGER shipment_events_append_only BEFORE UPDATE OR DELETE ON shipment_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER shipment_events_no_truncate BEFORE TRUNCATE ON shipment_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER shipment_verdicts_append_only BEFORE UPDATE OR DELETE ON shipment_verdicts
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER shipment_verdicts_no_truncate BEFORE TRUNCATE ON shipment_verdicts
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON shipment_events, shipment_verdicts FROM coldchain_app;
-- Shipments are cancelled, never deleted (their readings and signed records point at them).
REVOKE DELETE, TRUNCATE ON shipments FROM coldchain_app;
