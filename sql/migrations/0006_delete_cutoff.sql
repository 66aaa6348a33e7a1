-- tracing-llm-audit, migration 6: maintenance deletes only what its run declared expired.
--
-- Migration 4 let a maintenance transaction (SET LOCAL llm_audit.maintenance = 'retention')
-- delete any row: one mistaken statement by the owner could remove rows that had not expired.
-- Now a DELETE must also declare its cut-off (SET LOCAL llm_audit.delete_before = '<timestamptz>',
-- which `llm-audit retention apply` sets to its policy's), no later than now, and each row it
-- removes must be older than that. Updates of the erasable columns are unchanged. Dropping a
-- whole monthly partition is not a row change and is not guarded here (the writer and reader
-- roles cannot drop tables; `verify` reports rows removed without a signed tombstone).
CREATE OR REPLACE FUNCTION llm_audit_guard_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    erasable CONSTANT TEXT[] := ARRAY['user_id', 'session_id', 'error_message', 'metadata',
        'system_prompt_hash', 'input_hash', 'output_hash', 'system_prompt_content',
        'input_content', 'output_content', 'erased'];
    cutoff TIMESTAMPTZ;
BEGIN
    IF current_setting('llm_audit.maintenance', true) = 'retention' THEN
        IF TG_OP = 'DELETE' THEN
            cutoff := NULLIF(current_setting('llm_audit.delete_before', true), '')::timestamptz;
            IF cutoff IS NULL THEN
                RAISE EXCEPTION 'llm_audit_log: a maintenance DELETE must declare its cut-off '
                                '(SET LOCAL llm_audit.delete_before)'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF cutoff > now() THEN
                RAISE EXCEPTION 'llm_audit_log: the cut-off % is in the future', cutoff
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF OLD.timestamp >= cutoff THEN
                RAISE EXCEPTION 'llm_audit_log: row % of % has not expired (cut-off %)',
                    OLD.request_id, OLD.timestamp, cutoff
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
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
