-- 0013_stats_dp.sql - the agency view's differential privacy (issue 10;
-- docs/statistics.md, "Het overzicht van een organisatie").
--
-- Contribution bounding: every message gets a sequence number per (agency,
-- cohort year, citizen), 1 for the citizen's first message from that agency
-- that year. The agency view counts only numbers <= [stats] max_per_citizen,
-- so one citizen is in at most m counted messages of an agency-year,
-- whatever the cells. The number is kept without a second write per
-- message: stats_burger_jaar holds, per (agency, year, citizen), how many
-- messages there are (n) and the ids of the first 15; a message's number is
-- its position in that array, or 16 ("more than 15") when it is not there.
-- Rows are upserted with ON CONFLICT DO UPDATE by the statement-level AFTER
-- INSERT trigger, so two concurrent statements for one citizen serialise on
-- the row lock (key order against deadlocks), and only rows actually
-- inserted are numbered (an ingest retry, ON CONFLICT DO NOTHING on
-- referentie, inserts nothing and fires for nothing). Nothing here depends
-- on opening behaviour.
--
-- stats_dp_maand: the agency view's rollup, per (agency, month, type, paper,
-- sequence number capped at 16), kept by the same statement triggers as
-- 0005's rollups. max_per_citizen is applied when it is read (volgnummer <=
-- m), so changing it needs no rebuild.
--
-- stats_dp_ruis: the noise of every node of the tree mechanism, drawn once
-- by the daemon (INSERT ... ON CONFLICT DO NOTHING, then read back, so two
-- instances agree) and never changed: asking again gives the same answer.

CREATE TABLE stats_burger_jaar (
    agency_id   bigint NOT NULL,
    jaar        date NOT NULL CHECK (extract(doy FROM jaar) = 1),
    account_id  uuid NOT NULL,
    n           bigint NOT NULL,
    ids         uuid[] NOT NULL CHECK (cardinality(ids) <= 15),
    PRIMARY KEY (agency_id, jaar, account_id)
);

CREATE TABLE stats_dp_maand (
    agency_id       bigint NOT NULL,
    maand           date NOT NULL CHECK (extract(day FROM maand) = 1),
    berichttype     text NOT NULL,
    papieren_kopie  boolean NOT NULL,
    volgnummer      smallint NOT NULL CHECK (volgnummer BETWEEN 1 AND 16),
    verstuurd       bigint NOT NULL DEFAULT 0,
    geopend_3w      bigint NOT NULL DEFAULT 0,
    geopend_6w      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (agency_id, maand, berichttype, papieren_kopie, volgnummer)
);

-- component 1 = opened within 3 weeks, 2 = after 3 and within 6; niveau 0-3
-- = nodes of 1, 2, 4, 8 months, idx = the node's place (months idx*2^niveau+1
-- ..(idx+1)*2^niveau); schaal_t / schaal_s = the discrete Laplace scale it
-- was drawn with (Delta / epsilon).
CREATE TABLE stats_dp_ruis (
    agency_id       bigint NOT NULL,
    jaar            integer NOT NULL,
    berichttype     text NOT NULL,
    papieren_kopie  boolean NOT NULL,
    component       smallint NOT NULL CHECK (component IN (1, 2)),
    niveau          smallint NOT NULL CHECK (niveau BETWEEN 0 AND 3),
    idx             smallint NOT NULL CHECK (idx BETWEEN 0 AND 11),
    ruis            bigint NOT NULL,
    schaal_t        bigint NOT NULL,
    schaal_s        bigint NOT NULL,
    getrokken_op    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agency_id, jaar, berichttype, papieren_kopie, component, niveau, idx)
);

