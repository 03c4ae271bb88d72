-- Biggest price drops this week (since Monday, UTC), one row per price
-- change. FINAL folds copies of a retried batch. Compare prices within one
-- currency only: they are minor units of `currency`.
SELECT
    partner,
    product_id,
    currency,
    old_price,
    new_price,
    round(100 * (old_price - new_price) / old_price, 1) AS drop_pct,
    changed_at
FROM price_history FINAL
WHERE toDate(changed_at) >= toMonday(now(), 'UTC')
  AND new_price < old_price
  AND old_price > 0
ORDER BY drop_pct DESC, partner, product_id
LIMIT 50
