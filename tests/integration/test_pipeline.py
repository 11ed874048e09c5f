"""The walking skeleton end to end: an agency posts a message over HTTP, the
daemon stores it in the real PostgreSQL, schedules it in the real Redis and
a delivery worker mails it to the real SMTP sink, where we read it back."""
import re
import secrets
import uuid

import pytest

from harness import assert_problem, make_agency, make_citizen

PROBLEM = "application/problem+json"


def agency_name():
    return "Gemeente Teststad %s" % secrets.token_hex(3)


@pytest.fixture
def tokens(daemon):
    agency = make_agency(daemon, name=agency_name())
    return {
        "agency": agency["token"],
        "portal": daemon.token("portal"),
        "name": agency["name"],
        "oin": agency["oin"],
    }


def test_posted_message_arrives_as_mail_with_proper_headers(daemon, tokens, mailbox, new_bsn):
    bsn = new_bsn()
    email = "burger-%s@example.nl" % secrets.token_hex(4)
    make_citizen(daemon, tokens["portal"], bsn, email)

    r = daemon.request("POST", "/v1/berichten", token=tokens["agency"],
                       json={"bsn": bsn, "berichttype": "AANSLAG", "referentie": "REF-GEHEIM-42"})
    assert r.status == 201, r.text
    bericht_id = r.json()["berichtId"]
    assert uuid.UUID(bericht_id).version == 7
    assert r.headers["Location"] == "/v1/berichten/%s" % bericht_id

    [mail] = mailbox.wait_for(1, predicate=lambda m: email in m.rcpt_tos)
    assert mail.rcpt_tos == [email]
    for h in ("Date", "Message-ID", "From", "To", "Subject", "MIME-Version", "Content-Type"):
        assert mail[h], h
    assert mail["To"] == email
    assert mail["MIME-Version"] == "1.0"
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    assert mail["Auto-Submitted"] == "auto-generated"

    [(notif_id,)] = daemon.services.psql(
        "SELECT n.id FROM notifications n WHERE n.message_id = %s AND kind = 'new'", (bericht_id,))
    # the mail's names come from its random ref, never from the sequential id
    [(ref,)] = daemon.services.psql(
        "SELECT m.ref FROM mails m JOIN notifications n ON n.mail_id = m.id WHERE n.id = %s",
        (notif_id,))
    assert re.fullmatch(r"[0-9a-f]{32}", ref)
    assert mail["Message-ID"] == "<%s@berichtenbox.example>" % ref
    assert re.fullmatch(r"bounce\+%s-[0-9a-f]{16}@berichtenbox\.example" % ref, mail.mail_from)
    # (the ref is random hex, so digits may occur in it; the format above
    # leaves no room for the sequential id)

    body = mail.get_content()
    assert tokens["name"] in body
    assert "REF-GEHEIM-42" not in body and "AANSLAG" not in body
    assert "REF-GEHEIM-42" not in mail.raw.decode() and "AANSLAG" not in mail.raw.decode()
    assert "http" not in body.lower()  # no links in the body (phishing)

    [(state,)] = daemon.services.psql(
        "SELECT state FROM notifications WHERE id = %s", (notif_id,))
    assert state == "sent"


def test_message_is_stored_with_keyed_hash_not_bsn(daemon, tokens, new_bsn):
    bsn = new_bsn()
    make_citizen(daemon, tokens["portal"], bsn)
    r = daemon.request("POST", "/v1/berichten", token=tokens["agency"],
                       json={"bsn": bsn, "berichttype": "T1", "referentie": "hash-check"})
    assert r.status == 201, r.text
    rows = daemon.services.psql(
        "SELECT a.bsn_hash, m.* FROM messages m JOIN accounts a ON a.id = m.account_id "
        "WHERE m.id = %s", (r.json()["berichtId"],))
    assert len(rows) == 1
    assert re.fullmatch(r"[0-9a-f]{64}", rows[0][0])
    assert bsn not in repr(rows)
    dump = daemon.services.psql("SELECT string_agg(t::text, '|') FROM accounts t")[0][0]
    assert bsn not in dump


def test_account_without_address_stores_message_but_sends_nothing(daemon, tokens, new_bsn):
    bsn = new_bsn()
    make_citizen(daemon, tokens["portal"], bsn)
    r = daemon.request("POST", "/v1/berichten", token=tokens["agency"],
                       json={"bsn": bsn, "berichttype": "T1", "referentie": "no-mail"})
    assert r.status == 201
    n = daemon.services.psql("SELECT count(*) FROM notifications WHERE message_id = %s",
                             (r.json()["berichtId"],))[0][0]
    assert n == 0


