-- The weekly lane quality report by e-mail (issue 17, README "Insight"): who subscribed to the
-- report of which lane or carrier, and each week sent.
-- depends: 0028_ask_log
--
-- * A subscription names one lane or one carrier (never both), the person who made it (their
--   username; an admin may make one for anyone) and the address it goes to. It is never deleted:
--   ending it sets active false and ended_at, so a report sent once still says to whom.
-- * report_sends is the at-most-once record: one row per (subscription, week), inserted *before*
--   the mail is sent (services/lane_reports.py), so a sender killed mid-send, or two senders at
--   once, never send a week twice; a failure is recorded on the row, not retried.

CREATE TABLE report_subscriptions (
    subscription_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username            text NOT NULL CHECK (length(btrim(username)) BETWEEN 1 AND 200),
    lane_id             bigint REFERENCES lanes,
    carrier_id          bigint REFERENCES carriers,
    email               text NOT NULL CHECK (email ~ '^[^@\s]{1,64}@[^@\s]{1,255}$'),
    created_at          timestamptz NOT NULL DEFAULT now(),
    active              boolean NOT NULL DEFAULT true,
    ended_at            timestamptz,
    CONSTRAINT report_subscriptions_one_scope CHECK ((lane_id IS NULL) <> (carrier_id IS NULL)),
    CONSTRAINT report_subscriptions_ended CHECK (active = (ended_at IS NULL))
);
CREATE INDEX report_subscriptions_user ON report_subscriptions (username);
-- The same person, scope and address once while active.
CREATE UNIQUE INDEX report_subscriptions_once ON report_subscriptions
    (username, coalesce(lane_id, 0), coalesce(carrier_id, 0), lower(email)) WHERE active;

CREATE TABLE report_sends (
    subscription_id     bigint NOT NULL REFERENCES report_subscriptions,
    week_start          date NOT NULL CHECK (extract(isodow FROM week_start) = 1),
    claimed_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    error               text,
    PRIMARY KEY (subscription_id, week_start)
);

-- Audited like every table people change (0006).
CREATE TRIGGER report_subscriptions_audit AFTER INSERT OR DELETE ON report_subscriptions
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('subscription_id');
CREATE TRIGGER report_subscriptions_audit_update AFTER UPDATE ON report_subscriptions
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION audit_row_change('subscription_id');
REVOKE DELETE, TRUNCATE ON report_subscriptions, report_sends FROM coldchain_app;
