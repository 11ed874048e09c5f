"""Logs an operator can use (issue 15): logfmt lines, the request id on every
line a request causes (X-Request-ID honoured and returned), an access line per
request, one summary per outage instead of a line per notification, libpq's
notices through the same logger, and the privacy check of all daemon logs
(logscan.py, run by conftest.py at the end of the session)."""
import secrets
import socket
import time

import pytest

import logscan
from harness import (agency_id, assert_problem, mails_to, make_agency, make_citizen, post,
                     read_response, wait_until)
from test_notify import bulk_scheduled


def lines_with(d, **want):
    """The daemon's parsed log lines that have every key=value of want."""
    return [r for r in d.log_records() if all(r.get(k) == v for k, v in want.items())]


# ------------------------------------------------------------- the format

def test_every_daemon_line_is_logfmt_with_ts_level_msg(make_daemon):
    d = make_daemon("fmt")
    d.request("GET", "/healthz")
    d.stop()
    lines = [l for l in d.log_file.read_text().splitlines() if l]
    assert lines
    for line in lines:
        rec = logscan.parse_line(line)
        assert rec, "not logfmt: %r" % line
        assert rec["level"] in ("error", "warn", "info", "debug"), line
        assert rec["ts"].endswith("Z") and "T" in rec["ts"], line
        assert "msg" in rec, line


def test_logfmt_parser_reads_quotes_and_escapes():
    rec = logscan.parse_line('ts=2026-12-02T03:04:05.123Z level=warn msg="a \\"b\\"\\nc" '
                             'k=v e="" request_id=abc')
    assert rec == {"ts": "2026-12-02T03:04:05.123Z", "level": "warn", "msg": 'a "b"\nc',
                   "k": "v", "e": "", "request_id": "abc"}
    assert logscan.parse_line("==== start 2026 ====") == {}
    assert logscan.parse_line("<6>ts=x level=info msg=y")["msg"] == "y"


# ----------------------------------------------------------- request ids

def test_x_request_id_is_honoured_returned_and_on_the_lines_of_the_request(daemon):
    rid = "test-%s" % secrets.token_hex(8)
    r = daemon.request("GET", "/v1/berichten/x", headers={"X-Request-ID": rid})
    assert_problem(r, 401)
    assert r.headers["X-Request-ID"] == rid
    access = wait_until(lambda: lines_with(daemon, msg="access", request_id=rid),
                        what="the access line of %s" % rid)
    assert len(access) == 1


@pytest.mark.parametrize("given", [
    "x" * 65,                       # too long
    "mail-jan@example.nl",          # an address
    "id-111222333-x",               # a BSN
    "two words",                    # a blank
    "",                             # empty
])
def test_an_unusable_x_request_id_is_replaced(daemon, given):
    r = daemon.request("GET", "/healthz", headers={"X-Request-ID": given})
    assert r.status == 200
    rid = r.headers["X-Request-ID"]
    assert rid and rid != given and len(rid) <= 64
    wait_until(lambda: lines_with(daemon, msg="access", request_id=rid), what="access line")
    if given:
        assert given not in daemon.log_text()


def test_every_answer_has_a_request_id_404_405_413_400_and_framing(make_daemon):
    daemon = make_daemon("rid-all", **{"http.max_body": "64k"})
    ids = set()
    for method, path, kw, status in [
            ("GET", "/v1/bestaat-niet", {}, 404),
            ("DELETE", "/v1/berichten", {}, 405),
            ("POST", "/v1/berichten", {"body": "x" * (128 * 1024),
                                       "headers": {"Content-Type": "application/json"}}, 413),
            ("GET", "/healthz?onbekend=1", {}, 400)]:
        r = daemon.request(method, path, **kw)
        assert r.status == status, (path, r.text)
        assert r.headers.get("X-Request-ID"), (path, r.headers)
        ids.add(r.headers["X-Request-ID"])
    assert len(ids) == 4
    # a head framing.c refuses before evhttp parses it
    with socket.create_connection(("127.0.0.1", int(daemon.base_url.rsplit(":", 1)[1]))) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
        status, headers, _ = read_response(s)
    assert status == 400 and headers.get("x-request-id")


def test_a_request_s_error_lines_carry_its_request_id(make_daemon, services):
    """While PostgreSQL is down the auth lookup fails: its warning names the request."""
    d = make_daemon("rid-err")
    token = d.token("portal")
    services.pg_stop()
    try:
        rid = "err-%s" % secrets.token_hex(6)
        r = d.request("GET", "/v1/accounts/%s" % ("0" * 8 + "-0000-7000-8000-" + "0" * 12),
                      token=token + "x", headers={"X-Request-ID": rid})
        assert r.status == 503, r.text
        assert r.headers["X-Request-ID"] == rid
        mine = wait_until(lambda: [l for l in d.log_records() if l.get("request_id") == rid
                                   and l["msg"] != "access"], what="an error line of " + rid)
        assert any(l["level"] in ("warn", "error") for l in mine), mine
    finally:
        services.pg_start()


