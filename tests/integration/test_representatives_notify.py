"""Representatives get notified (issue 11, the notification half) against
real PostgreSQL, Redis and SMTP: scope by agency, case and time, the holder
still notified or not, one digest per representative naming every person
by weergavenaam, cancellation at claim time when a representation ends, a
death (the nabestaande takes over), and 5,000 represented accounts in one
mail. Who is notified is migration 0012's rule (and 0017's at claim time);
these tests only look at the outcome. Every wait is a poll with a deadline."""
import datetime
import email.policy
import hashlib
import hmac
import os
import re
import secrets
import time
from email.parser import BytesParser

import pytest

import harness
from harness import make_agency, make_citizen, mails_to, post, wait_until

# every BSN these tests use: no mail may ever contain one
USED_BSNS = set()


def bsn(new_bsn):
    b = new_bsn()
    USED_BSNS.add(b)
    return b


def body_of(mail):
    return BytesParser(policy=email.policy.default).parsebytes(mail.raw).get_content()


def subject_of(mail):
    return BytesParser(policy=email.policy.default).parsebytes(mail.raw)["Subject"]


def assert_no_bsn(mailbox):
    """No mail in the sink (all of this test's) names a BSN or its hash."""
    for m in mailbox.messages():
        raw = m.raw.decode("utf-8", "replace") + body_of(m)
        for b in USED_BSNS:
            assert b not in raw, "a BSN in a mail to %s" % m.rcpt_tos


def iso(t):
    return t.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def citizen(d, portal, new_bsn, tag):
    """An account with a verified address, the real way. (bsn, account, address)"""
    b = bsn(new_bsn)
    addr = "%s-%s@example.nl" % (tag, secrets.token_hex(4))
    return b, make_citizen(d, portal, b, addr), addr


def quick_account(svc, tag, language="nl"):
    """A representative's account straight in PostgreSQL (an address taken as
    verified): for tests that need many. (account, address)"""
    addr = "%s-%s@example.nl" % (tag, secrets.token_hex(4))
    [(acc,)] = svc.psql(
        "INSERT INTO accounts (id, bsn_hash, email, email_confirmed_at, language)"
        " VALUES (gen_random_uuid(), %s, %s, now(), %s) RETURNING id::text",
        ("rep-" + secrets.token_hex(16), addr, language))
    return acc, addr


def represent(d, portal, holder, rep, soort="machtiging", vanaf=None, tot=None,
              organisaties=None, zaak=None, naam="J. Jansen", ook=None, source=None):
    """PUT a representation through the portal API (organisaties: OINs; source:
    the representative of the representation it is passed on from). Returns
    its id (for looking at its notifications)."""
    body = {"soort": soort, "geldigVanaf": iso(vanaf or now_utc() - datetime.timedelta(days=1)),
            "weergavenaam": naam}
    for k, v in (("geldigTot", tot and iso(tot)), ("organisaties", organisaties),
                 ("zaakkenmerk", zaak), ("betrokkeneOokNotificeren", ook),
                 ("doorgegevenDoor", source)):
        if v is not None:
            body[k] = v
    r = d.request("PUT", "/v1/accounts/%s/vertegenwoordigers/%s" % (holder, rep),
                  token=portal, json=body)
    assert r.status in (200, 201), r.text
    [(rid,)] = d.services.psql("SELECT id FROM representations WHERE account_id = %s"
                               " AND rep_account_id = %s", (holder, rep))
    return rid


def unrepresent(d, portal, holder, rep):
    r = d.request("DELETE", "/v1/accounts/%s/vertegenwoordigers/%s" % (holder, rep),
                  token=portal)
    assert r.status == 204, r.text


def settled(svc, ids, kind="new"):
    """All notifications of this kind of these messages have left scheduled/sending
    (reminders wait for their time)."""
    [(n,)] = svc.psql("SELECT count(*) FROM notifications WHERE message_id = ANY(%s::uuid[])"
                      " AND kind = %s AND state IN ('scheduled', 'sending')", (list(ids), kind))
    return n == 0


def rep_rows(svc, message):
    """{representation id: state} of a message's notifications to representatives."""
    return dict(svc.psql("SELECT representation_id, state FROM notifications"
                         " WHERE message_id = %s AND representation_id IS NOT NULL"
                         " AND kind = 'new'",
                         (message,)))


# ------------------------------------------------------------ scope, holder

