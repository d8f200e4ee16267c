-- Hanko issuance log, SQLite schema v2: Merkle anchoring (issue #15). See store/README.md.
-- A batch is a contiguous range of log sequence numbers whose object_hashes are the leaves
-- of one hash tree; its root is time-stamped once per anchor target.

-- Evidence lookups find a record by the hash of the object its holder has.
CREATE INDEX log_records_object_hash ON log_records (object_hash);

-- Batches chain onto each other: the first starts at seq 1 (prev_last_seq NULL), every
-- other starts right after the batch it names, and no batch can be named twice (UNIQUE),
-- so the batches tile the log from seq 1 without gap or overlap whatever writes them.
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

-- One row per batch and anchor target: pending until the target's time-stamp over the
-- root is stored, then done (never back).
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

CREATE INDEX anchors_pending ON anchors (target, batch_id) WHERE state = 'pending';
