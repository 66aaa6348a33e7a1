-- tracing-llm-audit, migration 7: the store takes every value the layer accepts.
--
-- user_id and model were VARCHAR(255) and action VARCHAR(100), while the layer keeps ids and
-- names up to 1 KiB (cut with "…" beyond, the original's length and keyed hash in
-- metadata["llm_audit.truncated"]): a longer value made the row a poison row, dead-lettered and
-- missing from the table. TEXT, as the other id columns; from VARCHAR no row is rewritten.
ALTER TABLE llm_audit_log
    ALTER COLUMN user_id TYPE TEXT,
    ALTER COLUMN model TYPE TEXT,
    ALTER COLUMN action TYPE TEXT;