def test_curator_for_one_agency_and_the_holder(make_daemon, mailbox, new_bsn):
    d = make_daemon("cur", **{"notify.digest_window": "1s"})
    svc = d.services
    portal = d.token("portal")
    a = make_agency(d, name="Belastingdienst %s" % secrets.token_hex(2))
    b = make_agency(d, name="Gemeente Utrecht %s" % secrets.token_hex(2))
    hb, holder, haddr = citizen(d, portal, new_bsn, "holder")
    _, curator, caddr = citizen(d, portal, new_bsn, "curator")
    represent(d, portal, holder, curator, soort="curatele", organisaties=[a["oin"]],
              naam="J. Jansen")
    # a second holder whose curator says the holder is not to be notified
    hb2, holder2, haddr2 = citizen(d, portal, new_bsn, "holder2")
    _, curator2, caddr2 = citizen(d, portal, new_bsn, "curator2")
    represent(d, portal, holder2, curator2, soort="curatele", organisaties=[a["oin"]],
              naam="P. de Vries", ook=False)
    mailbox.clear()

    ids = [post(d, a["token"], hb), post(d, b["token"], hb),
           post(d, a["token"], hb2), post(d, b["token"], hb2)]
    wait_until(lambda: settled(svc, ids), what="all notifications settled")

    [cm] = mails_to(mailbox, caddr)
    body = body_of(cm)
    assert "1 nieuw bericht voor 1 persoon: J. Jansen (%s)" % a["name"] in body, body
    assert b["name"] not in body
    # the holder still gets both (one digest or two mails, as the window had them)
    assert sum(body_of(m).count(a["name"]) + body_of(m).count(b["name"])
               for m in mails_to(mailbox, haddr)) == 2
    # betrokkeneOokNotificeren false: the holder gets only the other agency's
    [hm2] = mails_to(mailbox, haddr2)
    assert b["name"] in body_of(hm2) and a["name"] not in body_of(hm2)
    [cm2] = mails_to(mailbox, caddr2)
    assert "P. de Vries (%s)" % a["name"] in body_of(cm2)
    # the representative's mail says nothing of the message: no subject, type, reference
    [(ref,)] = svc.psql("SELECT referentie FROM messages WHERE id = %s", (ids[0],))
    assert ref not in cm.raw.decode() and "T1" not in body
    assert "http" not in body.lower()
    assert_no_bsn(mailbox)


def test_parent_of_two_children_gets_one_digest(make_daemon, mailbox, new_bsn):
    d = make_daemon("parent", **{"notify.digest_window": "2s"})
    svc = d.services
    portal = d.token("portal")
    a = make_agency(d, name="DUO %s" % secrets.token_hex(2))
    b = make_agency(d, name="SVB %s" % secrets.token_hex(2))
    pb, parent, paddr = citizen(d, portal, new_bsn, "parent")
    ministry = d.token("ministry")
    year = svc.psql("SELECT extract(year FROM now() AT TIME ZONE 'Europe/Amsterdam')::int")[0][0]
    report = "/v1/rapportages/notificaties?jaar=%d" % year
    before = d.request("GET", report, token=ministry).json()
    kids = []
    for naam in ("Kim de Boer", "Sam de Boer"):
        kb = bsn(new_bsn)
        kids.append(make_citizen(d, portal, kb))  # children: no address of their own
        represent(d, portal, kids[-1], parent, soort="ouder", naam=naam)
        kids[-1] = (kb, naam)
    mailbox.clear()

    ids = [post(d, a["token"], kids[0][0]), post(d, b["token"], kids[1][0]),
           post(d, a["token"], kids[1][0]), post(d, a["token"], pb)]
    wait_until(lambda: settled(svc, ids), what="all notifications settled")
    mails = mails_to(mailbox, paddr)
    # one mail as the parent's own holder mail, one digest as representative
    assert len(mails) == 2, [subject_of(m) for m in mails]
    [digest] = [m for m in mails if "Kim de Boer" in body_of(m)]
    body = body_of(digest)
    assert "3 nieuwe berichten voor 2 personen: Kim de Boer (%s), Sam de Boer (%s en %s)" % (
        a["name"], a["name"], b["name"]) in body or \
        "3 nieuwe berichten voor 2 personen: Kim de Boer (%s), Sam de Boer (%s en %s)" % (
        a["name"], b["name"], a["name"]) in body, body
    assert "MijnOverheid" in body and "geen link" in body
    # the ministry's report: three notifications to an 'ouder', three messages
    # with a representative (other tests may add to the same year: at least)
    wait_until(lambda: svc.psql("SELECT count(*) = 4 FROM notifications WHERE"
                                " message_id = ANY(%s::uuid[]) AND kind = 'new' AND state = 'sent'",
                                (ids,))[0][0], what="sent recorded")
    after = d.request("GET", report, token=ministry).json()
    per, per0 = after["notificatiesAanVertegenwoordigers"], before["notificatiesAanVertegenwoordigers"]
    assert set(per) == {"machtiging", "ouder", "curatele", "beschermingsbewind", "mentorschap",
                        "nabestaande"}
    assert per["ouder"]["notificaties"] - per0["ouder"]["notificaties"] == 3
    assert after["berichtenMetVertegenwoordiger"] - before["berichtenMetVertegenwoordiger"] == 3
    assert after["notificatiesVerstuurd"] - before["notificatiesVerstuurd"] == 4
    assert after["percentageBerichtenMetVertegenwoordiger"] is not None
    assert_no_bsn(mailbox)


