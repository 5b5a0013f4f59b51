-- Rules and the delivery of alerts: rule definitions stored through the API (versioned, never
-- edited), the state of each rule per (shipment, device), the notification outbox that the
-- delivery worker drains, and the escalation time of an alert.
-- depends: 0003_excursions_alerts

-- One layer of rules for a product or for a shipment, in the rules-file format (validated by
-- alerts.rules.parse_definition before it is stored). A change is a new version; the highest
-- version of a scope is the one in force, and the older ones stay as the audit trail.
CREATE TABLE rule_definitions (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_gtin        char(14) REFERENCES products (gtin) ON DELETE CASCADE,
    shipment_id         bigint REFERENCES shipments ON DELETE CASCADE,
    version             integer NOT NULL CHECK (version >= 1),
    definition          jsonb NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    created_by          text NOT NULL,
    comment             text,
    CHECK ((product_gtin IS NULL) <> (shipment_id IS NULL))
);
CREATE UNIQUE INDEX rule_definitions_product ON rule_definitions (product_gtin, version)
    WHERE product_gtin IS NOT NULL;
CREATE UNIQUE INDEX rule_definitions_shipment ON rule_definitions (shipment_id, version)
    WHERE shipment_id IS NOT NULL;

-- What each rule (other than the temperature range, whose excursions are rows of their own)
-- found for one logger in one shipment, and which episode an alert has taken (alerted_since),
-- so that an alert opens once per episode and a restart repeats nothing.
CREATE TABLE rule_states (
    shipment_id         bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    device_id           text NOT NULL,
    rule_key            text NOT NULL,
    holding             boolean NOT NULL,
    as_of               timestamptz NOT NULL,  -- the data's time it was judged at
    since               timestamptz,           -- start of the latest alarmed episode
    alarm_at            timestamptz,
    ended_at            timestamptz,
    severity            text CHECK (severity IN ('info', 'warning', 'major', 'critical')),
    value               double precision,
    trigger_at          timestamptz,           -- earliest alarm no alert has taken yet
    alert_id            bigint REFERENCES alerts ON DELETE SET NULL,
    alerted_since       timestamptz,
    details             jsonb NOT NULL DEFAULT '{}',
    thresholds          jsonb NOT NULL DEFAULT '{}',
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shipment_id, device_id, rule_key)
);
CREATE INDEX rule_states_holding ON rule_states (shipment_id) WHERE holding;

-- The outbox: a row per (alert event, recipient), written in the same transaction as the alert
-- change, so nothing is lost or sent twice by a restart of the engine. The delivery worker
-- sends due rows, logs every attempt in deliveries, and retries with backoff until it gives up.
CREATE TABLE notifications (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id            bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
    event               text NOT NULL,
    tier                integer NOT NULL DEFAULT 0,
    channel             text NOT NULL CHECK (channel IN ('webhook', 'email')),
    target              text NOT NULL,
    payload             jsonb NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    delivered_at        timestamptz,
    gave_up_at          timestamptz,
    last_error          text
);
CREATE INDEX notifications_due ON notifications (next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX notifications_alert ON notifications (alert_id);

ALTER TABLE deliveries ADD COLUMN notification_id bigint REFERENCES notifications ON DELETE CASCADE;
ALTER TABLE deliveries ADD COLUMN duration_ms double precision;

ALTER TABLE alerts ADD COLUMN escalated_at timestamptz;
CREATE INDEX alerts_escalation ON alerts (created_at) WHERE state = 'open';
