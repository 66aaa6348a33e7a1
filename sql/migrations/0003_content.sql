-- tracing-llm-audit, migration 3: kept content (see the library's `content` module).
--
-- The system prompt, input and output themselves, when a content policy keeps them: encrypted
-- ({"kind": "encrypted", "alg", "key_id", "nonce", "ciphertext"}) or, for development only, as
-- they are ({"kind": "plaintext", "text"}). NULL under the default policy (hashes only).

ALTER TABLE llm_audit_log ADD COLUMN IF NOT EXISTS system_prompt_content JSONB;
ALTER TABLE llm_audit_log ADD COLUMN IF NOT EXISTS input_content JSONB;
ALTER TABLE llm_audit_log ADD COLUMN IF NOT EXISTS output_content JSONB;
