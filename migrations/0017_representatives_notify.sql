-- 0017_representatives_notify.sql - what the notification side of issue 11
-- needs beyond 0012: the estate taking over at a death, and the rollup of
-- notifications to representatives for the ministry's report.
--
-- Who is notified stays decided by 0012's functions (representation_in_force,
-- holder_notified, representations_notified); this file only asks them.

-- A death (PATCH /v1/accounts/{id} with overleden: true, in the same
-- statement that sets accounts.overleden_at): every message still in the
-- box (box_holds, 0010) and not opened gets a notification for each
-- nabestaande representation in force for it. A pending notification of
-- the holder for the message (its 'new' not sent yet, or its reminder) is
-- taken over with its kind and due time, so the estate gets the reminder
-- the holder would have had; a message without one gets a 'new' after the
-- digest window. The holder's own rows are cancelled at claim time
-- (holder_notified is false from now on). A message the nabestaande already
-- has a live notification for gets no second one.
-- Returns the new rows, for the Redis schedule.
CREATE FUNCTION nabestaande_takes_over(p_account uuid, p_window interval,
                                       p_default_days integer, p_min_days integer,
                                       p_max_days integer)
RETURNS TABLE (id bigint, due_ms bigint, lane bigint) LANGUAGE sql VOLATILE AS $$
    WITH m AS (
        SELECT m.id, m.agency_id, m.zaakkenmerk, m.publicatie_tijdstip
        FROM messages m JOIN accounts a ON a.id = m.account_id
        WHERE m.account_id = p_account AND message_unread(m)
          AND box_holds(m.publicatie_tijdstip, m.deleted_at, a.retention_days,
                        p_default_days, p_min_days, p_max_days)
    ), pending AS (
        SELECT DISTINCT ON (n.message_id) n.message_id, n.kind, n.due_at
        FROM notifications n
        WHERE n.account_id = p_account AND n.representation_id IS NULL
          AND n.state = 'scheduled' AND n.kind IN ('new', 'repeat')
          AND n.message_id IN (SELECT m.id FROM m)
        ORDER BY n.message_id, n.due_at
    ), ins AS (
        INSERT INTO notifications (message_id, account_id, kind, due_at, representation_id)
        SELECT m.id, r.rep_account_id, coalesce(p.kind, 'new'),
               coalesce(p.due_at, now() + p_window), r.id
        FROM m
        CROSS JOIN LATERAL representations_notified(p_account, m.agency_id, m.zaakkenmerk,
                                                    m.publicatie_tijdstip) r
        LEFT JOIN pending p ON p.message_id = m.id
        WHERE r.soort = 'nabestaande'
          AND NOT EXISTS (SELECT 1 FROM notifications x
                          WHERE x.message_id = m.id AND x.representation_id = r.id
                            AND x.state IN ('scheduled', 'sending'))
        RETURNING notifications.id, notifications.due_at, notifications.message_id
    )
    SELECT ins.id, (extract(epoch FROM ins.due_at) * 1000)::bigint, m.agency_id
    FROM ins JOIN m ON m.id = ins.message_id
$$;

