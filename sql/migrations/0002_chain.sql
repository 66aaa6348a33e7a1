-- tracing-llm-audit, migration 2: tamper evidence (see the library's `chain` module).
--
-- Each row a chained sink writes carries its link: the writer's stream id, its sequence number
-- in that stream, the previous entry's hash and its own. Rows of sinks without a signing key
-- leave them NULL. No index: `llm-audit verify` reads the whole table once, and an index would
-- cost every insert.

ALTER TABLE llm_audit_log ADD COLUMN IF NOT EXISTS chain_stream TEXT;
ALTER TABLE llm_audit_log ADD COLUMN IF NOT EXISTS chain_seq    BIGINT;
ALTER TABLE llm_audit_log ADD COLUMN IF NOT EXISTS chain_prev   TEXT;
ALTER TABLE llm_audit_log ADD COLUMN IF NOT EXISTS chain_hash   TEXT;

-- The signed checkpoints, one row each: what the JSONL sink writes to
-- audit_checkpoints_<stream>.jsonl. `signed_at` is the signed RFC 3339 text, kept as text so that
-- the signature checks against exactly what was signed.
CREATE TABLE IF NOT EXISTS llm_audit_checkpoints (
    stream     TEXT        NOT NULL,
    idx        BIGINT      NOT NULL,
    seq        BIGINT      NOT NULL,
    head       TEXT        NOT NULL,
    signed_at  TEXT        NOT NULL,
    key_id     TEXT        NOT NULL,
    final      BOOLEAN     NOT NULL,
    signature  TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    -- A replayed checkpoint (after an outage) is ignored, never a second row.
    PRIMARY KEY (stream, idx)
);

-- Append-only like the log; the refusal names the table it came from.
CREATE OR REPLACE FUNCTION llm_audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'expired data goes by dropping a partition, as the owner role';
END
$$;

DROP TRIGGER IF EXISTS llm_audit_no_update_delete ON llm_audit_checkpoints;
CREATE TRIGGER llm_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON llm_audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION llm_audit_refuse_change();
DROP TRIGGER IF EXISTS llm_audit_no_truncate ON llm_audit_checkpoints;
CREATE TRIGGER llm_audit_no_truncate
    BEFORE TRUNCATE ON llm_audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION llm_audit_refuse_change();
