-- Hanko issuance log, SQLite schema v6: the key life-cycle (issue #18). See store/README.md.
--
-- 1. A new record kind, 'audit': a life-cycle event of the service (started, stopped, a
--    key loaded, suspended or resumed, a certificate nearing its end, the clock lost or
--    regained), chained with the issued objects in the same gapless sequence. Its
--    canonical body is kept in `token` and hashed into `object_hash` (store/src/audit.rs).
-- 2. key_suspensions: the emergency stop. A row per suspended key label; every node
--    polls the table and refuses to sign with a key that has a row. Suspending inserts
--    the row and resuming deletes it, each in the transaction that appends its audit
--    record, so the log and the state never disagree.
--
-- SQLite cannot alter a CHECK constraint, so log_records is rebuilt, as migration 4 did.
-- anchor_batches references log_records (seq); with defer_foreign_keys on, that
-- reference is checked at COMMIT instead of at each statement: dropping the table counts
-- the batches whose record is gone, and putting every record back (same seq, same bytes)
-- counts them again, so the commit finds nothing missing. sqlx runs this file in one
-- transaction: either all of it commits or none of it. The rows are copied unchanged, so
-- the chain and every batch root stay valid.

PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE keep_log_records AS SELECT * FROM log_records;
DROP TABLE log_records;

CREATE TABLE log_records (
    seq           INTEGER PRIMARY KEY CHECK (seq > 0),
    kind          TEXT    NOT NULL
                  CHECK (kind IN ('timestamp', 'seal', 'archive-stamp', 'archive-object',
                                  'audit')),
    serial        BLOB    NOT NULL CHECK (length(serial) BETWEEN 1 AND 64),
    object_hash   BLOB    NOT NULL CHECK (length(object_hash) = 32),
    request_hash  BLOB    NOT NULL,
    policy        TEXT    NOT NULL,
    client        TEXT    NOT NULL,
    issued_at_ns  INTEGER NOT NULL CHECK (issued_at_ns >= 0),
    node_id       TEXT    NOT NULL,
    token         BLOB,
    chain_hash    BLOB    NOT NULL CHECK (length(chain_hash) = 32),
    -- Serial uniqueness is enforced by the database, not only by the allocator.
    CONSTRAINT log_records_kind_serial UNIQUE (kind, serial)
);
INSERT INTO log_records (seq, kind, serial, object_hash, request_hash, policy, client,
                         issued_at_ns, node_id, token, chain_hash)
    SELECT seq, kind, serial, object_hash, request_hash, policy, client,
           issued_at_ns, node_id, token, chain_hash
    FROM keep_log_records ORDER BY seq;
DROP TABLE keep_log_records;

-- Its indexes (dropped with the old table): 0001's, 0002's and 0003's.
CREATE INDEX log_records_issued_at ON log_records (issued_at_ns);
CREATE INDEX log_records_object_hash ON log_records (object_hash);
CREATE INDEX log_records_seq_object_hash ON log_records (seq, object_hash);

-- The emergency stop: one row per suspended key (CKA_LABEL). audit_seq is the log record
-- of the suspension (kind 'audit', event 'key-suspended').
CREATE TABLE key_suspensions (
    label            TEXT    PRIMARY KEY CHECK (length(label) BETWEEN 1 AND 256),
    reason           TEXT    NOT NULL,
    suspended_by     TEXT    NOT NULL,
    suspended_at_ns  INTEGER NOT NULL CHECK (suspended_at_ns >= 0),
    node_id          TEXT    NOT NULL,
    audit_seq        INTEGER NOT NULL REFERENCES log_records (seq)
);
