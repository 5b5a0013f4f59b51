-- QA's auto-release policies (issue 13): a policy signed by a QA person releases the
-- shipments of one product, or of one lane, automatically when their arrival verdict is
-- conforming; each automatic release is a disposition naming the policy.
-- depends: 0011_shipment_lifecycle
--
-- It does not depend on 0012 (written at the same time): it touches none of its tables.
--
-- * release_policies: one row per policy, signed at creation as a disposition is (the QA
--   person's password entered again, security/signatures.py: policy_signature_payload). Its
--   scope is a product (gtin) or a lane (lane_id), never both. A policy is never edited: it is
--   revoked (signed again, by a QA person, with a reason), which fills the revoked_* columns
--   once and bumps `version`; the trigger below refuses any other change, and DELETE.
--   At most one active policy per scope.
-- * release_policy_events: the policy's history (created, revoked, each automatic release),
--   append-only like 0011's timeline. The audit trail keeps the row-level before/after with
--   who and why, as for every table.
-- * dispositions.policy_id: an automatic release. Its signer columns name the policy's QA
--   signer (whose signature it rests on), but its meaning says in words that no person signed
--   it at that time, its signed_at is the instant of the automatic release, and its signature
--   hash covers the policy's id and signature hash (services/release_policies.py). A person's
--   disposition has policy_id NULL. Only a release can be automatic.

CREATE TABLE release_policies (
    policy_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gtin                char(14) REFERENCES products (gtin),
    lane_id             bigint REFERENCES lanes,
    reason              text NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 2000),
    meaning             text NOT NULL,
    signer_user_id      bigint NOT NULL REFERENCES app_users,
    signer_username     text NOT NULL,
    signer_name         text NOT NULL,
    signer_role         text NOT NULL,
    signed_at           timestamptz NOT NULL,
    signature_hash      text NOT NULL CHECK (signature_hash ~ '^[0-9a-f]{64}$'),
    active              boolean NOT NULL DEFAULT true,
    revoked_at          timestamptz,
    revoked_by_user_id  bigint REFERENCES app_users,
    revoked_by_username text,
    revoked_by_name     text,
    revoke_reason       text CHECK (revoke_reason IS NULL
                                    OR length(btrim(revoke_reason)) BETWEEN 1 AND 2000),
    revoke_signature_hash text CHECK (revoke_signature_hash IS NULL
                                      OR revoke_signature_hash ~ '^[0-9a-f]{64}$'),
    version             integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    CONSTRAINT release_policies_one_scope CHECK ((gtin IS NULL) <> (lane_id IS NULL)),
    CONSTRAINT release_policies_revocation_whole CHECK (
        active = (revoked_at IS NULL)
        AND (revoked_at IS NULL) = (revoked_by_user_id IS NULL)
        AND (revoked_at IS NULL) = (revoke_reason IS NULL)
        AND (revoked_at IS NULL) = (revoke_signature_hash IS NULL)),
    CONSTRAINT release_policies_revoked_after_signed
        CHECK (revoked_at IS NULL OR revoked_at >= signed_at)
);
CREATE UNIQUE INDEX release_policies_one_active_per_product ON release_policies (gtin)
    WHERE active AND gtin IS NOT NULL;
CREATE UNIQUE INDEX release_policies_one_active_per_lane ON release_policies (lane_id)
    WHERE active AND lane_id IS NOT NULL;

-- A signed policy changes once: from active to revoked, nothing else.
CREATE FUNCTION release_policies_revoke_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'release policies are revoked, never deleted'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT OLD.active OR NEW.active
       OR (OLD.policy_id, OLD.gtin, OLD.lane_id, OLD.reason, OLD.meaning, OLD.signer_user_id,
           OLD.signer_username, OLD.signer_name, OLD.signer_role, OLD.signed_at,
           OLD.signature_hash)
          IS DISTINCT FROM
          (NEW.policy_id, NEW.gtin, NEW.lane_id, NEW.reason, NEW.meaning, NEW.signer_user_id,
           NEW.signer_username, NEW.signer_name, NEW.signer_role, NEW.signed_at,
           NEW.signature_hash)
       OR NEW.version <> OLD.version + 1 THEN
        RAISE EXCEPTION 'release policy %: a signed policy is only ever revoked', OLD.policy_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER release_policies_revoke_only BEFORE UPDATE OR DELETE ON release_policies
    FOR EACH ROW EXECUTE FUNCTION release_policies_revoke_only();
CREATE TRIGGER release_policies_no_truncate BEFORE TRUNCATE ON release_policies
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

CREATE TABLE release_policy_events (
    event_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    policy_id           bigint NOT NULL REFERENCES release_policies,
    at                  timestamptz NOT NULL,
    event               text NOT NULL CHECK (event IN ('created', 'revoked', 'released')),
    actor               text NOT NULL CHECK (length(btrim(actor)) >= 1),
    reason              text,
    shipment_id         bigint REFERENCES shipments,
    disposition_id      bigint REFERENCES dispositions,
    CHECK ((event = 'released') = (disposition_id IS NOT NULL))
);
CREATE INDEX release_policy_events_policy ON release_policy_events (policy_id, event_id);

ALTER TABLE dispositions
    ADD COLUMN policy_id bigint REFERENCES release_policies,
    ADD CONSTRAINT dispositions_automatic_is_release
        CHECK (policy_id IS NULL OR decision = 'release');
CREATE INDEX dispositions_policy ON dispositions (policy_id) WHERE policy_id IS NOT NULL;

-- The timeline names an automatic release with the transition's own event ('release'), its
-- actor 'policy:<id>'; nothing to add to shipment_events.

-- ---------------------------------------------------------------------------------------------
-- Audit and privileges
-- ---------------------------------------------------------------------------------------------

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('release_policies', 'policy_id')) AS v(tab, key) LOOP
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

CREATE TRIGGER release_policy_events_append_only BEFORE UPDATE OR DELETE ON release_policy_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER release_policy_events_no_truncate BEFORE TRUNCATE ON release_policy_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON release_policy_events FROM coldchain_app;
REVOKE DELETE, TRUNCATE ON release_policies FROM coldchain_app;
