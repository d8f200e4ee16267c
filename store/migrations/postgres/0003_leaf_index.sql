-- Hanko issuance log, PostgreSQL schema v3: the anchoring leaf index (issue #15). See
-- store/README.md.
-- Closing a batch reads (seq, object_hash) of up to a million rows in seq order, and an
-- evidence lookup reads its block of 1,024. The heap rows carry the tokens (kilobytes
-- each with `keep_tokens`, stored inline while they compress under ~2 KB); this index
-- lets the planner answer from the index alone (an index-only scan, once autovacuum has
-- marked the appended pages all-visible), ~50 bytes a row.
-- Building it takes a lock that blocks appends for the time of one pass over the table:
-- on a large existing log, run the upgrade in a maintenance window.
CREATE INDEX log_records_seq_object_hash ON log_records (seq) INCLUDE (object_hash);
