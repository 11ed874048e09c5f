"""The notification engine against real PostgreSQL, Redis and SMTP: digest,
quiet hours, reminders, fairness, a lost Redis, a killed daemon, two
daemons, a dead relay, bounces. Short durations in the configs; every wait
is a poll with a timeout, never a fixed sleep standing in for an assertion."""
import datetime
import email.policy
import re
import secrets
import threading
import time
import zoneinfo
from collections import Counter
from email.parser import BytesParser

import pytest

from harness import (agency_id, bulk_scheduled, dsn_text, inflight, instance_id,
                     make_agency, make_citizen, mails_to, metric, post, prompt_kinds, wait_until)

DOMAIN = "berichtenbox.example"


def assert_valid_mail(m):
    """Re-parses the raw bytes strictly and checks the headers every mail has."""
    parsed = BytesParser(policy=email.policy.strict).parsebytes(m.raw)
    for h in ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version"):
        assert parsed[h], h
    # random, not sequential: it tells the reader nothing about the mail volume
    assert re.fullmatch(r"<[0-9a-f]{32}@%s>" % re.escape(DOMAIN), parsed["Message-ID"])
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed.get_content_type() == "text/plain"
    assert parsed["Content-Transfer-Encoding"] == "quoted-printable"
    for line in m.raw.split(b"\r\n"):
        assert len(line) <= 998
    body_lines = m.raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert all(len(line) <= 76 for line in body_lines)
    parsed.get_content()  # decodes without error
    return parsed


# --------------------------------------------------------------------- digest

def test_five_messages_from_three_agencies_in_the_window_make_one_mail(
        make_daemon, mailbox, new_bsn):
    d = make_daemon("digest", **{"notify.digest_window": "3s"})
    agencies = [make_agency(d, name="Afzender %s %s" % (c, secrets.token_hex(2))) for c in "ABC"]
    portal = d.token("portal")
    bsn, addr = new_bsn(), "digest-%s@example.nl" % secrets.token_hex(4)
    make_citizen(d, portal, bsn, addr)
    mailbox.clear()
    for i, a in enumerate([agencies[0], agencies[0], agencies[1], agencies[2], agencies[2]]):
        post(d, a["token"], bsn, "dig-%d-%s" % (i, secrets.token_hex(3)))

    [mail] = mailbox.wait_for(1, predicate=lambda m: addr in m.rcpt_tos)
    parsed = assert_valid_mail(mail)
    body = parsed.get_content()
    for a in agencies:
        assert body.count(a["name"]) == 1, body
    assert "5" in parsed["Subject"]
    # every notification of the five is settled, so no second mail can follow
    # (the worker records the outcome after the SMTP session ends: wait for it)
    wait_until(lambda: d.services.psql(
        "SELECT n.state, count(*) FROM notifications n JOIN accounts a ON a.id = n.account_id "
        "WHERE a.email = %s AND n.kind = 'new' GROUP BY 1", (addr,)) == [("sent", 5)],
        what="all five recorded as sent")
    assert len(mailbox.messages(lambda m: addr in m.rcpt_tos)) == 1


# ---------------------------------------------------------------- quiet hours

def test_message_in_quiet_hours_is_mailed_when_they_end(make_daemon, mailbox, new_bsn):
    tz = zoneinfo.ZoneInfo("Europe/Amsterdam")
    now = datetime.datetime.now(tz)
    if now.second > 45:  # leave time to post inside the window
        time.sleep(61 - now.second)
        now = datetime.datetime.now(tz)
    start = now.replace(second=0, microsecond=0)
    end = start + datetime.timedelta(minutes=1)
    window = "%s-%s" % (start.strftime("%H:%M"), end.strftime("%H:%M"))
    d = make_daemon("quiet", **{"notify.quiet_hours": window})
    a = make_agency(d)
    portal = d.token("portal")
    bsn, addr = new_bsn(), "quiet-%s@example.nl" % secrets.token_hex(4)
    make_citizen(d, portal, bsn, addr)  # a verification mail may pass quiet hours
    post(d, a["token"], bsn, "quiet-1")
    [mail] = mailbox.wait_for(1, timeout=120, predicate=lambda m: addr in m.rcpt_tos
                              and "Berichtenbox" in m["Subject"] and "code" not in m["Subject"])
    assert mail.envelope["received_at"] >= end.timestamp() - 0.001
    assert_valid_mail(mail)


