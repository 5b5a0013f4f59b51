-- What the rules engine finds: excursions (with their history) and alerts (with their timeline
-- and notification deliveries). Each row keeps the rule and thresholds as they were.
-- depends: 0002_units

CREATE TABLE excursions (
    excursion_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id         bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    device_id           text NOT NULL,
    direction           text NOT NULL CHECK (direction IN ('high', 'low')),
    start_ts            timestamptz NOT NULL,
    end_ts              timestamptz,
    last_out_ts         timestamptz NOT NULL,
    ended_by_gap        boolean NOT NULL DEFAULT false,
    min_c               double precision NOT NULL,
    max_c               double precision NOT NULL,
    degree_minutes      double precision NOT NULL,
    n_readings          integer NOT NULL,
    readings_over_40    integer NOT NULL DEFAULT 0,
    readings_freezing   integer NOT NULL DEFAULT 0,
    alarm               boolean NOT NULL,
    alarm_at            timestamptz,
    freeze_alarm        boolean NOT NULL DEFAULT false,
    rule_key            text NOT NULL,
    alert_id            bigint,  -- the alert this excursion raised or joined (alarmed ones only)
    thresholds          jsonb NOT NULL,
    -- History: a late reading that changes an excursion supersedes the row, never edits it.
    superseded_at       timestamptz,
    superseded_reason   text,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX excursions_current ON excursions (shipment_id, device_id, start_ts)
    WHERE superseded_at IS NULL;

CREATE TABLE alerts (
    alert_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id         bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    rule_key            text NOT NULL,
    severity            text NOT NULL CHECK (severity IN ('info', 'warning', 'major', 'critical')),
    state               text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    title               text NOT NULL,
    device_id           text,
    triggered_at        timestamptz NOT NULL,  -- the reading's own time, not the server's
    value               double precision,
    thresholds          jsonb NOT NULL DEFAULT '{}',
    details             jsonb NOT NULL DEFAULT '{}',
    assignee            text,
    acked_by            text,
    acked_at            timestamptz,
    ack_comment         text,
    resolved_by         text,
    resolved_at         timestamptz,
    escalation_level    integer NOT NULL DEFAULT 0,
    cleared_at          timestamptz,  -- the condition cleared; an unacknowledged alert stays open
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
-- Exactly one unresolved alert per (shipment, rule): a stronger condition upgrades it.
CREATE UNIQUE INDEX alerts_one_open ON alerts (shipment_id, rule_key) WHERE state <> 'resolved';
CREATE INDEX alerts_state ON alerts (state, severity);

CREATE TABLE alert_events (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id            bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
    at                  timestamptz NOT NULL DEFAULT now(),
    kind                text NOT NULL,  -- opened, upgraded, acknowledged, comment, escalated, resolved
    actor               text,
    comment             text,
    data                jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, at);

CREATE TABLE deliveries (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id            bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
    channel             text NOT NULL CHECK (channel IN ('webhook', 'email')),
    target              text NOT NULL,
    event               text NOT NULL,
    attempt             integer NOT NULL,
    ok                  boolean NOT NULL,
    response            text,
    at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_alert ON deliveries (alert_id, at);

ALTER TABLE excursions ADD FOREIGN KEY (alert_id) REFERENCES alerts ON DELETE SET NULL;
