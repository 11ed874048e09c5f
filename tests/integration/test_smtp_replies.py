"""Every combination of relay replies to MAIL, RCPT, DATA (or BDAT) and the
end of data, with and without PIPELINING (issue 14), against one daemon
whose relay is tests/harness/smtp_script.py: a real SMTP peer on loopback
whose replies each test chooses. One test per row of the decision table
in daemon/smtp_verdict.c that libesmtp can produce.

For each row the test asserts what the citizen would see: a temporary
failure is retried (the row back in 'scheduled' with attempts > 0 and the
real cause in last_error, the address not marked, no herstelEmail prompt,
and the mail goes out once the relay accepts again); a bounce marks the
notification and the address; a 2xx after the end of data is 'sent'.
Every wait is a poll with a deadline."""
import datetime
import re
import secrets
import sys
import uuid

import pytest

import harness
from harness import (Daemon, Mailbox, is_verification_mail, make_agency, prompt_kinds,
                     verification_code, wait_until)

sys.path.insert(0, str(harness.REPO_ROOT / "tests" / "harness"))
from smtp_script import ScriptedSmtp  # noqa: E402

DEADLINE = 30
POLL = {"timeout": DEADLINE, "interval": 0.02}
FINAL = ("sent", "bounced", "failed", "cancelled")
ACCOUNTS = set()  # every account this module made, for drain()


def message_id(env, nid):
    """The Message-ID of the mail a notification belongs to (<ref@domain>, mails.ref)."""
    [(ref,)] = env["d"].services.psql(
        "SELECT m.ref FROM mails m JOIN notifications n ON n.mail_id = m.id WHERE n.id = %s",
        (nid,))
    return "<%s@berichtenbox.example>" % ref


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def relay(services):
    srv = ScriptedSmtp(services.run_dir / ("smtp-script-%s" % uuid.uuid4().hex[:8]))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def env(services, relay):
    """One daemon for the whole module (the script changes per test): short
    retries, one worker, a relay timeout that the 'hang' rows wait out."""
    d = Daemon(services, "smtp-replies", **{
        "smtp.port": relay.port, "smtp.timeout": "3s",
        "delivery.workers": "1", "delivery.poll_interval": "20ms",
        "delivery.retry_base": "200ms", "delivery.retry_max": "1s"})
    d.start()
    agency = make_agency(d)
    yield {"d": d, "portal": d.token("portal"), "agency": agency, "relay": relay}
    rc = d.stop()
    assert rc == 0, "berichtd exited %s on SIGTERM\n%s" % (rc, d.log_tail())


@pytest.fixture(autouse=True)
def _daemon_alive(request):
    yield
    if "env" in request.fixturenames:
        d = request.getfixturevalue("env")["d"]
        assert d.running(), "berichtd died during the test\n%s" % d.log_tail()


# ------------------------------------------------------------------- helpers

def drain(env):
    """Waits until nothing of an earlier test is still being retried, so
    that the next script change meets no leftover mail."""
    if not ACCOUNTS:
        return
    wait_until(lambda: env["d"].services.psql(
        "SELECT count(*) FROM notifications WHERE account_id = ANY(%s::uuid[]) AND "
        "(state = 'sending' OR (state = 'scheduled' AND due_at < now() + interval '1 minute'))",
        (list(ACCOUNTS),))[0][0] == 0, what="earlier tests' mail to settle", **POLL)


def accepted(relay, address, predicate=None):
    return Mailbox(relay.mail_dir).messages(
        lambda m: m.envelope.get("accepted") and address in m.rcpt_tos
        and (predicate is None or predicate(m)))


def citizen(env, bsn, address):
    """An account whose address is verified the real way: the verification
    mail goes through the scripted relay (accepting everything then)."""
    d, portal, relay = env["d"], env["portal"], env["relay"]
    r = d.request("POST", "/v1/accounts", token=portal, json={"bsn": bsn})
    assert r.status in (200, 201), r.text
    account = r.json()["accountId"]
    ACCOUNTS.add(account)
    r = d.request("PATCH", "/v1/accounts/%s" % account, token=portal, json={"emailadres": address})
    assert r.status == 200, r.text
    [mail] = wait_until(lambda: accepted(relay, address, is_verification_mail),
                        what="verification mail", **POLL)
    r = d.request("POST", "/v1/accounts/%s/emailverificaties/_bevestig" % account, token=portal,
                  json={"code": verification_code(mail)})
    assert r.status == 200 and r.json()["emailGeverifieerd"] is True, r.text
    return account