# ------------------------------------------------------------------ reminders

def reminder_daemon(make_daemon, name, repeat="2s"):
    return make_daemon(name, **{"notify.repeat_after": repeat, "notify.max_repeats": "1"})


def is_reminder(m):
    return "Herinnering" in m["Subject"]


def test_unopened_message_gets_exactly_one_reminder(make_daemon, mailbox, new_bsn):
    d = reminder_daemon(make_daemon, "repeat")
    a = make_agency(d)
    bsn, addr = new_bsn(), "repeat-%s@example.nl" % secrets.token_hex(4)
    make_citizen(d, d.token("portal"), bsn, addr)
    mid = post(d, a["token"], bsn, "rep-1")
    [rem] = mailbox.wait_for(1, predicate=lambda m: addr in m.rcpt_tos and is_reminder(m))
    assert a["name"] in assert_valid_mail(rem).get_content()
    wait_until(lambda: d.services.psql(
        "SELECT count(*) FROM notifications WHERE message_id = %s AND kind = 'repeat' "
        "AND state = 'sent'", (mid,))[0][0] == 1, what="reminder recorded as sent")
    # max_repeats = 1: nothing else is scheduled for this message
    assert d.services.psql("SELECT count(*) FROM notifications WHERE message_id = %s AND "
                           "state = 'scheduled'", (mid,))[0][0] == 0
    assert len([m for m in mailbox.messages() if addr in m.rcpt_tos and is_reminder(m)]) == 1


@pytest.mark.parametrize("how", ["opened", "deleted"])
def test_opened_or_deleted_message_gets_no_reminder(make_daemon, mailbox, new_bsn, how):
    d = reminder_daemon(make_daemon, "norepeat-" + how, repeat="3s")
    a = make_agency(d)
    bsn, addr = new_bsn(), "norep-%s@example.nl" % secrets.token_hex(4)
    make_citizen(d, d.token("portal"), bsn, addr)
    mid = post(d, a["token"], bsn, "norep-1")
    mailbox.wait_for(1, predicate=lambda m: addr in m.rcpt_tos and not is_reminder(m))
    portal = d.token("portal")
    if how == "opened":
        r = d.request("POST", "/v1/berichten/%s/openingen" % mid, token=portal)
        assert r.status == 201, r.text
    else:
        r = d.request("DELETE", "/v1/berichten/%s" % mid, token=portal)
        assert r.status == 204, r.text
    wait_until(lambda: d.services.psql(
        "SELECT state FROM notifications WHERE message_id = %s AND kind = 'repeat'",
        (mid,)) == [("cancelled",)], what="reminder cancelled", timeout=20)
    assert not [m for m in mailbox.messages() if addr in m.rcpt_tos and is_reminder(m)]


# ------------------------------------------------------------------- fairness

def test_bulk_of_one_agency_does_not_starve_another(make_daemon, services, mailbox, new_bsn):
    d = make_daemon("fair", **{"delivery.workers": "0"})
    bulk = make_agency(d)
    single = make_agency(d)
    bulk_addrs = bulk_scheduled(services, agency_id(services, bulk["oin"]), 3000,
                                "fair" + secrets.token_hex(2))
    bsn, addr = new_bsn(), "fair-%s@example.nl" % secrets.token_hex(4)
    make_citizen(d, d.token("portal"), bsn, addr)
    d.stop()
    # the bulk is due first; the single message comes after all of it
    post_d = make_daemon("fair-post", group=d.group, **{"delivery.workers": "0",
                                                        "delivery.reconcile_interval": "100ms"})
    wait_until(lambda: services.redis("ZCARD", "berichtd:%s:due:%s" % (
        d.group, agency_id(services, bulk["oin"]))) == "3000", what="bulk in Redis")
    post(post_d, single["token"], bsn, "fair-1")
    post_d.stop()
    mailbox.clear()
    make_daemon("fair-send", group=d.group, **{"delivery.workers": "1", "delivery.batch": "20"})
    [m] = mailbox.wait_for(1, timeout=60, predicate=lambda m: addr in m.rcpt_tos)
    before = len([x for x in mailbox.messages() if set(x.rcpt_tos) & bulk_addrs
                  and x.envelope["received_at"] < m.envelope["received_at"]])
    # round robin over lanes: within the first couple of batches, not after 3,000
    assert before <= 60, before


