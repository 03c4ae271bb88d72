-- Daily news-feed engagement over the last 14 days (UTC): shoppers who read
-- their feed, feed pages read, posts and follows. uniqExact over event ids
-- counts each event once, so no FINAL is needed.
SELECT
    toDate(at) AS day,
    uniqExactIf(user_id, kind = 'feed_read') AS readers,
    uniqExactIf(event_id, kind = 'feed_read') AS feed_reads,
    uniqExactIf(event_id, kind = 'post') AS posts,
    uniqExactIf(event_id, kind = 'follow') AS follows,
    if(readers = 0, 0, round(feed_reads / readers, 2)) AS reads_per_reader
FROM feed_events
WHERE toDate(at) >= toDate(now(), 'UTC') - 13
GROUP BY day
ORDER BY day
