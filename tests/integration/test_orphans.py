"""Issue 13: orphaned claims come back at once, not after the visibility
timeout, and never those of a live instance. Every instance that delivers
holds an advisory lock on its id in PostgreSQL (migration 0015) for its
whole life and names it in its claims (notifications.claimed_by); the
reconciler of any instance returns the 'sending' claims of an instance
whose lock is free (daemon/notify/reconcile.c, lifeline.c).

The visibility timeout is set to 300 s in every test here, and every wait
for the returned claims has a deadline far below it, so no test can pass by
the timeout. Real PostgreSQL, Redis and SMTP; polls with deadlines only."""
import re
import secrets
import socket
import threading
import time
from collections import Counter

from harness import (agency_id, bulk_scheduled, inflight, instance_id, make_agency, mails_to,
                     metric, wait_until)

VISIBILITY = "300s"
# the orphans must be back well before the visibility timeout could do it
ORPHAN_DEADLINE_S = 60


def states(services, ids):
    """{state: count} of the notification ids."""
    return dict(services.psql("SELECT state, count(*) FROM notifications WHERE id = ANY(%s) "
                              "GROUP BY 1", (list(ids),)))


def claims_of(services, instance, tag):
    """The ids of the rows of this test (accounts tagged tag) that the
    instance holds in 'sending'."""
    return {i for (i,) in services.psql(
        "SELECT n.id FROM notifications n JOIN accounts a ON a.id = n.account_id "
        "WHERE a.email LIKE %s AND n.state = 'sending' AND n.claimed_by = %s",
        (tag + "-%", instance))}


def crash_window_ids(daemon):
    ids = set()
    for rec in daemon.log_records():
        if rec.get("msg") == "reconcile: crash window ids":
            ids.update(int(x) for x in rec["ids"].split(","))
    return ids


def orphan_checks(daemon):
    """The reconciler's orphan checks logged so far that saw claims and found
    none of their instances gone."""
    return [ln for ln in daemon.log_text().splitlines()
            if "orphan check:" in ln and ", 0 of them gone" in ln]


def test_kill9_while_delivering_its_claims_are_sent_within_seconds_each_once(
        make_daemon, services, mailbox):
    """kill -9 while the relay is slow, so a batch is in 'sending'; the
    restarted daemon (a new instance) finds the old one's lock free and sends
    its claims, long before the visibility timeout; each notification once,
    a repeat only from the logged crash window and then the same mail."""
    conf = {"delivery.workers": "2", "delivery.batch": "20",
            "delivery.visibility_timeout": VISIBILITY, "delivery.reconcile_interval": "5s"}
    d = make_daemon("orphan-kill", **conf)
    old = instance_id(d)
    a = make_agency(d)
    tag = "ok" + secrets.token_hex(3)
    services.smtp_mode("slow 400")  # a batch of 20 takes 8 s at the relay
    addrs = bulk_scheduled(services, agency_id(services, a["oin"]), 200, tag)
    wait_until(lambda: len(claims_of(services, old, tag)) >= 20 and mails_to(mailbox, addrs),
               timeout=60, what="a batch in 'sending', its first mails at the relay")
    orphans = claims_of(services, old, tag)
    d.kill9()
    killed = time.monotonic()
    services.smtp_mode(None)
    d.start()
    new = instance_id(d)
    assert new != old
    assert services.psql("SELECT instance_alive(%s), instance_alive(%s)", (old, new)) \
        == [(False, True)]

    wait_until(lambda: states(services, orphans) == {"sent": len(orphans)},
               timeout=ORPHAN_DEADLINE_S, interval=0.2,
               what=lambda: "the orphaned claims sent: %r" % states(services, orphans))
    back_s = time.monotonic() - killed
    print("\n%d orphaned claims sent %.1f s after kill -9 (visibility timeout %s)"
          % (len(orphans), back_s, VISIBILITY))
    # the new instance sent them, and its reconciler said whose they were
    assert {c for (c,) in services.psql(
        "SELECT DISTINCT claimed_by FROM notifications WHERE id = ANY(%s)",
        (list(orphans),))} == {new}
    assert "lifeline lock is free" in d.log_text()
    assert orphans <= crash_window_ids(d)

    aid = agency_id(services, a["oin"])
    wait_until(lambda: services.psql(
        "SELECT count(*) FROM notifications n JOIN messages m ON m.id = n.message_id "
        "WHERE m.agency_id = %s AND n.state = 'sent'", (aid,))[0][0] == 200,
        timeout=120, what="all 200 sent")
    got = mails_to(mailbox, addrs)
    per_rcpt = {}
    for m in got:
        per_rcpt.setdefault(m.rcpt_tos[0], []).append(m)
    assert set(per_rcpt) == addrs
    dups = {r: ms for r, ms in per_rcpt.items() if len(ms) > 1}
    crash = crash_window_ids(d)
    for r, ms in dups.items():
        assert len({m["Message-ID"] for m in ms}) == 1, "a resend must carry the same Message-ID"
        ref = ms[0]["Message-ID"][1:].split("@")[0]
        [(nid,)] = services.psql("SELECT n.id FROM notifications n JOIN mails m "
                                 "ON m.id = n.mail_id WHERE m.ref = %s", (ref,))
        assert nid in crash, "repeat %d not in the logged crash window" % nid
    # the mails of the killed batches the relay had accepted before the
    # record (a batch is recorded after its session): each the same mail
    print("%d of %d mails twice (each the same mail: crash window)" % (len(dups), len(addrs)))