# ---------------------------------------------------------- losing Redis state

def test_flushall_with_1000_scheduled_loses_nothing_and_sends_each_once(
        make_daemon, services, mailbox):
    d = make_daemon("flush1000", **{"delivery.workers": "0"})
    a = make_agency(d)
    addrs = bulk_scheduled(services, agency_id(services, a["oin"]), 1000,
                           "fl" + secrets.token_hex(3))
    wait_until(lambda: services.redis("ZCARD", "berichtd:%s:due:%s" % (
        d.group, agency_id(services, a["oin"]))) == "1000", what="scheduled in Redis",
        timeout=60)
    services.redis("FLUSHALL")
    d.stop()
    make_daemon("flush1000-send", group=d.group,
                **{"delivery.reconcile_interval": "200ms", "delivery.workers": "4"})
    wait_until(lambda: len(mails_to(mailbox, addrs)) >= 1000, timeout=120,
               what="1000 mails")
    got = mails_to(mailbox, addrs)
    assert Counter(r for m in got for r in m.rcpt_tos if r in addrs) == Counter(addrs)
    assert len({m["Message-ID"] for m in got}) == 1000
    for m in got[:20]:
        assert_valid_mail(m)


# ------------------------------------------------------------ crash, kill -9

def test_kill9_while_delivering_5000_loses_nothing_and_duplicates_only_in_crash_window(
        make_daemon, services, mailbox):
    d = make_daemon("crash", **{"delivery.workers": "2", "delivery.visibility_timeout": "2s",
                                "delivery.reconcile_interval": "500ms"})
    a = make_agency(d)
    addrs = bulk_scheduled(services, agency_id(services, a["oin"]), 5000,
                           "kl" + secrets.token_hex(3))
    wait_until(lambda: len(mails_to(mailbox, addrs)) >= 800, timeout=120, what="first mails")
    d.kill9()
    d.start()
    wait_until(lambda: len({r for m in mails_to(mailbox, addrs) for r in m.rcpt_tos}) >= 5000,
               timeout=240, what="all 5000 addresses")
    got = mails_to(mailbox, addrs)
    per_rcpt = {}
    for m in got:
        per_rcpt.setdefault(m.rcpt_tos[0], []).append(m)
    assert set(per_rcpt) == addrs
    dups = {r: ms for r, ms in per_rcpt.items() if len(ms) > 1}
    crash_ids = set()
    for rec in d.log_records():
        if rec.get("msg") == "reconcile: crash window ids":
            crash_ids.update(int(x) for x in rec["ids"].split(","))
    for r, ms in dups.items():
        assert len({m["Message-ID"] for m in ms}) == 1, "a resend must carry the same Message-ID"
        assert len({m.raw for m in ms}) == 1, "a resend must be the same mail, byte for byte"
        ref = ms[0]["Message-ID"][1:].split("@")[0]
        [(nid,)] = services.psql("SELECT n.id FROM notifications n JOIN mails m "
                                 "ON m.id = n.mail_id WHERE m.ref = %s", (ref,))
        assert nid in crash_ids, "duplicate %d not in the logged crash window" % nid
    states = services.psql(
        "SELECT n.state, count(*) FROM notifications n JOIN messages m ON m.id = n.message_id "
        "WHERE m.agency_id = %s AND n.kind = 'new' GROUP BY 1",
        (agency_id(services, a["oin"]),))
    assert states == [("sent", 5000)]


