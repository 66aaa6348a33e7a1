-- tracing-llm-audit, migration 4: retention and erasure (see the library's `retention` and
-- `chain` modules, and `llm-audit retention apply` / `llm-audit erase`).
--
-- erased: the members a retention or erasure step removed or replaced, each with the digest the
-- chain covers it by, so that the chain still verifies.
ALTER TABLE llm_audit_log ADD COLUMN IF NOT EXISTS erased JSONB;

-- Signed tombstones: entries first..last of a stream removed by a retention policy, with the
-- links on both sides of the gap. Append-only, like the checkpoints.
CREATE TABLE IF NOT EXISTS llm_audit_tombstones (
    stream      TEXT        NOT NULL,
    first       BIGINT      NOT NULL,
    last        BIGINT      NOT NULL,
    prev        TEXT        NOT NULL,
    last_hash   TEXT        NOT NULL,
    reason      TEXT        NOT NULL,
    signed_at   TEXT        NOT NULL,
    key_id      TEXT        NOT NULL,
    signature   TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, first)
);
DROP TRIGGER IF EXISTS llm_audit_no_update_delete ON llm_audit_tombstones;
CREATE TRIGGER llm_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON llm_audit_tombstones
    FOR EACH ROW EXECUTE FUNCTION llm_audit_refuse_change();
DROP TRIGGER IF EXISTS llm_audit_no_truncate ON llm_audit_tombstones;
CREATE TRIGGER llm_audit_no_truncate
    BEFORE TRUNCATE ON llm_audit_tombstones
    FOR EACH STATEMENT EXECUTE FUNCTION llm_audit_refuse_change();

-- The log stays append-only, with one exception for the owner role's maintenance: inside a
-- transaction that sets llm_audit.maintenance to 'retention' (SET LOCAL), expired rows may be
-- deleted and erasable columns (and erased) may be changed. Every other column stays as it was:
-- an UPDATE that touches one raises, whoever runs it. The writer role has no UPDATE or DELETE
-- privilege at all, so it cannot use this.
CREATE OR REPLACE FUNCTION llm_audit_guard_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    erasable CONSTANT TEXT[] := ARRAY['user_id', 'session_id', 'error_message', 'metadata',
        'system_prompt_hash', 'input_hash', 'output_hash', 'system_prompt_content',
        'input_content', 'output_content', 'erased'];
BEGIN
    IF current_setting('llm_audit.maintenance', true) = 'retention' THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        IF (to_jsonb(NEW) - erasable) IS DISTINCT FROM (to_jsonb(OLD) - erasable) THEN
            RAISE EXCEPTION 'llm_audit_log: maintenance may change only the erasable columns'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'llm_audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'expired data goes by llm-audit retention apply, as the owner role';
END
$$;
DROP TRIGGER IF EXISTS llm_audit_no_update_delete ON llm_audit_log;
CREATE TRIGGER llm_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON llm_audit_log
    FOR EACH ROW EXECUTE FUNCTION llm_audit_guard_change();
