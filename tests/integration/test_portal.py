"""The citizen portal API (issue 5): accounts, verified e-mail,
subscriptions, prompts, the box (list, open, delete) and retention, all
against the real PostgreSQL, Redis and SMTP sink."""
import concurrent.futures
import datetime
import re
import secrets
import time
import uuid

import pytest

from harness import (assert_problem, make_agency, make_citizen, post_message, prompt_kinds,
                     verification_code, verification_mails, wait_until,
                     wait_verification_mail)


def addr(tag):
    return "%s-%s@example.nl" % (tag, secrets.token_hex(4))


@pytest.fixture
def env(daemon):
    agency = make_agency(daemon)
    return {"d": daemon, "portal": daemon.token("portal"), "agency": agency}


def create(d, portal, bsn):
    r = d.request("POST", "/v1/accounts", token=portal, json={"bsn": bsn})
    assert r.status in (200, 201), r.text
    return r


def notification_mails(mailbox, email):
    return [m for m in mailbox.for_rcpt(email) if "Subject" in m and not
            re.search(r"^\s*\d{6}\s*$", m.get_content(), re.M)]


# ------------------------------------------------------------------ accounts

def test_account_is_created_then_found_and_never_shows_the_bsn(env, new_bsn):
    d, portal = env["d"], env["portal"]
    bsn = new_bsn()
    first = create(d, portal, bsn)
    assert first.status == 201
    acc = first.json()
    assert first.headers["Location"] == "/v1/accounts/%s" % acc["accountId"]
    assert acc == {"accountId": acc["accountId"], "actief": True, "emailadres": None,
                   "emailGeverifieerd": False, "emailNotificaties": True,
                   "herhaalNotificaties": True, "bewaartermijnDagen": 365, "taal": "nl",
                   "overleden": False}
    again = create(d, portal, bsn)
    assert again.status == 200 and again.json()["accountId"] == acc["accountId"]
    got = d.request("GET", "/v1/accounts/%s" % acc["accountId"], token=portal)
    assert got.status == 200 and got.json() == acc
    assert bsn not in first.text + again.text + got.text


def test_patch_sets_preferences_and_lists_every_invalid_field(env, new_bsn):
    d, portal = env["d"], env["portal"]
    acc = create(d, portal, new_bsn()).json()["accountId"]
    r = d.request("PATCH", "/v1/accounts/%s" % acc, token=portal,
                  json={"emailNotificaties": False, "herhaalNotificaties": False,
                        "bewaartermijnDagen": 90, "taal": "en"})
    assert r.status == 200, r.text
    body = r.json()
    assert (body["emailNotificaties"], body["herhaalNotificaties"], body["bewaartermijnDagen"],
            body["taal"]) == (False, False, 90, "en")
    r = d.request("PATCH", "/v1/accounts/%s" % acc, token=portal,
                  json={"emailadres": "geen-adres", "emailNotificaties": "ja",
                        "bewaartermijnDagen": 5, "taal": "de", "onbekend": 1})
    problem = assert_problem(r, 400)
    assert sorted(p["name"] for p in problem["invalidParams"]) == [
        "bewaartermijnDagen", "emailNotificaties", "emailadres", "onbekend", "taal"]
    r = d.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"bewaartermijnDagen": 3651})
    assert_problem(r, 400)
    assert_problem(d.request("GET", "/v1/accounts/%s" % uuid.uuid4(), token=portal), 404)
    assert_problem(d.request("GET", "/v1/accounts/not-a-uuid", token=portal), 404)


def test_deactivation_stops_mail_and_closes_the_box_for_agencies(env, mailbox, new_bsn):
    d, portal, agency = env["d"], env["portal"], env["agency"]
    bsn, email = new_bsn(), addr("weg")
    acc = make_citizen(d, portal, bsn, email)
    d.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"emailadres": addr("nieuw")})
    r = post_message(d, agency["token"], bsn, publicatieTijdstip=_in_hours(12))
    assert r.status == 201
    r = d.request("DELETE", "/v1/accounts/%s" % acc, token=portal)
    assert r.status == 204
    # a mail a worker had already taken before the DELETE finishes its send
    wait_until(lambda: d.services.psql(
        "SELECT count(*) FROM notifications WHERE account_id = %s AND state = 'sending'",
        (acc,))[0][0] == 0, timeout=10, interval=0.05, what="the send in progress to finish")
    states = d.services.psql("SELECT kind, state FROM notifications WHERE account_id = %s",
                             (acc,))
    assert states and all(s == "cancelled" for _, s in states if s != "sent"), states
    assert not [s for _, s in states if s == "scheduled"]
    assert_problem(post_message(d, agency["token"], bsn), 422)
    got = d.request("GET", "/v1/accounts/%s" % acc, token=portal).json()
    assert got["actief"] is False
    assert_problem(d.request("PATCH", "/v1/accounts/%s" % acc, token=portal,
                             json={"taal": "en"}), 409)
    assert create(d, portal, bsn).json()["actief"] is True  # reactivated
    assert post_message(d, agency["token"], bsn).status == 201


def _in_hours(h):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + h * 3600))


# -------------------------------------------------------------- verification