def test_a_live_but_slow_instance_keeps_its_claims(make_daemon, services, mailbox):
    """Instance A's batch takes half a minute at a slow relay, all of it in
    'sending'. Instance B (same schedule) checks once a second and must leave
    A's claims alone for longer than the grace: A's lock is held. claimed_by
    stays A, and A sends them itself, each once."""
    conf = {"delivery.visibility_timeout": VISIBILITY, "delivery.reconcile_interval": "1s"}
    slow = make_daemon("orphan-slow", **{"delivery.workers": "1", "delivery.batch": "50"},
                       **conf)
    a_id = instance_id(slow)
    ag = make_agency(slow)
    tag = "os" + secrets.token_hex(3)
    # below [smtp] timeout per mail, 35 s for A's batch of 50
    services.smtp_mode("slow 700")
    addrs = bulk_scheduled(services, agency_id(services, ag["oin"]), 50, tag)
    wait_until(lambda: mails_to(mailbox, addrs), timeout=60, what="A's session under way")
    held = claims_of(services, a_id, tag)
    assert held

    other = make_daemon("orphan-other", group=slow.group, **{"delivery.workers": "2"}, **conf)
    instance_id(other)
    # B's checks saw A's claims, and A alive, for longer than the 5 s grace
    wait_until(lambda: len(orphan_checks(other)) >= 8, timeout=60,
               what="8 orphan checks of B that saw A's claims")
    assert claims_of(services, a_id, tag) == held, "claims of a live instance were taken"
    assert services.psql("SELECT instance_alive(%s)", (a_id,)) == [(True,)]

    aid = agency_id(services, ag["oin"])
    wait_until(lambda: services.psql(
        "SELECT count(*) FROM notifications n JOIN messages m ON m.id = n.message_id "
        "WHERE m.agency_id = %s AND n.state = 'sent'", (aid,))[0][0] == 50 and
        inflight(slow) == 0, timeout=120, what="all 50 sent")
    assert "lifeline lock is free" not in other.log_text()
    assert "lifeline lock is free" not in slow.log_text()
    # A sent what it had claimed
    assert {c for (c,) in services.psql(
        "SELECT DISTINCT claimed_by FROM notifications WHERE id = ANY(%s)",
        (list(held),))} == {a_id}
    got = mails_to(mailbox, addrs)
    assert Counter(m.rcpt_tos[0] for m in got) == Counter(addrs)
    assert len({m["Message-ID"] for m in got}) == 50
    assert metric(slow, "berichtd_notifications_sent_total") >= len(held)


