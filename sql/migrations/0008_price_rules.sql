-- tracing-llm-audit, migration 8: what a price depends on, and which prices were used.
--
-- cache_write_1h_tokens: the part of cache_write_tokens written to the cache for one hour,
--   billed at the 1-hour price (Anthropic's ephemeral_1h_input_tokens).
-- service_tier: the tier that served the call (batch, flex, priority, ...), whose prices differ.
-- price_table: the price table that priced the entry: source, version or date, short hash.
-- Adding nullable columns rewrites no row; rows written before read back with NULL here.
ALTER TABLE llm_audit_log
    ADD COLUMN IF NOT EXISTS cache_write_1h_tokens BIGINT,
    ADD COLUMN IF NOT EXISTS service_tier TEXT,
    ADD COLUMN IF NOT EXISTS price_table TEXT;