def test_verification_mail_arrives_and_its_code_confirms(env, mailbox, new_bsn):
    d, portal, agency = env["d"], env["portal"], env["agency"]
    bsn, email = new_bsn(), addr("verif")
    acc = create(d, portal, bsn).json()["accountId"]
    r = d.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"emailadres": email})
    assert r.status == 200
    assert r.json()["emailadres"] == email and r.json()["emailGeverifieerd"] is False

    # an unverified address gets no notification
    first = post_message(d, agency["token"], bsn)
    assert first.status == 201
    assert d.services.psql("SELECT count(*) FROM notifications WHERE message_id = %s",
                           (first.json()["berichtId"],))[0][0] == 0

    mail = wait_verification_mail(d, email)
    assert mail.rcpt_tos == [email]
    assert "verificatiecode" in mail["Subject"].lower()
    assert "http" not in mail.get_content().lower()
    code = verification_code(mail)
    [(stored,)] = d.services.psql("SELECT code_hash FROM email_verifications "
                                  "WHERE account_id = %s", (acc,))
    assert code not in stored
    r = d.request("POST", "/v1/accounts/%s/emailverificaties/_bevestig" % acc, token=portal,
                  json={"code": code})
    assert r.status == 200, r.text
    assert r.json()["emailGeverifieerd"] is True and r.json()["emailadres"] == email

    # the code does not outlive its use in the notification rows
    assert d.services.psql("SELECT count(*) FROM notifications WHERE account_id = %s "
                           "AND kind = 'verify' AND payload IS NOT NULL", (acc,))[0][0] == 0

    second = post_message(d, agency["token"], bsn)
    assert second.status == 201
    mailbox.wait_for(1, predicate=lambda m: email in m.rcpt_tos and
                     "nieuw bericht" in m["Subject"])
    # only the verification mail and the second message's notification
    assert len(mailbox.for_rcpt(email)) == 2
    # confirming again: nothing is waiting any more
    r = d.request("POST", "/v1/accounts/%s/emailverificaties/_bevestig" % acc, token=portal,
                  json={"code": code})
    assert_problem(r, 409)


def test_old_verified_address_keeps_working_until_the_new_one_is_confirmed(
        env, mailbox, new_bsn):
    d, portal, agency = env["d"], env["portal"], env["agency"]
    bsn, old, new = new_bsn(), addr("oud"), addr("nieuw")
    acc = make_citizen(d, portal, bsn, old)
    r = d.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"emailadres": new})
    assert (r.json()["emailadres"], r.json()["emailGeverifieerd"]) == (new, False)
    code = verification_code(wait_verification_mail(d, new))

    assert post_message(d, agency["token"], bsn).status == 201
    mailbox.wait_for(1, predicate=lambda m: old in m.rcpt_tos)
    assert notification_mails(mailbox, new) == []

    r = d.request("POST", "/v1/accounts/%s/emailverificaties/_bevestig" % acc, token=portal,
                  json={"code": code})
    assert r.status == 200 and r.json()["emailGeverifieerd"] is True
    assert post_message(d, agency["token"], bsn).status == 201
    mailbox.wait_for(1, predicate=lambda m: new in m.rcpt_tos and "nieuw bericht" in m["Subject"])
    assert len(mailbox.for_rcpt(old)) == 1


def test_five_wrong_codes_lock_the_verification_until_a_new_code(env, new_bsn):
    d, portal = env["d"], env["portal"]
    email = addr("slot")
    acc = create(d, portal, new_bsn()).json()["accountId"]
    d.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"emailadres": email})
    code = verification_code(wait_verification_mail(d, email))
    wrong = "%06d" % ((int(code) + 1) % 1000000)
    url = "/v1/accounts/%s/emailverificaties/_bevestig" % acc
    for _ in range(5):
        assert_problem(d.request("POST", url, token=portal, json={"code": wrong}), 422)
    locked = assert_problem(d.request("POST", url, token=portal, json={"code": code}), 409)
    assert locked["type"].endswith("verificatie-geblokkeerd")
    assert d.request("GET", "/v1/accounts/%s" % acc, token=portal).json()["emailGeverifieerd"] is False
    bad = assert_problem(d.request("POST", url, token=portal, json={"code": "12ab"}), 400)
    assert bad["invalidParams"][0]["name"] == "code"

    r = d.request("POST", "/v1/accounts/%s/emailverificaties" % acc, token=portal)
    assert r.status == 201, r.text
    assert r.json()["emailadres"] == email
    fresh = verification_code(wait_verification_mail(d, email, count=2))
    assert d.request("POST", url, token=portal, json={"code": fresh}).status == 200


def test_concurrent_guesses_get_no_more_than_five_comparisons(env, new_bsn):
    d, portal = env["d"], env["portal"]
    email = addr("race")
    acc = create(d, portal, new_bsn()).json()["accountId"]
    d.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"emailadres": email})
    code = verification_code(wait_verification_mail(d, email))
    url = "/v1/accounts/%s/emailverificaties/_bevestig" % acc
    guesses = ["%06d" % ((int(code) + k) % 1000000) for k in range(1, 40)] + [code]
    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        statuses = list(ex.map(lambda g: d.request("POST", url, token=portal,
                                                   json={"code": g}).status, guesses))
    assert statuses.count(422) <= 5
    assert statuses.count(200) <= 1