-- Does a representative's scheduled notification still go out (the claim
-- asks, at send time)? The representation was in force for the message at
-- its publication (0012's rule, as ingest asked) and still is now: one that
-- ended since (geldigTot moved to before now, its source ended) or was
-- deleted stops its notifications at once, reminders included.
CREATE FUNCTION representation_still_notified(p_rep bigint, p_agency bigint, p_zaak text,
                                              p_published timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT representation_in_force(p_rep, p_agency, p_zaak, p_published)
       AND representation_in_force(p_rep, p_agency, p_zaak, now())
$$;

-- The ministry's notificaties report (issue 11): notifications to
-- representatives per soort, and the messages a representative was
-- notified of. Rollups, like stats_notificaties (0005, sharded as in 0007):
-- notifications rows go when their message is purged, and the yearly
-- report must not change then.
--   stats_notificaties_vertegenwoordigers: per local day of the transition,
--     soort and kind, the representatives' notifications that reached 'sent'
--     or 'bounced' (they are counted in stats_notificaties as well)
--   stats_berichten_vertegenwoordigd: per local day of creation, the
--     messages that got a 'new' notification to a representative (a
--     representation in force at publication, or a nabestaande's take-over)
-- A trigger of its own, beside 0005's: the statements of the holder's own
-- notifications pay one scan of their transition table and nothing more.
CREATE TABLE stats_notificaties_vertegenwoordigers (
    dag         date NOT NULL,
    soort       text NOT NULL,
    kind        text NOT NULL,
    shard       smallint NOT NULL,
    afgeleverd  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (dag, soort, kind, shard)
);

CREATE TABLE stats_berichten_vertegenwoordigd (
    dag         date NOT NULL,
    shard       smallint NOT NULL,
    berichten   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (dag, shard)
);

CREATE FUNCTION stats_rep_notifications_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard smallint := pg_backend_pid() % 16;
BEGIN
    -- most statements touch no representative's row: one scan, and out
    IF NOT EXISTS (SELECT 1 FROM stats_new WHERE representation_id IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO stats_berichten_vertegenwoordigd AS s (dag, shard, berichten)
        SELECT stats_cohort(n.created_at), my_shard, count(DISTINCT n.message_id)
        FROM stats_new n
        WHERE n.representation_id IS NOT NULL AND n.kind = 'new'
          -- a message with a representative's live notification before this
          -- statement was counted then (a take-over after a death)
          AND NOT EXISTS (SELECT 1 FROM notifications x
                          WHERE x.message_id = n.message_id AND x.kind = 'new'
                            AND x.representation_id IS NOT NULL
                            AND x.id NOT IN (SELECT id FROM stats_new))
        GROUP BY 1 ORDER BY 1
        ON CONFLICT (dag, shard) DO UPDATE SET berichten = s.berichten + EXCLUDED.berichten;
    ELSE
        INSERT INTO stats_notificaties_vertegenwoordigers AS s (dag, soort, kind, shard, afgeleverd)
        SELECT stats_cohort(coalesce(n.sent_at, now())), r.soort, n.kind, my_shard, count(*)
        FROM stats_old o JOIN stats_new n ON n.id = o.id
        JOIN representations r ON r.id = n.representation_id
        WHERE n.representation_id IS NOT NULL AND n.kind IN ('new', 'repeat')
          AND n.state IN ('sent', 'bounced') AND o.state NOT IN ('sent', 'bounced')
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (dag, soort, kind, shard) DO UPDATE
            SET afgeleverd = s.afgeleverd + EXCLUDED.afgeleverd;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER stats_rep_notifications_insert AFTER INSERT ON notifications
    REFERENCING NEW TABLE AS stats_new
    FOR EACH STATEMENT EXECUTE FUNCTION stats_rep_notifications_change();
CREATE TRIGGER stats_rep_notifications_update AFTER UPDATE ON notifications
    REFERENCING OLD TABLE AS stats_old NEW TABLE AS stats_new
    FOR EACH STATEMENT EXECUTE FUNCTION stats_rep_notifications_change();

-- 0012's representation_in_force walks the chain with a recursive CTE for
-- every call, also for a representation never passed on (depth 1, nearly
-- all of them). The claim asks it for each representative's row (twice:
-- representation_still_notified), so for one administrator of 5,000
-- people that walk was most of the claim (EXPLAIN ANALYZE,
-- tests/bench/rep_explain.py). The same rule, unchanged: the condition on
-- one link is representation_link_ok (an expression function, inlined),
-- asked of the representation itself and, only when it was passed on, of
-- every representation up its chain.
CREATE FUNCTION representation_link_ok(r representations, p_agency bigint, p_zaak text,
                                       p_published timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT r.deleted_at IS NULL
       AND r.geldig_vanaf <= CASE WHEN r.soort = 'nabestaande' THEN now() ELSE p_published END
       AND (r.geldig_tot IS NULL
            OR CASE WHEN r.soort = 'nabestaande' THEN now() ELSE p_published END < r.geldig_tot)
       AND (r.organisaties IS NULL OR p_agency = ANY (r.organisaties))
       AND (r.zaakkenmerk IS NULL OR r.zaakkenmerk IS NOT DISTINCT FROM p_zaak)
$$;

CREATE OR REPLACE FUNCTION representation_in_force(p_rep bigint, p_agency bigint, p_zaak text,
                                                   p_published timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce((
        SELECT representation_link_ok(r, p_agency, p_zaak, p_published)
           AND (r.doorgegeven_door IS NULL OR (
                WITH RECURSIVE chain AS (
                    SELECT s.id, s.doorgegeven_door, 2 AS hop FROM representations s
                    WHERE s.id = r.doorgegeven_door
                    UNION ALL
                    SELECT s.id, s.doorgegeven_door, c.hop + 1 FROM representations s
                    JOIN chain c ON s.id = c.doorgegeven_door
                    WHERE c.hop < 16
                )
                SELECT count(*) > 0 AND bool_and(representation_link_ok(x, p_agency, p_zaak,
                                                                        p_published))
                FROM chain c JOIN representations x ON x.id = c.id))
        FROM representations r WHERE r.id = p_rep), false)
$$;
