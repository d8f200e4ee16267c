-- Hanko issuance log, PostgreSQL schema v6: the key life-cycle (issue #18). See
-- store/README.md and migrations/sqlite/0006_key_lifecycle.sql for what the two parts
-- are: the record kind 'audit' (life-cycle events chained with the issued objects), and
-- key_suspensions (the emergency stop every node polls).
-- The kind's CHECK constraint is replaced by a wider one, as in migration 4.
ALTER TABLE log_records DROP CONSTRAINT log_records_kind_check;
ALTER TABLE log_records ADD CONSTRAINT log_records_kind_check
    CHECK (kind IN ('timestamp', 'seal', 'archive-stamp', 'archive-object', 'audit'))
    NOT VALID;
ALTER TABLE log_records VALIDATE CONSTRAINT log_records_kind_check;

CREATE TABLE key_suspensions (
    label            TEXT   PRIMARY KEY CHECK (length(label) BETWEEN 1 AND 256),
    reason           TEXT   NOT NULL,
    suspended_by     TEXT   NOT NULL,
    suspended_at_ns  BIGINT NOT NULL CHECK (suspended_at_ns >= 0),
    node_id          TEXT   NOT NULL,
    audit_seq        BIGINT NOT NULL REFERENCES log_records (seq)
);