def test_expired_code_is_refused(make_daemon, new_bsn):
    d = make_daemon("ttl", **{"portal.verify_ttl": "1h"})
    portal = d.token("portal")
    email = addr("verlopen")
    acc = create(d, portal, new_bsn()).json()["accountId"]
    d.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"emailadres": email})
    code = verification_code(wait_verification_mail(d, email))
    # the code lives for the configured TTL ...
    assert d.services.psql("SELECT expires_at - created_at = interval '1 hour' "
                           "FROM email_verifications WHERE account_id = %s", (acc,)) == [(True,)]
    # ... and that hour passes in PostgreSQL, not on the test's clock
    d.services.psql("UPDATE email_verifications SET created_at = created_at - interval '1 hour',"
                    " expires_at = expires_at - interval '1 hour' WHERE account_id = %s", (acc,))
    r = d.request("POST", "/v1/accounts/%s/emailverificaties/_bevestig" % acc, token=portal,
                  json={"code": code})
    assert assert_problem(r, 409)["type"].endswith("code-verlopen")


def test_verification_mail_is_in_the_accounts_language(env, new_bsn):
    d, portal = env["d"], env["portal"]
    email = addr("english")
    acc = create(d, portal, new_bsn()).json()["accountId"]
    d.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"taal": "en"})
    d.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"emailadres": email})
    mail = wait_verification_mail(d, email)
    assert mail["Subject"].startswith("Your verification code")
    assert mail["Content-Language"] in (None, "en")


def test_removing_the_address_stops_mail(env, mailbox, new_bsn):
    d, portal, agency = env["d"], env["portal"], env["agency"]
    bsn, email = new_bsn(), addr("weg")
    acc = make_citizen(d, portal, bsn, email)
    r = d.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"emailadres": None})
    assert (r.json()["emailadres"], r.json()["emailGeverifieerd"]) == (None, False)
    m = post_message(d, agency["token"], bsn)
    assert d.services.psql("SELECT count(*) FROM notifications WHERE message_id = %s",
                           (m.json()["berichtId"],))[0][0] == 0


# ------------------------------------------------------------- subscriptions

def test_agency_turned_off_gets_422_and_back_on_201(env, new_bsn):
    d, portal, agency = env["d"], env["portal"], env["agency"]
    bsn = new_bsn()
    acc = make_citizen(d, portal, bsn)
    url = "/v1/accounts/%s/abonnementen/%s" % (acc, agency["oin"])
    got = d.request("GET", url, token=portal)
    assert got.status == 200
    assert got.json() == {"oin": agency["oin"], "naam": agency["name"], "actief": True,
                          "verplicht": False}
    r = d.request("PUT", url, token=portal, json={"actief": False})
    assert r.status == 200 and r.json()["actief"] is False
    listed = d.request("GET", "/v1/accounts/%s/abonnementen" % acc, token=portal).json()
    mine = [a for a in listed["abonnementen"] if a["oin"] == agency["oin"]]
    assert mine == [r.json()]
    assert_problem(post_message(d, agency["token"], bsn), 422)
    assert recipient_check(d, agency["token"], bsn) is False
    # other agencies are not affected
    other = make_agency(d)
    assert post_message(d, other["token"], bsn).status == 201
    assert recipient_check(d, other["token"], bsn) is True
    assert d.request("PUT", url, token=portal, json={"actief": True}).json()["actief"] is True
    assert post_message(d, agency["token"], bsn).status == 201
    assert recipient_check(d, agency["token"], bsn) is True


def recipient_check(d, token, bsn):
    """The agency's own view: POST /v1/ontvangers/_zoek for one BSN."""
    r = d.request("POST", "/v1/ontvangers/_zoek", token=token, json={"bsns": [bsn]})
    assert r.status == 200, r.text
    [hit] = r.json()["ontvangers"]
    assert hit["bsn"] == bsn
    return hit["berichtenbox"]


def test_mandatory_agency_cannot_be_turned_off(env, new_bsn):
    d, portal = env["d"], env["portal"]
    tax = make_agency(d, name="Belastingdienst Test", mandatory=True)
    bsn = new_bsn()
    acc = make_citizen(d, portal, bsn)
    url = "/v1/accounts/%s/abonnementen/%s" % (acc, tax["oin"])
    problem = assert_problem(d.request("PUT", url, token=portal, json={"actief": False}), 409)
    assert problem["type"].endswith("verplichte-afzender") and problem["detail"]
    assert d.request("GET", url, token=portal).json()["verplicht"] is True
    assert post_message(d, tax["token"], bsn).status == 201
    # an 'off' stored before the agency became mandatory is ignored
    opt = make_agency(d)
    d.request("PUT", "/v1/accounts/%s/abonnementen/%s" % (acc, opt["oin"]), token=portal,
              json={"actief": False})
    out = d.cli("agency", "set", "--oin", opt["oin"], "--mandatory", "yes")
    assert out.returncode == 0, out.stderr
    assert post_message(d, opt["token"], bsn).status == 201


def test_subscription_errors(env, new_bsn, new_oin):
    d, portal, agency = env["d"], env["portal"], env["agency"]
    acc = make_citizen(d, portal, new_bsn())
    assert_problem(d.request("PUT", "/v1/accounts/%s/abonnementen/%s" % (acc, new_oin()),
                             token=portal, json={"actief": False}), 404)
    assert_problem(d.request("PUT", "/v1/accounts/%s/abonnementen/%s" % (uuid.uuid4(),
                             agency["oin"]), token=portal, json={"actief": False}), 404)
    bad = assert_problem(d.request("PUT", "/v1/accounts/%s/abonnementen/%s" % (
        acc, agency["oin"]), token=portal, json={"actief": "nee"}), 400)
    assert bad["invalidParams"][0]["name"] == "actief"
    assert d.cli("agency", "set", "--oin", new_oin(), "--mandatory", "yes").returncode == 1
    assert d.cli("agency", "set", "--oin", agency["oin"], "--mandatory", "maybe").returncode == 2


