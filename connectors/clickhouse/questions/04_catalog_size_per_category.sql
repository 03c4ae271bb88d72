-- Catalog size per top-level category on each of the last 30 days (UTC).
-- A product is in the catalog on a day when its latest change up to that
-- day (highest version) is an upsert; it counts under the top level of the
-- category that change carried. argMax needs no FINAL: copies of a change
-- have the same version and values.
SELECT
    day,
    top_category,
    count() AS products
FROM
(
    SELECT
        day,
        product_id,
        argMax(kind, version) AS latest_kind,
        argMax(category, version) AS latest_category,
        if(latest_category = '', '(none)', splitByString(' > ', latest_category)[1]) AS top_category
    FROM product_changes
    ARRAY JOIN arrayMap(i -> toDate(now(), 'UTC') - i, range(30)) AS day
    WHERE toDate(changed_at) <= day
    GROUP BY day, product_id
)
WHERE latest_kind = 'upsert'
GROUP BY day, top_category
ORDER BY day, top_category
