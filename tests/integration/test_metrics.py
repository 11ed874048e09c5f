"""/metrics an on-call person can use, and that tells the truth (issue 15).

- After real traffic, a scrape passes `promtool check metrics` without a
  word, and every family docs/operations.md lists is there with sane values:
  requests by route pattern (never a raw path or an id), latency and size
  histograms, mails by outcome, retries by reason, the PostgreSQL pool by
  state, Redis, the process, the build.
- Per agency lane, the due depth and the age of the oldest due notification
  come from Redis at scrape time.
- The lag histogram counts from a notification's FIRST due time: after a
  relay outage longer than 10 s, exactly the notifications it held up are
  above 10 s (measured from their last reschedule they were all below it).
  "sent" counts what PostgreSQL recorded as sent.
No timing assertions: every wait is a poll with a generous deadline.
"""
import re
import secrets
import shutil
import subprocess
import time

from harness import (instance_id, make_agency, make_citizen, mails_to, post, post_message,
                     wait_until)

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(d):
    r = d.ops_request("GET", "/metrics")
    assert r.status == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return r.text


def samples(text):
    """{(name, frozenset(labels)): value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(s, name, **labels):
    return s.get((name, frozenset(labels.items())))


def family(s, name):
    """{labels dict as frozenset: value} of every sample of name."""
    return {labels: v for (n, labels), v in s.items() if n == name}


def promtool_check(text):
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: make alerts-check installs it (Debian prometheus)"
    p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        (p.returncode, p.stdout.decode(), p.stderr.decode())


def sent_rows(d):
    """Rows this daemon recorded as sent (its reconciler may also pick up
    rows other tests left scheduled, so not only its own accounts')."""
    return d.services.psql("SELECT count(*) FROM notifications WHERE claimed_by = %s"
                           " AND state = 'sent'", (instance_id(d),))[0][0]


def wait_counted(d):
    """Until /metrics counts every row the daemon recorded as sent; returns the scrape."""
    return wait_until(lambda: (lambda s: s if value(s, "berichtd_notifications_sent_total")
                               == sent_rows(d) else None)(samples(scrape(d))),
                      timeout=30, what=lambda: "sent counted: %r of %r" % (
                          value(samples(scrape(d)), "berichtd_notifications_sent_total"),
                          sent_rows(d)))


def test_a_scrape_after_real_traffic_passes_promtool_and_has_every_family(
        make_daemon, services, mailbox, new_bsn):
    d = make_daemon("metrics-families")
    a = make_agency(d)
    portal = d.token("portal")
    bsn, addr = new_bsn(), "metrics-%s@example.nl" % secrets.token_hex(4)
    make_citizen(d, portal, bsn, addr)
    mid = post(d, a["token"], bsn)
    r = d.request("POST", "/v1/batches", token=a["token"], json={"berichten": [
        {"bsn": bsn, "berichttype": "T1", "referentie": "batch-%d-%s" % (i, secrets.token_hex(3))}
        for i in range(3)]})
    assert r.status == 200, r.text
    assert d.request("GET", "/v1/berichten/%s" % mid, token=a["token"]).status == 200
    assert d.request("GET", "/v1/nergens/%s" % mid).status == 404
    assert post_message(d, a["token"], "123").status == 400
    wait_until(lambda: len(mails_to(mailbox, addr)) >= 1, timeout=60, what="a notification mail")
    wait_counted(d)

    text = scrape(d)
    promtool_check(text)
    s = samples(text)

    # requests by route pattern, method and status class: never a raw path
    req = family(s, "berichtd_http_requests_total")
    routes = {dict(k)["route"] for k in req}
    assert mid not in text and bsn not in text and addr not in text
    assert "/v1/berichten/{}" in routes and "/v1/berichten" in routes, routes
    assert all("{?" not in r for r in routes), routes
    assert value(s, "berichtd_http_requests_total", route="/v1/berichten", method="POST",
                 code="2xx") >= 1
    assert value(s, "berichtd_http_requests_total", route="/v1/berichten", method="POST",
                 code="4xx") >= 1
    assert value(s, "berichtd_http_requests_total", route="/v1/berichten/{}", method="GET",
                 code="2xx") == 1
    assert value(s, "berichtd_http_requests_total", route="other", method="other",
                 code="4xx") >= 1
    assert value(s, "berichtd_http_request_duration_seconds_count", route="/v1/berichten",
                 method="POST") >= 2
    # ingest: four messages through the group commit, one batch of three
    assert value(s, "berichtd_ingest_duration_seconds_count") >= 4
    assert value(s, "berichtd_ingest_duration_seconds_sum") > 0
    assert value(s, "berichtd_ingest_group_size_count") >= 2
    assert value(s, "berichtd_ingest_group_size_sum") >= 4
    assert value(s, "berichtd_batch_size_count") == 1
    assert value(s, "berichtd_batch_size_sum") == 3
    assert value(s, "berichtd_batch_size_bucket", le="2") == 0
    assert value(s, "berichtd_batch_size_bucket", le="5") == 1
    # delivery: mails by outcome, retries by reason, the lag of what was sent
    assert value(s, "berichtd_mails_total", outcome="sent") >= 2  # verification + notification
    assert value(s, "berichtd_mails_total", outcome="sent") == \
        value(s, "berichtd_mails_sent_total")
    for outcome in ("bounced", "retried", "deferred", "failed"):
        assert value(s, "berichtd_mails_total", outcome=outcome) == 0, outcome
    assert value(s, "berichtd_notification_retries_total", reason="relay_unreachable") == 0
    assert value(s, "berichtd_notification_lag_seconds_count") == \
        value(s, "berichtd_notifications_sent_total")
    # the stores
    pg = {dict(k)["state"]: v for k, v in family(s, "berichtd_pg_connections").items()}
    assert set(pg) == {"idle", "busy", "connecting", "down"}
    assert sum(pg.values()) == 4 and pg["idle"] + pg["busy"] >= 1, pg
    assert value(s, "berichtd_pg_reconnects_total") == 0
    assert value(s, "berichtd_redis_up") == 1
    # the process and the build
    assert value(s, "process_resident_memory_bytes") > 1 << 20
    assert 5 < value(s, "process_open_fds") < value(s, "process_max_fds")
    assert abs(value(s, "process_start_time_seconds") - time.time()) < 3600
    [(build, one)] = family(s, "berichtd_build_info").items()
    assert one == 1 and dict(build)["version"] == d.cli("version").stdout.split()[1]
    # the agency's lane is known by its OIN
    assert value(s, "berichtd_lanes_scrape_ok") == 1
    assert value(s, "berichtd_lane_due_notifications", oin=a["oin"]) is not None


def test_lanes_show_each_agencys_due_depth_and_oldest_due_age(make_daemon, services, new_bsn):
    """No workers: what ingest schedules stays due in Redis, per agency."""
    d = make_daemon("metrics-lanes", **{"delivery.workers": "0"})
    a, b = make_agency(d), make_agency(d)
    try:
        lanes_scraped(d, services, a, b, new_bsn)
    finally:
        # what it left due is nobody else's to send
        services.psql("UPDATE notifications SET state = 'cancelled' WHERE state = 'scheduled'"
                      " AND message_id IN (SELECT m.id FROM messages m JOIN agencies g"
                      " ON g.id = m.agency_id WHERE g.oin IN (%s, %s))", (a["oin"], b["oin"]))


def lanes_scraped(d, services, a, b, new_bsn):
    portal = d.token("portal")
    bsns = [new_bsn() for _ in range(3)]
    for bsn in bsns:
        make_citizen(d, portal, bsn, "lane-%s@example.nl" % secrets.token_hex(4))
    for bsn in bsns:
        post(d, a["token"], bsn)
    post(d, b["token"], bsns[0])
    # due in a week: scheduled, not due
    post(d, b["token"], bsns[1], publicatieTijdstip=time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7 * 86400)))
    first = samples(scrape(d))
    assert value(first, "berichtd_lanes_scrape_ok") == 1
    assert value(first, "berichtd_lane_due_notifications", oin=a["oin"]) == 3
    assert value(first, "berichtd_lane_scheduled_notifications", oin=a["oin"]) == 3
    assert value(first, "berichtd_lane_due_notifications", oin=b["oin"]) == 1
    assert value(first, "berichtd_lane_scheduled_notifications", oin=b["oin"]) == 2
    age = value(first, "berichtd_lane_oldest_due_age_seconds", oin=a["oin"])
    assert 0 <= age < 600
    # the oldest due notification only gets older while nobody sends it
    wait_until(lambda: value(samples(scrape(d)), "berichtd_lane_oldest_due_age_seconds",
                             oin=a["oin"]) >= age + 1, timeout=30, what="the lane's age to grow")
    # Redis down: no lanes, said so, and the rest of the scrape still answers
    services.redis_stop()
    try:
        s = wait_until(lambda: (lambda s: s if value(s, "berichtd_redis_up") == 0 else None)(
            samples(scrape(d))), timeout=30, what="redis_up 0")
        assert value(s, "berichtd_lanes_scrape_ok") == 0
        assert not family(s, "berichtd_lane_due_notifications")
    finally:
        services.redis_start()
    wait_until(lambda: value(samples(scrape(d)), "berichtd_redis_up") == 1, timeout=60,
               what="redis_up 1")