# ------------------------------------------------------------------- prompts

def ack(d, portal, acc, soort):
    r = d.request("POST", "/v1/accounts/%s/meldingen/%s/_afgehandeld" % (acc, soort), token=portal)
    assert r.status == 204, r.text


def age_account(d, acc, interval):
    """Moves the account's clock back by `interval` (a PostgreSQL interval):
    every timestamp the prompts are computed from, so that their order is kept."""
    d.services.psql(
        "UPDATE accounts SET no_email_confirmed_at = no_email_confirmed_at - %s::interval,"
        " email_confirmed_at = email_confirmed_at - %s::interval,"
        " email_bounced_at = email_bounced_at - %s::interval,"
        " bounce_ack_at = bounce_ack_at - %s::interval WHERE id = %s",
        (interval, interval, interval, interval, acc))


def test_prompts_appear_are_acknowledged_and_come_back_after_the_period(make_daemon, new_bsn):
    # a period the test never waits for: it ages the accounts in PostgreSQL
    d = make_daemon("prompts", **{"portal.prompt_interval": "1h"})
    portal = d.token("portal")

    # no address: confirm you want none
    acc = create(d, portal, new_bsn()).json()["accountId"]
    assert prompt_kinds(d, portal, acc) == ["bevestigGeenEmail"]
    ack(d, portal, acc, "bevestigGeenEmail")
    assert prompt_kinds(d, portal, acc) == []
    age_account(d, acc, "50 minutes")  # within the period: still acknowledged
    assert prompt_kinds(d, portal, acc) == []
    age_account(d, acc, "10 minutes")
    assert prompt_kinds(d, portal, acc) == ["bevestigGeenEmail"]

    # a verified address: check it every period
    email = addr("prompt")
    acc2 = make_citizen(d, portal, new_bsn(), email)
    assert prompt_kinds(d, portal, acc2) == []
    age_account(d, acc2, "1 hour")
    assert prompt_kinds(d, portal, acc2) == ["controleerEmail"]
    ack(d, portal, acc2, "controleerEmail")
    assert prompt_kinds(d, portal, acc2) == []
    age_account(d, acc2, "50 minutes")
    assert prompt_kinds(d, portal, acc2) == []
    age_account(d, acc2, "10 minutes")
    assert prompt_kinds(d, portal, acc2) == ["controleerEmail"]

    # a hard bounce (set by the delivery side): fix the address
    d.services.psql("UPDATE accounts SET email_bounced_at = now() WHERE id = %s", (acc2,))
    assert prompt_kinds(d, portal, acc2) == ["herstelEmail"]
    ack(d, portal, acc2, "herstelEmail")
    assert prompt_kinds(d, portal, acc2) == []
    age_account(d, acc2, "50 minutes")
    assert prompt_kinds(d, portal, acc2) == []
    age_account(d, acc2, "10 minutes")
    assert prompt_kinds(d, portal, acc2) == ["herstelEmail"]
    # fixing the address clears the bounce and with it the prompt
    new = addr("hersteld")
    d.request("PATCH", "/v1/accounts/%s" % acc2, token=portal, json={"emailadres": new})
    code = verification_code(wait_verification_mail(d, new))
    r = d.request("POST", "/v1/accounts/%s/emailverificaties/_bevestig" % acc2, token=portal,
                  json={"code": code})
    assert r.status == 200
    assert prompt_kinds(d, portal, acc2) == []
    assert d.services.psql("SELECT email_bounced_at FROM accounts WHERE id = %s",
                           (acc2,)) == [(None,)]

    assert_problem(d.request("POST", "/v1/accounts/%s/meldingen/onzin/_afgehandeld" % acc,
                             token=portal), 404)
    assert_problem(d.request("GET", "/v1/accounts/%s/meldingen" % uuid.uuid4(), token=portal),
                   404)


# ----------------------------------------------------------------------- box

