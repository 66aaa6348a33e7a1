-- tracing-llm-audit, migration 1: the audit table, partitioned by month, append-only.
--
-- A superset of the reference design's llm_audit_log: the same column names (types widened
-- where our values do not fit the original: full-width keyed hashes, exact decimals of any
-- scale, token counts as BIGINT, and NULL for usage that was never reported), plus the fields
-- the reference design lacks. Its analysis queries (sql/queries/) run against it unchanged.

CREATE TABLE IF NOT EXISTS llm_audit_log (
    request_id             UUID         NOT NULL,
    timestamp              TIMESTAMPTZ  NOT NULL,
    user_id                VARCHAR(255),
    model                  VARCHAR(255),
    action                 VARCHAR(100) NOT NULL,
    system_prompt_hash     TEXT,
    input_tokens           BIGINT,
    output_tokens          BIGINT,
    thinking_tokens        BIGINT,
    latency_ms             BIGINT       NOT NULL,
    cost_usd               NUMERIC,
    status                 VARCHAR(20)  NOT NULL,
    error_message          TEXT,
    sanitization_count     BIGINT       NOT NULL DEFAULT 0,
    input_hash             TEXT,
    output_hash            TEXT,
    metadata               JSONB,
    created_at             TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
    -- Beyond the reference design.
    schema_version         INTEGER      NOT NULL,
    session_id             TEXT,
    provider               TEXT,
    response_model         TEXT,
    response_id            TEXT,
    finish_reasons         TEXT[],
    streaming              BOOLEAN,
    hash_key_id            TEXT,
    cache_read_tokens      BIGINT,
    cache_write_tokens     BIGINT,
    time_to_first_chunk_ms BIGINT,
    cost_note              TEXT,
    error_type             TEXT,
    sanitization           JSONB        NOT NULL DEFAULT '{}',
    trace_id               TEXT,
    span_id                TEXT,
    parent_span_id         TEXT,
    -- The request id is the key; a partitioned table's key must hold the partition key too.
    -- Replays of an entry carry the same pair and are ignored (ON CONFLICT DO NOTHING).
    PRIMARY KEY (request_id, timestamp)
) PARTITION BY RANGE (timestamp);

-- The reference design's indexes. Entries arrive in time order, so the timestamp index is a
-- BRIN index: range scans as fast, at a fraction of the cost per inserted row.
CREATE INDEX IF NOT EXISTS idx_audit_timestamp ON llm_audit_log USING BRIN (timestamp);
CREATE INDEX IF NOT EXISTS idx_audit_user ON llm_audit_log (user_id);
-- Only the calls that did not succeed: the rows one looks up by status. Success rows, the
-- great majority, cost no index entry.
CREATE INDEX IF NOT EXISTS idx_audit_status ON llm_audit_log (status) WHERE status <> 'success';
CREATE INDEX IF NOT EXISTS idx_audit_cost ON llm_audit_log (cost_usd);

-- Rows outside every monthly partition (far past or future clocks) land here rather than fail.
CREATE TABLE IF NOT EXISTS llm_audit_log_default PARTITION OF llm_audit_log DEFAULT;

-- Append-only, whoever asks: UPDATE, DELETE and TRUNCATE raise. Retention drops whole
-- partitions (DROP TABLE), which fires no trigger and needs the owner role.
CREATE OR REPLACE FUNCTION llm_audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'llm_audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'expired data goes by dropping a partition, as the owner role';
END
$$;

DROP TRIGGER IF EXISTS llm_audit_no_update_delete ON llm_audit_log;
CREATE TRIGGER llm_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON llm_audit_log
    FOR EACH ROW EXECUTE FUNCTION llm_audit_refuse_change();

DROP TRIGGER IF EXISTS llm_audit_no_truncate ON llm_audit_log;
CREATE TRIGGER llm_audit_no_truncate
    BEFORE TRUNCATE ON llm_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION llm_audit_refuse_change();
DROP TRIGGER IF EXISTS llm_audit_no_truncate ON llm_audit_log_default;
CREATE TRIGGER llm_audit_no_truncate
    BEFORE TRUNCATE ON llm_audit_log_default
    FOR EACH STATEMENT EXECUTE FUNCTION llm_audit_refuse_change();

-- Creates the monthly partitions from last month to `months_ahead` months ahead. SECURITY
-- DEFINER: the writer role may call it without the right to create tables itself.
CREATE OR REPLACE FUNCTION llm_audit_ensure_partitions(months_ahead INTEGER DEFAULT 3)
RETURNS INTEGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    month   DATE := date_trunc('month', now() AT TIME ZONE 'UTC')::date - INTERVAL '1 month';
    last    DATE := date_trunc('month', now() AT TIME ZONE 'UTC')::date
                    + make_interval(months => months_ahead);
    name    TEXT;
    created INTEGER := 0;
BEGIN
    WHILE month <= last LOOP
        name := format('llm_audit_log_p%s', to_char(month, 'YYYYMM'));
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF llm_audit_log FOR VALUES FROM (%L) TO (%L)',
                    name,
                    month::timestamp AT TIME ZONE 'UTC',
                    (month + INTERVAL '1 month')::timestamp AT TIME ZONE 'UTC');
                EXECUTE format(
                    'CREATE TRIGGER llm_audit_no_truncate BEFORE TRUNCATE ON %I '
                    'FOR EACH STATEMENT EXECUTE FUNCTION llm_audit_refuse_change()', name);
                created := created + 1;
            EXCEPTION WHEN check_violation THEN
                -- Rows of this month sit in the default partition already (a clock that ran
                -- ahead): they stay there, and so does this month, rather than failing.
                RAISE WARNING 'partition % not created: the default partition holds rows of '
                              'that month', name;
            END;
        END IF;
        month := month + INTERVAL '1 month';
    END LOOP;
    RETURN created;
END
$$;

SELECT llm_audit_ensure_partitions();
