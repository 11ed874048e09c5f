-- 0007_notification_stats_shards.sql - spread the notification counters
-- over shards, so that delivery workers do not queue on one row.
--
-- Every delivery worker records its sent mails in one statement, and the
-- statistics trigger (0005) added them to the single (day, kind) row of
-- stats_notificaties, holding that row's lock until the worker's commit.
-- All workers of all instances thus committed one after another: measured
-- as a throughput plateau with 40% of the CPU idle. Each backend now writes
-- to its own shard (its pid modulo SHARDS); the report sums over shards, as
-- it already summed over days.

ALTER TABLE stats_notificaties ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE stats_notificaties DROP CONSTRAINT stats_notificaties_pkey;
ALTER TABLE stats_notificaties ADD PRIMARY KEY (dag, kind, shard);

CREATE OR REPLACE FUNCTION stats_notifications_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard smallint := pg_backend_pid() % 16;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO stats_notificaties AS s (dag, kind, shard, afgeleverd, gebounced, mislukt)
        SELECT stats_cohort(coalesce(n.sent_at, now())), n.kind, my_shard,
               count(*) FILTER (WHERE n.state IN ('sent', 'bounced')),
               count(*) FILTER (WHERE n.state = 'bounced'),
               count(*) FILTER (WHERE n.state = 'failed')
        FROM stats_new n
        WHERE n.state IN ('sent', 'bounced', 'failed') AND n.kind IN ('new', 'repeat')
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (dag, kind, shard) DO UPDATE
            SET afgeleverd = s.afgeleverd + EXCLUDED.afgeleverd,
                gebounced = s.gebounced + EXCLUDED.gebounced,
                mislukt = s.mislukt + EXCLUDED.mislukt;
    ELSE
        INSERT INTO stats_notificaties AS s (dag, kind, shard, afgeleverd, gebounced, mislukt)
        SELECT stats_cohort(coalesce(n.sent_at, now())), n.kind, my_shard,
               count(*) FILTER (WHERE n.state IN ('sent', 'bounced')
                                  AND o.state NOT IN ('sent', 'bounced')),
               count(*) FILTER (WHERE n.state = 'bounced' AND o.state <> 'bounced'),
               count(*) FILTER (WHERE n.state = 'failed' AND o.state <> 'failed')
        FROM stats_old o JOIN stats_new n ON n.id = o.id
        WHERE n.state IS DISTINCT FROM o.state
          AND n.state IN ('sent', 'bounced', 'failed') AND n.kind IN ('new', 'repeat')
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (dag, kind, shard) DO UPDATE
            SET afgeleverd = s.afgeleverd + EXCLUDED.afgeleverd,
                gebounced = s.gebounced + EXCLUDED.gebounced,
                mislukt = s.mislukt + EXCLUDED.mislukt;
    END IF;
    RETURN NULL;
END $$;
