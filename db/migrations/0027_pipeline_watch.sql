-- The pipeline watches itself (issue 16): test notifications on every channel, recorded in
-- deliveries; system alerts, which belong to no shipment.
-- depends: 0026_oncall_flood

-- A test notification (services/notify.py) is one deliveries row (event 'test', no alert, no
-- outbox row) on any of issue 16's channels. The same list as notifications.channel after
-- 0024_channels; dropped and added by name, so either migration may run first.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_channel_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_channel_check
    CHECK (channel IN ('webhook', 'email', 'slack', 'teams', 'pagerduty', 'opsgenie', 'sms'));

-- System alerts: about the pipeline, not a shipment ("Ingest stalled": alerts/ingest_watch.py).
-- Such an alert has no shipment; only the system rules may have none, and each has at most one
-- unresolved alert (as alerts_one_open does per shipment and rule). Every reader of alerts
-- joins shipments with a LEFT JOIN or filters by a shipment.
ALTER TABLE alerts ALTER COLUMN shipment_id DROP NOT NULL;
ALTER TABLE alerts ADD CONSTRAINT alerts_system_rule
    CHECK (shipment_id IS NOT NULL OR rule_key IN ('ingest_stalled'));
CREATE UNIQUE INDEX alerts_one_open_system ON alerts (rule_key)
    WHERE shipment_id IS NULL AND state <> 'resolved';
