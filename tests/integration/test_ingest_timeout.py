"""Issue 14, point 6: while PostgreSQL stalls, every ingest request is
answered within [postgres] ingest_timeout, whether its statement is stuck
in PostgreSQL or it waits in the queue behind one, and the 503 says what is
true: "not known whether stored" for what may still commit, "not stored"
for what was dropped unsent. Retrying with the same referentie is then safe
(200 with the stored message, or 201), and every stored message is mailed
exactly once, also when its commit came after its 503.

The stall is a real one: a second session holds LOCK TABLE messages IN
ACCESS EXCLUSIVE MODE until every answer is in, LOCK_S seconds at most; on
the code before the fix the queued requests hang for all of that."""
import json
import secrets
import socket
import threading
import time
from urllib.parse import urlsplit

from harness import assert_problem, inflight, make_agency, make_citizen, post, wait_until

TIMEOUT_S = 1.0      # [postgres] ingest_timeout of the daemon under test
LOCK_S = 9.0         # how long PostgreSQL stalls
BOUND_S = TIMEOUT_S + 5  # loose: a shared, noisy machine; well below LOCK_S
BIG = 300            # a batch this large gets statements of its own (>= 256 items)
SMALL = 20           # a batch this small waits in the queue behind one

UNKNOWN_SINGLE = "Niet bekend of het bericht is opgeslagen"
UNKNOWN_BATCH = "Niet bekend of alle berichten zijn opgeslagen"
NOT_STORED_SINGLE = "Het bericht is niet opgeslagen"
NOT_STORED_BATCH = "Niet alle berichten zijn opgeslagen"


def ingest_lock_waiters(services):
    """Ingest statements (or their PREPARE) waiting for the table lock."""
    return services.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query LIKE '%json_to_recordset%'")[0][0]


def ingest_statements_running(services):
    return services.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE state <> 'idle'"
        " AND query LIKE '%json_to_recordset%' AND pid <> pg_backend_pid()")[0][0]


def stored_ids(d, refs):
    """{referentie: [message ids]} for those of refs that are stored."""
    out = {}
    for r, mid in d.services.psql(
            "SELECT referentie, id::text FROM messages WHERE referentie = ANY(%s)",
            (list(refs),)):
        out.setdefault(r, []).append(mid)
    return out


