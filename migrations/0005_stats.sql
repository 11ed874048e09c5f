-- 0005_stats.sql - open-rate rollups (DESIGN.md section 6; docs/statistics.md).
--
-- The rollups are kept exact in the same transaction as the change to
-- `messages`, by statement-level triggers with transition tables: a group
-- statement of 1,000 rows for one agency touches each rollup cell once,
-- not 1,000 times, so concurrent ingest does not queue on a hot row per
-- message. DELETE has no trigger on purpose: retention purges raw rows after
-- the cohort's window has closed, and that must not change any report.
--
-- Definitions (the brute-force checks in the tests use the same ones):
--   cohort     = the publication day in Europe/Amsterdam (hard-coded: the
--                statistics are defined in Dutch local time whatever the
--                [notify] timezone of quiet hours is)
--   within 3w  = opened_at - publicatie_tijdstip <= 504 hours (21 x 24 h of
--                elapsed time; the same across DST changes)
--   within 6w  = ... <= 1008 hours (42 x 24 h)
--   closed     = now() >= start of (cohort + 1 day) in Amsterdam + 1008 hours:
--                no message of the cohort can gain an open within 6 weeks after that.

CREATE FUNCTION stats_cohort(t timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (t AT TIME ZONE 'Europe/Amsterdam')::date;

-- 1 if the message counts as opened within `lim` of publication
CREATE FUNCTION stats_within(opened timestamptz, published timestamptz, lim interval)
    RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN opened IS NOT NULL AND opened - published <= lim THEN 1 ELSE 0 END;

-- the moment no open can change the 6-week figure of cohort d any more
CREATE FUNCTION stats_closes_at(d date) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ((d + 1)::timestamp AT TIME ZONE 'Europe/Amsterdam') + interval '1008 hours';

-- The latest cohort whose window had closed at time t: stats_closes_at(d) <= t
-- exactly when d <= stats_closed_through(t), because the local midnight of
-- day x is at or before t exactly when x <= t's local day. Reports compare
-- dates with it instead of converting a time zone per cell.
CREATE FUNCTION stats_closed_through(t timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN stats_cohort(t - interval '1008 hours') - 1;

-- Daily cells: the exact truth per cohort.
CREATE TABLE stats_dag (
    agency_id       bigint NOT NULL REFERENCES agencies (id),
    berichttype     text NOT NULL,
    papieren_kopie  boolean NOT NULL,
    dag             date NOT NULL,
    verstuurd       bigint NOT NULL DEFAULT 0,
    geopend_3w      bigint NOT NULL DEFAULT 0,
    geopend_6w      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (agency_id, berichttype, papieren_kopie, dag)
);
CREATE INDEX stats_dag_dag_idx ON stats_dag (dag);

-- Monthly sums of stats_dag, so a yearly report reads 12 rows per cell
-- whatever the number of messages. laatste_dag is the latest cohort with a
-- message in the cell: the cell is provisional while that cohort is open.
CREATE TABLE stats_maand (
    agency_id       bigint NOT NULL REFERENCES agencies (id),
    berichttype     text NOT NULL,
    papieren_kopie  boolean NOT NULL,
    maand           date NOT NULL CHECK (extract(day FROM maand) = 1),
    verstuurd       bigint NOT NULL DEFAULT 0,
    geopend_3w      bigint NOT NULL DEFAULT 0,
    geopend_6w      bigint NOT NULL DEFAULT 0,
    laatste_dag     date NOT NULL,
    PRIMARY KEY (maand, agency_id, berichttype, papieren_kopie)
);

-- Yearly sums, so the annual report reads one row per cell: its time does
-- not grow with the number of messages, nor with the days they span.
CREATE TABLE stats_jaar (
    agency_id       bigint NOT NULL REFERENCES agencies (id),
    berichttype     text NOT NULL,
    papieren_kopie  boolean NOT NULL,
    jaar            date NOT NULL CHECK (extract(doy FROM jaar) = 1),
    verstuurd       bigint NOT NULL DEFAULT 0,
    geopend_3w      bigint NOT NULL DEFAULT 0,
    geopend_6w      bigint NOT NULL DEFAULT 0,
    laatste_dag     date NOT NULL,
    PRIMARY KEY (jaar, agency_id, berichttype, papieren_kopie)
);

-- One cell's change, as the triggers hand it to stats_apply().
CREATE TYPE stats_delta AS (
    agency_id bigint, berichttype text, papieren_kopie boolean, dag date,
    v bigint, g3 bigint, g6 bigint
);

-- Applies per-cell deltas to the three levels. Rows go in key order so two
-- concurrent statements lock the cells they share in the same order (no
-- deadlock between two ingest statements).
CREATE FUNCTION stats_apply(d stats_delta[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF d IS NULL OR cardinality(d) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO stats_dag AS s (agency_id, berichttype, papieren_kopie, dag,
                                verstuurd, geopend_3w, geopend_6w)
    SELECT x.agency_id, x.berichttype, x.papieren_kopie, x.dag, x.v, x.g3, x.g6
    FROM unnest(d) x ORDER BY 1, 2, 3, 4
    ON CONFLICT (agency_id, berichttype, papieren_kopie, dag) DO UPDATE
        SET verstuurd = s.verstuurd + EXCLUDED.verstuurd,
            geopend_3w = s.geopend_3w + EXCLUDED.geopend_3w,
            geopend_6w = s.geopend_6w + EXCLUDED.geopend_6w;

    INSERT INTO stats_maand AS s (agency_id, berichttype, papieren_kopie, maand,
                                  verstuurd, geopend_3w, geopend_6w, laatste_dag)
    SELECT x.agency_id, x.berichttype, x.papieren_kopie, date_trunc('month', x.dag)::date,
           sum(x.v), sum(x.g3), sum(x.g6), max(x.dag)
    FROM unnest(d) x GROUP BY 1, 2, 3, 4 ORDER BY 4, 1, 2, 3
    ON CONFLICT (maand, agency_id, berichttype, papieren_kopie) DO UPDATE
        SET verstuurd = s.verstuurd + EXCLUDED.verstuurd,
            geopend_3w = s.geopend_3w + EXCLUDED.geopend_3w,
            geopend_6w = s.geopend_6w + EXCLUDED.geopend_6w,
            laatste_dag = greatest(s.laatste_dag, EXCLUDED.laatste_dag);

    INSERT INTO stats_jaar AS s (agency_id, berichttype, papieren_kopie, jaar,
                                 verstuurd, geopend_3w, geopend_6w, laatste_dag)
    SELECT x.agency_id, x.berichttype, x.papieren_kopie, date_trunc('year', x.dag)::date,
           sum(x.v), sum(x.g3), sum(x.g6), max(x.dag)
    FROM unnest(d) x GROUP BY 1, 2, 3, 4 ORDER BY 4, 1, 2, 3
    ON CONFLICT (jaar, agency_id, berichttype, papieren_kopie) DO UPDATE
        SET verstuurd = s.verstuurd + EXCLUDED.verstuurd,
            geopend_3w = s.geopend_3w + EXCLUDED.geopend_3w,
            geopend_6w = s.geopend_6w + EXCLUDED.geopend_6w,
            laatste_dag = greatest(s.laatste_dag, EXCLUDED.laatste_dag);
END $$;

-- AFTER INSERT: every new row is one message sent in its cohort (a row that
-- arrives already opened, e.g. from a restore, counts its open too).
CREATE FUNCTION stats_messages_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d stats_delta[];
BEGIN
    SELECT array_agg(row(agency_id, berichttype, papieren_kopie, dag, v, g3, g6)::stats_delta)
    INTO d FROM (
        SELECT agency_id, berichttype, papieren_kopie, stats_cohort(publicatie_tijdstip) AS dag,
               count(*) AS v,
               sum(stats_within(opened_at, publicatie_tijdstip, '504 hours')) AS g3,
               sum(stats_within(opened_at, publicatie_tijdstip, '1008 hours')) AS g6
        FROM stats_new GROUP BY 1, 2, 3, 4) c;
    PERFORM stats_apply(d);
    RETURN NULL;
END $$;

-- AFTER UPDATE: the contribution of each changed row is subtracted with its
-- old values and added with its new ones. In production only opened_at goes
-- from NULL to a time (the portal's first open), but any update stays exact.
-- (A trigger with transition tables cannot have a column list, so it fires
-- on every UPDATE; rows whose relevant columns did not change cost a join.)
CREATE FUNCTION stats_messages_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d stats_delta[];
BEGIN
    WITH changed AS (
        SELECT o.agency_id AS o_agency, o.berichttype AS o_type, o.papieren_kopie AS o_papier,
               o.publicatie_tijdstip AS o_pub, o.opened_at AS o_open,
               n.agency_id, n.berichttype, n.papieren_kopie, n.publicatie_tijdstip, n.opened_at
        FROM stats_old o JOIN stats_new n ON n.id = o.id
        WHERE (o.agency_id, o.berichttype, o.papieren_kopie, o.publicatie_tijdstip, o.opened_at)
              IS DISTINCT FROM
              (n.agency_id, n.berichttype, n.papieren_kopie, n.publicatie_tijdstip, n.opened_at)
    ), contrib AS (
        SELECT agency_id, berichttype, papieren_kopie, stats_cohort(publicatie_tijdstip) AS dag,
               1 AS v, stats_within(opened_at, publicatie_tijdstip, '504 hours') AS g3,
               stats_within(opened_at, publicatie_tijdstip, '1008 hours') AS g6
        FROM changed
        UNION ALL
        SELECT o_agency, o_type, o_papier, stats_cohort(o_pub),
               -1, -stats_within(o_open, o_pub, '504 hours'),
               -stats_within(o_open, o_pub, '1008 hours')
        FROM changed
    ), cell AS (
        SELECT agency_id, berichttype, papieren_kopie, dag,
               sum(v) AS v, sum(g3) AS g3, sum(g6) AS g6
        FROM contrib GROUP BY 1, 2, 3, 4
        HAVING sum(v) <> 0 OR sum(g3) <> 0 OR sum(g6) <> 0
    )
    SELECT array_agg(row(agency_id, berichttype, papieren_kopie, dag, v, g3, g6)::stats_delta)
    INTO d FROM cell;
    PERFORM stats_apply(d);
    RETURN NULL;
END $$;

CREATE TRIGGER stats_messages_insert AFTER INSERT ON messages
    REFERENCING NEW TABLE AS stats_new
    FOR EACH STATEMENT EXECUTE FUNCTION stats_messages_insert();
CREATE TRIGGER stats_messages_update AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS stats_old NEW TABLE AS stats_new
    FOR EACH STATEMENT EXECUTE FUNCTION stats_messages_update();

-- Notification counts per local day and kind, kept by a trigger on state
-- transitions, because notifications rows go when their message is purged
-- (ON DELETE CASCADE) and the yearly report must not change then.
--   afgeleverd = reached 'sent' or 'bounced' from another state (handed to
--                the relay, or refused by it)
--   gebounced  = reached 'bounced'
--   mislukt    = reached 'failed' (temporary failures beyond the retry span)
CREATE TABLE stats_notificaties (
    dag         date NOT NULL,
    kind        text NOT NULL,
    afgeleverd  bigint NOT NULL DEFAULT 0,
    gebounced   bigint NOT NULL DEFAULT 0,
    mislukt     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (dag, kind)
);

CREATE FUNCTION stats_notifications_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO stats_notificaties AS s (dag, kind, afgeleverd, gebounced, mislukt)
        SELECT stats_cohort(coalesce(n.sent_at, now())), n.kind,
               count(*) FILTER (WHERE n.state IN ('sent', 'bounced')),
               count(*) FILTER (WHERE n.state = 'bounced'),
               count(*) FILTER (WHERE n.state = 'failed')
        FROM stats_new n
        WHERE n.state IN ('sent', 'bounced', 'failed') AND n.kind IN ('new', 'repeat')
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (dag, kind) DO UPDATE
            SET afgeleverd = s.afgeleverd + EXCLUDED.afgeleverd,
                gebounced = s.gebounced + EXCLUDED.gebounced,
                mislukt = s.mislukt + EXCLUDED.mislukt;
    ELSE
        INSERT INTO stats_notificaties AS s (dag, kind, afgeleverd, gebounced, mislukt)
        SELECT stats_cohort(coalesce(n.sent_at, now())), n.kind,
               count(*) FILTER (WHERE n.state IN ('sent', 'bounced')
                                  AND o.state NOT IN ('sent', 'bounced')),
               count(*) FILTER (WHERE n.state = 'bounced' AND o.state <> 'bounced'),
               count(*) FILTER (WHERE n.state = 'failed' AND o.state <> 'failed')
        FROM stats_old o JOIN stats_new n ON n.id = o.id
        WHERE n.state IS DISTINCT FROM o.state
          AND n.state IN ('sent', 'bounced', 'failed') AND n.kind IN ('new', 'repeat')
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (dag, kind) DO UPDATE
            SET afgeleverd = s.afgeleverd + EXCLUDED.afgeleverd,
                gebounced = s.gebounced + EXCLUDED.gebounced,
                mislukt = s.mislukt + EXCLUDED.mislukt;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER stats_notifications_insert AFTER INSERT ON notifications
    REFERENCING NEW TABLE AS stats_new
    FOR EACH STATEMENT EXECUTE FUNCTION stats_notifications_change();
CREATE TRIGGER stats_notifications_update AFTER UPDATE ON notifications
    REFERENCING OLD TABLE AS stats_old NEW TABLE AS stats_new
    FOR EACH STATEMENT EXECUTE FUNCTION stats_notifications_change();
