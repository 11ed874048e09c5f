-- 0004_portal.sql - what the citizen portal API needs beyond the shared
-- model (0002): preferences, prompt bookkeeping, e-mail verification and an
-- index for the retention janitor.

ALTER TABLE accounts
    -- bewaartermijnDagen; NULL = the configured default (bounded at use time)
    ADD COLUMN retention_days        integer CHECK (retention_days > 0),
    -- when the verified address was last confirmed (verification or a
    -- "controleerEmail" acknowledgement)
    ADD COLUMN email_confirmed_at    timestamptz,
    -- when the citizen last confirmed explicitly that they want no e-mail
    ADD COLUMN no_email_confirmed_at timestamptz,
    -- when the citizen last acknowledged the "herstelEmail" prompt
    ADD COLUMN bounce_ack_at         timestamptz;

UPDATE accounts SET email_confirmed_at = updated_at WHERE email IS NOT NULL;

-- An address the citizen asked for that is not yet verified: at most one
-- per account (a new request replaces the old one). Only a keyed hash of
-- the 6-digit code is kept; the code itself travels in the verify mail.
CREATE TABLE email_verifications (
    account_id  uuid PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    address     text NOT NULL,
    code_hash   text NOT NULL CHECK (code_hash ~ '^[0-9a-f]{64}$'),
    expires_at  timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    locked      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- the janitor looks for messages whose statistics window has closed
CREATE INDEX messages_publicatie_idx ON messages (publicatie_tijdstip);
