"""Shutdown with statements still in flight (issue 12).

The janitor's purge and the reconciler's page are pgpool queries whose
callbacks point at the janitor and the reconciler. When the shutdown grace
period (SHUTDOWN_GRACE_MS in daemon/server.c, 10 s, not a config key) runs
out while such a statement waits in PostgreSQL, teardown frees the pool and
the pool answers the running queries "shutting down". Those objects must
still be alive then. The plain build may survive a use after free by luck;
the sanitize build (`make test SANITIZE=address,undefined`, as in CI) exits
non-zero on it, so this test is meant for both runs.
"""
import time


def lock_waiters(services, like):
    return services.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query LIKE %s AND pid <> pg_backend_pid()", (like,))[0][0]


def wait_until(cond, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for %s" % what
        time.sleep(0.05)


def test_sigterm_with_janitor_and_reconcile_in_flight(make_daemon):
    d = make_daemon("shutdown", **{"retention.interval": "300ms",
                                   "delivery.reconcile_interval": "100ms"})
    blocker = d.services.pg_connect(autocommit=False)
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        # the janitor's DELETE and a reconciler statement now wait for the lock
        wait_until(lambda: lock_waiters(d.services, "%DELETE FROM messages%") >= 1,
                   what="the janitor's purge to wait for the lock")
        wait_until(lambda: lock_waiters(d.services, "%FROM notifications%") >= 1,
                   what="the reconciler's statement to wait for the lock")
        t0 = time.monotonic()
        rc = d.stop(timeout=60)
        waited = time.monotonic() - t0
    finally:
        blocker.rollback()
        blocker.close()
    log = d.log_text()
    assert rc == 0, "berichtd exited %s on SIGTERM\n%s" % (rc, d.log_tail())
    assert "grace period over" in log, "the shutdown did not wait for the statements"
    assert waited >= 9, "stopped after %.1f s, before the grace period" % waited
