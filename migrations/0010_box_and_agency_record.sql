-- 0010_box_and_agency_record.sql - what the citizen sees and what the
-- agency sees of a message no longer depend on each other.
--
-- Before, the janitor purged a message as soon as its statistics window had
-- closed if the citizen had deleted it, and only after the citizen's
-- retention otherwise: the agency's GET /v1/berichten/{id} turned from 200
-- into 404 one janitor pass after a deletion, and the same referentie was
-- taken again as a new message. Deleting implies having seen it, so that
-- was a per-message signal to the sender.
--
-- Now the row (metadata only, never content) is the agency's record and is
-- kept for [retention] agency_record_days after publication, the same for
-- every message. The citizen's copy is a view of it: in the box while it
-- is published, not deleted and younger than the citizen's retention. This
-- function is that rule, in one place; every portal statement about the
-- box asks it.

CREATE FUNCTION box_holds(p_published timestamptz, p_deleted timestamptz,
                          p_retention_days integer, p_default_days integer,
                          p_min_days integer, p_max_days integer)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT p_deleted IS NULL AND p_published <= now()
       AND p_published + make_interval(days => least(greatest(
               coalesce(p_retention_days, p_default_days), p_min_days), p_max_days)) > now()
$$;

-- the janitor deletes verification mails once their code has expired
CREATE INDEX notifications_verify_idx ON notifications (created_at) WHERE kind = 'verify';