# ------------------------------------------------------------ access lines

def test_access_lines_for_401_and_404_name_the_route_never_what_filled_it(daemon, new_bsn):
    bsn = new_bsn()
    email = "access-%s@example.nl" % secrets.token_hex(4)
    r = daemon.request("GET", "/v1/accounts/%s/berichten?pagina=1" % bsn,
                       headers={"X-Request-ID": "acc-401"})
    assert_problem(r, 401)
    r = daemon.request("GET", "/v1/nergens/%s/%s?email=%s" % (bsn, email, email),
                       headers={"X-Request-ID": "acc-404"})
    assert_problem(r, 404)
    [a401] = wait_until(lambda: lines_with(daemon, msg="access", request_id="acc-401"),
                        what="401 line")
    [a404] = wait_until(lambda: lines_with(daemon, msg="access", request_id="acc-404"),
                        what="404 line")
    assert a401["status"] == "401" and a401["method"] == "GET"
    assert a401["path"] == "/v1/accounts/{}/berichten" and a401["query"] == "pagina"
    assert a401["role"] == "none" and a401["listener"] == "http"
    assert int(a401["bytes"]) > 0 and float(a401["duration_ms"]) >= 0
    assert a404["status"] == "404" and a404["path"] == "/v1/nergens/{}/{}"
    assert a404["query"] == ""
    log = daemon.log_text()
    assert bsn not in log and email not in log


def test_access_line_names_the_role_not_the_token(daemon):
    token = daemon.token("ministry")
    r = daemon.request("GET", "/v1/bestaat-niet", token=token, headers={"X-Request-ID": "rl-1"})
    assert r.status == 404
    r = daemon.request("GET", "/v1/berichten/x", token=token, headers={"X-Request-ID": "rl-2"})
    assert_problem(r, 403)
    [line] = wait_until(lambda: lines_with(daemon, msg="access", request_id="rl-2"),
                        what="access line")
    assert line["role"] == "ministry" and line["path"] == "/v1/berichten/{}"
    assert token not in daemon.log_text()


def test_ops_listener_requests_are_logged_too(daemon):
    r = daemon.ops_request("GET", "/metrics", headers={"X-Request-ID": "ops-1"})
    assert r.status == 200
    assert r.headers["X-Request-ID"] == "ops-1"
    [line] = wait_until(lambda: lines_with(daemon, msg="access", request_id="ops-1"),
                        what="access line")
    assert line["listener"] == "ops" and line["path"] == "/metrics"


# ------------------------------------------------------------------ outages

def test_smtp_outage_is_one_line_down_one_summary_back_not_one_per_mail(
        make_daemon, services, mailbox):
    """300 notifications during a 10 s outage: one 'unreachable' line with the
    real reason, one summary with how long and how many were deferred."""
    d = make_daemon("outage-log", **{"log.level": "info", "delivery.retry_base": "1s",
                                     "delivery.retry_max": "2s"})
    a = make_agency(d)
    services.smtp_stop()
    try:
        addrs = bulk_scheduled(services, agency_id(services, a["oin"]), 300,
                               "ol" + secrets.token_hex(3))
        d.services.redis("PING")
        # the reconciler puts them in Redis; the workers fail to reach the relay
        wait_until(lambda: lines_with(d, msg="SMTP relay unreachable"), timeout=60,
                   what="the relay to be found unreachable")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the outage lasts 10 s
            time.sleep(0.5)
    finally:
        services.smtp_start()
    wait_until(lambda: len(mails_to(mailbox, addrs)) >= 300, timeout=120, what="300 mails")
    d.stop()
    recs = d.log_records()
    down = [r for r in recs if r["msg"] == "SMTP relay unreachable"]
    back = [r for r in recs if r["msg"] == "SMTP relay reachable again"]
    assert len(down) == 1, down
    assert down[0]["service"] == "smtp" and down[0]["level"] == "warn"
    assert "refused" in down[0]["reason"].lower(), down[0]
    assert len(back) == 1, back
    assert int(back[0]["down_ms"]) > 0 and int(back[0]["deferred"]) >= 300, back[0]
    reminders = [r for r in recs if r["msg"] == "SMTP relay still unreachable"]
    assert len(reminders) <= 2, reminders  # at most one a minute
    per_mail = [r for r in recs if "retry" in r["msg"] and "notification" in r["msg"]]
    assert per_mail == [], per_mail[:5]
    assert len(recs) < 200, "%d lines for one outage" % len(recs)


