-- Anomaly detection: unusually high token usage (the reference design's query, unchanged)
SELECT request_id, user_id, input_tokens, output_tokens, cost_usd
FROM llm_audit_log
WHERE input_tokens > (
SELECT AVG(input_tokens) + 3 * STDDEV(input_tokens)
FROM llm_audit_log
WHERE timestamp >= NOW() - INTERVAL '7 days'
)
AND timestamp >= NOW() - INTERVAL '24 hours';