# ----------------------------------------------------------- two daemons

def test_two_instances_deliver_5000_each_exactly_once(make_daemon, services, mailbox):
    d1 = make_daemon("twin1", **{"delivery.workers": "2", "delivery.reconcile_interval": "500ms"})
    d2 = make_daemon("twin2", group=d1.group,
                     **{"delivery.workers": "2", "delivery.reconcile_interval": "500ms"})
    a = make_agency(d1)
    addrs = bulk_scheduled(services, agency_id(services, a["oin"]), 5000,
                           "tw" + secrets.token_hex(3))
    wait_until(lambda: len(mails_to(mailbox, addrs)) >= 5000, timeout=240, what="5000 mails")
    # before counting, let a hypothetical double send surface: every row is
    # recorded sent and neither instance's workers still hold one (a mail in
    # an SMTP session is inflight until recorded and acked)
    aid = agency_id(services, a["oin"])
    wait_until(lambda: services.psql(
        "SELECT count(*) FROM notifications n JOIN messages m ON m.id = n.message_id "
        "WHERE m.agency_id = %s AND n.state = 'sent'", (aid,))[0][0] == 5000 and
        inflight(d1) == 0, timeout=60, what="all 5000 rows sent and nothing inflight")
    got = mails_to(mailbox, addrs)
    assert len(got) == 5000
    assert Counter(m.rcpt_tos[0] for m in got) == Counter(addrs)
    assert len({m["Message-ID"] for m in got}) == 5000
    # both instances worked: each one's share, by its own count (/metrics on
    # its ops listener) and by the claims in PostgreSQL, and the shares add up
    shares = [metric(d, "berichtd_notifications_sent_total") for d in (d1, d2)]
    assert all(n > 0 for n in shares), shares
    assert sum(shares) == 5000, shares
    by_instance = dict(services.psql(
        "SELECT n.claimed_by, count(*) FROM notifications n JOIN messages m "
        "ON m.id = n.message_id WHERE m.agency_id = %s AND n.kind = 'new' GROUP BY 1", (aid,)))
    assert by_instance == {instance_id(d1): shares[0], instance_id(d2): shares[1]}


# ------------------------------------------------------------- relay outage

def test_smtp_down_until_every_mail_was_retried_then_all_arrive_and_retries_show(
        make_daemon, services, mailbox, new_bsn):
    """The relay stays away until every notification failed to connect and
    was tried again (attempts counted in PostgreSQL), not for a fixed time."""
    d = make_daemon("outage", **{"delivery.retry_base": "1s", "delivery.retry_max": "4s"})
    a = make_agency(d)
    portal = d.token("portal")
    people = [(new_bsn(), "outage-%d-%s@example.nl" % (i, secrets.token_hex(3)))
              for i in range(20)]
    for bsn, addr in people:
        make_citizen(d, portal, bsn, addr)
    services.smtp_stop()
    try:
        for i, (bsn, _) in enumerate(people):
            post(d, a["token"], bsn, "out-%d" % i)
        accounts = [a_id for (a_id,) in services.psql(
            "SELECT id FROM accounts WHERE email = ANY(%s)", ([addr for _, addr in people],))]
        assert len(accounts) == 20

        def retried():
            return services.psql(
                "SELECT count(*) FILTER (WHERE attempts >= 2 AND last_error IS NOT NULL),"
                "       count(*) FILTER (WHERE state NOT IN ('scheduled', 'sending'))"
                " FROM notifications WHERE account_id = ANY(%s::uuid[]) AND kind = 'new'",
                (accounts,))[0]
        wait_until(lambda: retried()[0] == 20, timeout=60, interval=0.2,
                   what=lambda: "all 20 tried twice while the relay is down: %r" % (retried(),))
        # nothing was given up, sent or bounced while the relay was away
        assert retried()[1] == 0, retried()
        # every one of them failed once, and was counted as a retry
        assert metric(d, "berichtd_notifications_retried_total") >= 20
    finally:
        services.smtp_start()
    addrs = {addr for _, addr in people}
    wait_until(lambda: len(mails_to(mailbox, addrs)) >= 20, timeout=60, what="20 mails")
    assert Counter(m.rcpt_tos[0] for m in mails_to(mailbox, addrs)) == Counter(addrs)