def post(env, bsn, **extra):
    return harness.post(env["d"], env["agency"]["token"], bsn, "sr-%s" % secrets.token_hex(4),
                        **extra)


def notification(env, message_id):
    """(id, state, attempts, last_error, address bounced) of the message's mail."""
    rows = env["d"].services.psql(
        "SELECT n.id, n.state, n.attempts, n.last_error, a.email_bounced_at IS NOT NULL "
        "FROM notifications n JOIN accounts a ON a.id = n.account_id "
        "WHERE n.message_id = %s AND n.kind = 'new'", (message_id,))
    assert len(rows) == 1, rows
    return rows[0]


def wait_retry(env, mid):
    """Polls until the mail failed at least once and waits for its retry;
    a final state (a bounce) fails at once."""
    def check():
        row = notification(env, mid)
        assert row[1] not in FINAL, "expected a retry, got %r" % (row,)
        return row if row[1] == "scheduled" and row[2] >= 1 else None
    return wait_until(check, what="the mail to be rescheduled after a failure", **POLL)


def wait_final(env, mid):
    return wait_until(lambda: (lambda row: row if row[1] in FINAL else None)(notification(env, mid)),
                      what="a final state", **POLL)


def sessions_where_rcpt_got(relay, address, reply):
    """The relay's connections (lists of transcript records) in which RCPT
    TO:<address> was answered with reply ("drop rcpt" for a dropped one)."""
    out = []
    for _, recs in sorted(relay.connections("RCPT TO:<%s>" % address).items()):
        for i, r in enumerate(recs):
            if r["dir"] == "c" and r["line"] == "RCPT TO:<%s>" % address \
                    and i + 1 < len(recs) and recs[i + 1]["line"] == reply:
                out.append(recs)
                break
    return out


def start_row(env, pipelining, tag):
    """A fresh citizen with a verified address; the relay accepts all."""
    env["relay"].set_script(pipelining=pipelining)
    drain(env)
    bsn = harness.new_bsn()
    address = "%s-%s@example.nl" % (tag, secrets.token_hex(4))
    return bsn, address, citizen(env, bsn, address)


# ---------------------------------------------------------------- the table

GREY = "451 4.3.0 try later"
UNKNOWN = "550 5.1.1 unknown user"
LOST_END = ("end of data: no reply (connection lost or timed out); the relay may have "
            "the mail")

