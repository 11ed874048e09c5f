-- 0002_model.sql - the shared data model the agency API, the portal API,
-- the notification engine and the statistics build on.

-- Citizen preferences (portal). accounts.email is the *verified* address
-- notifications go to; an address awaiting verification lives elsewhere
-- (portal migration), so delivery never needs to know about verification.
ALTER TABLE accounts
    ADD COLUMN email_notifications  boolean NOT NULL DEFAULT true,
    ADD COLUMN repeat_notifications boolean NOT NULL DEFAULT true,
    ADD COLUMN language             text NOT NULL DEFAULT 'nl' CHECK (language IN ('nl', 'en')),
    -- a hard bounce stops all mail to the address until the citizen fixes it
    ADD COLUMN email_bounced_at     timestamptz;

-- The citizen turned an agency on or off. No row means on. A mandatory
-- agency (agencies.mandatory) ignores an 'off' row.
CREATE TABLE subscriptions (
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    agency_id   bigint NOT NULL REFERENCES agencies (id),
    active      boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, agency_id)
);

-- Message types an agency registered (`berichtd berichttype add`), with an
-- optional override of the reminder interval.
CREATE TABLE berichttypes (
    agency_id     bigint NOT NULL REFERENCES agencies (id),
    code          text NOT NULL CHECK (code ~ '^[A-Za-z0-9_-]{1,8}$'),
    repeat_after  interval,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agency_id, code)
);

-- Notifications: besides 'new' and 'repeat' (one message each), a 'verify'
-- mail carries an e-mail verification code to an address that is not yet
-- the account's: it names its own recipient and has no message.
ALTER TABLE notifications
    ALTER COLUMN message_id DROP NOT NULL,
    ADD COLUMN recipient text,
    ADD COLUMN payload jsonb,
    DROP CONSTRAINT notifications_kind_check,
    ADD CONSTRAINT notifications_kind_check CHECK (kind IN ('new', 'repeat', 'verify')),
    ADD CONSTRAINT notifications_shape_check CHECK (
        (kind = 'verify' AND recipient IS NOT NULL) OR
        (kind <> 'verify' AND message_id IS NOT NULL));
CREATE INDEX notifications_account_idx ON notifications (account_id) WHERE state = 'scheduled';