def test_postgresql_and_redis_outages_are_one_line_down_and_one_back(make_daemon, services):
    """Every pool connection and every worker retries on its own; the log
    says once that the service went away and once that it is back."""
    d = make_daemon("db-outage", **{"log.level": "info"})
    services.pg_stop()
    try:
        wait_until(lambda: lines_with(d, msg="PostgreSQL unreachable"), timeout=30,
                   what="the pool to find PostgreSQL gone")
        deadline = time.monotonic() + 6  # a few backoff rounds of each connection
        while time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        services.pg_start()
    wait_until(lambda: lines_with(d, msg="PostgreSQL reachable again"), timeout=60,
               what="the pool back")
    services.redis_stop()
    try:
        wait_until(lambda: lines_with(d, msg="Redis unreachable") and
                   lines_with(d, msg="Redis (delivery) unreachable"), timeout=30,
                   what="the loop and the workers to find Redis gone")
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        services.redis_start()
    wait_until(lambda: lines_with(d, msg="Redis reachable again") and
               lines_with(d, msg="Redis (delivery) reachable again"), timeout=60,
               what="Redis back for the loop and the workers")
    d.stop()
    for what in ("PostgreSQL", "Redis", "Redis (delivery)"):
        [down] = lines_with(d, msg="%s unreachable" % what)
        assert down["reason"], down
        [back] = lines_with(d, msg="%s reachable again" % what)
        assert int(back["failures"]) >= 1 and int(back["down_ms"]) > 0, back
    noisy = [r for r in d.log_records() if "connect failed" in r["msg"]]
    assert noisy == [], noisy[:5]


# ------------------------------------------------------------- libpq notices

def test_a_postgresql_notice_is_logged_as_logfmt_with_the_request_id(make_daemon, services,
                                                                    new_bsn):
    """A notice PostgreSQL sends while a request's statement runs (here a
    trigger's RAISE NOTICE) is a line of its own, with that request's id."""
    d = make_daemon("notice")
    portal = d.token("portal")
    fn = "test_notice_%s" % secrets.token_hex(4)
    services.psql(
        "CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE NOTICE '%s for %%', NEW.id; RETURN NEW; END $$" % (fn, fn))
    services.psql("CREATE TRIGGER %s AFTER INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION "
                  "%s()" % (fn, fn))
    try:
        r = d.request("POST", "/v1/accounts", token=portal, json={"bsn": new_bsn()},
                      headers={"X-Request-ID": "notice-rid"})
        assert r.status == 201, r.text
        account = r.json()["accountId"]
    finally:
        services.psql("DROP TRIGGER %s ON accounts" % fn)
        services.psql("DROP FUNCTION %s()" % fn)
    [line] = wait_until(lambda: lines_with(d, msg="%s for %s" % (fn, account)),
                        what="the notice in the log")
    assert line["source"] == "postgres" and line["severity"] == "NOTICE"
    assert line["sqlstate"] == "00000" and line["level"] == "info"
    assert line["request_id"] == "notice-rid"


# ---------------------------------------------------- the privacy scanner

def test_the_scanner_finds_each_kind_of_secret(tmp_path):
    """conftest.py fails the run on these findings; here, a scratch log."""
    s = logscan.Secrets()
    s.add("bsn", "123456782")
    s.add("email", "Jan.Jansen@Example.nl")
    s.add("token", "tok_" + "a1" * 20)
    s.add("code", "481516")
    ok = ('ts=2026-12-02T03:04:05.123Z level=info msg=access path=/v1/accounts/{} '
          'bytes=481516 duration_ms=12.345 request_id=0193a4c2-7d1e-7abc-8123-a123456782bc')
    leaks = [
        'ts=2026-12-02T03:04:05.123Z level=info msg="account 123456782 created"',
        'ts=2026-12-02T03:04:05.123Z level=info msg="mail to jan.jansen@example.nl"',
        'ts=2026-12-02T03:04:05.123Z level=warn msg="auth tok_%s"' % ("a1" * 20),
        'ts=2026-12-02T03:04:05.123Z level=info msg="verify code=481516"',
        'ts=2026-12-02T03:04:05.123Z level=info msg="lookup 111222333"',   # unregistered BSN
        'ts=2026-12-02T03:04:05.123Z level=info msg="to piet@voorbeeld.nl"',  # unregistered
    ]
    clean = tmp_path / "berichtd-clean.log"
    clean.write_text(ok + "\n" + 'ts=x level=info msg="from noreply@berichtenbox.example"\n')
    assert logscan.scan_files([clean], s) == {}
    for i, leak in enumerate(leaks):
        f = tmp_path / ("berichtd-leak-%d.log" % i)
        f.write_text(ok + "\n" + leak + "\n")
        found = logscan.scan_files([f], s)
        assert list(found) == [f], leak
        assert found[f][0][0] == 2
    assert sorted(logscan.daemon_logs([tmp_path])) == sorted(tmp_path.glob("berichtd-*.log"))


def test_the_suite_registers_what_it_sends():
    s = logscan.Secrets()
    s.add_from({"bsn": "111222333", "x": [{"emailadres": "a-b@example.org"}],
                "code": "123456", "n": 5})
    s.add_from("Final-Recipient: rfc822; c@example.org\nX: bounce+r@berichtenbox.example")
    snap = s.snapshot()
    assert snap["bsn"] == {"111222333"} and snap["code"] == {"123456"}
    assert snap["email"] == {"a-b@example.org", "c@example.org"}