def test_message_for_bsn_without_box_is_422_and_not_stored(daemon, tokens, new_bsn):
    r = daemon.request("POST", "/v1/berichten", token=tokens["agency"],
                       json={"bsn": new_bsn(), "berichttype": "T1", "referentie": "nobody-422"})
    body = assert_problem(r, 422)
    assert body["type"].endswith("geen-actieve-berichtenbox")
    assert daemon.services.psql(
        "SELECT count(*) FROM messages WHERE referentie = 'nobody-422'")[0][0] == 0


def test_same_referentie_same_body_returns_first_id_and_other_body_conflicts(
        daemon, tokens, new_bsn):
    bsn = new_bsn()
    make_citizen(daemon, tokens["portal"], bsn, "dup-%s@example.nl" % secrets.token_hex(3))
    msg = {"bsn": bsn, "berichttype": "T1", "referentie": "idem-1"}
    first = daemon.request("POST", "/v1/berichten", token=tokens["agency"], json=msg)
    again = daemon.request("POST", "/v1/berichten", token=tokens["agency"], json=msg)
    assert first.status == 201 and again.status == 200
    assert again.json()["berichtId"] == first.json()["berichtId"]
    other = daemon.request("POST", "/v1/berichten", token=tokens["agency"],
                           json=dict(msg, berichttype="T2"))
    assert_problem(other, 409)
    assert daemon.services.psql(
        "SELECT count(*) FROM notifications n JOIN messages m ON m.id = n.message_id "
        "WHERE n.kind = 'new' AND m.referentie = 'idem-1'")[0][0] == 1


def test_invalid_message_lists_every_invalid_field(daemon, tokens):
    r = daemon.request("POST", "/v1/berichten", token=tokens["agency"],
                       json={"bsn": "123456789", "berichttype": "much-too-long",
                             "referentie": "", "onbekend": 1})
    body = assert_problem(r, 400)
    names = sorted(p["name"] for p in body["invalidParams"])
    assert names == ["berichttype", "bsn", "onbekend", "referentie"]
    for p in body["invalidParams"]:
        assert p["code"] and p["reason"]