# (id, script, outcome, last_error)
ROWS = [
    # the session: no reply to MAIL FROM for any mail of it
    ("greeting-421", {"greeting": "421 4.3.2 too busy"}, "retry", "session: 421 4.3.2 too busy"),
    ("greeting-554", {"greeting": "554 5.7.1 no service"}, "retry",
     "session: 554 5.7.1 no service"),
    ("greeting-lost", {"greeting": "drop"}, "retry", "session: SMTP server dropped connection"),
    ("ehlo-451", {"ehlo": "451 4.3.0 later"}, "retry", "session: 451 4.3.0 later"),
    ("ehlo-502-then-helo", {"ehlo": "502 5.5.1 no EHLO here"}, "sent", None),
    # MAIL: our sender, never the citizen's address
    ("mail-451", {"mail": "451 4.3.2 try again later"}, "retry",
     "MAIL FROM: 451 4.3.2 try again later"),
    ("mail-554", {"mail": "554 5.7.1 sender rejected"}, "retry",
     "MAIL FROM: 554 5.7.1 sender rejected"),
    ("mail-lost", {"mail": "drop"}, "retry",
     "session: connection lost before MAIL FROM was answered"),
    # RCPT: the citizen's address
    ("rcpt-451-data-503", {"rcpt": GREY}, "retry", "RCPT TO: " + GREY),  # issue 14
    ("rcpt-451-data-354", {"rcpt": GREY, "data": "354"}, "retry", "RCPT TO: " + GREY),
    ("rcpt-451-data-lost", {"rcpt": GREY, "data": "drop"}, "retry", "RCPT TO: " + GREY),
    ("rcpt-421", {"rcpt": "421 4.7.0 closing"}, "retry", "RCPT TO: 421 4.7.0 closing"),
    ("rcpt-lost", {"rcpt": "drop"}, "retry", "RCPT TO: no reply (connection lost or timed out)"),
    ("rcpt-550-data-503", {"rcpt": UNKNOWN}, "bounce", "RCPT TO: " + UNKNOWN),
    ("rcpt-550-data-354", {"rcpt": UNKNOWN, "data": "354"}, "bounce", "RCPT TO: " + UNKNOWN),
    ("rcpt-550-data-lost", {"rcpt": UNKNOWN, "data": "drop"}, "bounce", "RCPT TO: " + UNKNOWN),
    # DATA, the recipient accepted
    ("data-451", {"data": "451 4.3.0 queue full"}, "retry", "DATA: 451 4.3.0 queue full"),
    ("data-554", {"data": "554 5.7.1 rejected"}, "bounce", "DATA: 554 5.7.1 rejected"),
    ("data-lost", {"data": "drop"}, "retry", "DATA: no reply (connection lost or timed out)"),
    ("data-250-no-content", {"data": "250 2.0.0 what"}, "retry", "DATA: 250 2.0.0 what"),
    # the end of data
    ("end-250", {}, "sent", None),
    ("end-451", {"end": "451 4.3.0 try again"}, "retry", "end of data: 451 4.3.0 try again"),
    ("end-552", {"end": "552 5.3.4 message too big"}, "bounce",
     "end of data: 552 5.3.4 message too big"),
    ("end-lost", {"end": "drop"}, "retry", LOST_END),
    ("end-timeout", {"end": "hang"}, "retry", LOST_END),
    # CHUNKING: libesmtp sends BDAT instead of DATA, even with no recipient
    ("bdat-rcpt-451", {"chunking": True, "rcpt": GREY}, "retry", "RCPT TO: " + GREY),
    ("bdat-rcpt-550", {"chunking": True, "rcpt": UNKNOWN}, "bounce", "RCPT TO: " + UNKNOWN),
    ("bdat-451", {"chunking": True, "bdat": "451 4.3.0 chunk later"}, "retry",
     "end of data: 451 4.3.0 chunk later"),
    ("bdat-554", {"chunking": True, "bdat": "554 5.7.1 chunk refused"}, "bounce",
     "end of data: 554 5.7.1 chunk refused"),
    ("bdat-lost", {"chunking": True, "bdat": "drop"}, "retry", LOST_END),
    ("bdat-last-250", {"chunking": True}, "sent", None),
    ("bdat-last-554", {"chunking": True, "end": "554 5.6.0 bad content"}, "bounce",
     "end of data: 554 5.6.0 bad content"),
    ("bdat-last-lost", {"chunking": True, "end": "drop"}, "retry", LOST_END),
    ("bdat-last-timeout", {"chunking": True, "end": "hang"}, "retry", LOST_END),
]

PIPELINING = [pytest.param(True, id="pipelining"), pytest.param(False, id="no-pipelining")]


@pytest.mark.parametrize("pipelining", PIPELINING)
@pytest.mark.parametrize("row,script,outcome,last_error", ROWS, ids=[r[0] for r in ROWS])
def test_reply_row(env, pipelining, row, script, outcome, last_error):
    relay = env["relay"]
    bsn, address, account = start_row(env, pipelining, row)
    relay.set_script(pipelining=pipelining, **script)
    mid = post(env, bsn)

    if outcome == "retry":
        nid, state, attempts, error, bounced = wait_retry(env, mid)
        assert error == last_error
        assert not bounced, "a temporary failure must not mark the address"
        assert "herstelEmail" not in prompt_kinds(env["d"], env["portal"], account)
        assert not accepted(relay, address, lambda m: not is_verification_mail(m))
        # the relay takes mail again: the retry goes out, with the same Message-ID
        relay.set_script(pipelining=pipelining)
        nid, state, attempts, error, bounced = wait_final(env, mid)
        assert (state, error, bounced) == ("sent", None, False)
        mails = [m for m in Mailbox(relay.mail_dir).messages()
                 if address in m.rcpt_tos and not is_verification_mail(m)]
        assert mails[-1].envelope["accepted"]
        # an unanswered end of data may have delivered it: any copy is the same mail
        assert {m["Message-ID"] for m in mails} == {message_id(env, nid)}
    elif outcome == "bounce":
        nid, state, attempts, error, bounced = wait_final(env, mid)
        assert (state, error) == ("bounced", last_error)
        assert attempts == 1
        # the address is marked right after the row (a statement of its own)
        wait_until(lambda: notification(env, mid)[4], what="the address marked as bounced", **POLL)
        assert "herstelEmail" in prompt_kinds(env["d"], env["portal"], account)
        assert not accepted(relay, address, lambda m: not is_verification_mail(m))
    else:
        nid, state, attempts, error, bounced = wait_final(env, mid)
        assert (state, error, bounced, attempts) == ("sent", None, False, 1)
        [mail] = accepted(relay, address, lambda m: not is_verification_mail(m))
        assert mail["Message-ID"] == message_id(env, nid)
        if "ehlo" not in script:  # DSN announced: the envelope id goes with MAIL FROM
            ref = message_id(env, nid)[1:].split("@")[0]
            assert any(re.fullmatch(r"ENVID=berichtd-%s-[0-9a-f]{16}" % ref, o)
                       for o in mail.envelope["mail_options"]), mail.envelope["mail_options"]
        assert "herstelEmail" not in prompt_kinds(env["d"], env["portal"], account)


