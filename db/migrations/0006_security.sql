-- Security: people and their roles, bearer tokens and API keys, device MQTT credentials, the
-- tamper-evident audit trail, frozen excursion reports and signed QA dispositions.
-- depends: 0005_track_trace
--
-- Who may do what in the database
-- -------------------------------
-- These migrations run as the schema owner; the services connect as a login role that is a
-- member of the group role coldchain_app (coldchain/localstack.py creates both; README
-- "Security"). coldchain_app reads and writes the operational tables, but may only SELECT and
-- INSERT audit_log, report_snapshots and dispositions. Since it owns none of them it can neither
-- UPDATE, DELETE nor TRUNCATE them, nor disable or drop their triggers: PostgreSQL enforces
-- that, whatever the application's code does. The append-only triggers below refuse UPDATE,
-- DELETE and TRUNCATE even for the owner, so an edit needs a deliberate act by a superuser
-- (disabling the trigger), and the hash chain then shows it (`coldchain audit verify`).
--
-- When services and migrations share one role (a single-role deployment), only the triggers
-- protect these tables, and the owner can disable them: the README says so.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldchain_app') THEN
        CREATE ROLE coldchain_app NOLOGIN;
    END IF;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- People, tokens, API keys
-- ---------------------------------------------------------------------------------------------

CREATE TABLE app_users (
    user_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username            text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{1,63}$'),
    full_name           text NOT NULL CHECK (length(btrim(full_name)) BETWEEN 1 AND 200),
    role                text NOT NULL CHECK (role IN ('viewer', 'operator', 'qa', 'admin')),
    password_hash       text NOT NULL,  -- argon2id, in its own self-describing format
    active              boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    deactivated_at      timestamptz
);

