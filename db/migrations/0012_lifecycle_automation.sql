-- Shipments that start and arrive on their own, and webhooks for their lifecycle (issue 13).
-- depends: 0011_shipment_lifecycle
--
-- * Automatic start and arrival (services/automation.py) need no table of their own: the worker
--   follows reading_changes with its own row in engine_cursor (name 'automation'), as the rules
--   engine does with 'rules', and each transition it makes is a shipment_events row (actor
--   'system:automation', the triggering reading's time) plus the audited shipments update.
-- * Lifecycle webhooks go through alerts' outbox (notifications → deliveries), signed the same
--   way. A notification is now about an alert or about a timeline entry, exactly one of them.
-- * lifecycle_outbox is a transactional outbox of the timeline entries worth a webhook: a
--   statement trigger on shipment_events adds one row per such entry in the transaction that
--   writes the entry, whoever writes it (API, CLI, CSV import, automation, QA's signature). The
--   automation worker turns each pending row into one notification per configured receiver and
--   marks it handled (also when no receiver is configured: configuring one later does not send
--   the past). Without it, a cursor over event_id could skip an entry whose transaction
--   committed after a later one's (identity values are taken at insert, not at commit).
--   Not audited: it is delivery bookkeeping derived from shipment_events, which is itself an
--   append-only trail, as notifications and deliveries are not audited either.

ALTER TABLE notifications
    ALTER COLUMN alert_id DROP NOT NULL,
    ADD COLUMN shipment_event_id bigint REFERENCES shipment_events,
    ADD CONSTRAINT notifications_about_one CHECK (num_nonnulls(alert_id, shipment_event_id) = 1);
CREATE INDEX notifications_shipment_event ON notifications (shipment_event_id)
    WHERE shipment_event_id IS NOT NULL;

-- A delivery attempt of a lifecycle notification has no alert; notification_id says what it was.
ALTER TABLE deliveries ALTER COLUMN alert_id DROP NOT NULL;

CREATE TABLE lifecycle_outbox (
    event_id            bigint PRIMARY KEY REFERENCES shipment_events,
    queued_at           timestamptz NOT NULL DEFAULT now(),
    handled_at          timestamptz,
    receivers           integer CHECK (receivers >= 0)  -- notifications made when handled
);
CREATE INDEX lifecycle_outbox_pending ON lifecycle_outbox (event_id) WHERE handled_at IS NULL;

-- The timeline entries a webhook is sent for (services/automation.py WEBHOOK_EVENTS names them).
CREATE FUNCTION lifecycle_outbox_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lifecycle_outbox (event_id)
    SELECT event_id FROM new_events
    WHERE event IN ('create', 'start', 'arrive', 'verdict', 'release', 'quarantine', 'reject',
                    'return', 'cancel');
    IF FOUND THEN
        PERFORM pg_notify('lifecycle_events', '');  -- wakes the automation worker
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER shipment_events_outbox AFTER INSERT ON shipment_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle_outbox_add();

REVOKE DELETE, TRUNCATE ON lifecycle_outbox FROM coldchain_app;
