-- Hanko issuance log, SQLite schema v3: the anchoring leaf index (issue #15). See
-- store/README.md.
-- Closing a batch reads (seq, object_hash) of up to a million rows in seq order, and an
-- evidence lookup reads its block of 1,024. The table's rows carry the tokens (kilobytes
-- each with `keep_tokens`), so a scan of the table reads a page or more per row; this
-- covering index holds the two columns alone, ~45 bytes a row, and the query planner
-- reads it instead of the table (EXPLAIN QUERY PLAN: USING COVERING INDEX).
CREATE INDEX log_records_seq_object_hash ON log_records (seq, object_hash);