CREATE FUNCTION stats_year(t timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN date_trunc('year', stats_cohort(t))::date;

-- a message's sequence number from its (agency, year, citizen) row
CREATE FUNCTION stats_dp_volgnummer(ids uuid[], id uuid) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN coalesce(array_position(ids, id), 16)::smallint;

CREATE TYPE stats_dp_delta AS (
    agency_id bigint, maand date, berichttype text, papieren_kopie boolean,
    volgnummer smallint, v bigint, g3 bigint, g6 bigint
);

CREATE FUNCTION stats_dp_apply(d stats_dp_delta[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO stats_dp_maand AS s (agency_id, maand, berichttype, papieren_kopie,
                                     volgnummer, verstuurd, geopend_3w, geopend_6w)
    SELECT x.agency_id, x.maand, x.berichttype, x.papieren_kopie, x.volgnummer,
           sum(x.v), sum(x.g3), sum(x.g6)
    FROM unnest(d) x GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (agency_id, maand, berichttype, papieren_kopie, volgnummer) DO UPDATE
        SET verstuurd = s.verstuurd + EXCLUDED.verstuurd,
            geopend_3w = s.geopend_3w + EXCLUDED.geopend_3w,
            geopend_6w = s.geopend_6w + EXCLUDED.geopend_6w
$$;

CREATE FUNCTION stats_dp_messages_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d stats_dp_delta[];
BEGIN
    WITH per AS (
        SELECT agency_id, stats_year(publicatie_tijdstip) AS jaar, account_id,
               count(*) AS n, (array_agg(id ORDER BY id))[1:15] AS ids
        FROM stats_new GROUP BY 1, 2, 3
    ), up AS (
        INSERT INTO stats_burger_jaar AS s (agency_id, jaar, account_id, n, ids)
        SELECT agency_id, jaar, account_id, n, ids FROM per ORDER BY 1, 2, 3
        ON CONFLICT (agency_id, jaar, account_id) DO UPDATE
            SET n = s.n + EXCLUDED.n,
                ids = CASE WHEN cardinality(s.ids) >= 15 THEN s.ids
                           ELSE s.ids || EXCLUDED.ids[1:15 - cardinality(s.ids)] END
        RETURNING agency_id, jaar, account_id, ids
    )
    SELECT array_agg(row(m.agency_id, date_trunc('month', stats_cohort(m.publicatie_tijdstip))::date,
                         m.berichttype, m.papieren_kopie, stats_dp_volgnummer(up.ids, m.id), 1,
                         stats_within(m.opened_at, m.publicatie_tijdstip, '504 hours'),
                         stats_within(m.opened_at, m.publicatie_tijdstip, '1008 hours'))::stats_dp_delta)
    INTO d
    FROM stats_new m JOIN up ON up.agency_id = m.agency_id AND up.account_id = m.account_id
      AND up.jaar = stats_year(m.publicatie_tijdstip);
    IF d IS NOT NULL THEN
        PERFORM stats_dp_apply(d);
    END IF;
    RETURN NULL;
END $$;

-- Opens: the old contribution out, the new one in, each in the bucket of
-- its (agency, year, citizen) row. In production only opened_at changes.
CREATE FUNCTION stats_dp_messages_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d stats_dp_delta[];
BEGIN
    WITH changed AS (
        SELECT o.id, o.agency_id AS o_agency, o.account_id AS o_account, o.berichttype AS o_type,
               o.papieren_kopie AS o_papier, o.publicatie_tijdstip AS o_pub, o.opened_at AS o_open,
               n.agency_id, n.account_id, n.berichttype, n.papieren_kopie,
               n.publicatie_tijdstip, n.opened_at
        FROM stats_old o JOIN stats_new n ON n.id = o.id
        WHERE (o.agency_id, o.account_id, o.berichttype, o.papieren_kopie,
               o.publicatie_tijdstip, o.opened_at)
              IS DISTINCT FROM
              (n.agency_id, n.account_id, n.berichttype, n.papieren_kopie,
               n.publicatie_tijdstip, n.opened_at)
    )
    SELECT array_agg(x::stats_dp_delta) INTO d FROM (
        SELECT c.agency_id, date_trunc('month', stats_cohort(c.publicatie_tijdstip))::date,
               c.berichttype, c.papieren_kopie, stats_dp_volgnummer(b.ids, c.id), 1::bigint,
               stats_within(c.opened_at, c.publicatie_tijdstip, '504 hours')::bigint,
               stats_within(c.opened_at, c.publicatie_tijdstip, '1008 hours')::bigint
        FROM changed c LEFT JOIN stats_burger_jaar b ON b.agency_id = c.agency_id
          AND b.jaar = stats_year(c.publicatie_tijdstip) AND b.account_id = c.account_id
        UNION ALL
        SELECT c.o_agency, date_trunc('month', stats_cohort(c.o_pub))::date,
               c.o_type, c.o_papier, stats_dp_volgnummer(b.ids, c.id), -1,
               -stats_within(c.o_open, c.o_pub, '504 hours'),
               -stats_within(c.o_open, c.o_pub, '1008 hours')
        FROM changed c LEFT JOIN stats_burger_jaar b ON b.agency_id = c.o_agency
          AND b.jaar = stats_year(c.o_pub) AND b.account_id = c.o_account
    ) x;
    IF d IS NOT NULL THEN
        PERFORM stats_dp_apply(d);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER stats_dp_messages_insert AFTER INSERT ON messages
    REFERENCING NEW TABLE AS stats_new
    FOR EACH STATEMENT EXECUTE FUNCTION stats_dp_messages_insert();
CREATE TRIGGER stats_dp_messages_update AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS stats_old NEW TABLE AS stats_new
    FOR EACH STATEMENT EXECUTE FUNCTION stats_dp_messages_update();

-- Recount of the years [van, tot) from the raw rows: the migration's
-- backfill and `berichtd stats rebuild` (which takes the years its range
-- touches; rows retention purged are not in the recount). Within a year a
-- citizen's messages are numbered in the order they were inserted: by
-- created_at (the inserting transaction's start), then id, as the trigger
-- numbers them statement by statement and by id within one.
CREATE FUNCTION stats_dp_rebuild(van date, tot date) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    rows bigint;
BEGIN
    DELETE FROM stats_burger_jaar WHERE jaar >= van AND jaar < tot;
    DELETE FROM stats_dp_maand WHERE maand >= van AND maand < tot;
    INSERT INTO stats_burger_jaar (agency_id, jaar, account_id, n, ids)
    SELECT agency_id, stats_year(publicatie_tijdstip), account_id, count(*),
           (array_agg(id ORDER BY created_at, id))[1:15]
    FROM messages
    WHERE publicatie_tijdstip >= (van::timestamp AT TIME ZONE 'Europe/Amsterdam')
      AND publicatie_tijdstip < (tot::timestamp AT TIME ZONE 'Europe/Amsterdam')
    GROUP BY 1, 2, 3;
    INSERT INTO stats_dp_maand (agency_id, maand, berichttype, papieren_kopie, volgnummer,
                                verstuurd, geopend_3w, geopend_6w)
    SELECT m.agency_id, date_trunc('month', stats_cohort(m.publicatie_tijdstip))::date,
           m.berichttype, m.papieren_kopie, stats_dp_volgnummer(b.ids, m.id), count(*),
           sum(stats_within(m.opened_at, m.publicatie_tijdstip, '504 hours')),
           sum(stats_within(m.opened_at, m.publicatie_tijdstip, '1008 hours'))
    FROM messages m JOIN stats_burger_jaar b ON b.agency_id = m.agency_id
      AND b.jaar = stats_year(m.publicatie_tijdstip) AND b.account_id = m.account_id
    WHERE m.publicatie_tijdstip >= (van::timestamp AT TIME ZONE 'Europe/Amsterdam')
      AND m.publicatie_tijdstip < (tot::timestamp AT TIME ZONE 'Europe/Amsterdam')
    GROUP BY 1, 2, 3, 4, 5;
    GET DIAGNOSTICS rows = ROW_COUNT;
    RETURN rows;
END $$;

SELECT stats_dp_rebuild('2000-01-01', '2101-01-01');