-- A bearer token (API) or a dashboard session of one person. Only a SHA-256 of the token is
-- kept: the token itself is high-entropy, so a slow hash adds nothing, and a database leak
-- gives no usable token.
CREATE TABLE auth_tokens (
    token_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id             bigint NOT NULL REFERENCES app_users,
    token_hash          text NOT NULL UNIQUE,
    kind                text NOT NULL CHECK (kind IN ('api', 'dashboard')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    revoked_at          timestamptz,
    last_used_at        timestamptz,
    client              text
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id) WHERE revoked_at IS NULL;

-- A machine client. QA signatures need a person, so no key carries the qa role.
CREATE TABLE api_keys (
    key_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    role                text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    key_hash            text NOT NULL UNIQUE,
    prefix              text NOT NULL,  -- the first characters, to recognise a key in a list
    created_at          timestamptz NOT NULL DEFAULT now(),
    created_by          text NOT NULL,
    expires_at          timestamptz,
    revoked_at          timestamptz,
    last_used_at        timestamptz
);

-- ---------------------------------------------------------------------------------------------
-- MQTT credentials: one per logger, plus the service accounts (ingester, simulator). The hash
-- is Mosquitto's own ($7$, PBKDF2-SHA512), so the broker's password file is generated from here.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE device_credentials (
    device_id           text PRIMARY KEY REFERENCES devices ON DELETE CASCADE,
    password_hash       text NOT NULL,
    issued_at           timestamptz NOT NULL DEFAULT now(),
    revoked_at          timestamptz
);

CREATE TABLE mqtt_service_accounts (
    username            text PRIMARY KEY CHECK (username ~ '^[a-z][a-z0-9_-]{0,63}$'),
    kind                text NOT NULL CHECK (kind IN ('ingest', 'simulator')),
    password_hash       text NOT NULL,
    issued_at           timestamptz NOT NULL DEFAULT now(),
    revoked_at          timestamptz
);

-- ---------------------------------------------------------------------------------------------
-- The audit trail: append-only, hash-chained
-- ---------------------------------------------------------------------------------------------

-- Entry n's hash is SHA-256 over its fields and entry n-1's hash; security/audit.py recomputes
-- it in Python (audit_material there must match audit_entry_hash here, field for field).
CREATE TABLE audit_log (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq                 bigint NOT NULL UNIQUE,   -- chain order, 1, 2, 3... (set by the trigger)
    at                  timestamptz NOT NULL,     -- set by the trigger (clock_timestamp)
    actor               text NOT NULL,            -- user name, api key, cli:<os user> or db:<role>
    actor_role          text,
    action              text NOT NULL,            -- insert, update, delete, login, ...
    entity              text NOT NULL,            -- table name, or auth for logins
    entity_id           text,
    before              jsonb,
    after               jsonb,
    reason              text,
    source              text,                     -- client address and application
    prev_hash           text NOT NULL,
    hash                text NOT NULL
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, seq);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE FUNCTION audit_field(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- Length-prefixed, so no choice of field values can make two entries hash alike.
    SELECT CASE WHEN value IS NULL THEN '-' ELSE length(value)::text || ':' || value END
$$;

CREATE FUNCTION audit_entry_hash(
    seq bigint, at timestamptz, actor text, actor_role text, action text, entity text,
    entity_id text, before jsonb, after jsonb, reason text, source text, prev_hash text
) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT encode(sha256(convert_to(
        'coldchain-audit-v1'
        || '|' || seq::text
        || '|' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        || '|' || public.audit_field(actor)
        || '|' || public.audit_field(actor_role)
        || '|' || public.audit_field(action)
        || '|' || public.audit_field(entity)
        || '|' || public.audit_field(entity_id)
        || '|' || public.audit_field(before::text)
        || '|' || public.audit_field(after::text)
        || '|' || public.audit_field(reason)
        || '|' || public.audit_field(source)
        || '|' || prev_hash,
        'UTF8')), 'hex')
$$;

-- Numbers, times and links an entry, whatever the inserting statement said: one writer at a time
-- (a transaction-scoped advisory lock), so the chain has no forks. Fully qualified names and a
-- fixed search_path: a temporary table called audit_log must not capture the entries.
CREATE FUNCTION audit_log_chain() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    last_seq bigint;
    last_hash text;
BEGIN
    PERFORM pg_advisory_xact_lock(7316001);  -- any fixed key; the chain's writer lock
    SELECT a.seq, a.hash INTO last_seq, last_hash
    FROM public.audit_log a ORDER BY a.seq DESC LIMIT 1;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, repeat('0', 64));
    NEW.at := clock_timestamp();
    NEW.hash := public.audit_entry_hash(
        NEW.seq, NEW.at, NEW.actor, NEW.actor_role, NEW.action, NEW.entity, NEW.entity_id,
        NEW.before, NEW.after, NEW.reason, NEW.source, NEW.prev_hash);
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

CREATE FUNCTION refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'signed records and audit entries are superseded by new ones, never edited';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Who, from where and why come from settings the application puts on its connection
-- (security/audit.py: audit_context); without them the database role and client address are
-- recorded, so a change made outside the application is still attributed.
CREATE FUNCTION audit_setting(name text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('coldchain.' || name, true), '')
$$;

-- Secrets never enter the trail; a fingerprint shows that they changed.
CREATE FUNCTION audit_redact(doc jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    secret text;
BEGIN
    FOREACH secret IN ARRAY ARRAY['password_hash', 'key_hash', 'token_hash'] LOOP
        IF doc ? secret AND doc ->> secret IS NOT NULL THEN
            doc := jsonb_set(doc, ARRAY[secret], to_jsonb(
                'redacted:' || left(encode(sha256(convert_to(doc ->> secret, 'UTF8')), 'hex'), 12)));
        END IF;
    END LOOP;
    RETURN doc;
END
$$;

-- AFTER trigger on an audited table; TG_ARGV[0] names the key column.
CREATE FUNCTION audit_row_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    before_doc jsonb;
    after_doc jsonb;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        before_doc := public.audit_redact(to_jsonb(OLD));
    END IF;
    IF TG_OP <> 'DELETE' THEN
        after_doc := public.audit_redact(to_jsonb(NEW));
    END IF;
    INSERT INTO public.audit_log (actor, actor_role, action, entity, entity_id, before, after,
                                  reason, source, at, seq, prev_hash, hash)
    VALUES (
        coalesce(public.audit_setting('actor'), 'db:' || session_user),
        public.audit_setting('actor_role'),
        lower(TG_OP),
        TG_TABLE_NAME,
        coalesce(after_doc, before_doc) ->> TG_ARGV[0],
        before_doc,
        after_doc,
        public.audit_setting('reason'),
        coalesce(public.audit_setting('source'),
                 coalesce(host(inet_client_addr()), 'local') || ' '
                 || coalesce(nullif(current_setting('application_name', true), ''), 'psql?')),
        -- placeholders; audit_log_chain sets them
        now(), 0, '', ''
    );
    RETURN NULL;
END
$$;

-- Products, rules, devices, shipments, people, keys, device credentials, recalls and QA's
-- excursion reviews: every change.
-- Updates that change nothing (an idempotent upsert) leave no entry.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('products', 'gtin'), ('devices', 'device_id'), ('shipments', 'shipment_id'),
        ('shipment_legs', 'shipment_id'), ('device_assignments', 'assignment_id'),
        ('rule_definitions', 'id'), ('app_users', 'username'), ('api_keys', 'name'),
        ('device_credentials', 'device_id'), ('mqtt_service_accounts', 'username'),
        ('recalls', 'recall_id'), ('excursion_reviews', 'review_id')
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

-- Alerts: opened, and every change of state, assignee or severity (not the engine's
-- bookkeeping columns, which change on every evaluation).
CREATE TRIGGER alerts_audit AFTER INSERT OR DELETE ON alerts
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('alert_id');
CREATE TRIGGER alerts_audit_update AFTER UPDATE ON alerts FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state
          OR OLD.assignee IS DISTINCT FROM NEW.assignee
          OR OLD.severity IS DISTINCT FROM NEW.severity)
    EXECUTE FUNCTION audit_row_change('alert_id');

-- ---------------------------------------------------------------------------------------------
-- Frozen reports and signed dispositions (21 CFR Part 11 style)
-- ---------------------------------------------------------------------------------------------

-- What a QA reviewer signed: the report's evidence exactly as it was (canonical JSON kept as
-- text, so the stored bytes are the hashed bytes), from which the report re-renders byte for byte.
CREATE TABLE report_snapshots (
    snapshot_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id         bigint NOT NULL REFERENCES shipments,
    as_of               timestamptz NOT NULL,
    content_hash        text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    evidence            text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    created_by          text NOT NULL,
    UNIQUE (shipment_id, content_hash)
);

