-- Daily cost by user (the reference design's query, unchanged)
SELECT user_id,
DATE(timestamp) as day,
COUNT(*) as requests,
SUM(cost_usd) as total_cost,
AVG(latency_ms) as avg_latency
FROM llm_audit_log
WHERE timestamp >= NOW() - INTERVAL '30 days'
GROUP BY user_id, DATE(timestamp)
ORDER BY total_cost DESC;
