-- The change-log cursors move by a transaction horizon, not by change_id alone (issue 15).
-- depends: 0015_rules_partitions
--
-- The bug: reading_changes.change_id is drawn when a row is inserted, not when its transaction
-- commits. The ingester's two writers (and any other writer) commit out of id order: A draws
-- 100, B draws 101 and commits first, a round takes 101 and moves its cursor to 101, A commits
-- 100, which `change_id > cursor` never returns. Its pair is not judged until its next change.
--
-- The fix (coldchain/changes.py reasons it out in full):
-- * reading_changes.xid: the top-level transaction id of the commit that wrote the row
--   (pg_current_xact_id(), the default: no writer names it). Index (xid, change_id): the
--   order in which the consumers take the rows.
-- * engine_cursor.last_xid: a cursor is the pair (last_xid, last_change_id); a consumer takes
--   the rows with (xid, change_id) after it and xid below the horizon
--   pg_snapshot_xmin(pg_current_snapshot()): every transaction below it has ended, so no row
--   can appear behind the cursor any more.
--
-- Conversion without losing or repeating a change: the rows already there get xid 0 and every
-- cursor at change_id c becomes (0, c). Rows up to c stay behind the cursor and rows after it in
-- front, as before; and a transaction older than this migration that writes its row only after
-- it (it drew its xid before, then waited on this ALTER's lock) gets that older xid, which is
-- still after (0, c): it is taken, never skipped. (Giving the old rows this migration's own xid
-- would have put such a row behind the cursor.) A constant default also spares the rewrite of
-- the table: the new default applies to new rows only.

ALTER TABLE reading_changes ADD COLUMN xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE reading_changes ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
CREATE INDEX reading_changes_xid ON reading_changes (xid, change_id);

ALTER TABLE engine_cursor ADD COLUMN last_xid xid8 NOT NULL DEFAULT '0';
