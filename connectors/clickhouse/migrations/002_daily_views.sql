-- Daily aggregates, kept up to date by materialized views as rows arrive.
-- Counts are distinct event ids (uniqExact states), so a retried batch does
-- not count twice; read them with the matching -Merge function, grouped by
-- the key columns. A view sees only rows inserted after it was created.

CREATE TABLE IF NOT EXISTS {database}.product_changes_daily
(
    day      Date,
    category String,
    kind     String,
    changes  AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (day, category, kind);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.product_changes_daily_mv
TO {database}.product_changes_daily
AS SELECT
    toDate(changed_at)       AS day,
    category,
    kind,
    uniqExactState(event_id) AS changes
FROM {database}.product_changes
GROUP BY day, category, kind;

CREATE TABLE IF NOT EXISTS {database}.price_drops_daily
(
    day           Date,
    partner       String,
    price_changes AggregateFunction(uniqExact, String),
    price_drops   AggregateFunction(uniqExactIf, String, UInt8)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (day, partner);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.price_drops_daily_mv
TO {database}.price_drops_daily
AS SELECT
    toDate(changed_at)                                 AS day,
    partner,
    uniqExactState(event_id)                           AS price_changes,
    uniqExactIfState(event_id, new_price < old_price)  AS price_drops
FROM {database}.price_history
GROUP BY day, partner;

-- Row counts are summed once per upload: the state keeps each distinct
-- (upload_id, rows_read, rejected) tuple, and readers add up its elements.
CREATE TABLE IF NOT EXISTS {database}.upload_runs_daily
(
    day     Date,
    partner String,
    uploads AggregateFunction(uniqExact, String),
    runs    AggregateFunction(groupUniqArray, Tuple(String, Int64, Int64))
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (day, partner);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.upload_runs_daily_mv
TO {database}.upload_runs_daily
AS SELECT
    toDate(finished_at)                                   AS day,
    partner,
    uniqExactState(upload_id)                             AS uploads,
    groupUniqArrayState((upload_id, rows_read, rejected)) AS runs
FROM {database}.upload_runs
GROUP BY day, partner;

CREATE TABLE IF NOT EXISTS {database}.search_queries_daily
(
    day                  Date,
    searches             AggregateFunction(uniqExact, String),
    zero_result_searches AggregateFunction(uniqExactIf, String, UInt8)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY day;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.search_queries_daily_mv
TO {database}.search_queries_daily
AS SELECT
    toDate(at)                                   AS day,
    uniqExactState(event_id)                     AS searches,
    uniqExactIfState(event_id, results = 0)      AS zero_result_searches
FROM {database}.search_queries
GROUP BY day;

CREATE TABLE IF NOT EXISTS {database}.feed_events_daily
(
    day    Date,
    kind   String,
    events AggregateFunction(uniqExact, String),
    users  AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (day, kind);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.feed_events_daily_mv
TO {database}.feed_events_daily
AS SELECT
    toDate(at)               AS day,
    kind,
    uniqExactState(event_id) AS events,
    uniqExactState(user_id)  AS users
FROM {database}.feed_events
GROUP BY day, kind;
