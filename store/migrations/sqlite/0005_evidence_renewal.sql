-- Hanko issuance log, SQLite schema v5: renewal of the evidence Hanko keeps (issue #16).
-- See store/README.md.
--
-- Every done anchor starts an evidence chain: the (batch, anchor target) pair whose
-- archive time-stamp ends the evidence record of each leaf of the batch. Time-stamp
-- renewal (RFC 4998 section 5.2) appends archive time-stamps to such a chain, so one
-- renewal of the chain renews the evidence of every leaf at once. A renewal run renews
-- many chains with one hash tree over their renewal hashes and one time-stamp of its
-- root: planned first (the run, its tree's root and one renewal row per chain, in one
-- transaction), then done (its token stored, every chain moved on, in one transaction).
-- A planned run found after a crash is finished, never planned again: a chain can have
-- only one renewal of each number (the primary key of chain_renewals), and a chain in a
-- planned run is not due (evidence_chains.run_id).
-- No new record kind: the renewal tokens are logged as 'archive-stamp' like the anchors'.

CREATE TABLE renewal_runs (
    id            INTEGER PRIMARY KEY CHECK (id > 0),
    kind          TEXT    NOT NULL CHECK (kind IN ('time-stamp', 'hash-tree')),
    hash_alg      TEXT    NOT NULL CHECK (hash_alg IN ('sha256', 'sha384', 'sha512')),
    root          BLOB    NOT NULL CHECK (length(root) IN (32, 48, 64)),
    leaf_count    INTEGER NOT NULL CHECK (leaf_count > 0),
    state         TEXT    NOT NULL CHECK (state IN ('planned', 'done')),
    planned_at_ns INTEGER NOT NULL CHECK (planned_at_ns >= 0),
    planned_by    TEXT    NOT NULL,
    -- The own TSA's TimeStampToken over root, its TSA certificate's notAfter, and when
    -- it was stored.
    token         BLOB,
    not_after_ns  INTEGER,
    done_at_ns    INTEGER,
    CHECK ((state = 'done') =
           (token IS NOT NULL AND not_after_ns IS NOT NULL AND done_at_ns IS NOT NULL))
);

CREATE INDEX renewal_runs_planned ON renewal_runs (id) WHERE state = 'planned';

-- One row per evidence chain whose renewal Hanko keeps: the chain of each done anchor
-- (batch_id, target; added by the renewal scheduler as anchors complete), and the new
-- chain of each done hash-tree renewal run (rehash_run; added as the run completes).
-- What its next time-stamp renewal needs and when it is due.
CREATE TABLE evidence_chains (
    id            INTEGER PRIMARY KEY CHECK (id > 0),
    batch_id      INTEGER,
    target        TEXT,
    rehash_run    INTEGER REFERENCES renewal_runs (id),
    hash_alg      TEXT    NOT NULL CHECK (hash_alg IN ('sha256', 'sha384', 'sha512')),
    -- Time-stamp renewals appended so far (done runs).
    renewals      INTEGER NOT NULL DEFAULT 0 CHECK (renewals >= 0),
    -- H(DER of the chain's last archive time-stamp's token), with hash_alg: the leaf of
    -- its next renewal (docs/requirements.md F.65).
    next_hash     BLOB    NOT NULL CHECK (length(next_hash) IN (32, 48, 64)),
    -- notAfter of that token's TSA certificate; NULL when the token carries none (the
    -- chain is then never found due).
    not_after_ns  INTEGER,
    -- The planned run renewing it, NULL when none.
    run_id        INTEGER REFERENCES renewal_runs (id),
    UNIQUE (batch_id, target),
    UNIQUE (rehash_run),
    CHECK ((batch_id IS NOT NULL AND target IS NOT NULL AND rehash_run IS NULL)
        OR (batch_id IS NULL AND target IS NULL AND rehash_run IS NOT NULL)),
    FOREIGN KEY (batch_id, target) REFERENCES anchors (batch_id, target)
);

CREATE INDEX evidence_chains_due ON evidence_chains (not_after_ns) WHERE run_id IS NULL;
CREATE INDEX evidence_chains_run ON evidence_chains (run_id) WHERE run_id IS NOT NULL;

-- The time-stamp renewals of each chain, numbered from 1 (the chain's first archive
-- time-stamp is number 0): which run, which leaf of its tree, and the reduced hash tree
-- from that leaf to the run's root (DER SEQUENCE OF PartialHashtree; empty bytes for a
-- one-leaf run).
CREATE TABLE chain_renewals (
    chain_id    INTEGER NOT NULL REFERENCES evidence_chains (id),
    n           INTEGER NOT NULL CHECK (n > 0),
    run_id      INTEGER NOT NULL REFERENCES renewal_runs (id),
    leaf_index  INTEGER NOT NULL CHECK (leaf_index >= 0),
    reduced     BLOB    NOT NULL,
    PRIMARY KEY (chain_id, n),
    UNIQUE (run_id, leaf_index)
);

-- Hash-tree renewals (RFC 4998 section 5.3) of archive objects: a new chain over
-- H(h(d) || h(DER of the record's ArchiveTimeStampSequence)) with a stronger algorithm,
-- h(d) sent by the archive. The record renewed is the object's (seq) record of the chain
-- (batch, target) with its first `renewals` time-stamp renewals.
CREATE TABLE hash_tree_renewals (
    seq         INTEGER NOT NULL,
    hash_alg    TEXT    NOT NULL CHECK (hash_alg IN ('sha256', 'sha384', 'sha512')),
    batch_id    INTEGER NOT NULL,
    target      TEXT    NOT NULL,
    renewals    INTEGER NOT NULL CHECK (renewals >= 0),
    data_hash   BLOB    NOT NULL CHECK (length(data_hash) IN (32, 48, 64)),
    run_id      INTEGER NOT NULL REFERENCES renewal_runs (id),
    leaf_index  INTEGER NOT NULL CHECK (leaf_index >= 0),
    reduced     BLOB    NOT NULL,
    PRIMARY KEY (seq, hash_alg),
    UNIQUE (run_id, leaf_index),
    FOREIGN KEY (batch_id, target) REFERENCES anchors (batch_id, target)
);