# ------------------------------------------------------------------ bounces

def test_550_at_smtp_time_marks_the_address_bounced(make_daemon, services, mailbox, new_bsn):
    d = make_daemon("bounce550")
    a = make_agency(d)
    bsn, tag = new_bsn(), secrets.token_hex(4)
    portal = d.token("portal")
    account = make_citizen(d, portal, bsn, "ok-%s@example.nl" % tag)
    # the verified mailbox is gone later: the sink answers 550 for this address
    services.psql("UPDATE accounts SET email = %s WHERE id = %s",
                  ("hardbounce-%s@example.nl" % tag, account))
    mid = post(d, a["token"], bsn, "b550")
    wait_until(lambda: services.psql(
        "SELECT state FROM notifications WHERE message_id = %s AND kind = 'new'", (mid,))
        == [("bounced",)], what="bounced")
    assert services.psql("SELECT email_bounced_at IS NOT NULL FROM accounts WHERE id = %s",
                         (account,)) == [(True,)]
    assert metric(d, "berichtd_notifications_bounced_total") >= 1
    assert "herstelEmail" in prompt_kinds(d, portal, account)


def post_dsn(d, dsn, via="http"):
    """Hands a DSN to the daemon; returns (status word, reason or None)."""
    if via == "cli":
        out = d.cli("bounce", input=dsn)
        assert out.returncode == 0, out.stderr
        line = out.stdout.strip()
        if line.startswith("refused: "):
            return "geweigerd", line.split(": ", 1)[1]
        return ("verwerkt" if "recorded" in line else "genegeerd"), None
    r = d.request("POST", "/v1/bounces", token=d.token("relay"), body=dsn.encode(),
                  headers={"Content-Type": "message/rfc822"})
    assert r.status == 202, r.text
    return r.json()["status"], r.json().get("reden")


def first_mail(d, mailbox, services, bsn, addr, a, ref):
    """Posts a message to a citizen at addr; returns (message id, its notification, the mail)."""
    mid = post(d, a["token"], bsn, ref)
    [mail] = mailbox.wait_for(1, predicate=lambda m: addr in m.rcpt_tos
                              and "Berichtenbox" in m["Subject"] and "code" not in m["Subject"])
    [(nid,)] = services.psql(
        "SELECT id FROM notifications WHERE message_id = %s AND kind = 'new'", (mid,))
    wait_until(lambda: services.psql("SELECT state FROM notifications WHERE id = %s", (nid,))
               == [("sent",)], what="recorded as sent")
    return mid, nid, mail


@pytest.mark.parametrize("via", ["http", "cli"])
@pytest.mark.parametrize("by", ["verp", "envid"])
def test_dsn_marks_the_address_bounced(make_daemon, services, mailbox, new_bsn, via, by):
    d = make_daemon("dsn-%s-%s" % (via, by))
    a = make_agency(d)
    bsn, addr = new_bsn(), "dsn-%s@example.nl" % secrets.token_hex(4)
    portal = d.token("portal")
    account = make_citizen(d, portal, bsn, addr)
    assert "herstelEmail" not in prompt_kinds(d, portal, account)
    mid, nid, mail = first_mail(d, mailbox, services, bsn, addr, a, "dsn-1")
    envid = "berichtd-" + mail.mail_from[len("bounce+"):].split("@")[0]
    dsn = (dsn_text(mail.mail_from, addr) if by == "verp"
           else dsn_text(None, addr, envid=envid))
    before = metric(d, "berichtd_dsn_applied_total")
    assert post_dsn(d, dsn, via) == ("verwerkt", None)
    if via == "http":
        assert metric(d, "berichtd_dsn_applied_total") == before + 1
        agency_try = d.request("POST", "/v1/bounces", token=a["token"], body=dsn.encode(),
                               headers={"Content-Type": "message/rfc822"})
        assert agency_try.status == 403
    assert services.psql("SELECT state FROM notifications WHERE id = %s", (nid,)) == [("bounced",)]
    assert services.psql("SELECT email_bounced_at IS NOT NULL FROM accounts WHERE id = %s",
                         (account,)) == [(True,)]
    assert "herstelEmail" in prompt_kinds(d, portal, account)
    # mail stops: the next message to this account gets no notification
    # (none is created for a bouncing address; one already scheduled is cancelled)
    mid2 = post(d, a["token"], bsn, "dsn-2")
    assert services.psql("SELECT state FROM notifications WHERE message_id = %s AND "
                         "kind = 'new' AND state <> 'cancelled'", (mid2,)) == []