def test_postgres_restart_while_two_instances_deliver_slowly_mails_nothing_twice(
        make_daemon, services, mailbox):
    """Every lifeline session ends with PostgreSQL. Each instance stops
    sending, takes its lock again when PostgreSQL is back, and neither
    reconciler returns the other's claims: no orphan return, no mail twice,
    nothing lost."""
    conf = {"delivery.workers": "2", "delivery.batch": "10",
            "delivery.visibility_timeout": VISIBILITY, "delivery.reconcile_interval": "1s",
            "delivery.retry_base": "1s", "delivery.retry_max": "2s"}
    d1 = make_daemon("orphan-pg1", **conf)
    d2 = make_daemon("orphan-pg2", group=d1.group, **conf)
    ids = {instance_id(d1), instance_id(d2)}
    a = make_agency(d1)
    tag = "op" + secrets.token_hex(3)
    services.smtp_mode("slow 200")
    addrs = bulk_scheduled(services, agency_id(services, a["oin"]), 300, tag)
    wait_until(lambda: len(mails_to(mailbox, addrs)) >= 20 and all(
        claims_of(services, i, tag) for i in ids), timeout=60,
        what="both instances with claims in 'sending'")
    services.pg_stop("fast")
    services.pg_start()
    services.smtp_mode(None)
    aid = agency_id(services, a["oin"])

    def all_sent():
        try:
            return services.psql(
                "SELECT count(*) FROM notifications n JOIN messages m ON m.id = n.message_id "
                "WHERE m.agency_id = %s AND n.state = 'sent'", (aid,))[0][0] == 300
        except Exception:  # noqa: BLE001 - PostgreSQL may still be starting
            return False
    wait_until(all_sent, timeout=120, interval=0.5, what="all 300 sent")
    wait_until(lambda: inflight(d1) == 0, timeout=60, what="the workers to finish")
    for d in (d1, d2):
        # the other instance may have sent the rest before this one's
        # lifeline got its connection back (a loaded machine): wait for it
        wait_until(lambda: "holds its lock again" in d.log_text(), timeout=60,
                   what=f"{d.name} to take its lock again")
        assert "lifeline lock is free" not in d.log_text(), d.name
    got = mails_to(mailbox, addrs)
    assert Counter(m.rcpt_tos[0] for m in got) == Counter(addrs)
    assert len({m["Message-ID"] for m in got}) == 300
    # the same instances, each with its lock again
    assert services.psql("SELECT bool_and(instance_alive(i)) FROM unnest(%s::int[]) i",
                         (list(ids),)) == [(True,)]


def test_janitor_purges_the_rows_of_gone_instances_only(make_daemon, services):
    """Every start adds an instances row; the janitor removes those of
    instances that are gone (lock free) and started over a day ago. The live
    daemon's own row stays however old, and so does an old row whose lock
    another session holds (a live instance elsewhere), and a young gone one."""
    d = make_daemon("janitor", **{"retention.interval": "1s"})
    me = instance_id(d)
    tag = secrets.token_hex(4)

    def add(name, pid):
        return services.psql("INSERT INTO instances (host, pid) VALUES (%s, %s) RETURNING id",
                             (name + "-" + tag, pid))[0][0]
    gone, young, held = add("gone", 1), add("young", 2), add("held", 3)
    services.psql("UPDATE instances SET started_at = now() - interval '3 days' "
                  "WHERE id IN (%s, %s, %s)", (gone, held, me))
    conn = services.pg_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT instance_lock_take(%s)", (held,))
            assert cur.fetchone()[0]
        wait_until(lambda: not services.psql("SELECT 1 FROM instances WHERE id = %s", (gone,)),
                   timeout=60, interval=0.3, what="the gone instance's row purged")
        left = {i for (i,) in services.psql(
            "SELECT id FROM instances WHERE id IN (%s, %s, %s, %s)", (gone, young, held, me))}
    finally:
        conn.close()
    assert left == {young, held, me}, left
    assert "1 instance rows" in d.log_text()