def test_box_lists_newest_first_with_pagination(env, new_bsn):
    d, portal, agency = env["d"], env["portal"], env["agency"]
    bsn = new_bsn()
    acc = make_citizen(d, portal, bsn)
    ids = []
    for i in range(5):
        r = post_message(d, agency["token"], bsn, ref="box-%d" % i)
        ids.append(r.json()["berichtId"])
        d.services.psql("UPDATE messages SET publicatie_tijdstip = now() - %s * interval '1 hour'"
                        " WHERE id = %s", (10 - i, ids[-1]))
    hidden = post_message(d, agency["token"], bsn, publicatieTijdstip=_in_hours(24))
    assert hidden.status == 201
    url = "/v1/accounts/%s/berichten" % acc
    r = d.request("GET", url + "?pagina=1&paginaGrootte=2", token=portal)
    assert r.status == 200, r.text
    body = r.json()
    assert [m["berichtId"] for m in body["berichten"]] == [ids[4], ids[3]]
    assert (body["totaalAantal"], body["aantalPaginas"], body["pagina"],
            body["paginaGrootte"]) == (5, 3, 1, 2)
    assert r.headers["X-Total-Count"] == "5"
    links = body["_links"]
    assert links["next"]["href"] == url + "?pagina=2&paginaGrootte=2"
    assert links["last"]["href"] == url + "?pagina=3&paginaGrootte=2"
    assert "prev" not in links
    m = body["berichten"][0]
    assert m["afzender"] == {"oin": agency["oin"], "naam": agency["name"]}
    assert m["referentie"] == "box-4" and m["geopendOp"] is None
    last = d.request("GET", url + "?pagina=3&paginaGrootte=2", token=portal).json()
    assert [x["berichtId"] for x in last["berichten"]] == [ids[0]]
    assert "next" not in last["_links"] and last["_links"]["prev"]["href"].endswith("pagina=2&paginaGrootte=2")
    bad = assert_problem(d.request("GET", url + "?pagina=0&paginaGrootte=1000", token=portal), 400)
    assert sorted(p["name"] for p in bad["invalidParams"]) == ["pagina", "paginaGrootte"]
    assert_problem(d.request("GET", "/v1/accounts/%s/berichten" % uuid.uuid4(), token=portal), 404)

    # opened shows geopendOp; deleted disappears
    assert d.request("POST", "/v1/berichten/%s/openingen" % ids[4], token=portal).status == 201
    assert d.request("DELETE", "/v1/berichten/%s" % ids[3], token=portal).status == 204
    body = d.request("GET", url, token=portal).json()
    assert body["totaalAantal"] == 4
    assert body["berichten"][0]["berichtId"] == ids[4]
    assert body["berichten"][0]["geopendOp"]
    assert ids[3] not in [x["berichtId"] for x in body["berichten"]]


def _add_reminder(d, message_id, account_id):
    d.services.psql(
        "INSERT INTO notifications (message_id, account_id, kind, due_at) "
        "VALUES (%s, %s, 'repeat', now() + interval '14 days')", (message_id, account_id))


def test_hundred_concurrent_opens_record_one_time_and_cancel_reminders(env, new_bsn):
    d, portal, agency = env["d"], env["portal"], env["agency"]
    bsn = new_bsn()
    acc = make_citizen(d, portal, bsn)
    mid = post_message(d, agency["token"], bsn).json()["berichtId"]
    _add_reminder(d, mid, acc)
    url = "/v1/berichten/%s/openingen" % mid
    with concurrent.futures.ThreadPoolExecutor(25) as ex:
        results = list(ex.map(lambda _: d.request("POST", url, token=portal), range(100)))
    assert sorted(r.status for r in results) == [200] * 99 + [201]
    times = {r.json()["geopendOp"] for r in results}
    assert len(times) == 1 and None not in times
    [(opened,)] = d.services.psql("SELECT opened_at FROM messages WHERE id = %s", (mid,))
    assert opened is not None
    assert d.services.psql("SELECT state FROM notifications WHERE message_id = %s "
                           "AND kind = 'repeat'", (mid,)) == [("cancelled",)]
    assert_problem(d.request("POST", "/v1/berichten/%s/openingen" % uuid.uuid4(), token=portal),
                   404)


def test_deleting_a_message_cancels_its_mail(env, new_bsn):
    d, portal, agency = env["d"], env["portal"], env["agency"]
    bsn = new_bsn()
    acc = make_citizen(d, portal, bsn, addr("del"))
    mid = post_message(d, agency["token"], bsn, publicatieTijdstip=_in_hours(12)).json()["berichtId"]
    _add_reminder(d, mid, acc)
    assert d.request("DELETE", "/v1/berichten/%s" % mid, token=portal).status == 204
    assert d.request("DELETE", "/v1/berichten/%s" % mid, token=portal).status == 204
    states = d.services.psql("SELECT state FROM notifications WHERE message_id = %s", (mid,))
    assert sorted(states) == [("cancelled",), ("cancelled",)]
    [(deleted,)] = d.services.psql("SELECT deleted_at FROM messages WHERE id = %s", (mid,))
    assert deleted is not None
    assert_problem(d.request("DELETE", "/v1/berichten/%s" % uuid.uuid4(), token=portal), 404)
    assert_problem(d.request("POST", "/v1/berichten/%s/openingen" % mid, token=portal), 404)


# ---------------------------------------------------------------------- roles

def test_agency_token_gets_403_on_every_portal_call(env, new_bsn):
    d, portal, agency = env["d"], env["portal"], env["agency"]
    acc = make_citizen(d, portal, new_bsn())
    mid = str(uuid.uuid4())
    calls = [
        ("POST", "/v1/accounts", {"bsn": new_bsn()}),
        ("GET", "/v1/accounts/%s" % acc, None),
        ("PATCH", "/v1/accounts/%s" % acc, {"taal": "en"}),
        ("DELETE", "/v1/accounts/%s" % acc, None),
        ("POST", "/v1/accounts/%s/emailverificaties" % acc, None),
        ("POST", "/v1/accounts/%s/emailverificaties/_bevestig" % acc, {"code": "123456"}),
        ("GET", "/v1/accounts/%s/abonnementen" % acc, None),
        ("GET", "/v1/accounts/%s/abonnementen/%s" % (acc, agency["oin"]), None),
        ("PUT", "/v1/accounts/%s/abonnementen/%s" % (acc, agency["oin"]), {"actief": False}),
        ("GET", "/v1/accounts/%s/meldingen" % acc, None),
        ("POST", "/v1/accounts/%s/meldingen/controleerEmail/_afgehandeld" % acc, None),
        ("GET", "/v1/accounts/%s/berichten" % acc, None),
        ("POST", "/v1/berichten/%s/openingen" % mid, None),
        ("DELETE", "/v1/berichten/%s" % mid, None),
    ]
    for method, path, body in calls:
        r = d.request(method, path, token=agency["token"], json=body)
        assert_problem(r, 403)
        assert_problem(d.request(method, path, json=body), 401)
    assert d.request("GET", "/v1/accounts/%s" % acc, token=portal).json()["actief"] is True
    assert_problem(d.request("POST", "/v1/berichten", token=portal,
                             json={"bsn": new_bsn(), "berichttype": "T1", "referentie": "x"}), 403)


