-- 0001_init.sql - the first schema of berichtd.
--
-- PostgreSQL is the source of truth (DESIGN.md section 4). Message content is
-- never stored, only metadata. Citizens are known by a keyed hash of their
-- BSN (HMAC-SHA256, hex), never by the BSN itself.

CREATE TABLE agencies (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    oin         text NOT NULL UNIQUE CHECK (oin ~ '^[0-9]{20}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    mandatory   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only the SHA-256 of a token is stored; the token itself is shown once.
CREATE TABLE api_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    role        text NOT NULL CHECK (role IN ('agency', 'portal', 'ministry', 'relay')),
    agency_id   bigint REFERENCES agencies (id),
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK ((role = 'agency') = (agency_id IS NOT NULL))
);

CREATE TABLE accounts (
    id          uuid PRIMARY KEY,
    bsn_hash    text NOT NULL UNIQUE,
    active      boolean NOT NULL DEFAULT true,
    email       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE messages (
    id                              uuid PRIMARY KEY,          -- UUIDv7
    agency_id                       bigint NOT NULL REFERENCES agencies (id),
    account_id                      uuid NOT NULL REFERENCES accounts (id),
    berichttype                     text NOT NULL,
    referentie                      text NOT NULL,
    -- SHA-256 of the submitted fields: the same referentie with the same
    -- content is a retry (200), with other content a conflict (409)
    content_hash                    text NOT NULL,
    aanmaak_tijdstip                timestamptz,
    publicatie_tijdstip             timestamptz NOT NULL,
    eind_datum_handelingstermijn    date,
    papieren_kopie                  boolean NOT NULL DEFAULT false,
    created_at                      timestamptz NOT NULL DEFAULT now(),
    opened_at                       timestamptz,
    deleted_at                      timestamptz,
    UNIQUE (agency_id, referentie)
);
CREATE INDEX messages_account_idx ON messages (account_id, publicatie_tijdstip DESC);

-- One row per mail to send. States: scheduled -> sending -> sent | failed |
-- bounced | cancelled; a temporary failure goes back to scheduled, later.
CREATE TABLE notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id      uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    account_id      uuid NOT NULL REFERENCES accounts (id),
    kind            text NOT NULL DEFAULT 'new' CHECK (kind IN ('new', 'repeat')),
    state           text NOT NULL DEFAULT 'scheduled'
                    CHECK (state IN ('scheduled', 'sending', 'sent', 'failed', 'bounced', 'cancelled')),
    due_at          timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    claimed_at      timestamptz,
    sent_at         timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
-- the reconciler and the claim read scheduled rows by id and due time
CREATE INDEX notifications_scheduled_idx ON notifications (id) WHERE state = 'scheduled';
CREATE INDEX notifications_sending_idx ON notifications (claimed_at) WHERE state = 'sending';
CREATE INDEX notifications_message_idx ON notifications (message_id);