FORGERIES = ["forged_tag", "other_mails_tag", "recipient_mismatch", "too_old",
             "message_id_only", "old_sequential_form"]


@pytest.mark.parametrize("via", ["http", "cli"])
def test_forged_and_stale_dsns_are_refused(make_daemon, services, mailbox, new_bsn, via):
    """Anyone can send mail to the bounce domain: a DSN must prove it is about
    a mail we sent (keyed tag), to the address it went to, recently."""
    d = make_daemon("dsn-forged-" + via)
    a = make_agency(d)
    portal = d.token("portal")
    people = []
    for i in range(2):
        bsn, addr = new_bsn(), "forge%d-%s@example.nl" % (i, secrets.token_hex(4))
        account = make_citizen(d, portal, bsn, addr)
        mid, nid, mail = first_mail(d, mailbox, services, bsn, addr, a, "forge-%d" % i)
        people.append((account, addr, nid, mail))
    (account, addr, nid, mail), (_, addr2, nid2, mail2) = people
    local, domain = mail.mail_from.split("@")
    ref, tag = local[len("bounce+"):].split("-")
    ref2, tag2 = mail2.mail_from.split("@")[0][len("bounce+"):].split("-")
    cases = {
        "forged_tag": (dsn_text("bounce+%s-%s@%s" % (ref, "0" * 16, domain), addr), "forged_tag"),
        "other_mails_tag": (dsn_text("bounce+%s-%s@%s" % (ref, tag2, domain), addr), "forged_tag"),
        "recipient_mismatch": (dsn_text(mail.mail_from, "someone-else@example.nl"),
                               "recipient_mismatch"),
        "too_old": (dsn_text(mail.mail_from, addr), "too_old"),
        "message_id_only": (dsn_text(None, addr, message_id=mail["Message-ID"]), "unattributed"),
        "old_sequential_form": (dsn_text("bounce+%d@%s" % (nid, domain), addr,
                                         envid="berichtd-%d" % nid,
                                         message_id="<notificatie.%d@%s>" % (nid, domain)),
                                "unattributed"),
    }
    assert sorted(cases) == sorted(FORGERIES)
    for name in FORGERIES:
        dsn, reason = cases[name]
        if name == "too_old":
            services.psql("UPDATE mails SET created_at = now() - interval '8 days' WHERE ref = %s",
                          (ref,))
        before = metric(d, "berichtd_dsn_refused_total", reason=reason) if via == "http" else None
        assert post_dsn(d, dsn, via) == ("geweigerd", reason), name
        if via == "http":
            assert metric(d, "berichtd_dsn_refused_total", reason=reason) == before + 1, name
        assert services.psql("SELECT state FROM notifications WHERE id = %s",
                             (nid,)) == [("sent",)], name
        assert services.psql("SELECT email_bounced_at FROM accounts WHERE id = %s",
                             (account,)) == [(None,)], name
        assert "herstelEmail" not in prompt_kinds(d, portal, account), name
    # the genuine report for the other mail still works
    assert post_dsn(d, dsn_text(mail2.mail_from, addr2), via) == ("verwerkt", None)
    assert services.psql("SELECT state FROM notifications WHERE id = %s",
                         (nid2,)) == [("bounced",)]


