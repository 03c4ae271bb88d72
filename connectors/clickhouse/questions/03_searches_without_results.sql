-- What shoppers searched for in the last 7 days and found nothing, most
-- frequent first. FINAL counts each search once.
SELECT
    lowerUTF8(query) AS search_text,
    count() AS searches,
    max(at) AS last_searched_at
FROM search_queries FINAL
WHERE at >= now() - INTERVAL 7 DAY
  AND results = 0
  AND query != ''
GROUP BY search_text
ORDER BY searches DESC, search_text
LIMIT 20