# ----------------------------------------------------------------- retention

STATS_SQL = """
SELECT count(*),
       count(*) FILTER (WHERE opened_at <= publicatie_tijdstip + interval '21 days'),
       count(*) FILTER (WHERE opened_at <= publicatie_tijdstip + interval '42 days')
FROM messages m JOIN agencies a ON a.id = m.agency_id
WHERE a.oin = %s AND publicatie_tijdstip > now() - interval '43 days'
"""


def agency_report(d, ministry, oin):
    """This agency's row of the ministry's report over every year its test
    messages were published in (now and up to 61 days back)."""
    years = sorted({datetime.date.today().year,
                    (datetime.date.today() - datetime.timedelta(days=61)).year})
    rows = []
    for year in years:
        r = d.request("GET", "/v1/rapportages/openingspercentages?jaar=%d" % year,
                      token=ministry)
        assert r.status == 200, r.text
        rows += [o for o in r.json()["organisaties"] if o["oin"] == oin]
    if len(rows) == 1:
        return rows[0]
    return {"aantalBerichten": sum(o["aantalBerichten"] for o in rows), "rijen": rows}


RETENTION = {"retention.min_days": 1, "retention.default_days": 30, "retention.max_days": 60,
             "retention.agency_record_days": 60, "retention.interval": "200ms"}


def in_box(d, portal, account):
    r = d.request("GET", "/v1/accounts/%s/berichten?paginaGrootte=100" % account, token=portal)
    assert r.status == 200, r.text
    return {b["berichtId"] for b in r.json()["berichten"]}


def janitor_passes(d):
    return d.log_text().count("janitor: pass done")


def test_janitor_keeps_the_agency_record_and_the_box_follows_the_citizen(make_daemon, new_bsn):
    d = make_daemon("janitor", **RETENTION)
    portal = d.token("portal")
    agency = make_agency(d)
    accounts = {}
    for name, days in (("long", 60), ("short", 1), ("default", None)):
        bsn = new_bsn()
        acc = make_citizen(d, portal, bsn)
        if days:
            r = d.request("PATCH", "/v1/accounts/%s" % acc, token=portal,
                          json={"bewaartermijnDagen": days})
            assert r.json()["bewaartermijnDagen"] == days
        accounts[name] = (bsn, acc)
    # name: (account, days since publication, deleted by the citizen,
    #        the agency's record purged?, in the citizen's box?)
    plan = {
        "L50": ("long", 50, False, False, True),     # within both
        "L61": ("long", 61, False, True, False),     # the agency record's 60 days passed
        "S2": ("short", 2, False, False, False),     # the citizen's retention passed
        "S44": ("short", 44, False, False, False),
        "DEL50": ("long", 50, True, False, False),   # deleted: out of the box, record kept
        "DEL61": ("long", 61, True, True, False),
        "DEL10": ("short", 10, True, False, False),
        "DEF20": ("default", 20, False, False, True),   # default 30 days
        "DEF40": ("default", 40, False, False, False),
        # (not older: test_stats owns the cohorts from 3 months back)
        "DEF70": ("default", 70, False, True, False),
    }
    ids = {}
    for name, (who, _, _, _, _) in plan.items():
        r = post_message(d, agency["token"], accounts[who][0], ref="ret-%s" % name)
        assert r.status == 201
        ids[name] = r.json()["berichtId"]
    _add_reminder(d, ids["L61"], accounts["long"][1])
    d.services.psql("UPDATE messages SET opened_at = now() - interval '1 day' WHERE id = %s",
                    (ids["S2"],))
    # one transaction, so the janitor sees all of it or nothing; the
    # provisional figures are taken in the same snapshot
    conn = d.services.pg_connect(autocommit=False)
    try:
        with conn.cursor() as cur:
            for name, (_, days, deleted, _, _) in plan.items():
                cur.execute("UPDATE messages SET publicatie_tijdstip = now() - %s * interval "
                            "'1 day', deleted_at = CASE WHEN %s THEN now() END WHERE id = %s",
                            (days, deleted, ids[name]))
            cur.execute(STATS_SQL, (agency["oin"],))
            before = cur.fetchall()
        conn.commit()
    finally:
        conn.close()
    assert before == [(4, 1, 1)]  # S2 (opened), DEL10, DEF20, DEF40
    ministry = d.token("ministry")
    report_before = agency_report(d, ministry, agency["oin"])
    assert report_before["aantalBerichten"] == len(plan)

    def present():
        rows = d.services.psql("SELECT id::text FROM messages WHERE id = ANY(%s::uuid[])",
                               (list(ids.values()),))
        return {r[0] for r in rows}

    want_kept = {ids[n] for n, p in plan.items() if not p[3]}
    wait_until(lambda: present() == want_kept)
    assert d.services.psql("SELECT count(*) FROM notifications WHERE message_id = %s",
                           (ids["L61"],))[0][0] == 0
    # provisional (open-window) figures are untouched by the purge, and the
    # ministry's report (read from the rollups) is the same as before it
    assert d.services.psql(STATS_SQL, (agency["oin"],)) == before
    assert agency_report(d, ministry, agency["oin"]) == report_before
    # the citizen's box follows the citizen's choices, not the agency record
    for who in ("long", "short", "default"):
        want = {ids[n] for n, p in plan.items() if p[0] == who and p[4]}
        assert in_box(d, portal, accounts[who][1]) == want, who
    # a copy out of the box can be neither opened nor deleted again
    assert d.request("POST", "/v1/berichten/%s/openingen" % ids["S44"],
                     token=portal).status == 404
    assert d.request("DELETE", "/v1/berichten/%s" % ids["DEF40"], token=portal).status == 404

    # once its 60 days pass, L50 goes too
    d.services.psql("UPDATE messages SET publicatie_tijdstip = now() - interval '61 days' "
                    "WHERE id = %s", (ids["L50"],))
    wait_until(lambda: ids["L50"] not in present())
    assert present() == want_kept - {ids["L50"]}
    assert "janitor:" in d.log_text()


