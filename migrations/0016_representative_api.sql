-- 0016_representative_api.sql - what the portal's representation API and
-- the opening by a representative need beyond 0012 (issue 11).
--
-- A representative's open ([stats] count_representative_opens = false):
-- messages.opened_at feeds the statistics rollups (0005), so such an open
-- is kept apart in rep_opened_at. It is still an open for everything else
-- (the reminders stop, the portal shows the message as opened): the rule
-- "is this message still unread?" is message_unread() below, and the
-- reminder rules (daemon/notify/claim.c, record.c) ask it instead of
-- reading opened_at themselves. The statistics trigger compares only the
-- columns it counts, so setting rep_opened_at changes no rollup.

ALTER TABLE messages ADD COLUMN rep_opened_at timestamptz;

-- Inlined by the planner (an expression function without a sub-select).
CREATE FUNCTION message_unread(m messages) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT m.opened_at IS NULL AND m.rep_opened_at IS NULL
$$;

-- The representations a representation was passed on from, itself first
-- (hop 1). The PUT refuses a source whose chain holds the representation
-- being replaced (a circle) or a deleted link; representation_current
-- below walks it.
CREATE FUNCTION representation_chain(p_rep bigint)
RETURNS TABLE (id bigint, hop int) LANGUAGE sql STABLE AS $$
    WITH RECURSIVE chain AS (
        SELECT r.id, r.doorgegeven_door, 1 AS hop FROM representations r WHERE r.id = p_rep
        UNION ALL
        SELECT s.id, s.doorgegeven_door, c.hop + 1
        FROM representations s JOIN chain c ON s.id = c.doorgegeven_door
        WHERE c.hop < 16
    )
    SELECT c.id, c.hop FROM chain c
$$;

-- Is representation p_rep in force at p_at, whatever the message? Not
-- deleted and p_at inside [geldig_vanaf, geldig_tot), for it and every
-- representation it was passed on from (what representation_in_force, 0012,
-- asks, without the message's agency and case). The `inWerking` of the
-- portal's GET.
CREATE FUNCTION representation_current(p_rep bigint, p_at timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT count(*) > 0 AND bool_and(r.deleted_at IS NULL AND r.geldig_vanaf <= p_at
                                     AND (r.geldig_tot IS NULL OR p_at < r.geldig_tot))
    FROM representation_chain(p_rep) c JOIN representations r ON r.id = c.id
$$;
