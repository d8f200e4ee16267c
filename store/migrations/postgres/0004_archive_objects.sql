-- Hanko issuance log, PostgreSQL schema v4: archive objects (issue #16). See
-- store/README.md. A new record kind, 'archive-object': an object hash an archive
-- submitted (POST /api/v1/archive/objects), logged without a token so that the batcher
-- puts it into the next anchored batch and an RFC 4998 evidence record can be served for
-- it.
-- The kind's CHECK constraint (named by PostgreSQL after 0001's column constraint) is
-- replaced by one that also allows the new kind. The new list only widens the old one,
-- so every existing row satisfies it; ADD ... NOT VALID then VALIDATE avoids holding the
-- ACCESS EXCLUSIVE lock for the check of every row (VALIDATE takes a lock that lets
-- appends wait less; sqlx runs the file in one transaction, so the first lock is held to
-- the end anyway on this version: run the upgrade of a very large log in a quiet hour).
ALTER TABLE log_records DROP CONSTRAINT log_records_kind_check;
ALTER TABLE log_records ADD CONSTRAINT log_records_kind_check
    CHECK (kind IN ('timestamp', 'seal', 'archive-stamp', 'archive-object')) NOT VALID;
ALTER TABLE log_records VALIDATE CONSTRAINT log_records_kind_check;
