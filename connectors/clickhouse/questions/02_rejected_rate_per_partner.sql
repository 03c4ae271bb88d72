-- Share of rows each partner sent that could not become a product, over
-- the uploads that finished in the last 30 days. FINAL counts each upload once.
SELECT
    partner,
    count() AS uploads,
    sum(rows_read) AS rows_read_total,
    sum(rejected) AS rejected_total,
    round(100 * rejected_total / rows_read_total, 2) AS rejected_pct
FROM upload_runs FINAL
WHERE finished_at >= now() - INTERVAL 30 DAY
GROUP BY partner
HAVING rows_read_total > 0
ORDER BY rejected_pct DESC, partner