def test_representative_mail_in_english(make_daemon, mailbox, new_bsn):
    d = make_daemon("en", **{"notify.digest_window": "1s"})
    svc = d.services
    portal = d.token("portal")
    a = make_agency(d, name="RDW %s" % secrets.token_hex(2))
    hb, holder, _ = citizen(d, portal, new_bsn, "h")
    _, rep, raddr = citizen(d, portal, new_bsn, "r")
    r = d.request("PATCH", "/v1/accounts/%s" % rep, token=portal, json={"taal": "en"})
    assert r.status == 200, r.text
    represent(d, portal, holder, rep, naam="A. Bakker")
    mailbox.clear()
    ids = [post(d, a["token"], hb)]
    wait_until(lambda: settled(svc, ids), what="settled")
    [m] = mails_to(mailbox, raddr)
    assert "1 new message for 1 person: A. Bakker (%s)" % a["name"] in body_of(m)
    assert_no_bsn(mailbox)


# ------------------------------------------------------------------ edges

def test_every_edge_refused(make_daemon, mailbox, new_bsn):
    d = make_daemon("edges", **{"notify.digest_window": "1s"})
    svc = d.services
    portal = d.token("portal")
    a = make_agency(d)
    other = make_agency(d)
    hb = bsn(new_bsn)
    holder = make_citizen(d, portal, hb)
    publ = (now_utc() - datetime.timedelta(minutes=5)).replace(microsecond=0)
    ms = datetime.timedelta(milliseconds=1)
    reps = {}

    def rep(**kw):
        acc, _ = quick_account(svc, "edge")
        rid = represent(d, portal, holder, acc, **kw)
        reps[rid] = acc
        return rid

    yes = {
        "vanaf at publication": rep(vanaf=publ),
        "tot just after": rep(vanaf=publ - ms * 1000, tot=publ + ms),
        "this agency": rep(organisaties=[a["oin"]]),
        "this case": rep(zaak="Z-1"),
    }
    src = rep(naam="bron")
    yes["derived, source live"] = rep(source=reps[src])
    dead_src = rep(naam="bron weg")
    no = {
        "before geldigVanaf": rep(vanaf=publ + ms),
        "at geldigTot": rep(vanaf=publ - ms * 1000, tot=publ),
        "after geldigTot": rep(vanaf=publ - ms * 5000, tot=publ - ms),
        "another agency": rep(organisaties=[other["oin"]]),
        "another case": rep(zaak="Z-2"),
        "deleted": rep(),
        "derived, source deleted": rep(source=reps[dead_src]),
    }
    for rid in (no["deleted"], dead_src):
        unrepresent(d, portal, holder, reps[rid])
    r = harness.post_message(d, a["token"], hb, publicatieTijdstip=iso(publ), zaakkenmerk="Z-1")
    assert r.status == 201, r.text
    mid = r.json()["berichtId"]
    got = rep_rows(svc, mid)
    for what, rid in yes.items():
        assert rid in got, "not notified: " + what
    for what, rid in no.items():
        assert rid not in got, "notified: " + what
    # the case-limited one only for its own case; without a case on the message, not
    mid2 = post(d, a["token"], hb, publicatieTijdstip=iso(publ))
    assert yes["this case"] not in rep_rows(svc, mid2)
    wait_until(lambda: settled(svc, [mid, mid2]), what="settled")
    assert_no_bsn(mailbox)


