-- One dead letter per refused message, with a reason per refused reading (issue 11, points 2 and 6).
-- depends: 0008_evidence_append_only
--
-- Until now a batch upload with N bad readings became N rows, each carrying the whole raw
-- payload: a 256 KiB message of 6,000 invalid readings was about 1.6 GB in one statement. From
-- here the ingester writes one row per refused message: the raw bytes once, a one-line `reason`,
-- and per refused reading its index and reason in `reasons`, bounded by the ingester (see
-- ingest/sink.py, `dead_letter_for`; docs/PROTOCOL.md "What is refused").
--
--   refused   how many readings of the message were refused (1 for a whole message refused);
--             it counts all of them, also those `reasons` leaves out
--   reasons   a JSON array of {"index": int or null, "reason": text}, at most 100 entries
--
-- Rows written before this migration keep one row per refused reading, `batch_index` set and
-- `reasons` null; `refused` is 1 for them, which is what each of those rows stood for.

ALTER TABLE dead_letters
    ADD COLUMN refused integer NOT NULL DEFAULT 1 CHECK (refused >= 1),
    ADD COLUMN reasons jsonb;
