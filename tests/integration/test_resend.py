"""Issue 14.5: a PostgreSQL restart or a killed daemon during delivery must
not mail a notification twice, and a mail that does go twice must be the
same mail (same Message-ID, same bytes).

The scenario of the issue: [delivery] rate_limit = 50, 2,000 messages for
200 citizens from 10 agencies posted in rounds (so the digests group them
several ways), then PostgreSQL stopped (fast) for 5 s while delivery runs,
or the daemon killed with SIGKILL. A mail is tied to its notifications by
its Message-ID (<ref@domain>, mails.ref): every notification belongs to
exactly one mail, so "no notification mailed twice" is "no Message-ID
received twice", and "nothing lost" is "the received mails cover all 2,000"."""
import re
import secrets
import time
from collections import Counter

import pytest

from harness import inflight, make_agency, mails_to, wait_until

CITIZENS = 200
AGENCIES = 10
ROUND_PAUSE_S = 0.6


def citizens(d, services, new_bsn, tag):
    """CITIZENS accounts through the portal API; their verified address set
    in SQL (the verification itself is tested elsewhere and would take
    200 mails). Returns [(bsn, address)]."""
    portal = d.token("portal")
    out = []
    for i in range(CITIZENS):
        bsn, addr = new_bsn(), "%s-%d@resend.example" % (tag, i)
        r = d.request("POST", "/v1/accounts", token=portal, json={"bsn": bsn})
        assert r.status in (200, 201), r.text
        services.psql("UPDATE accounts SET email = %s, email_confirmed_at = now() WHERE id = %s",
                      (addr, r.json()["accountId"]))
        out.append((bsn, addr))
    return out


def post_rounds(d, agencies, people, tag):
    """Each agency in turn sends one message to every citizen, in one batch."""
    for k, a in enumerate(agencies):
        items = [{"bsn": bsn, "berichttype": "T1", "referentie": "%s-%d-%d" % (tag, k, i)}
                 for i, (bsn, _) in enumerate(people)]
        r = d.request("POST", "/v1/batches", token=a["token"], json={"berichten": items})
        assert r.status == 200, r.text
        assert r.json()["aantallen"]["aangenomen"] == len(items), r.text
        time.sleep(ROUND_PAUSE_S)


def ref_of(mail):
    m = re.fullmatch(r"<([0-9a-f]{32})@berichtenbox\.example>", mail["Message-ID"])
    assert m, mail["Message-ID"]
    return m.group(1)


def members(services, refs):
    """{ref: number of notifications of that mail}."""
    rows = services.psql(
        "SELECT m.ref, count(n.id) FROM mails m JOIN notifications n ON n.mail_id = m.id "
        "WHERE m.ref = ANY(%s) GROUP BY m.ref", (list(refs),))
    return dict(rows)


def announced_count(mail):
    """How many messages the mail says it is about (1 for the single-message template)."""
    m = re.search(r"U heeft (\d+) nieuwe berichten", mail["Subject"])
    return int(m.group(1)) if m else 1


@pytest.mark.parametrize("fault", ["pg_restart", "kill9"])
def test_a_fault_during_rate_limited_delivery_mails_nothing_twice(
        make_daemon, services, mailbox, new_bsn, fault):
    conf = {"delivery.rate_limit": "50", "delivery.workers": "4", "delivery.batch": "50",
            "notify.digest_window": "1s", "notify.quiet_hours": "off",
            # shorter than the outage: without the record retry (and the
            # reconciler's grace after an outage) the rows of accepted mails
            # would be reset and sent again, regrouped under new Message-IDs
            "delivery.visibility_timeout": "2s", "delivery.reconcile_interval": "500ms",
            "delivery.retry_base": "1s", "delivery.retry_max": "2s"}
    d = make_daemon("resend-" + fault, **conf)
    tag = "rs" + secrets.token_hex(3)
    agencies = [make_agency(d, name="Afzender %d %s" % (k, tag)) for k in range(AGENCIES)]
    people = citizens(d, services, new_bsn, tag)
    addrs = {a for _, a in people}
    total = CITIZENS * AGENCIES
    post_rounds(d, agencies, people, tag)

    # the fault, while the rate limit still holds most mails back
    wait_until(lambda: len(mails_to(mailbox, addrs)) >= 60, timeout=60, interval=0.2,
               what="delivery under way")
    if fault == "pg_restart":
        # a slow relay keeps the workers inside their SMTP sessions, so the
        # outage falls between the relay's 250 and the record
        services.smtp_mode("slow 300")
        time.sleep(1)
        services.pg_stop("fast")
        time.sleep(5)
        services.smtp_mode(None)
        services.pg_start()
    else:
        d.kill9()
        d.start()

    def all_sent():
        try:
            [(n,)] = services.psql(
                "SELECT count(*) FROM notifications n JOIN accounts a ON a.id = n.account_id "
                "WHERE a.email LIKE %s AND n.kind = 'new' AND n.state = 'sent'", (tag + "-%",))
        except Exception:  # noqa: BLE001 - PostgreSQL may still be starting
            return False
        return n == total
    wait_until(all_sent, timeout=240, interval=0.5, what="all %d notifications sent" % total)
    # the sink stores a mail before its 250, so before the row is recorded; a
    # worker still in a session (a send the test must see) holds its ids
    # inflight until it has recorded and acked them
    wait_until(lambda: inflight(d) == 0, timeout=60, interval=0.2, what="the workers to finish")
    got = mails_to(mailbox, addrs)
    # each mail says how many messages it is about: with no notification
    # mailed twice and none lost, that adds up to exactly the total
    announced = sum(announced_count(m) for m in got)
    if fault == "pg_restart":
        assert announced == total, "%d notifications mailed for %d" % (announced, total)

    by_ref = {}
    for m in got:
        by_ref.setdefault(ref_of(m), []).append(m)
    sizes = members(services, by_ref)
    assert set(sizes) == set(by_ref), "a received mail that is no mail of ours"
    # nothing lost: the mails received cover every notification, once
    assert sum(sizes.values()) == total
    # each mail says what it covers: no regrouping under the same Message-ID
    for ref, ms in by_ref.items():
        for m in ms:
            assert announced_count(m) == sizes[ref], (ref, m["Subject"])
    repeats = {ref: ms for ref, ms in by_ref.items() if len(ms) > 1}
    if fault == "pg_restart":
        assert repeats == {}, "mailed twice: %s" % Counter(
            {ref: len(ms) for ref, ms in repeats.items()})
    else:
        # only the crash window may repeat, and then as the same mail
        for ref, ms in repeats.items():
            assert len({m.raw for m in ms}) == 1, "a resend must be the same mail"
    # every notification of a citizen is in exactly one mail to that citizen
    per_addr = Counter()
    for ref, ms in by_ref.items():
        per_addr[ms[0].rcpt_tos[0]] += sizes[ref]
    assert per_addr == Counter({a: AGENCIES for a in addrs})