def _agency_view(d, agency, bsn, mid, ref):
    """What the agency can see of one of its messages: GET and a replay."""
    g = d.request("GET", "/v1/berichten/%s" % mid, token=agency["token"])
    p = d.request("POST", "/v1/berichten", token=agency["token"],
                  json={"bsn": bsn, "berichttype": "T1", "referentie": ref})
    skip = {"date", "x-request-id"}
    heads = lambda r: sorted((k.lower(), v if k.lower() not in ("location",) else "loc")
                             for k, v in r.headers.items() if k.lower() not in skip)
    body = g.json() if g.status == 200 else None
    if body:
        body = {k: v for k, v in body.items() if k not in ("berichtId", "referentie",
                                                           "publicatieTijdstip",
                                                           "ontvangstTijdstip",
                                                           "aanmaakTijdstip")}
    replay = p.json() if p.status in (200, 201) else None
    return {"get": g.status, "get_body": body, "get_headers": heads(g), "replay": p.status,
            "replay_same_id": (replay or {}).get("berichtId") == mid,
            "replay_headers": heads(p)}


def test_a_deletion_is_invisible_to_the_agency(make_daemon, new_bsn):
    """Issue 14.2: a deleted and an undeleted message, both past the
    statistics window, look the same to the agency (status, body, headers,
    idempotent replay) until the fixed period ends; then both go at the
    same janitor pass."""
    d = make_daemon("deletion", **RETENTION)
    portal = d.token("portal")
    agency = make_agency(d)
    bsn = new_bsn()
    acc = make_citizen(d, portal, bsn, "del-%s@example.nl" % secrets.token_hex(4))
    assert d.request("PATCH", "/v1/accounts/%s" % acc, token=portal,
                     json={"bewaartermijnDagen": 60}).status == 200
    refs = {"kept": "del-kept-" + secrets.token_hex(3), "deleted": "del-gone-" + secrets.token_hex(3)}
    ids = {k: post_message(d, agency["token"], bsn, ref=ref).json()["berichtId"]
           for k, ref in refs.items()}
    assert d.request("DELETE", "/v1/berichten/%s" % ids["deleted"], token=portal).status == 204
    # both past the 6-week window, within the 60-day record period
    d.services.psql("UPDATE messages SET publicatie_tijdstip = now() - interval '50 days' "
                    "WHERE id = ANY(%s::uuid[])", (list(ids.values()),))
    passes = janitor_passes(d)
    wait_until(lambda: janitor_passes(d) >= passes + 3)
    views = {k: _agency_view(d, agency, bsn, ids[k], refs[k]) for k in ids}
    assert views["kept"]["get"] == 200 and views["kept"]["replay"] == 200
    assert views["kept"]["replay_same_id"]
    assert views["deleted"] == views["kept"]
    # the replay put nothing back: still out of the box, no new notification
    assert in_box(d, portal, acc) == {ids["kept"]}
    assert d.services.psql("SELECT count(*) FROM messages WHERE referentie = ANY(%s)",
                           (list(refs.values()),)) == [(2,)]

    # the period ends for both at once: never one without the other
    d.services.psql("UPDATE messages SET publicatie_tijdstip = now() - interval '61 days' "
                    "WHERE id = ANY(%s::uuid[])", (list(ids.values()),))
    seen = set()

    def gone():
        [(n,)] = d.services.psql("SELECT count(*) FROM messages WHERE id = ANY(%s::uuid[])",
                                 (list(ids.values()),))
        seen.add(n)
        return n == 0
    wait_until(gone, interval=0.02)
    assert seen <= {2, 0}, "one went before the other"
    for k in ids:
        assert d.request("GET", "/v1/berichten/%s" % ids[k],
                         token=agency["token"]).status == 404


