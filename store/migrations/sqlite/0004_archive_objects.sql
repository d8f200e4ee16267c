-- Hanko issuance log, SQLite schema v4: archive objects (issue #16). See store/README.md.
-- A new record kind, 'archive-object': an object hash an archive submitted
-- (POST /api/v1/archive/objects), logged without a token so that the batcher puts it into
-- the next anchored batch and an RFC 4998 evidence record can be served for it.
--
-- SQLite cannot alter a CHECK constraint, so log_records is rebuilt (the procedure of
-- https://www.sqlite.org/lang_altertable.html#otheralter: create the new table, copy,
-- drop the old, rename the new, recreate its indexes). sqlx runs this file in one
-- transaction, where PRAGMA foreign_keys cannot be turned off, and anchor_batches
-- references log_records: dropping log_records while that reference exists fails. So
-- anchors and anchor_batches (small: one row per batch and target) are first copied to
-- temporary tables and dropped, child first, and recreated as 0002 made them after the
-- rebuild, parent first, every foreign key checked again as the rows go back in. Either
-- all of it commits or none of it. The rows are copied unchanged (same seq, same bytes),
-- so the chain and every batch root stay valid.

-- 1. The anchoring tables out of the way (child first: nothing references anchors).
CREATE TEMP TABLE keep_anchor_batches AS SELECT * FROM anchor_batches;
CREATE TEMP TABLE keep_anchors AS SELECT * FROM anchors;
DROP TABLE anchors;
DROP TABLE anchor_batches;

-- 2. log_records with the new kind list.
CREATE TABLE log_records_v4 (
    seq           INTEGER PRIMARY KEY CHECK (seq > 0),
    kind          TEXT    NOT NULL
                  CHECK (kind IN ('timestamp', 'seal', 'archive-stamp', 'archive-object')),
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
INSERT INTO log_records_v4 (seq, kind, serial, object_hash, request_hash, policy, client,
                            issued_at_ns, node_id, token, chain_hash)
    SELECT seq, kind, serial, object_hash, request_hash, policy, client,
           issued_at_ns, node_id, token, chain_hash
    FROM log_records ORDER BY seq;
DROP TABLE log_records;
ALTER TABLE log_records_v4 RENAME TO log_records;

-- Its indexes (dropped with the old table): 0001's, 0002's and 0003's.
CREATE INDEX log_records_issued_at ON log_records (issued_at_ns);
CREATE INDEX log_records_object_hash ON log_records (object_hash);
CREATE INDEX log_records_seq_object_hash ON log_records (seq, object_hash);

-- 3. The anchoring tables back, exactly as 0002 made them, parent first.
CREATE TABLE anchor_batches (
    id             INTEGER PRIMARY KEY CHECK (id > 0),
    first_seq      INTEGER NOT NULL UNIQUE CHECK (first_seq > 0),
    last_seq       INTEGER NOT NULL UNIQUE REFERENCES log_records (seq),
    prev_last_seq  INTEGER UNIQUE REFERENCES anchor_batches (last_seq),
    leaf_count     INTEGER NOT NULL,
    hash_alg       TEXT    NOT NULL CHECK (hash_alg IN ('sha256', 'sha384', 'sha512')),
    root           BLOB    NOT NULL CHECK (length(root) IN (32, 48, 64)),
    -- The roots of the batch's blocks of 1024 leaves, concatenated (the last may be short).
    block_roots    BLOB    NOT NULL,
    closed_at_ns   INTEGER NOT NULL CHECK (closed_at_ns >= 0),
    closed_by      TEXT    NOT NULL,
    CHECK (last_seq >= first_seq),
    CHECK (leaf_count = last_seq - first_seq + 1),
    CHECK (first_seq = COALESCE(prev_last_seq, 0) + 1),
    CHECK (length(block_roots) = ((leaf_count + 1023) / 1024) * length(root))
);
INSERT INTO anchor_batches (id, first_seq, last_seq, prev_last_seq, leaf_count, hash_alg,
                            root, block_roots, closed_at_ns, closed_by)
    SELECT id, first_seq, last_seq, prev_last_seq, leaf_count, hash_alg,
           root, block_roots, closed_at_ns, closed_by
    FROM keep_anchor_batches ORDER BY id;

CREATE TABLE anchors (
    batch_id            INTEGER NOT NULL REFERENCES anchor_batches (id),
    target              TEXT    NOT NULL CHECK (length(target) BETWEEN 1 AND 64),
    state               TEXT    NOT NULL CHECK (state IN ('pending', 'done')),
    attempts            INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at_ns  INTEGER NOT NULL,
    token               BLOB,
    anchored_at_ns      INTEGER,
    last_error          TEXT,
    PRIMARY KEY (batch_id, target),
    CHECK ((state = 'done') = (token IS NOT NULL AND anchored_at_ns IS NOT NULL))
);
INSERT INTO anchors (batch_id, target, state, attempts, next_attempt_at_ns, token,
                     anchored_at_ns, last_error)
    SELECT batch_id, target, state, attempts, next_attempt_at_ns, token,
           anchored_at_ns, last_error
    FROM keep_anchors ORDER BY batch_id, target;

CREATE INDEX anchors_pending ON anchors (target, batch_id) WHERE state = 'pending';

DROP TABLE keep_anchor_batches;
DROP TABLE keep_anchors;