-- A signed decision about a shipment, or about one lot in it. Never edited: a new signed record
-- supersedes it (supersedes = the earlier one), and both stay. One chain per (shipment, lot).
CREATE TABLE dispositions (
    disposition_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id         bigint NOT NULL REFERENCES shipments,
    lot                 text CHECK (lot IS NULL OR length(lot) BETWEEN 1 AND 20),
    decision            text NOT NULL CHECK (decision IN ('release', 'quarantine', 'reject', 'return')),
    reason              text NOT NULL CHECK (length(btrim(reason)) >= 1),
    meaning             text NOT NULL,
    signer_user_id      bigint NOT NULL REFERENCES app_users,
    signer_username     text NOT NULL,
    signer_name         text NOT NULL,
    signer_role         text NOT NULL,
    signed_at           timestamptz NOT NULL,
    snapshot_id         bigint NOT NULL REFERENCES report_snapshots,
    report_hash         text NOT NULL CHECK (report_hash ~ '^[0-9a-f]{64}$'),
    supersedes          bigint UNIQUE REFERENCES dispositions,
    signature_hash      text NOT NULL CHECK (signature_hash ~ '^[0-9a-f]{64}$')
);
CREATE UNIQUE INDEX dispositions_first_of_scope ON dispositions (shipment_id, coalesce(lot, ''))
    WHERE supersedes IS NULL;
CREATE INDEX dispositions_shipment ON dispositions (shipment_id, disposition_id);

CREATE FUNCTION dispositions_check_scope() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF NEW.supersedes IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM public.dispositions d
        WHERE d.disposition_id = NEW.supersedes AND d.shipment_id = NEW.shipment_id
          AND d.lot IS NOT DISTINCT FROM NEW.lot
    ) THEN
        RAISE EXCEPTION 'disposition % is not of shipment % lot %', NEW.supersedes,
            NEW.shipment_id, coalesce(NEW.lot, '(all)') USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER dispositions_check_scope BEFORE INSERT ON dispositions
    FOR EACH ROW EXECUTE FUNCTION dispositions_check_scope();

CREATE TRIGGER dispositions_audit AFTER INSERT ON dispositions
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('disposition_id');

CREATE TRIGGER report_snapshots_append_only BEFORE UPDATE OR DELETE ON report_snapshots
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER report_snapshots_no_truncate BEFORE TRUNCATE ON report_snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER dispositions_append_only BEFORE UPDATE OR DELETE ON dispositions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER dispositions_no_truncate BEFORE TRUNCATE ON dispositions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- ---------------------------------------------------------------------------------------------
-- Privileges of the services' role
-- ---------------------------------------------------------------------------------------------

GRANT USAGE ON SCHEMA public TO coldchain_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO coldchain_app;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO coldchain_app;
-- Tables created by later migrations (run by the same owner) get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO coldchain_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO coldchain_app;

-- Append-only records: read and add, nothing else.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, report_snapshots, dispositions FROM coldchain_app;

-- yoyo's bookkeeping belongs to the migrations.
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables
             WHERE schemaname = 'public' AND tablename LIKE '%yoyo%' LOOP
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %I FROM coldchain_app', t);
    END LOOP;
END
$$;