def test_representation_ended_while_scheduled_is_cancelled(make_daemon, mailbox, new_bsn):
    # a digest window long enough that the rows wait in the schedule
    d = make_daemon("ended", **{"notify.digest_window": "4s"})
    svc = d.services
    portal = d.token("portal")
    a = make_agency(d)
    hb, holder, haddr = citizen(d, portal, new_bsn, "h")
    ended, eaddr = quick_account(svc, "ended")
    gone, gaddr = quick_account(svc, "gone")
    stays, saddr = quick_account(svc, "stays")
    vanaf = now_utc() - datetime.timedelta(days=2)
    r_end = represent(d, portal, holder, ended, vanaf=vanaf)
    r_gone = represent(d, portal, holder, gone)
    r_stay = represent(d, portal, holder, stays, naam="Blijft")
    mailbox.clear()
    mid = post(d, a["token"], hb)
    assert set(rep_rows(svc, mid)) == {r_end, r_gone, r_stay}
    # the portal ends one (geldigTot moved to now) and deletes another
    represent(d, portal, holder, ended, vanaf=vanaf, tot=now_utc())
    unrepresent(d, portal, holder, gone)
    wait_until(lambda: settled(svc, [mid]), what="settled")
    got = rep_rows(svc, mid)
    assert got[r_end] == "cancelled" and got[r_gone] == "cancelled"
    assert got[r_stay] == "sent"
    assert not mails_to(mailbox, {eaddr, gaddr})
    assert len(mails_to(mailbox, saddr)) == 1 and len(mails_to(mailbox, haddr)) == 1
    assert_no_bsn(mailbox)


# ------------------------------------------------------------------ death

def test_death_the_nabestaande_takes_over(make_daemon, mailbox, new_bsn):
    d = make_daemon("death", **{"notify.digest_window": "1s", "notify.repeat_after": "12s"})
    svc = d.services
    portal = d.token("portal")
    a = make_agency(d, name="CAK %s" % secrets.token_hex(2))
    hb, holder, haddr = citizen(d, portal, new_bsn, "h")
    _, heir, naddr = citizen(d, portal, new_bsn, "heir")
    mailbox.clear()
    m1 = post(d, a["token"], hb)
    wait_until(lambda: mails_to(mailbox, haddr), what="the holder's mail")
    # the holder's reminder for m1 is pending now
    wait_until(lambda: svc.psql("SELECT 1 FROM notifications WHERE message_id = %s"
                                " AND kind = 'repeat' AND state = 'scheduled'", (m1,)),
               what="the holder's reminder scheduled")
    represent(d, portal, holder, heir, soort="nabestaande", naam="wijlen H. Visser",
              vanaf=now_utc() - datetime.timedelta(seconds=1))
    r = d.request("PATCH", "/v1/accounts/%s" % holder, token=portal, json={"overleden": True})
    assert r.status == 200, r.text
    assert r.json()["overleden"] is True
    # not undone
    r = d.request("PATCH", "/v1/accounts/%s" % holder, token=portal, json={"overleden": False})
    assert r.status == 409, r.text
    # a second true is a no-op: no second take-over
    r = d.request("PATCH", "/v1/accounts/%s" % holder, token=portal, json={"overleden": True})
    assert r.status == 200, r.text
    [(n,)] = svc.psql("SELECT count(*) FROM notifications WHERE message_id = %s"
                      " AND account_id = %s", (m1, heir))
    assert n == 1
    m2 = post(d, a["token"], hb)

    # the nabestaande gets the reminder the holder would have had, and m2's mail
    wait_until(lambda: len(mails_to(mailbox, naddr)) >= 2, timeout=40,
               what="the nabestaande's two mails")
    wait_until(lambda: settled(svc, [m1, m2]), what="settled")
    subjects = sorted(subject_of(m) for m in mails_to(mailbox, naddr))
    assert len(subjects) == 2 and any("Herinnering" in s for s in subjects), subjects
    assert all("wijlen H. Visser (%s)" % a["name"] in body_of(m)
               for m in mails_to(mailbox, naddr))
    # the holder got only the first mail, from before the death
    assert len(mails_to(mailbox, haddr)) == 1
    [(holder_repeat,)] = svc.psql("SELECT state FROM notifications WHERE message_id = %s"
                                  " AND account_id = %s AND kind = 'repeat'", (m1, holder))
    assert holder_repeat == "cancelled"
    assert_no_bsn(mailbox)


