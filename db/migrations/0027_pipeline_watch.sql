-- The pipeline watches itself (issue 16): test notifications on every channel, recorded in
-- deliveries.
-- depends: 0023_people_contacts

-- A test notification (services/notify.py) is one deliveries row (event 'test', no alert, no
-- outbox row) on any of issue 16's channels. The same list as notifications.channel after
-- 0024_channels; dropped and added by name, so either migration may run first.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_channel_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_channel_check
    CHECK (channel IN ('webhook', 'email', 'slack', 'teams', 'pagerduty', 'opsgenie', 'sms'));
