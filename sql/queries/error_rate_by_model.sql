-- Error rate by model (the reference design's query, unchanged)
SELECT model,
COUNT(*) FILTER (WHERE status = 'error') as errors,
COUNT(*) as total,
ROUND(100.0 * COUNT(*) FILTER (WHERE status = 'error')
/ COUNT(*), 2) as error_rate
FROM llm_audit_log
WHERE timestamp >= NOW() - INTERVAL '24 hours'
GROUP BY model;