def test_overleden_must_be_a_boolean(daemon, new_bsn):
    portal = daemon.token("portal")
    acc = make_citizen(daemon, portal, bsn(new_bsn))
    r = daemon.request("PATCH", "/v1/accounts/%s" % acc, token=portal,
                       json={"overleden": "ja", "taal": "xx"})
    body = harness.assert_problem(r, 400)
    assert {p["name"] for p in body["invalidParams"]} >= {"overleden", "taal"}
    # false on a living account changes nothing
    r = daemon.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"overleden": False})
    assert r.status == 200 and r.json()["overleden"] is False


# ------------------------------------------------------------------- bulk

BULK = int(os.environ.get("BERICHTD_REP_BULK", "5000"))


def bsn_hash(key_hex, b):
    return hmac.new(bytes.fromhex(key_hex), b.encode(), hashlib.sha256).hexdigest()


def test_one_representative_of_5000_gets_one_mail(make_daemon, mailbox, new_bsn):
    # one worker: two workers claiming the same window at once may each build a mail;
    # a window and a deadline longer than a loaded machine takes to store the 5,000
    # (the first chunk's rows must still be waiting when the last is stored)
    d = make_daemon("bulk", **{"notify.digest_window": "20s", "delivery.workers": "1",
                               "postgres.ingest_timeout": "60s"})
    svc = d.services
    portal = d.token("portal")
    a = make_agency(d)
    _, rep, raddr = citizen(d, portal, new_bsn, "bewindvoerder")
    key = d.config["security"]["bsn_key"]
    probe = bsn(new_bsn)
    probe_acc = make_citizen(d, portal, probe)
    [(h,)] = svc.psql("SELECT bsn_hash FROM accounts WHERE id = %s", (probe_acc,))
    assert h == bsn_hash(key, probe), "the test's BSN hash is not the daemon's"
    bsns = [bsn(new_bsn) for _ in range(BULK)]
    svc.psql(
        "WITH a AS (INSERT INTO accounts (id, bsn_hash) SELECT gen_random_uuid(), h"
        "  FROM unnest(%s::text[]) h RETURNING id)"
        " INSERT INTO representations (account_id, rep_account_id, soort, geldig_vanaf,"
        "  weergavenaam, betrokkene_ook_notificeren)"
        " SELECT a.id, %s, 'beschermingsbewind', now() - interval '1 day',"
        "  'Client ' || row_number() OVER (), true FROM a",
        ([bsn_hash(key, b) for b in bsns], rep))
    mailbox.clear()
    items = [{"bsn": b, "berichttype": "T1", "referentie": "bulk-%d-%s" % (i, secrets.token_hex(3))}
             for i, b in enumerate(bsns)]
    t0 = time.monotonic()
    r = d.request("POST", "/v1/batches", token=a["token"], json={"berichten": items},
                  timeout=120)
    assert r.status == 200, r.text
    assert r.json()["aantallen"]["aangenomen"] == BULK, r.json()["aantallen"]
    t_accepted = time.monotonic()
    [m] = mailbox.wait_for(1, timeout=120, predicate=lambda m: raddr in m.rcpt_tos)
    t_mail = time.monotonic()
    body = body_of(m)
    assert "%d nieuwe berichten voor %d personen" % (BULK, BULK) in body, body[:400]
    assert "en %d anderen" % (BULK - 20) in body
    # the outcome is recorded after the SMTP session
    wait_until(lambda: svc.psql(
        "SELECT count(*) FILTER (WHERE n.state = 'sent') = %s AND count(DISTINCT n.mail_id) = 1"
        " FROM notifications n WHERE n.account_id = %s AND n.representation_id IS NOT NULL"
        " AND n.kind = 'new'", (BULK, rep))[0][0], what="all rows sent in one mail")
    print("\nbulk %d: batch %.2fs, accepted -> mail %.2fs (digest window 20s)"
          % (BULK, t_accepted - t0, t_mail - t_accepted))
    # nothing more follows for this window
    assert len(mails_to(mailbox, raddr)) == 1
    assert_no_bsn(mailbox)