# ------------------------------------------------------- what libesmtp sends

@pytest.mark.parametrize("pipelining", PIPELINING)
def test_data_follows_a_refused_rcpt_in_the_same_write_only_with_pipelining(env, pipelining):
    """Why RCPT must be judged before DATA: libesmtp sends DATA after a
    refused RCPT in both modes, with PIPELINING before the RCPT reply."""
    relay = env["relay"]
    bsn, address, _ = start_row(env, pipelining, "wire")
    relay.set_script(pipelining=pipelining, rcpt=GREY)
    wait_retry(env, post(env, bsn))
    relay.set_script(pipelining=pipelining)
    conn = sessions_where_rcpt_got(relay, address, GREY)[0]
    lines = [(r["dir"], r["line"], r["early"]) for r in conn if r["dir"] in ("c", "s")]
    i = lines.index(("c", "RCPT TO:<%s>" % address, False))
    assert lines[i + 1][:2] == ("s", GREY)
    assert lines[i + 1][2] is pipelining, "DATA arrived before the RCPT reply: %s" % pipelining
    assert lines[i + 2][:2] == ("c", "DATA")
    assert lines[i + 3][:2] == ("s", "503 5.5.1 Error: need RCPT command")


# ------------------------------------------------- several mails, one session

def two_in_one_session(env, pipelining, tag):
    """Two citizens whose mails fall due at the same moment, so that one
    worker batch (one SMTP session) carries both; the first made sorts first."""
    a = start_row(env, pipelining, tag + "-a")
    b = start_row(env, pipelining, tag + "-b")
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    when = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return a, b, when


@pytest.mark.parametrize("pipelining", PIPELINING)
def test_a_greylisted_mail_does_not_hold_up_the_next_in_the_same_session(env, pipelining):
    relay = env["relay"]
    (bsn_a, addr_a, acc_a), (bsn_b, addr_b, _), when = two_in_one_session(env, pipelining, "grey")
    relay.set_script(pipelining=pipelining, rcpt_for={addr_a: GREY})
    mid_a = post(env, bsn_a, publicatieTijdstip=when)
    mid_b = post(env, bsn_b, publicatieTijdstip=when)
    assert wait_final(env, mid_b)[1] == "sent"
    _, _, _, error, bounced = wait_retry(env, mid_a)
    assert (error, bounced) == ("RCPT TO: " + GREY, False)
    first = sessions_where_rcpt_got(relay, addr_a, GREY)[0]
    assert any(r["line"] == "RCPT TO:<%s>" % addr_b for r in first), \
        "both mails were meant to share one session"
    assert "herstelEmail" not in prompt_kinds(env["d"], env["portal"], acc_a)
    relay.set_script(pipelining=pipelining)
    assert wait_final(env, mid_a)[1] == "sent"


@pytest.mark.parametrize("pipelining", PIPELINING)
def test_mails_after_a_lost_connection_are_retried_not_bounced(env, pipelining):
    relay = env["relay"]
    (bsn_a, addr_a, _), (bsn_b, addr_b, acc_b), when = two_in_one_session(env, pipelining, "lost")
    relay.set_script(pipelining=pipelining, rcpt_for={addr_a: "drop"})
    mid_a = post(env, bsn_a, publicatieTijdstip=when)
    mid_b = post(env, bsn_b, publicatieTijdstip=when)
    row_a = wait_retry(env, mid_a)
    row_b = wait_retry(env, mid_b)
    relay.set_script(pipelining=pipelining)
    first = sessions_where_rcpt_got(relay, addr_a, "drop rcpt")[0]
    assert not any(r["line"] == "RCPT TO:<%s>" % addr_b for r in first), \
        "the mail to %s was meant to come second" % addr_b
    assert row_a[3] == "RCPT TO: no reply (connection lost or timed out)"
    assert row_b[3] == "session: connection lost before MAIL FROM was answered"
    assert not row_b[4] and "herstelEmail" not in prompt_kinds(env["d"], env["portal"], acc_b)
    assert wait_final(env, mid_a)[1] == "sent"
    assert wait_final(env, mid_b)[1] == "sent"
