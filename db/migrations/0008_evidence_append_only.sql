-- Evidence: readings and excursions append-only for the services; audit entries written only by
-- the database, their actor taken from a credential the database checks.
-- depends: 0007_recalls_signed_clearance
--
-- The threat: the services' role (coldchain_app) in the wrong hands, through a leaked password
-- or an SQL injection in the application. Before this migration that role could UPDATE and
-- DELETE readings, DELETE excursions, and INSERT audit entries naming any actor; none of it left
-- a trace. After it (README "Security", "What the database enforces"):
--
-- * readings: INSERT and SELECT only. A correction is a new reading (the ingester never updates
--   or deletes one; device_state, the latest reading per logger, is a separate table).
-- * excursions: INSERT and SELECT, and UPDATE of superseded_at, superseded_reason and alert_id
--   only, each once (NULL -> a value): the rules engine supersedes an excursion that late data
--   changed, and links an alarmed one to its alert. A trigger refuses any other change, also to
--   the owner, and any DELETE or TRUNCATE (so a shipment with excursions, or an alert they are
--   linked to, cannot be deleted either).
-- * audit_log: SELECT only. Entries are written by SECURITY DEFINER functions (the audit
--   triggers, and audit_append for events that are not row changes). The actor is the person or
--   API key whose live token the connection presented to audit_authenticate (the database hashes
--   it and looks it up), whatever the connection's settings claim; an actor only claimed (the
--   CLI, system jobs, failed logins) is recorded as claimed. Every entry's source ends with what
--   the database itself saw: [db:<login role>@<client address>, verified by token <id> | actor
--   not verified]. Tokens issued are audited too (auth_tokens inserts), so a token minted
--   through the services' role to act as someone else shows in the trail with where it came from.

-- ---------------------------------------------------------------------------------------------
-- Readings
-- ---------------------------------------------------------------------------------------------

-- TimescaleDB applies a hypertable's grants to its chunks, present and future.
REVOKE UPDATE, DELETE, TRUNCATE ON readings FROM coldchain_app;

-- ---------------------------------------------------------------------------------------------
-- Excursions
-- ---------------------------------------------------------------------------------------------

REVOKE UPDATE, DELETE, TRUNCATE ON excursions FROM coldchain_app;
GRANT UPDATE (superseded_at, superseded_reason, alert_id) ON excursions TO coldchain_app;

CREATE FUNCTION excursions_one_way() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    kept CONSTANT text[] := ARRAY['superseded_at', 'superseded_reason', 'alert_id'];
BEGIN
    IF (to_jsonb(NEW) - kept) IS DISTINCT FROM (to_jsonb(OLD) - kept) THEN
        RAISE EXCEPTION 'excursion %: only superseded_at, superseded_reason and alert_id may be set',
            OLD.excursion_id
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'an excursion is evidence: a changed one is superseded by a new row';
    END IF;
    IF (OLD.superseded_at IS NOT NULL AND NEW.superseded_at IS DISTINCT FROM OLD.superseded_at)
       OR (OLD.superseded_reason IS NOT NULL
           AND NEW.superseded_reason IS DISTINCT FROM OLD.superseded_reason)
       OR (OLD.alert_id IS NOT NULL AND NEW.alert_id IS DISTINCT FROM OLD.alert_id) THEN
        RAISE EXCEPTION 'excursion %: superseded_at, superseded_reason and alert_id are set once',
            OLD.excursion_id
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'a superseded excursion stays superseded, a linked one stays linked';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER excursions_one_way BEFORE UPDATE ON excursions
    FOR EACH ROW EXECUTE FUNCTION excursions_one_way();
CREATE TRIGGER excursions_append_only BEFORE DELETE ON excursions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER excursions_no_truncate BEFORE TRUNCATE ON excursions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- ---------------------------------------------------------------------------------------------
-- Audit entries: written by the database, the actor from a credential it checks
-- ---------------------------------------------------------------------------------------------

REVOKE INSERT ON audit_log FROM coldchain_app;

-- Who a database session has proven to be: a row in the session's own temporary table
-- pg_temp.audit_principal, created by audit_authenticate and so owned by the schema owner. The
-- services' role can neither write nor drop it (it is not theirs), a table of that name they
-- create themselves is not trusted (its owner is checked), and it ends with the session, so no
-- later session inherits it.
CREATE FUNCTION audit_principal_table() RETURNS regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The session's table if the database made it (owned by the role running this, which in
    -- the SECURITY DEFINER functions below is the schema owner), else NULL.
    SELECT t FROM (SELECT to_regclass('pg_temp.audit_principal') AS t) x
    WHERE t IS NOT NULL
      AND (SELECT relowner FROM pg_catalog.pg_class WHERE oid = t)
          = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
$$;

