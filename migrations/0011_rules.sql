-- 0011_rules.sql - two rules that were written out in several statements,
-- now defined once. Ingest, the delivery claim, the agency's recipient
-- lookup and the portal's subscription list all ask these.
--
-- Both are inlined by the planner (a LANGUAGE sql expression function with
-- no sub-select, and a view), so the statements that use them are planned
-- as if the rule were written in place: no per-row function call on the
-- ingest path.

-- May this account get notification mail at all? Active, a verified address
-- that did not hard-bounce, and notifications on. (Per message and per
-- agency there is more: agencies_turned_off below, and the claim's own
-- checks of the message.)
CREATE FUNCTION may_get_mail(a accounts) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT a.active AND a.email IS NOT NULL AND a.email_notifications
       AND a.email_bounced_at IS NULL
$$;

-- The agencies a citizen turned off, as far as that counts: a mandatory
-- agency cannot be turned off (its 'off' rows are ignored).
CREATE VIEW agencies_turned_off AS
    SELECT s.account_id, s.agency_id
    FROM subscriptions s JOIN agencies ag ON ag.id = s.agency_id
    WHERE NOT s.active AND NOT ag.mandatory;
