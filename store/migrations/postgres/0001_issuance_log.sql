-- Hanko issuance log, PostgreSQL schema v1. See store/README.md for the meaning of each
-- column and the chain-hash definition. Times are nanoseconds since 1970-01-01T00:00:00Z
-- (bigint, exact; timestamptz would round to microseconds and the chain covers the value).

-- One row per issued object. seq is gapless from 1 and assigned by the log writer while it
-- holds the chain_head row lock; chain_hash commits to the previous row's chain_hash.
CREATE TABLE log_records (
    seq           BIGINT PRIMARY KEY CHECK (seq > 0),
    kind          TEXT   NOT NULL CHECK (kind IN ('timestamp', 'seal', 'archive-stamp')),
    serial        BYTEA  NOT NULL CHECK (octet_length(serial) BETWEEN 1 AND 64),
    object_hash   BYTEA  NOT NULL CHECK (octet_length(object_hash) = 32),
    request_hash  BYTEA  NOT NULL,
    policy        TEXT   NOT NULL,
    client        TEXT   NOT NULL,
    issued_at_ns  BIGINT NOT NULL CHECK (issued_at_ns >= 0),
    node_id       TEXT   NOT NULL,
    token         BYTEA,
    chain_hash    BYTEA  NOT NULL CHECK (octet_length(chain_hash) = 32),
    -- Serial uniqueness is enforced by the database, not only by the allocator.
    CONSTRAINT log_records_kind_serial UNIQUE (kind, serial)
);

CREATE INDEX log_records_issued_at ON log_records (issued_at_ns);

-- The last row of the chain; locked (SELECT ... FOR UPDATE) by every appending batch, which
-- serialises the chain across nodes, and updated in the same transaction.
CREATE TABLE chain_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   BIGINT  NOT NULL CHECK (seq >= 0),
    hash  BYTEA   NOT NULL CHECK (octet_length(hash) = 32)
);
INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- Serial counters: the next serial not yet reserved by any node, per counter name.
CREATE TABLE serial_counters (
    name  TEXT   PRIMARY KEY,
    next  BIGINT NOT NULL CHECK (next > 0)
);

-- Every reservation, for audit: which node got which range when.
CREATE TABLE serial_ranges (
    name            TEXT   NOT NULL,
    first_serial    BIGINT NOT NULL,
    last_serial     BIGINT NOT NULL CHECK (last_serial >= first_serial),
    node_id         TEXT   NOT NULL,
    reserved_at_ns  BIGINT NOT NULL,
    PRIMARY KEY (name, first_serial)
);