-- Present a bearer token, dashboard session or API key (the secret itself: the database hashes
-- it, so knowing the stored hash is not enough); NULL or '' forgets the session's principal.
-- Returns the actor, or raises when the secret is not live.
CREATE FUNCTION audit_authenticate(secret text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    digest text;
    who text;
    who_role text;
    cred text;
BEGIN
    IF to_regclass('pg_temp.audit_principal') IS NOT NULL THEN
        IF public.audit_principal_table() IS NULL THEN
            RAISE EXCEPTION 'audit context: pg_temp.audit_principal was not made by the database'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- One row, updated in place (temporary tables are never vacuumed: a delete and insert
        -- per request would grow it on a long-lived pooled connection; a HOT update does not).
        UPDATE pg_temp.audit_principal
        SET actor = NULL, actor_role = NULL, credential = NULL, authenticated_at = NULL
        WHERE actor IS NOT NULL;
    END IF;
    IF secret IS NULL OR secret = '' THEN
        RETURN NULL;
    END IF;
    digest := encode(sha256(convert_to(secret, 'UTF8')), 'hex');
    SELECT u.username, u.role, 'token ' || t.token_id INTO who, who_role, cred
    FROM public.auth_tokens t JOIN public.app_users u USING (user_id)
    WHERE t.token_hash = digest AND t.revoked_at IS NULL AND t.expires_at > now() AND u.active;
    IF who IS NULL THEN
        SELECT 'apikey:' || k.name, k.role, 'api key ' || k.key_id INTO who, who_role, cred
        FROM public.api_keys k
        WHERE k.key_hash = digest AND k.revoked_at IS NULL
          AND (k.expires_at IS NULL OR k.expires_at > now());
    END IF;
    IF who IS NULL THEN
        RAISE EXCEPTION 'audit context: not a live token, session or API key'
            USING ERRCODE = 'invalid_authorization_specification';
    END IF;
    IF to_regclass('pg_temp.audit_principal') IS NULL THEN
        CREATE TEMPORARY TABLE audit_principal (
            actor               text,             -- NULL: the session has proven nobody
            actor_role          text,
            credential          text,             -- 'token <token_id>' or 'api key <key_id>'
            authenticated_at    timestamptz
        );
        INSERT INTO pg_temp.audit_principal VALUES (NULL, NULL, NULL, NULL);
    END IF;
    UPDATE pg_temp.audit_principal
    SET actor = who, actor_role = who_role, credential = cred, authenticated_at = now();
    RETURN who;
END
$$;
REVOKE ALL ON FUNCTION audit_authenticate(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_authenticate(text) TO coldchain_app;

-- Who, as what, from where, for the entry being written: the session's proven principal if it
-- has one, else what is claimed (the arguments, else the connection's settings, else the login
-- role), and in every case what the database saw of the connection.
CREATE FUNCTION audit_actor(
    claim_actor text, claim_role text, claim_source text,
    OUT actor text, OUT actor_role text, OUT source text
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    p_actor text;
    p_role text;
    p_credential text;
    seen text := 'db:' || session_user || '@' || coalesce(host(inet_client_addr()), 'local');
    claimed_source text := coalesce(
        claim_source,
        public.audit_setting('source'),
        coalesce(host(inet_client_addr()), 'local') || ' '
            || coalesce(nullif(current_setting('application_name', true), ''), 'psql?'));
BEGIN
    IF public.audit_principal_table() IS NOT NULL THEN
        SELECT p.actor, p.actor_role, p.credential INTO p_actor, p_role, p_credential
        FROM pg_temp.audit_principal p WHERE p.actor IS NOT NULL;
    END IF;
    IF p_actor IS NOT NULL THEN
        actor := p_actor;
        actor_role := p_role;
        source := claimed_source || ' [' || seen || ', verified by ' || p_credential || ']';
    ELSE
        actor := coalesce(claim_actor, public.audit_setting('actor'));
        actor_role := coalesce(claim_role, public.audit_setting('actor_role'));
        source := claimed_source || ' [' || seen
            || CASE WHEN actor IS NULL THEN '' ELSE ', actor not verified' END || ']';
        actor := coalesce(actor, 'db:' || session_user);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION audit_actor(text, text, text) FROM PUBLIC;

-- 0006's row trigger, now writing as the owner (the services' role may no longer INSERT into
-- audit_log) with the actor from audit_actor.
CREATE OR REPLACE FUNCTION audit_row_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    before_doc jsonb;
    after_doc jsonb;
    who record;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        before_doc := public.audit_redact(to_jsonb(OLD));
    END IF;
    IF TG_OP <> 'DELETE' THEN
        after_doc := public.audit_redact(to_jsonb(NEW));
    END IF;
    SELECT * INTO who FROM public.audit_actor(NULL, NULL, NULL);
    INSERT INTO public.audit_log (actor, actor_role, action, entity, entity_id, before, after,
                                  reason, source, at, seq, prev_hash, hash)
    VALUES (
        who.actor, who.actor_role, lower(TG_OP), TG_TABLE_NAME,
        coalesce(after_doc, before_doc) ->> TG_ARGV[0], before_doc, after_doc,
        public.audit_setting('reason'), who.source,
        -- placeholders; audit_log_chain sets them
        now(), 0, '', ''
    );
    RETURN NULL;
END
$$;

-- Entries that are not row changes (logins, logouts, revocations): the only way the services
-- add one. The claimed actor is used only when the session has proven none.
CREATE FUNCTION audit_append(
    claim_actor text, claim_role text, action text, entity text, entity_id text,
    before jsonb, after jsonb, reason text, claim_source text
) RETURNS TABLE (id bigint, seq bigint, hash text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    who record;
BEGIN
    SELECT * INTO who FROM public.audit_actor(claim_actor, claim_role, claim_source);
    RETURN QUERY
    INSERT INTO public.audit_log AS a (actor, actor_role, action, entity, entity_id, before,
                                       after, reason, source, at, seq, prev_hash, hash)
    VALUES (who.actor, who.actor_role, action, entity, entity_id,
            public.audit_redact(before), public.audit_redact(after), reason, who.source,
            now(), 0, '', '')
    RETURNING a.id, a.seq, a.hash;
END
$$;
REVOKE ALL ON FUNCTION audit_append(text, text, text, text, text, jsonb, jsonb, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_append(text, text, text, text, text, jsonb, jsonb, text, text)
    TO coldchain_app;

-- A token or session issued: who it is for and from where (its hash redacted). A token minted
-- through the services' role to pass as someone shows here.
CREATE TRIGGER auth_tokens_audit AFTER INSERT ON auth_tokens
    FOR EACH ROW EXECUTE FUNCTION audit_row_change('token_id');
