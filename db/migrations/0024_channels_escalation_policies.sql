-- Notification channels beyond webhooks and e-mail, and the escalation policy stored through
-- the API (issue 16, channels).
-- depends: 0023_people_contacts
--
-- * notifications.channel and deliveries.channel take the channels of alerts/channels/: Slack
--   and Teams incoming webhooks, PagerDuty Events v2, Opsgenie, SMS through a gateway.
-- * escalation_policies: who is told (the rules file's [escalation] table, as JSON), versioned
--   like rule_definitions: a change is a new version, never an edit; the highest version is in
--   force (the rules engine takes it at its next turn) and overrides the rules file's tiers.
--   The policy holds secrets (PagerDuty routing keys, Slack and Teams webhook URLs): people see
--   `definition`, with them masked; `definition_with_secrets` is what the engine sends with,
--   and the audit trail keeps only a fingerprint of it (audit_redact below), so a secret never
--   enters the append-only trail, where it could never be removed.

ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_channel_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check
    CHECK (channel IN ('webhook', 'email', 'slack', 'teams', 'pagerduty', 'opsgenie', 'sms'));
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_channel_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_channel_check
    CHECK (channel IN ('webhook', 'email', 'slack', 'teams', 'pagerduty', 'opsgenie', 'sms'));

CREATE TABLE escalation_policies (
    version                 integer PRIMARY KEY CHECK (version >= 1),
    definition              jsonb NOT NULL,  -- secrets masked: what the API shows
    definition_with_secrets jsonb NOT NULL,  -- validated by alerts.rules.EscalationPolicy
    created_at              timestamptz NOT NULL DEFAULT now(),
    created_by              text NOT NULL,
    comment                 text
);

-- Secrets never enter the trail; a fingerprint shows that they changed (as 0006's, plus the
-- escalation policy's full definition).
CREATE OR REPLACE FUNCTION audit_redact(doc jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    secret text;
BEGIN
    FOREACH secret IN ARRAY ARRAY['password_hash', 'key_hash', 'token_hash',
                                  'definition_with_secrets'] LOOP
        IF doc ? secret AND doc ->> secret IS NOT NULL THEN
            doc := jsonb_set(doc, ARRAY[secret], to_jsonb(
                'redacted:' || left(encode(sha256(convert_to(doc ->> secret, 'UTF8')), 'hex'), 12)));
        END IF;
    END LOOP;
    RETURN doc;
END
$$;

CREATE TRIGGER escalation_policies_audit AFTER INSERT OR DELETE ON escalation_policies
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('version');
CREATE TRIGGER escalation_policies_append_only BEFORE UPDATE ON escalation_policies
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