def test_a_temporary_dsn_changes_nothing(make_daemon, services, mailbox, new_bsn):
    d = make_daemon("dsn-delayed")
    a = make_agency(d)
    bsn, addr = new_bsn(), "delayed-%s@example.nl" % secrets.token_hex(4)
    account = make_citizen(d, d.token("portal"), bsn, addr)
    mid, nid, mail = first_mail(d, mailbox, services, bsn, addr, a, "delayed-1")
    dsn = dsn_text(mail.mail_from, addr, status="4.4.1", action="delayed")
    assert post_dsn(d, dsn) == ("genegeerd", None)
    assert services.psql("SELECT state FROM notifications WHERE id = %s", (nid,)) == [("sent",)]
    assert services.psql("SELECT email_bounced_at FROM accounts WHERE id = %s",
                         (account,)) == [(None,)]


def test_bounce_endpoint_refuses_what_is_not_a_dsn(daemon):
    relay = daemon.token("relay")
    r = daemon.request("POST", "/v1/bounces", token=relay, body=b"Subject: hi\r\n\r\nhello\r\n",
                       headers={"Content-Type": "message/rfc822"})
    assert r.status == 400
    assert r.headers["Content-Type"].startswith("application/problem+json")


# ----------------------------------------------------------- header injection

def test_crlf_in_an_agency_name_cannot_inject_a_header(make_daemon, services, mailbox, new_bsn):
    d = make_daemon("inject")
    a = make_agency(d)
    services.psql("UPDATE agencies SET name = %s WHERE oin = %s",
                  ("Gemeente X\r\nBcc: evil@attacker.example\r\nSubject: pwned", a["oin"]))
    bsn, addr = new_bsn(), "inject-%s@example.nl" % secrets.token_hex(4)
    make_citizen(d, d.token("portal"), bsn, addr)
    post(d, a["token"], bsn, "inj-1")
    [mail] = mailbox.wait_for(1, predicate=lambda m: addr in m.rcpt_tos
                              and "code" not in m["Subject"])
    parsed = assert_valid_mail(mail)
    assert mail.rcpt_tos == [addr]
    assert parsed["Bcc"] is None
    assert "pwned" not in parsed["Subject"]
    assert parsed.get_all("Subject") == [parsed["Subject"]]
    assert b"\r\nBcc:" not in mail.raw.split(b"\r\n\r\n", 1)[0]


def test_metrics_expose_the_engine_counters(daemon):
    text = daemon.ops_request("GET", "/metrics").text
    for name in ("scheduled", "sent", "retried", "failed", "bounced", "cancelled"):
        assert "berichtd_notifications_%s_total" % name in text
    assert "berichtd_notification_lag_seconds_bucket" in text


def test_a_bounce_of_an_address_the_citizen_has_since_changed_marks_nothing(
        make_daemon, services, mailbox, new_bsn):
    """The hard-bounce rule (mail_hard_bounce, migration 0009): the account
    stops getting mail only when the bounced address is still its verified
    one. bounce.c's old SQL marked the account whatever its address was."""
    d = make_daemon("dsn-old-address")
    a = make_agency(d)
    bsn, old = new_bsn(), "old-%s@example.nl" % secrets.token_hex(4)
    account = make_citizen(d, d.token("portal"), bsn, old)
    mid, nid, mail = first_mail(d, mailbox, services, bsn, old, a, "moved-1")
    services.psql("UPDATE accounts SET email = %s WHERE id = %s",
                  ("new-%s@example.nl" % secrets.token_hex(4), account))
    assert post_dsn(d, dsn_text(mail.mail_from, old)) == ("verwerkt", None)
    assert services.psql("SELECT state FROM notifications WHERE id = %s", (nid,)) == [("bounced",)]
    assert services.psql("SELECT email_bounced_at FROM accounts WHERE id = %s",
                         (account,)) == [(None,)]
