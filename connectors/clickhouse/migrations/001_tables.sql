-- Analytics tables: one row per event, column names as in the Parquet files.
-- Retried batches write rows again; each ReplacingMergeTree collapses rows
-- with the same sorting key (the row's identity) in background merges, so
-- exact reads use FINAL or argMax. Times are DateTime (whole seconds, UTC).

CREATE TABLE IF NOT EXISTS {database}.product_changes
(
    event_id     String,
    product_id   String,
    partner      String,
    sku          String,
    upload_id    String,
    kind         String,
    version      UInt64,
    title        String,
    brand        String,
    category     String,
    price        Int64,
    sale_price   Int64,
    currency     String,
    availability String,
    changed_at   DateTime('UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(changed_at)
ORDER BY (partner, product_id, version);

CREATE TABLE IF NOT EXISTS {database}.price_history
(
    event_id   String,
    product_id String,
    partner    String,
    upload_id  String,
    currency   String,
    old_price  Int64,
    new_price  Int64,
    version    UInt64,
    changed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(changed_at)
ORDER BY (partner, product_id, event_id);

CREATE TABLE IF NOT EXISTS {database}.upload_runs
(
    upload_id       String,
    partner         String,
    mode            String,
    format          String,
    mapping_version Int32,
    received_at     DateTime('UTC'),
    finished_at     DateTime('UTC'),
    rows_read       Int64,
    accepted        Int64,
    unchanged       Int64,
    rejected        Int64,
    deleted         Int64
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(finished_at)
ORDER BY (partner, upload_id);

CREATE TABLE IF NOT EXISTS {database}.search_queries
(
    event_id String,
    query    String,
    filters  String,
    sort     String,
    results  Int64,
    took_ms  Float64,
    at       DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY event_id;

CREATE TABLE IF NOT EXISTS {database}.feed_events
(
    event_id    String,
    kind        String,
    user_id     String,
    target_kind String,
    target_id   String,
    items       Int64,
    at          DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (kind, event_id);