class ClaimReplyCutter:
    """A TCP proxy in front of PostgreSQL that loses the reply of a claim
    after its commit: it watches for the Bind of the prepared statement
    "claim" (claim.c) on a connection and, for every `every`-th one, closes
    both sides when the server's ReadyForQuery comes, i.e. after the
    transaction committed. The worker sees "server closed the connection";
    its rows are 'sending' under its live instance. Everything else passes."""
    BIND_CLAIM = re.compile(rb"B....\x00claim\x00", re.S)
    READY = b"Z\x00\x00\x00\x05"

    def __init__(self, pg_port, every=3, max_cuts=6):
        self.pg_port, self.every, self.max_cuts = pg_port, every, max_cuts
        self.claims = self.cuts = 0
        self.lock = threading.Lock()
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.pg_port))
            state = {"armed": False}
            threading.Thread(target=self._up, args=(c, s, state), daemon=True).start()
            threading.Thread(target=self._down, args=(s, c, state), daemon=True).start()

    def _up(self, c, s, state):
        try:
            while chunk := c.recv(65536):
                if self.BIND_CLAIM.search(chunk):
                    with self.lock:
                        self.claims += 1
                        if self.cuts < self.max_cuts and self.claims % self.every == 0:
                            state["armed"] = True
                s.sendall(chunk)
        except OSError:
            pass
        self._close(c, s)

    def _down(self, s, c, state):
        try:
            while chunk := s.recv(65536):
                if state["armed"] and self.READY in chunk:
                    with self.lock:
                        self.cuts += 1
                    break  # committed; the reply (rows and ReadyForQuery) is lost
                c.sendall(chunk)
        except OSError:
            pass
        self._close(c, s)

    @staticmethod
    def _close(*socks):
        for x in socks:
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()

    def close(self):
        self.closed = True
        self.srv.close()


def test_a_claim_whose_reply_is_lost_comes_back_within_seconds_each_mail_once(
        make_daemon, services, mailbox):
    """The claim commits but its reply never reaches the worker (a proxy cuts
    the connection at ReadyForQuery, as a PostgreSQL restart did in the fault
    matrix). The rows are 'sending' under a LIVE instance, so neither the
    orphan return (its lock is held) nor the visibility timeout (300 s) can
    bring them back in time: the worker must hand back exactly that claim's
    rows (its claim_token, migration 0019). Every notification is sent, each
    mail exactly once, long before the timeout."""
    cutter = ClaimReplyCutter(services.pg_port, every=3, max_cuts=4)
    try:
        conninfo = "host=127.0.0.1 port=%d dbname=berichtd user=postgres" % cutter.port
        d = make_daemon("claim-lost", **{
            "postgres.conninfo": conninfo, "delivery.workers": "2", "delivery.batch": "5",
            "delivery.visibility_timeout": VISIBILITY, "delivery.reconcile_interval": "1s"})
        me = instance_id(d)
        a = make_agency(d)
        tag = "cl" + secrets.token_hex(3)
        addrs = bulk_scheduled(services, agency_id(services, a["oin"]), 60, tag)
        ids = {i for (i,) in services.psql(
            "SELECT n.id FROM notifications n JOIN accounts a ON a.id = n.account_id "
            "WHERE a.email LIKE %s", (tag + "-%",))}
        # the load ends when nothing of it is left to claim
        wait_until(lambda: "scheduled" not in states(services, ids), timeout=60,
                   what=lambda: "every row claimed: %r" % states(services, ids))
        cut_done = time.monotonic()
        assert cutter.cuts >= 1, "no claim reply was lost"
        wait_until(lambda: states(services, ids) == {"sent": len(ids)}, timeout=20,
                   interval=0.2,
                   what=lambda: "every notification sent while the instance lives: %r, "
                   "still sending: %r" % (states(services, ids),
                                          sorted(claims_of(services, me, tag))))
        print("\n%d claim replies lost; all %d sent %.1f s after the last cut "
              "(visibility timeout %s)" % (cutter.cuts, len(ids),
                                           time.monotonic() - cut_done, VISIBILITY))
        assert services.psql("SELECT instance_alive(%s)", (me,)) == [(True,)]
        assert "of a claim whose reply was lost rescheduled" in d.log_text()
        got = Counter(m.rcpt_tos[0] for m in mails_to(mailbox, addrs))
        assert set(got) == addrs
        assert [r for r, k in got.items() if k > 1] == [], "a mail went twice"
    finally:
        cutter.close()