def test_retention_bounds_must_be_ordered(services, tmp_path):
    from harness import BERICHTD, write_config
    import subprocess
    conf = tmp_path / "bad.conf"
    write_config(conf, services, **{"retention.min_days": 400, "retention.default_days": 365})
    p = subprocess.run([str(BERICHTD), "check-config", "-c", str(conf)], capture_output=True,
                       text=True)
    assert p.returncode == 1 and "min_days <= default_days <= max_days" in p.stderr


# ---------------------------------------------------------------------- logs

def test_no_bsn_or_address_in_the_log_after_a_full_scenario(make_daemon, new_bsn):
    # the level an operator runs (debug lines name request paths)
    d = make_daemon("privacy", **{"log.level": "info"})
    portal = d.token("portal")
    agency = make_agency(d)
    bsns = [new_bsn() for _ in range(3)]
    emails = [addr("privacy") for _ in range(3)]
    acc = make_citizen(d, portal, bsns[0], emails[0])
    d.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"emailadres": emails[1]})
    code = verification_code(wait_verification_mail(d, emails[1]))
    url = "/v1/accounts/%s/emailverificaties/_bevestig" % acc
    d.request("POST", url, token=portal, json={"code": "%06d" % ((int(code) + 1) % 1000000)})
    assert d.request("POST", url, token=portal, json={"code": code}).status == 200
    mid = post_message(d, agency["token"], bsns[0]).json()["berichtId"]
    d.request("POST", "/v1/berichten/%s/openingen" % mid, token=portal)
    d.request("DELETE", "/v1/berichten/%s" % mid, token=portal)
    d.request("PUT", "/v1/accounts/%s/abonnementen/%s" % (acc, agency["oin"]), token=portal,
              json={"actief": False})
    post_message(d, agency["token"], bsns[0])
    post_message(d, agency["token"], bsns[1])            # no box: 422
    rep = d.request("POST", "/v1/accounts", token=portal,
                    json={"bsn": bsns[2]}).json()["accountId"]
    # representatives (issue 11): a weergavenaam holding a BSN is refused, never logged
    one = "/v1/accounts/%s/vertegenwoordigers/%s" % (acc, rep)
    body = {"soort": "machtiging", "geldigVanaf": "2026-01-01T00:00:00Z", "weergavenaam": "J"}
    assert d.request("PUT", one, token=portal,
                     json=dict(body, weergavenaam="J " + bsns[1])).status == 400
    assert d.request("PUT", one, token=portal, json=body).status == 201
    d.request("GET", "/v1/accounts/%s/vertegenwoordigingen" % rep, token=portal)
    rmid = post_message(d, make_agency(d)["token"], bsns[0]).json()["berichtId"]
    d.request("POST", "/v1/berichten/%s/openingen" % rmid, token=portal,
              json={"doorAccountId": rep})
    d.request("DELETE", one, token=portal)
    d.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"emailadres": "kapot"})
    d.request("GET", "/v1/accounts/%s/meldingen" % acc, token=portal)
    d.request("GET", "/v1/accounts/%s/berichten" % acc, token=portal)
    d.request("DELETE", "/v1/accounts/%s" % acc, token=portal)
    d.stop()
    log = d.log_text()
    assert "verification mail" in log and "verified" in log
    for secret in bsns + emails + [code]:
        assert secret not in log, secret
    # no line ties a message to an open or a deletion (docs/privacy.md)
    for line in log.splitlines():
        if mid in line or rmid in line:
            assert not re.search(r"open|delet|verwijder", line, re.I), line
        assert not (rep in line and rmid in line), line


# ------------------------------------------------- verification leftovers

def test_a_verification_code_is_erased_once_its_mail_is_accepted(make_daemon, new_bsn):
    d = make_daemon("code-erased")
    portal = d.token("portal")
    email = addr("erase")
    acc = make_citizen(d, portal, new_bsn())
    r = d.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"emailadres": email})
    assert r.status == 200, r.text
    code = verification_code(wait_verification_mail(d, email))
    wait_until(lambda: d.services.psql(
        "SELECT state, payload FROM notifications WHERE account_id = %s AND kind = 'verify'",
        (acc,)) == [("sent", None)])
    rows = d.services.psql("SELECT count(*) FROM notifications WHERE payload::text LIKE %s",
                           ("%" + code + "%",))
    assert rows == [(0,)]
    # the code still works: only its hash was ever needed to check it
    r = d.request("POST", "/v1/accounts/%s/emailverificaties/_bevestig" % acc, token=portal,
                  json={"code": code})
    assert r.status == 200, r.text


def test_verification_mails_go_once_their_code_expired(make_daemon, new_bsn):
    d = make_daemon("verify-purge", **{"portal.verify_ttl": "2s", "retention.interval": "200ms",
                                       "delivery.workers": 0})
    portal = d.token("portal")
    acc = make_citizen(d, portal, new_bsn())
    unconfirmed = addr("never-confirmed")
    r = d.request("PATCH", "/v1/accounts/%s" % acc, token=portal, json={"emailadres": unconfirmed})
    assert r.status == 200, r.text
    assert d.services.psql("SELECT count(*) FROM notifications WHERE recipient = %s",
                           (unconfirmed,)) == [(1,)]
    # the address the citizen never confirmed is gone with the expired code
    wait_until(lambda: d.services.psql("SELECT count(*) FROM notifications WHERE recipient = %s",
                                 (unconfirmed,)) == [(0,)], timeout=30)

