-- Several rules engines share the work (issue 15): partitions of shipments, engines' heartbeats.
-- depends: 0013_auto_release
--
-- It does not depend on 0014 (written at the same time): it touches none of its tables.
--
-- * rules_partition(shipment_id, partitions): the one definition of which partition a shipment
--   is in. The engine never computes it in Python: every statement that picks a partition's
--   shipments calls this function, so two engines cannot disagree on it.
-- * engine_cursor gets one row per partition, named 'rules/<partitions>/<partition>'
--   (alerts/partitions.py: cursor_name). They are created by the engines, not here, since their
--   number is a setting (alerts.partitions): a new set starts at the LOWEST cursor of the rules
--   (the former single 'rules' row, or the set of another partition count), so changing the
--   count, or upgrading from one engine, re-evaluates some changes (idempotent) and loses none.
--   The former 'rules' row is left as it was (it no longer moves).
-- * rules_engines: one row per running `coldchain rules` process, its heartbeat and the
--   backend of the connection that holds its partitions' advisory locks. The live ones share
--   the partitions; a row whose heartbeat is older than alerts.engine_timeout_s is a stopped
--   engine, whose connections a live engine ends (pg_terminate_backend) and whose row it
--   deletes, freeing its partitions. Operational state, like engine_cursor: not audited.

CREATE FUNCTION rules_partition(shipment_id bigint, partitions integer) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    -- hashint8 spreads the consecutive ids; + 2^31 makes it non-negative before the modulo.
    SELECT ((hashint8(shipment_id)::bigint + 2147483648) % partitions)::integer
$$;

CREATE TABLE rules_engines (
    engine_id           text PRIMARY KEY,
    host                text NOT NULL,
    pid                 integer NOT NULL,          -- the process, for the operator
    backend_pid         integer NOT NULL,          -- the claiming connection's server process
    partitions          integer NOT NULL CHECK (partitions > 0),
    held                integer[] NOT NULL DEFAULT '{}',
    started_at          timestamptz NOT NULL DEFAULT now(),
    heartbeat_at        timestamptz NOT NULL DEFAULT now()
);