def test_pool_reconnects_are_counted_after_a_postgresql_restart(make_daemon, services):
    d = make_daemon("metrics-pg")
    services.pg_stop()
    try:
        s = wait_until(lambda: (lambda s: s if value(
            s, "berichtd_pg_connections", state="idle") == 0 else None)(samples(scrape(d))),
            timeout=60, what="no idle pool connection while PostgreSQL is down")
        pg = {dict(k)["state"]: v for k, v in family(s, "berichtd_pg_connections").items()}
        assert pg["idle"] + pg["busy"] == 0, pg
    finally:
        services.pg_start()
    wait_until(lambda: value(samples(scrape(d)), "berichtd_pg_reconnects_total") >= 1,
               timeout=60, what="a reconnect counted")


OUTAGE_S = 12  # longer than the 10 s bucket bound the test reads


def test_lag_counts_from_the_first_due_time_across_a_relay_outage(
        make_daemon, services, mailbox, new_bsn):
    """The relay answers 421 to everything for longer than 10 s after the
    last message was due; retries every 1-2 s. Afterwards the notifications
    it held up, and only they, are above 10 s in the lag histogram: their
    lag runs from their first due time, not from the last retry."""
    d = make_daemon("metrics-lag", **{"delivery.retry_base": "1s", "delivery.retry_max": "2s"})
    a = make_agency(d)
    portal = d.token("portal")
    people = [(new_bsn(), "lag-%d-%s@example.nl" % (i, secrets.token_hex(3))) for i in range(12)]
    accounts = [make_citizen(d, portal, bsn, addr) for bsn, addr in people]
    # one notification before the outage: it is sent at once
    post(d, a["token"], people[0][0], "lag-before")
    wait_until(lambda: len(mails_to(mailbox, people[0][1])) >= 1, timeout=60, what="first mail")
    before = wait_counted(d)

    [(outage_start,)] = services.psql("SELECT now()")
    services.smtp_mode("tempfail")
    try:
        for i, (bsn, _) in enumerate(people):
            post(d, a["token"], bsn, "lag-%d" % i)
        last_due = time.monotonic()

        def tried_again():
            return services.psql(
                "SELECT count(*) FROM notifications WHERE account_id = ANY(%s::uuid[])"
                " AND kind = 'new' AND attempts >= 2 AND state = 'scheduled'",
                (accounts,))[0][0]
        wait_until(lambda: tried_again() == len(people), timeout=60, interval=0.2,
                   what=lambda: "all retried while the relay refuses: %d" % tried_again())
        # the relay stays away until OUTAGE_S after the last one was due
        # (not a timing assertion: a lower bound on the outage the test makes)
        while time.monotonic() - last_due < OUTAGE_S:
            time.sleep(0.2)
    finally:
        services.smtp_mode(None)
    addrs = {addr for _, addr in people}
    wait_until(lambda: len(mails_to(mailbox, addrs)) >= len(people) + 1, timeout=90,
               what="every held-up mail")
    after = wait_counted(d)

    def diff(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    # rows other tests left scheduled that this daemon's reconciler found
    # and sent meanwhile (usually none), with their lag as PostgreSQL has it
    others, others_late = services.psql(
        "SELECT count(*), count(*) FILTER (WHERE sent_at - coalesce(first_due_at, due_at)"
        "  > interval '10 seconds') FROM notifications WHERE claimed_by = %s AND state = 'sent'"
        " AND sent_at > %s AND NOT account_id = ANY(%s::uuid[])",
        (instance_id(d), outage_start, accounts))[0]
    held = len(people)
    assert diff("berichtd_notifications_sent_total") == held + others
    assert diff("berichtd_notification_lag_seconds_count") == held + others
    over_10s = diff("berichtd_notification_lag_seconds_count") - \
        diff("berichtd_notification_lag_seconds_bucket", le="10")
    assert over_10s == held + others_late, (over_10s, held, others, others_late)
    # the retries were counted with their reason, and each mail as retried
    retries = {dict(k)["reason"]: v - (before.get(("berichtd_notification_retries_total", k)) or 0)
               for k, v in family(after, "berichtd_notification_retries_total").items()}
    assert retries["temporary"] >= held, retries
    assert diff("berichtd_mails_total", outcome="retried") >= held
    assert diff("berichtd_mails_total", outcome="sent") >= held
