-- 0009_mails.sql - a mail is built once and is then a unit: its members,
-- its Message-ID, its recipient and its date never change.
--
-- Before this, the grouping of a digest and the Message-ID were worked out
-- anew at every claim, from the lowest notification id of the group. A row
-- that went back to 'scheduled' (a record that failed, a reconciler reset)
-- was regrouped with other rows into a new mail: the citizen got the same
-- notifications twice, under another Message-ID and with another count.
-- Now the claim that first takes a row also builds its mail here; whatever
-- is sent again of it is the same mail.
--
-- ref is 128 random bits (hex): the Message-ID <ref@bounce_domain>, and,
-- with a keyed tag, the VERP address and the DSN envelope id. Nothing in a
-- mail tells its reader how many mails there were before it, and nobody can
-- name a mail he did not receive.

CREATE TABLE mails (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ref         text NOT NULL UNIQUE CHECK (ref ~ '^[0-9a-f]{32}$'),
    account_id  uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('new', 'repeat', 'verify')),
    -- the address the mail goes to: a DSN must name it (Final-Recipient),
    -- and a hard bounce marks the account only while it is still its address
    recipient   text NOT NULL,
    -- the lowest notification id of the mail when it was built: how the
    -- claim that builds it finds it again in the same statement
    first_notification bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mails_created_idx ON mails (created_at);

-- Set by the claim that builds the mail; NULL until then. Rows of one mail
-- move through their states together.
ALTER TABLE notifications ADD COLUMN mail_id bigint;
CREATE INDEX notifications_mail_idx ON notifications (mail_id) WHERE mail_id IS NOT NULL;

-- What a hard bounce means, in one place (SMTP 5xx at delivery time and a
-- DSN that arrives later): every notification of the mail is 'bounced', and
-- the account stops getting mail only when the bounced address is still
-- its verified one (a verification mail goes to an address that never was
-- the account's; an address the citizen has changed since is not the one
-- that bounced). Returns how many notifications changed and whether the
-- account was marked.
CREATE FUNCTION mail_hard_bounce(p_mail bigint, p_reason text,
                                 OUT notifications integer, OUT address_marked boolean)
LANGUAGE plpgsql AS $$
DECLARE
    m mails%ROWTYPE;
BEGIN
    SELECT * INTO m FROM mails WHERE id = p_mail;
    notifications := 0;
    address_marked := false;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE notifications SET state = 'bounced', last_error = p_reason, claimed_at = NULL
    WHERE mail_id = p_mail AND state IN ('scheduled', 'sending', 'sent');
    GET DIAGNOSTICS notifications = ROW_COUNT;
    IF m.kind <> 'verify' AND notifications > 0 THEN
        UPDATE accounts SET email_bounced_at = now()
        WHERE id = m.account_id AND email = m.recipient AND email_bounced_at IS NULL;
        address_marked := FOUND;
    END IF;
END $$;

-- A DSN that arrived for the mail named by ref (its tag already verified
-- by the daemon): applied only when the report names the address the mail
-- went to (Final-Recipient) and the mail is younger than max_age. verdict
-- is 'applied', 'unknown' (no such mail, or purged), 'too_old' or
-- 'recipient_mismatch'.
CREATE FUNCTION dsn_hard_bounce(p_ref text, p_final_recipient text, p_max_age interval,
                                p_reason text, OUT verdict text, OUT notifications integer,
                                OUT address_marked boolean)
LANGUAGE plpgsql AS $$
DECLARE
    m mails%ROWTYPE;
BEGIN
    notifications := 0;
    address_marked := false;
    SELECT * INTO m FROM mails WHERE ref = p_ref;
    IF NOT FOUND THEN
        verdict := 'unknown';
    ELSIF m.created_at < now() - p_max_age THEN
        verdict := 'too_old';
    ELSIF lower(m.recipient) IS DISTINCT FROM lower(btrim(p_final_recipient)) THEN
        verdict := 'recipient_mismatch';
    ELSE
        verdict := 'applied';
        SELECT b.notifications, b.address_marked INTO notifications, address_marked
        FROM mail_hard_bounce(m.id, p_reason) b;
    END IF;
END $$;
