-- Reminders and acknowledgement from the message (issue 16, slice b).
--
-- alerts.reminded_at / reminders_sent: the last reminder of an unacknowledged alert and how many
-- were sent, written by the rules engine in the same transaction as the reminder's outbox rows;
-- the next reminder is counted from the alert's last notification (opened, escalated or
-- reminded). reminder_held_since: a reminder fell due during quiet hours and waits for their end
-- (NULL: none held); the reminder sent afterwards says so.
--
-- ack_links: one row per notification sent to a recipient while its alert could be
-- acknowledged. Only the SHA-256 of the random token is kept (the token itself is in the message
-- and nowhere else); a link is bound to its alert, used at most once, and expires. For SMS a
-- six-digit reply code, unique among the live codes, is matched with the phone it was sent to.
-- app_users.ack_pin_hash: the person's acknowledgement PIN (argon2, like passwords), asked
-- when a link is used without a dashboard session.
-- depends: 0024_channels_escalation_policies

ALTER TABLE alerts ADD COLUMN reminded_at timestamptz;
ALTER TABLE alerts ADD COLUMN reminders_sent integer NOT NULL DEFAULT 0 CHECK (reminders_sent >= 0);
ALTER TABLE alerts ADD COLUMN reminder_held_since timestamptz;

CREATE TABLE ack_links (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash          char(64) NOT NULL UNIQUE,
    alert_id            bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
    notification_id     bigint REFERENCES notifications ON DELETE SET NULL,
    channel             text NOT NULL,
    target              text NOT NULL,
    -- The person the link was sent to, when the target is a known person's e-mail or phone.
    username            text,
    reply_code          char(6) CHECK (reply_code ~ '^[0-9]{6}$'),
    expires_at          timestamptz NOT NULL,
    used_at             timestamptz,
    used_by             text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((used_at IS NULL) = (used_by IS NULL))
);
CREATE INDEX ack_links_alert ON ack_links (alert_id);
CREATE INDEX ack_links_reply ON ack_links (reply_code) WHERE reply_code IS NOT NULL AND used_at IS NULL;

ALTER TABLE app_users ADD COLUMN ack_pin_hash text;

-- The PIN's hash never enters the audit trail (app_users is audited): redacted like the
-- password's, a fingerprint shows that it changed. Same function as 0024 (0006 and the escalation policy's secrets), one name more.
CREATE OR REPLACE FUNCTION audit_redact(doc jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    secret text;
BEGIN
    FOREACH secret IN ARRAY ARRAY['password_hash', 'key_hash', 'token_hash',
                                  'definition_with_secrets', 'ack_pin_hash'] LOOP
        IF doc ? secret AND doc ->> secret IS NOT NULL THEN
            doc := jsonb_set(doc, ARRAY[secret], to_jsonb(
                'redacted:' || left(encode(sha256(convert_to(doc ->> secret, 'UTF8')), 'hex'), 12)));
        END IF;
    END LOOP;
    RETURN doc;
END
$$;
