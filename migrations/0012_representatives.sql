-- 0012_representatives.sql - people who act for a citizen (issue 11):
-- machtiging, a parent for a minor, curatele, beschermingsbewind,
-- mentorschap, and the next of kin of someone who died (nabestaande).
--
-- A representation is a row per (represented account, representative
-- account): the portal syncs them from the authorisation register with
-- PUT /v1/accounts/{accountId}/vertegenwoordigers/{vertegenwoordigerAccountId}.
-- DELETE sets deleted_at (the row stays, for the citizen's own log); a later
-- PUT of the same pair brings it back.
--
-- Who gets mail for a message is decided by the functions at the end, in
-- one place: ingest asks them when it schedules, the claim asks them again
-- when it sends (a representation that ended or was deleted in between
-- cancels its notification then, like every other eligibility rule).

ALTER TABLE accounts ADD COLUMN overleden_at timestamptz;

-- optional case number an agency sends with a message (1-40 printable
-- characters, checked by the API); a representation limited to a case
-- applies only to messages with the same zaakkenmerk
ALTER TABLE messages ADD COLUMN zaakkenmerk text
    CHECK (zaakkenmerk IS NULL OR length(zaakkenmerk) BETWEEN 1 AND 40);

CREATE TABLE representations (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id          uuid NOT NULL,          -- the represented person
    rep_account_id      uuid NOT NULL,          -- the representative
    soort               text NOT NULL CHECK (soort IN ('machtiging', 'ouder', 'curatele',
                            'beschermingsbewind', 'mentorschap', 'nabestaande')),
    geldig_vanaf        timestamptz NOT NULL,
    geldig_tot          timestamptz CHECK (geldig_tot IS NULL OR geldig_tot > geldig_vanaf),
    -- NULL: every agency; else the agencies (ids) it is limited to
    organisaties        bigint[] CHECK (organisaties IS NULL OR cardinality(organisaties) > 0),
    zaakkenmerk         text CHECK (zaakkenmerk IS NULL OR length(zaakkenmerk) BETWEEN 1 AND 40),
    -- how the represented person is named to the representative; never a BSN
    weergavenaam        text NOT NULL CHECK (length(weergavenaam) BETWEEN 1 AND 100),
    betrokkene_ook_notificeren boolean NOT NULL,
    -- ketenmachtiging: the representation of the same account it was passed
    -- on from (never wider than it; ends when it ends); depth 1 = direct
    doorgegeven_door    bigint REFERENCES representations (id),
    depth               smallint NOT NULL DEFAULT 1 CHECK (depth >= 1),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    CHECK (account_id <> rep_account_id),
    CHECK ((doorgegeven_door IS NULL) = (depth = 1)),
    UNIQUE (account_id, rep_account_id)
);
CREATE INDEX representations_rep_idx ON representations (rep_account_id);
CREATE INDEX representations_source_idx ON representations (doorgegeven_door)
    WHERE doorgegeven_door IS NOT NULL;

-- A notification for a representative names the representation it is for
-- (account_id is then the representative's account: the recipient). NULL:
-- the notification is the account holder's own. No foreign key, as for the
-- other notification columns (0006): a representation is never deleted.
ALTER TABLE notifications ADD COLUMN representation_id bigint;
CREATE INDEX notifications_representation_idx ON notifications (representation_id)
    WHERE representation_id IS NOT NULL;

-- Is representation r in force for a message of agency p_agency, with case
-- p_zaak, published at p_published? Not deleted, the publication inside
-- [geldig_vanaf, geldig_tot), the agency and the case in scope; and the
-- same for every representation it was passed on from (a derived one ends
-- when its source ends, whatever it says itself). A nabestaande acts for
-- the estate: its time is now, not the publication, so it also gets the
-- messages that were there before the death.
CREATE FUNCTION representation_in_force(p_rep bigint, p_agency bigint, p_zaak text,
                                        p_published timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    WITH RECURSIVE chain AS (
        SELECT r.*, 1 AS hop FROM representations r WHERE r.id = p_rep
        UNION ALL
        SELECT s.*, c.hop + 1 FROM representations s JOIN chain c ON s.id = c.doorgegeven_door
        WHERE c.hop < 16
    )
    SELECT count(*) > 0 AND bool_and(
               c.deleted_at IS NULL
           AND c.geldig_vanaf <= CASE WHEN c.soort = 'nabestaande' THEN now() ELSE p_published END
           AND (c.geldig_tot IS NULL
                OR CASE WHEN c.soort = 'nabestaande' THEN now() ELSE p_published END < c.geldig_tot)
           AND (c.organisaties IS NULL OR p_agency = ANY (c.organisaties))
           AND (c.zaakkenmerk IS NULL OR c.zaakkenmerk IS NOT DISTINCT FROM p_zaak))
    FROM chain c
$$;

-- Does the account holder still get mail for such a message, as far as
-- representations decide? Not when it died, and not when a representation
-- in force for the message says betrokkeneOokNotificeren = false. (Whether
-- the account may get mail at all is may_get_mail(), migration 0011.)
CREATE FUNCTION holder_notified(p_account uuid, p_agency bigint, p_zaak text,
                                p_published timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM accounts a WHERE a.id = p_account AND a.overleden_at IS NOT NULL)
       AND NOT EXISTS (
        SELECT 1 FROM representations r
        WHERE r.account_id = p_account AND r.deleted_at IS NULL
          AND NOT r.betrokkene_ook_notificeren
          AND representation_in_force(r.id, p_agency, p_zaak, p_published))
$$;

-- The representations that get a notification for such a message: those
-- in force for it. (For the account's nabestaanden after its death the
-- same rule holds: their representation is in force from geldigVanaf.)
CREATE FUNCTION representations_notified(p_account uuid, p_agency bigint, p_zaak text,
                                         p_published timestamptz)
RETURNS SETOF representations LANGUAGE sql STABLE AS $$
    SELECT r.* FROM representations r
    WHERE r.account_id = p_account AND r.deleted_at IS NULL
      AND representation_in_force(r.id, p_agency, p_zaak, p_published)
$$;

-- A dead account gets no mail of its own, as holder or as representative.
CREATE OR REPLACE FUNCTION may_get_mail(a accounts) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT a.active AND a.email IS NOT NULL AND a.email_notifications
       AND a.email_bounced_at IS NULL AND a.overleden_at IS NULL
$$;
