-- Recalls through the product, and QA clearance of excursions from signed dispositions.
-- depends: 0006_security
--
-- Recalls
-- -------
-- A recall is now recorded through the API and the CLI (POST /api/v1/recalls, `coldchain
-- recalls add`) by the authenticated QA person. 0006 already audits every change of `recalls`;
-- here it becomes an append-only record like dispositions: the triggers refuse UPDATE, DELETE
-- and TRUNCATE even to the owner, and coldchain_app may only SELECT and INSERT it.
--
-- QA clearance
-- ------------
-- `excursion_reviews` (0005) was an interim, unsigned notion of QA clearance that nothing in the
-- product wrote. Clearance now comes from the signed dispositions of 0006 (db/queries/trace.py,
-- docs/TRACE.md "Verification"), so the table goes. Its rows are deleted first, one by one,
-- under 0006's audit trigger, so the trail holds each row as it was and the reason it went
-- (rows written after 0006 are also in the trail as inserted); then the table is dropped.

CREATE TRIGGER recalls_append_only BEFORE UPDATE OR DELETE ON recalls
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER recalls_no_truncate BEFORE TRUNCATE ON recalls
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Append-only records: read and add, nothing else.
REVOKE UPDATE, DELETE, TRUNCATE ON recalls FROM coldchain_app;

-- The why of the audit entries below (transaction-local: yoyo runs a migration in one
-- transaction); the who is the migrating role, 'db:<role>'.
SELECT set_config('coldchain.reason',
                  'migration 0007: QA clearance now comes from signed dispositions', true);
DELETE FROM excursion_reviews;
SELECT set_config('coldchain.reason', '', true);
DROP TABLE excursion_reviews;
