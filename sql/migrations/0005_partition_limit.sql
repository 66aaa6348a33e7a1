-- tracing-llm-audit, migration 5: the partitions the writer role may make.
--
-- llm_audit_ensure_partitions(N) is SECURITY DEFINER so that the writer role, which may not
-- create tables, can make the coming months' partitions. It took any N: one call by the writer
-- made 117 partitions. Now N is 0 to 12 (the sink asks for 3); anything else raises, naming the
-- limit. CREATE OR REPLACE keeps the function's owner and grants (roles.sql).
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
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 12 THEN
        RAISE EXCEPTION 'llm_audit_ensure_partitions: months_ahead must be between 0 and 12, not %',
            months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
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
