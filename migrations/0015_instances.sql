-- 0015_instances.sql - which running berichtd holds a claim (issue 13,
-- "orphaned claims come back at once").
--
-- Every instance that delivers registers a row here at start and holds a
-- session-level advisory lock on its id, on a connection of its own, for as
-- long as it lives (daemon/notify/lifeline.c). Each claim names the
-- instance (notifications.claimed_by). A claim whose instance's lock is
-- free belongs to a process that is gone: the reconciler of any instance
-- returns it within seconds (daemon/notify/reconcile.c), instead of after
-- the visibility timeout, which stays as the last resort. PostgreSQL frees
-- the lock itself when the session ends, so liveness needs no heartbeat
-- writes. The key and its use live in the functions below, in one place.

CREATE TABLE instances (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host        text NOT NULL,
    pid         integer NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now()
);

-- who claimed the row last (kept after the row is sent: who sent it); no
-- foreign key, like the other keys on the hot path (0006)
ALTER TABLE notifications ADD COLUMN claimed_by integer;

-- The lock of instance i: pg_advisory_lock(1650553449, i), the two-key form
-- (1650553449: arbitrary and fixed), so it cannot collide with
-- the migration lock (one bigint key) and shows in pg_locks as
-- classid = 1650553449, objid = i, objsubid = 2.

-- Takes instance i's lock for this session; false if some session holds it.
CREATE FUNCTION instance_lock_take(i integer) RETURNS boolean
LANGUAGE sql VOLATILE AS $$ SELECT pg_try_advisory_lock(1650553449, i) $$;

-- True when no session holds instance i's lock: its process is gone. It
-- takes the lock for the rest of the calling transaction, so the instance
-- cannot take it back while its claims are being returned.
CREATE FUNCTION instance_gone(i integer) RETURNS boolean
LANGUAGE sql VOLATILE AS $$ SELECT pg_try_advisory_xact_lock(1650553449, i) $$;

-- For operators and tests: does a session hold instance i's lock (no lock taken)?
CREATE FUNCTION instance_alive(i integer) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM pg_locks l
                   WHERE l.locktype = 'advisory' AND l.classid = 1650553449::oid
                     AND l.objid = i::oid AND l.objsubid = 2 AND l.granted)
$$;