def test_post_without_or_with_wrong_token_is_401(daemon):
    r = daemon.request("POST", "/v1/berichten", json={})
    assert_problem(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = daemon.request("POST", "/v1/berichten", token="0" * 64, json={})
    assert_problem(r, 401)


def test_portal_token_cannot_post_messages_and_agency_cannot_manage_accounts(daemon, tokens):
    r = daemon.request("POST", "/v1/berichten", token=tokens["portal"], json={})
    assert_problem(r, 403)
    r = daemon.request("POST", "/v1/accounts", token=tokens["agency"], json={"bsn": "111222333"})
    assert_problem(r, 403)


def test_unknown_route_and_wrong_method_are_problems_with_api_version(daemon):
    assert_problem(daemon.request("GET", "/v1/bestaat-niet"), 404)
    r = daemon.request("PUT", "/v1/berichten")
    assert_problem(r, 405)
    assert "POST" in r.headers["Allow"]


def test_wrong_content_type_is_415(daemon, tokens):
    r = daemon.request("POST", "/v1/berichten", token=tokens["agency"], body=b"bsn=1",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(r, 415)


def test_malformed_json_is_400(daemon, tokens):
    r = daemon.request("POST", "/v1/berichten", token=tokens["agency"], body=b'{"bsn": ',
                       headers={"Content-Type": "application/json"})
    assert_problem(r, 400)


def test_healthz_and_readyz(daemon):
    r = daemon.request("GET", "/healthz")
    assert r.status == 200 and r.headers["API-Version"]
    r = daemon.ops_request("GET", "/readyz")
    assert r.status == 200
    assert r.json() == {"status": "ok", "postgres": True, "redis": True}


def test_readyz_is_503_while_redis_is_down(daemon, services):
    services.redis_stop()
    try:
        r = daemon.ops_request("GET", "/readyz")
        assert r.status == 503
        assert r.json()["redis"] is False
    finally:
        services.redis_start()


def test_readyz_is_503_while_postgres_is_down(daemon, services):
    services.pg_stop()
    try:
        r = daemon.ops_request("GET", "/readyz")
        assert r.status == 503
        assert r.json()["postgres"] is False
    finally:
        services.pg_start()


def test_mail_is_sent_after_redis_lost_the_schedule(make_daemon, services, mailbox, new_bsn,
                                                    new_oin):
    """Redis is only the schedule: a FLUSHALL before delivery loses nothing."""
    d = make_daemon("flush", **{"delivery.workers": 0, "delivery.reconcile_interval": "200ms"})
    agency = make_agency(d, name=agency_name())["token"]
    portal = d.token("portal")
    email = "flush-%s@example.nl" % secrets.token_hex(4)
    bsn = new_bsn()
    make_citizen(d, portal, bsn, email)
    r = d.request("POST", "/v1/berichten", token=agency,
                  json={"bsn": bsn, "berichttype": "T1", "referentie": "flushed"})
    assert r.status == 201
    services.redis("FLUSHALL")
    d.stop()
    d2 = make_daemon("flush2", group=d.group, **{"delivery.reconcile_interval": "200ms"})
    assert d2.running()
    mails = mailbox.wait_for(1, predicate=lambda m: email in m.rcpt_tos)
    assert len(mails) == 1


def test_migrate_twice_changes_nothing(daemon):
    out = daemon.cli("migrate")
    assert out.returncode == 0, out.stderr
    assert "0 applied" in out.stdout
    versions = daemon.services.psql("SELECT version FROM schema_migrations ORDER BY version")
    assert versions[0][0] == "0001"


def test_token_is_printed_once_and_only_its_hash_is_stored(daemon, new_oin):
    token = daemon.token("agency", oin=new_oin(), name="Waterschap Test")
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    rows = daemon.services.psql("SELECT token_hash FROM api_tokens")
    assert all(token != h for (h,) in rows)
    import hashlib
    assert (hashlib.sha256(token.encode()).hexdigest(),) in rows


def test_check_config_reports_file_line_and_key(daemon, tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("[http]\nlisten = 127.0.0.1:1\n\n[delivery]\nworkerz = 2\n"
                   "[smtp]\nport = lots\n")
    out = daemon.cli("check-config", "-c", str(bad), conf=False)
    assert out.returncode == 1
    assert "bad.conf:5: delivery.workerz: unknown key" in out.stderr
    assert "bad.conf:7: smtp.port: not an integer" in out.stderr
    assert daemon.cli("check-config").returncode == 0


@pytest.mark.parametrize("args", [["run"], ["migrate"], ["check-config"], ["token", "create"],
                                  ["config-example"]])
def test_every_subcommand_has_help(daemon, args):
    out = daemon.cli(*args, "--help", conf=False)
    assert out.returncode == 0
    assert "usage: berichtd" in out.stdout


def test_logs_carry_no_bsn_or_address(daemon, tokens, new_bsn, mailbox):
    bsn = new_bsn()
    email = "privacy-%s@example.nl" % secrets.token_hex(4)
    make_citizen(daemon, tokens["portal"], bsn, email)
    r = daemon.request("POST", "/v1/berichten", token=tokens["agency"],
                       json={"bsn": bsn, "berichttype": "T1", "referentie": "privacy"})
    assert r.status == 201
    mailbox.wait_for(1, predicate=lambda m: email in m.rcpt_tos)
    log = daemon.log_text()
    assert bsn not in log and email not in log
    assert tokens["agency"] not in log and tokens["portal"] not in log


def test_unregistered_berichttype_is_refused_and_registration_needs_no_restart(daemon, tokens,
                                                                            new_bsn):
    bsn = new_bsn()
    make_citizen(daemon, tokens["portal"], bsn)
    msg = {"bsn": bsn, "berichttype": "NIEUW", "referentie": "type-1"}
    r = daemon.request("POST", "/v1/berichten", token=tokens["agency"], json=msg)
    body = assert_problem(r, 400)
    assert [p["name"] for p in body["invalidParams"]] == ["berichttype"]
    assert daemon.services.psql("SELECT count(*) FROM messages WHERE referentie = 'type-1'")[0][0] == 0
    out = daemon.cli("berichttype", "add", "--oin", tokens["oin"], "--code", "NIEUW",
                     "--herinnering", "10d")
    assert out.returncode == 0, out.stderr
    r = daemon.request("POST", "/v1/berichten", token=tokens["agency"], json=msg)
    assert r.status == 201, r.text
    listing = daemon.cli("berichttype", "list", "--oin", tokens["oin"]).stdout
    assert "NIEUW" in listing and "10 days" in listing


def test_redis_can_be_configured_as_a_url(make_daemon, services, mailbox, new_bsn):
    d = make_daemon("redis-url", **{"redis.host": None, "redis.port": None,
                                   "redis.url": "redis://127.0.0.1:%d" % services.redis_port})
    r = d.ops_request("GET", "/readyz")
    assert r.status == 200 and r.json()["redis"] is True
    agency = make_agency(d)
    bsn, email = new_bsn(), "url-%s@example.nl" % secrets.token_hex(4)
    make_citizen(d, d.token("portal"), bsn, email)
    r = d.request("POST", "/v1/berichten", token=agency["token"],
                  json={"bsn": bsn, "berichttype": "T1", "referentie": "via-url"})
    assert r.status == 201
    mailbox.wait_for(1, predicate=lambda m: email in m.rcpt_tos)
