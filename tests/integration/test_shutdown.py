"""Shutdown with statements still in flight (issue 12).

The janitor's purge and the reconciler's page are pgpool queries whose
callbacks point at the janitor and the reconciler. When the shutdown grace
period ([http] shutdown_timeout, 10 s by default) runs
out while such a statement waits in PostgreSQL, teardown frees the pool and
the pool answers the running queries "shutting down". Those objects must
still be alive then. The plain build may survive a use after free by luck;
the sanitize build (`make test SANITIZE=address,undefined`, as in CI) exits
non-zero on it, so this test is meant for both runs.

SIGTERM under load (issue 15): a thread posts messages without a pause
and the workers are in the middle of slow SMTP sessions when the signal
comes. Every request gets its 201 or a 503 (never a reset; refused
connections once the listener is closed), every 201 is in PostgreSQL, the
daemon exits 0 within [http] shutdown_timeout (the mails of a batch that did
not fit go back unsent, retries_total{reason="shutdown"}), and once it runs again
every notification of an acknowledged message is mailed exactly once.
"""
import datetime
import signal
from concurrent.futures import ThreadPoolExecutor
import time
import uuid

import harness
from harness import Poster, make_agency, make_citizen, wait_until


CITIZENS = 30


def lock_waiters(services, like):
    return services.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query LIKE %s AND pid <> pg_backend_pid()", (like,))[0][0]


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


def test_sigterm_under_load_drains(make_daemon, mailbox, services):
    # the defaults: batches of 50, a 10 s grace; at 1.5 s per mail one batch in
    # one session would take 75 s, so the workers must cut their batches into
    # sessions that fit the grace and hand the rest back
    d = make_daemon("drain", **{"http.shutdown_timeout": "10s"})
    agency = make_agency(d)
    # many citizens, so a batch holds many mails (one citizen's are one digest)
    tag = uuid.uuid4().hex[:6]
    people = [(harness.new_bsn(), "drain-%s-%d@example.org" % (tag, k)) for k in range(CITIZENS)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda p: make_citizen(d, d.token("portal"), *p), people))
    services.smtp_mode("slow 1500")  # a batch's session lasts seconds: SIGTERM lands in one
    # the workers learn the relay's new pace from the first mails it answers
    # slowly (a session that began at the old pace still runs to its end)
    first = [harness.post(d, agency["token"], bsn) for bsn, _ in people[:2]]
    wait_until(lambda: all(mailbox.for_rcpt(email) for _, email in people[:2]), timeout=60,
               what="two mails at the slow pace")
    # a wave that falls due at one moment, so each worker's batch holds many
    # mails: in one session they would take 1.5 s each, far past the grace
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3)
    when = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    wave = [harness.post(d, agency["token"], bsn, publicatieTijdstip=when)
            for bsn, _ in people[2:]]
    load = Poster(d, agency, [bsn for bsn, _ in people]).start()
    try:
        wait_until(lambda: harness.inflight(d) >= CITIZENS // 2, timeout=60, interval=0.05,
                   what="the wave being sent")
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        rc = d.proc.wait(timeout=60)
        waited = time.monotonic() - t0
        # a few more tries at the closed listener
        n = len(load.errors)
        wait_until(lambda: len(load.errors) >= n + 3, timeout=10, what="refused connections")
    finally:
        load.stop()
        services.smtp_mode(None)
    assert rc == 0, d.log_tail()
    assert waited < 10 + 5, "exit %.1f s after SIGTERM" % waited
    # A reset is a failed request only if the daemon had begun on it. The
    # kernel resets the connections still in the listen queue when the
    # listener closes at exit; their requests were never read, so nothing of
    # them may be stored, and a well-behaved agency retries them as it does
    # a refused connection (same referentie: safe either way).
    resets = [(e, ref) for e, ref in zip(load.errors, load.failed_refs)
              if not isinstance(e, ConnectionRefusedError)]
    assert all(isinstance(e, ConnectionResetError) for e, _ in resets), resets[:5]
    assert len(resets) <= 3, resets  # the queue at the instant of exit, not a stream
    touched = d.services.psql(
        "SELECT referentie FROM messages WHERE referentie = ANY(%s)", ([r for _, r in resets],))
    assert touched == [], "reset after the daemon stored it: %s" % touched
    assert set(load.statuses()) <= {201, 503}, sorted(set(load.statuses()))
    ids = load.ids() + first + wave
    stored = d.services.psql("SELECT count(*) FROM messages WHERE id = ANY(%s::uuid[])",
                             (ids,))[0][0]
    assert stored == len(ids), "%d of %d acknowledged messages stored" % (stored, len(ids))
    log = d.log_text()
    assert "grace period over" not in log, d.log_tail()

    d.start()  # the next instance takes over what was left
    def unsent():
        return d.services.psql(
            "SELECT count(*) FROM notifications n JOIN messages m ON m.id = n.message_id "
            "WHERE m.id = ANY(%s::uuid[]) AND n.kind = 'new' AND n.state <> 'sent'",
            (ids,))[0][0]
    wait_until(lambda: unsent() == 0, timeout=120,
               what=lambda: "%d notifications unsent" % unsent())
    refs = {r for (r,) in d.services.psql(
        "SELECT DISTINCT ml.ref FROM notifications n JOIN mails ml ON ml.id = n.mail_id "
        "WHERE n.message_id = ANY(%s::uuid[]) AND n.kind = 'new'", (ids,))}
    got = [m["Message-ID"].strip("<>").split("@")[0]
           for _, email in people for m in mailbox.for_rcpt(email)]
    assert len(got) == len(set(got)), "a mail arrived twice"
    assert set(got) == refs, "mails received %d, built %d" % (len(set(got)), len(refs))