def post_and_hang_up(d, token, msg):
    """Sends a POST and closes the connection without reading the answer."""
    u = urlsplit(d.base_url)
    body = json.dumps(msg).encode()
    head = ("POST /v1/berichten HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (u.netloc, token, len(body))).encode()
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(head + body)
        time.sleep(0.2)  # read by the daemon, then the client is gone


def assert_503(r, *says, never=()):
    body = assert_problem(r, 503)
    assert body["type"].endswith("/niet-beschikbaar"), body
    assert int(r.headers["Retry-After"]) > 0
    for s in says:
        assert s in body["detail"], body["detail"]
    for s in never:
        assert s not in body["detail"], body["detail"]
    return body


def test_stalled_postgres_answers_every_request_within_ingest_timeout(make_daemon, new_bsn,
                                                                       mailbox):
    d = make_daemon("stall", **{"postgres.ingest_timeout": "%gs" % TIMEOUT_S})
    a = make_agency(d)
    portal = d.token("portal")
    tag = secrets.token_hex(4)

    # one citizen per single message, so that its mails can be counted
    singles = {}
    for name in ("first", "q1", "q2", "q3", "late"):
        bsn = new_bsn()
        email = "stall-%s-%s@example.nl" % (name, tag)
        make_citizen(d, portal, bsn, email)
        singles[name] = ({"bsn": bsn, "berichttype": "T1",
                          "referentie": "st%s-%s" % (tag, name)}, email)
    batch_bsn = new_bsn()
    make_citizen(d, portal, batch_bsn, "stall-batch-%s@example.nl" % tag)
    big = [{"bsn": batch_bsn, "berichttype": "T1", "referentie": "bg%s-%d" % (tag, i)}
           for i in range(BIG)]
    small = [{"bsn": batch_bsn, "berichttype": "T2", "referentie": "sm%s-%d" % (tag, i)}
             for i in range(SMALL)]
    # the token is now cached: during the stall no request needs PostgreSQL for auth
    warm_bsn = new_bsn()
    make_citizen(d, portal, warm_bsn)
    r = d.request("POST", "/v1/berichten", token=a["token"],
                  json={"bsn": warm_bsn, "berichttype": "T1", "referentie": "wm%s" % tag})
    assert r.status == 201, r.text

    answers = {}

    def send(name, path, body):
        t0 = time.monotonic()
        r = d.request("POST", path, token=a["token"], json=body, timeout=60)
        answers[name] = (r, time.monotonic() - t0)

    threads = []

    def start(name, path, body):
        t = threading.Thread(target=send, args=(name, path, body), daemon=True)
        t.start()
        threads.append(t)

    blocker = d.services.pg_connect(autocommit=False)
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        locked_at = time.monotonic()
        # a statement stuck in PostgreSQL ...
        start("first", "/v1/berichten", singles["first"][0])
        wait_until(lambda: ingest_lock_waiters(d.services) >= 1, what="first statement")
        # ... and a second one, the big batch (both ingest slots of pool_size 4 now busy) ...
        start("big", "/v1/batches", {"berichten": big})
        wait_until(lambda: ingest_lock_waiters(d.services) >= 2, what="batch statement")
        # ... so these wait in the queue behind them
        for name in ("q1", "q2", "q3"):
            start(name, "/v1/berichten", singles[name][0])
        start("small", "/v1/batches", {"berichten": small})
        # a client that does not wait for its answer: answered all the same, no use after free
        gone = {"bsn": warm_bsn, "berichttype": "T1", "referentie": "st%s-gone" % tag}
        post_and_hang_up(d, a["token"], gone)
        # one more, queued after the first ones were answered: its own deadline counts
        wait_until(lambda: "first" in answers, timeout=BOUND_S, what="the first answer")
        time.sleep(0.5)
        start("late", "/v1/berichten", singles["late"][0])
        # every answer comes while PostgreSQL is still stalled
        wait_until(lambda: len(answers) == 7, timeout=locked_at + LOCK_S - time.monotonic(),
                   what=lambda: "all answers before the lock ends (have %s)" % sorted(answers))
        assert time.monotonic() < locked_at + LOCK_S
    finally:
        blocker.rollback()
        blocker.close()
    for t in threads:
        t.join(60)

    for name, (r, took) in answers.items():
        assert TIMEOUT_S - 0.1 <= took < BOUND_S, (name, took, r)
    # sent to PostgreSQL: may commit, so the outcome is unknown
    assert_503(answers["first"][0], UNKNOWN_SINGLE, "dezelfde referentie", "200", "201",
               never=[NOT_STORED_SINGLE])
    assert_503(answers["big"][0], UNKNOWN_BATCH, "dubbel", never=[NOT_STORED_BATCH])
    # dropped from the queue unsent: truly not stored
    for name in ("q1", "q2", "q3", "late"):
        assert_503(answers[name][0], NOT_STORED_SINGLE, "dezelfde referentie",
                   never=["Niet bekend"])
    assert_503(answers["small"][0], NOT_STORED_BATCH, "dubbel", never=["Niet bekend"])

    # the stuck statements commit once the lock is gone; the dropped items never do
    # (the big batch went out as a statement of 256 while the rest was queued behind)
    big_refs = [m["referentie"] for m in big]
    small_refs = [m["referentie"] for m in small]
    queued_refs = [singles[n][0]["referentie"] for n in ("q1", "q2", "q3", "late")]
    first_ref = singles["first"][0]["referentie"]
    wait_until(lambda: ingest_statements_running(d.services) == 0, what="the late commits")
    # a message posted now is stored only once the ingest queue has moved past
    # everything queued during the stall: a dropped item sent late would be in by then
    post(d, a["token"], warm_bsn, "wm%s-after" % tag)
    assert stored_ids(d, queued_refs + small_refs + [gone["referentie"]]) == {}
    committed = stored_ids(d, [first_ref] + big_refs)
    assert first_ref in committed
    big_committed = len(committed) - 1
    assert 1 <= big_committed <= BIG

    # retrying with the same referentie: 200 with the stored message, or 201
    for name, (msg, _) in singles.items():
        r = d.request("POST", "/v1/berichten", token=a["token"], json=msg)
        if name == "first":
            assert r.status == 200, r.text
            assert [r.json()["berichtId"]] == committed[first_ref]
        else:
            assert r.status == 201, r.text
        again = d.request("POST", "/v1/berichten", token=a["token"], json=msg)
        assert again.status == 200 and again.json()["berichtId"] == r.json()["berichtId"]
    r = d.request("POST", "/v1/batches", token=a["token"], json={"berichten": big})
    assert r.status == 200, r.text
    counts = r.json()["aantallen"]
    assert (counts["dubbel"], counts["aangenomen"]) == (big_committed, BIG - big_committed)
    for x in r.json()["resultaten"]:
        if x["referentie"] in committed:
            assert x["status"] == "dubbel" and [x["berichtId"]] == committed[x["referentie"]]
    r = d.request("POST", "/v1/batches", token=a["token"], json={"berichten": big})
    assert r.status == 200 and r.json()["aantallen"]["dubbel"] == BIG, r.text
    r = d.request("POST", "/v1/batches", token=a["token"], json={"berichten": small})
    assert r.status == 200, r.text
    assert r.json()["aantallen"]["aangenomen"] == SMALL, r.json()["aantallen"]

    # one row per referentie, one 'new' notification per message, each mailed once
    all_refs = [m["referentie"] for m, _ in singles.values()] + big_refs + small_refs
    ids = stored_ids(d, all_refs)
    assert sorted(ids) == sorted(all_refs) and all(len(v) == 1 for v in ids.values())

    def notification_states():
        return d.services.psql(
            "SELECT m.referentie, count(n.id), min(n.state), max(n.state)"
            " FROM messages m LEFT JOIN notifications n ON n.message_id = m.id"
            "  AND n.kind = 'new' WHERE m.referentie = ANY(%s) GROUP BY m.referentie",
            (all_refs,))

    wait_until(lambda: all(c == 1 and lo == hi == "sent" for _, c, lo, hi in notification_states()),
               timeout=60, what=lambda: "every notification sent: %s" % [
                   s for s in notification_states() if s[1:] != (1, "sent", "sent")][:5])
    assert len(notification_states()) == len(all_refs)
    for name, (_, email) in singles.items():
        mailbox.wait_for(1, predicate=lambda m, e=email: e in m.rcpt_tos)
    # a second mail would have come by now: every row is sent, no worker holds one
    wait_until(lambda: inflight(d) == 0, what="the workers to finish")
    for name, (_, email) in singles.items():
        assert len(mailbox.for_rcpt(email)) == 1, name
    mids = [m["Message-ID"] for m in mailbox.messages() if tag in " ".join(m.rcpt_tos)]
    assert len(mids) == len(set(mids))
    assert d.running()
