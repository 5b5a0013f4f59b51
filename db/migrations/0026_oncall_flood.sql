-- On-call schedules and flood control (issue 16, slice c).
--
-- * A rotation hands over from one member to the next every ``shift_days`` days at
--   ``handover_time`` in ``time_zone`` (local wall-clock time, so a hand-over stays at 09:00
--   across a DST change), counted from ``start_date``; the members take turns in ``position``
--   order. An override puts someone else on call for a while (sick leave, a swap). Who is on call
--   at an instant is computed by coldchain.oncall, a pure function of these rows; an escalation
--   tier with ``rotation = "<name>"`` notifies that person at the moment of notifying.
-- * Flood control and backlog grouping in the outbox: a notification is *held* (held_at, the
--   reason) instead of sent when a per-hour limit is hit, or *grouped* into a digest (a
--   notification with event 'digest') that stands for it (digest_id). A held or grouped row is
--   never due on its own again; the digest's delivery settles it (delivered_at, and a deliveries
--   row per member naming the digest). Nothing is dropped: every held row stays here, counted on
--   the alert's delivery list and in its digest.
-- depends: 0025_reminders_ack_links

CREATE TABLE oncall_rotations (
    rotation_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    team                text NOT NULL CHECK (length(btrim(team)) BETWEEN 1 AND 200),
    time_zone           text NOT NULL,  -- an IANA zone, checked by the service (zoneinfo)
    handover_time       time NOT NULL,
    shift_days          integer NOT NULL CHECK (shift_days BETWEEN 1 AND 28),
    start_date          date NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- The members in turn order; a person is in a rotation once.
CREATE TABLE oncall_members (
    rotation_id         bigint NOT NULL REFERENCES oncall_rotations ON DELETE CASCADE,
    position            integer NOT NULL CHECK (position >= 0),
    username            text NOT NULL REFERENCES app_users (username) ON UPDATE CASCADE,
    PRIMARY KEY (rotation_id, position),
    UNIQUE (rotation_id, username)
);

CREATE TABLE oncall_overrides (
    override_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rotation_id         bigint NOT NULL REFERENCES oncall_rotations ON DELETE CASCADE,
    username            text NOT NULL REFERENCES app_users (username) ON UPDATE CASCADE,
    starts_at           timestamptz NOT NULL,
    ends_at             timestamptz NOT NULL,
    reason              text NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 2000),
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX oncall_overrides_rotation ON oncall_overrides (rotation_id, ends_at);

-- Who is on call is part of the record of who was told: every change is audited.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('oncall_rotations', 'rotation_id'), ('oncall_members', 'rotation_id'),
        ('oncall_overrides', 'override_id')
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

-- A digest is about several alerts (its payload lists them), so it has no alert_id of its own.
ALTER TABLE notifications DROP CONSTRAINT notifications_about_one;
ALTER TABLE notifications
    ADD CONSTRAINT notifications_about_one
        CHECK (num_nonnulls(alert_id, shipment_event_id) = 1 OR event = 'digest'),
    ADD COLUMN held_at timestamptz,
    ADD COLUMN held_reason text,
    ADD COLUMN digest_id bigint REFERENCES notifications ON DELETE SET NULL,
    -- What a flood digest collects: "shipment:<id>", "device:<id>" or "recipient".
    ADD COLUMN digest_scope text;
CREATE INDEX notifications_digest ON notifications (digest_id) WHERE digest_id IS NOT NULL;
-- The per-hour counts of flood control: what each recipient was sent lately.
CREATE INDEX notifications_sent_to ON notifications (channel, target, delivered_at)
    WHERE delivered_at IS NOT NULL;
