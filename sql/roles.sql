-- tracing-llm-audit: the roles of an append-only audit table. Run it as a superuser, in the
-- database and schema of llm_audit_log, AFTER the migrations (`llm-audit migrate`, as the
-- owner): it hands the tables to llm_audit_owner, so they must exist. Run it again after every
-- migrate: new tables get their owner and grants. Idempotent. `llm-audit roles` prints it;
-- docs/postgres.md walks through the whole setup.
--
--   llm_audit_owner   owns the table and its partitions; the only role that may drop expired
--                     partitions (retention) or run migrations. Nobody logs in as it day to day.
--   llm_audit_writer  what the application's login role is a member of: INSERT, and the
--                     partition function. No UPDATE, DELETE or TRUNCATE (the triggers refuse
--                     those to everyone anyway), no SELECT, no DDL.
--   llm_audit_reader  SELECT, for the CLI's reports and auditors.
--
-- Then give each party a login of its own:
--   GRANT llm_audit_owner TO my_owner;   -- the login that runs migrate and retention
--   CREATE ROLE my_app LOGIN PASSWORD '...' IN ROLE llm_audit_writer;
--   CREATE ROLE my_auditor LOGIN PASSWORD '...' IN ROLE llm_audit_reader;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'llm_audit_owner') THEN
        CREATE ROLE llm_audit_owner NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'llm_audit_writer') THEN
        CREATE ROLE llm_audit_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'llm_audit_reader') THEN
        CREATE ROLE llm_audit_reader NOLOGIN;
    END IF;
END
$$;

DO $$
DECLARE
    part RECORD;
BEGIN
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO llm_audit_owner', current_schema());
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO llm_audit_writer, llm_audit_reader',
                   current_schema());
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO llm_audit_writer', current_database());
    ALTER TABLE llm_audit_log OWNER TO llm_audit_owner;
    ALTER TABLE llm_audit_schema_migrations OWNER TO llm_audit_owner;
    ALTER TABLE llm_audit_checkpoints OWNER TO llm_audit_owner;
    ALTER TABLE llm_audit_tombstones OWNER TO llm_audit_owner;
    ALTER FUNCTION llm_audit_ensure_partitions(INTEGER) OWNER TO llm_audit_owner;
    FOR part IN SELECT inhrelid::regclass AS name FROM pg_inherits
                WHERE inhparent = 'llm_audit_log'::regclass LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO llm_audit_owner', part.name);
    END LOOP;
END
$$;

REVOKE ALL ON llm_audit_log FROM PUBLIC, llm_audit_writer, llm_audit_reader;
GRANT INSERT ON llm_audit_log TO llm_audit_writer;
GRANT SELECT ON llm_audit_schema_migrations TO llm_audit_writer, llm_audit_reader;
GRANT SELECT ON llm_audit_log TO llm_audit_reader;
-- Signed checkpoints (tamper evidence): the writer adds them, nobody changes them.
REVOKE ALL ON llm_audit_checkpoints FROM PUBLIC, llm_audit_writer, llm_audit_reader;
GRANT INSERT ON llm_audit_checkpoints TO llm_audit_writer;
GRANT SELECT ON llm_audit_checkpoints TO llm_audit_reader;
-- Tombstones of expired entries: written by the owner's retention runs, read by verifiers.
REVOKE ALL ON llm_audit_tombstones FROM PUBLIC, llm_audit_writer, llm_audit_reader;
GRANT SELECT ON llm_audit_tombstones TO llm_audit_reader;
REVOKE ALL ON FUNCTION llm_audit_ensure_partitions(INTEGER) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION llm_audit_ensure_partitions(INTEGER) TO llm_audit_writer;
