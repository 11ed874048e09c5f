"""Issue 14, points 3 and 7 (HTTP): what the API listener answers and what it
never shows.

- /metrics and /readyz only on the operators' listener ([ops] listen);
  /healthz on the API listener says "ok" and nothing else.
- Requests that libevent itself would refuse (malformed, TRACE, chunked over
  max_body, Content-Length with Transfer-Encoding, ...) are answered as
  problem+json with API-Version and the security headers, like every other
  error.
- Content-Type must be application/json, parameters allowed, no prefix match.
- Unknown query parameters are 400 (a BSN never travels in a URI).
- POST /v1/ontvangers/_zoek costs one token of the agency's bucket per BSN.
"""
import json
import secrets
import socket
import time

import pytest

from harness import (assert_problem, inflight, make_agency, make_citizen, metric,
                     problem_type, read_response, wait_until)

SECURITY_HEADERS = ("api-version", "cache-control", "x-content-type-options",
                    "x-frame-options", "content-security-policy",
                    "strict-transport-security", "referrer-policy")


def _port(url):
    return int(url.rsplit(":", 1)[1])


def _connect(url, timeout=10):
    return socket.create_connection(("127.0.0.1", _port(url)), timeout=timeout)


def _closed(s, timeout=5):
    """True when the peer closes s (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def _raw_exchange(url, data, timeout=10):
    """Sends data on a fresh connection; returns (status, headers, body, closed)."""
    s = _connect(url, timeout)
    try:
        s.sendall(data)
        status, headers, body = read_response(s)
        return status, headers, body, _closed(s)
    finally:
        s.close()


def assert_raw_problem(status, headers, body, expect):
    assert status == expect, (status, headers, body[:300])
    assert headers.get("content-type", "").startswith("application/problem+json"), \
        (headers, body[:300])
    for h in SECURITY_HEADERS:
        assert h in headers, "%s missing: %s" % (h, headers)
    p = json.loads(body)
    assert p["status"] == expect and p["title"] and p["type"]
    return p


# ------------------------------------------------ point 3: the ops listener

def test_metrics_and_readyz_are_not_served_on_the_api_listener(daemon):
    for path in ("/metrics", "/readyz"):
        body = assert_problem(daemon.request("GET", path), 404)
        problem_type(body, "niet-gevonden")
        assert "berichtd_" not in json.dumps(body)
    r = daemon.request("GET", "/healthz")
    assert r.status == 200 and r.json() == {"status": "ok"}
    assert r.headers["API-Version"] and r.headers["X-Content-Type-Options"] == "nosniff"


def test_the_ops_listener_serves_health_readiness_and_metrics_only(daemon):
    r = daemon.ops_request("GET", "/metrics")
    assert r.status == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.headers["API-Version"] and r.headers["Cache-Control"] == "no-store"
    assert "berichtd_notifications_sent_total" in r.text
    r = daemon.ops_request("GET", "/readyz")
    assert r.status == 200 and r.json() == {"status": "ok", "postgres": True, "redis": True}
    r = daemon.ops_request("GET", "/healthz")
    assert r.status == 200 and r.json() == {"status": "ok"}
    # the API is not there, and errors are problems with the standard headers
    for method, path, status in (("GET", "/v1/openapi.json", 404),
                                 ("POST", "/v1/berichten", 404),
                                 ("POST", "/metrics", 405)):
        r = daemon.ops_request(method, path)
        assert_problem(r, status)
        assert r.headers["Strict-Transport-Security"]
    # scraping the metrics is not API traffic
    series = dict(route="/healthz", method="GET", code="2xx")
    before = metric(daemon, "berichtd_http_requests_total", **series) or 0
    daemon.request("GET", "/healthz")
    assert metric(daemon, "berichtd_http_requests_total", **series) == before + 1


def test_an_agency_polling_the_api_learns_nothing_when_a_reminder_is_due(
        make_daemon, mailbox, new_bsn):
    """The attack of issue 14.3: the agency knows, to the millisecond, when
    the reminder of its message falls due, and reads the sent counter then.
    On the API listener there is no counter; operators still see it."""
    d = make_daemon("reminder", **{"notify.repeat_after": "3s"})
    a = make_agency(d)
    citizen, email = new_bsn(), "herinner-%s@example.nl" % secrets.token_hex(4)
    make_citizen(d, d.token("portal"), citizen, email)

    def sent():
        return metric(d, "berichtd_notifications_sent_total")

    r = d.request("POST", "/v1/berichten", token=a["token"],
                  json={"bsn": citizen, "berichttype": "T1", "referentie": "h-" + email[9:17]})
    assert r.status == 201, r.text
    bid = r.json()["berichtId"]

    def state(kind):
        rows = d.services.psql("SELECT state FROM notifications WHERE message_id = %s "
                               "AND kind = %s", (bid, kind))
        return rows[0][0] if rows else None
    wait_until(lambda: state("new") == "sent", interval=0.05, what="the first mail sent")
    assert state("repeat") == "scheduled"
    # the counter is bumped just after the commit that says 'sent', before the ack
    wait_until(lambda: inflight(d) == 0, interval=0.05, what="the first mail acked")
    first = sent()

    def reminder_counted():
        # what the agency sees while the reminder goes out (unopened message)
        assert d.request("GET", "/metrics", token=a["token"]).status == 404
        return sent() != first
    wait_until(reminder_counted, interval=0.2, what="the reminder counted")
    assert sent() == first + 1 and state("repeat") == "sent"
    mailbox.wait_for(2, predicate=lambda m: email in m.rcpt_tos)
    assert d.request("GET", "/metrics", token=a["token"]).status == 404


def test_sigterm_closes_both_listeners(make_daemon):
    d = make_daemon("stop")
    assert d.ops_request("GET", "/healthz").status == 200
    assert d.stop() == 0
    for url in (d.base_url, d.ops_url):
        with pytest.raises(OSError):
            _connect(url, timeout=2).close()


def test_the_ops_listener_must_differ_from_the_api(make_daemon):
    d = make_daemon("same", start=False)
    listen = d.config["http"]["listen"]
    d.services.write_config(d.conf, **{"http.listen": listen, "ops.listen": listen})
    p = d.cli("check-config")
    assert p.returncode != 0
    assert "ops.listen: must differ from http.listen" in p.stdout + p.stderr


# ----------------------------------- point 7: libevent's own error pages

@pytest.fixture
def small(make_daemon):
    """A daemon with [http] max_body = 4k and an agency."""
    d = make_daemon("small", **{"http.max_body": "4k"})
    d.agency = make_agency(d)
    return d


def _auth(d):
    return b"Authorization: Bearer " + d.agency["token"].encode() + b"\r\n"


@pytest.mark.parametrize("request_bytes, status, closes", [
    # malformed request lines and header fields
    (b"GARBAGE\r\n\r\n", 400, True),
    (b"GET /healthz\r\n\r\n", 400, True),
    (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400, True),
    (b"GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),
    (b"GET /health\x01z HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, True),
    (b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", 400, True),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", 400, True),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, True),
    # methods evhttp refuses with its own 501
    (b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 501, True),
    (b"TRACE /v1/berichten HTTP/1.1\r\nHost: x\r\n\r\n", 501, True),
    (b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: x\r\n\r\n", 501, True),
    (b"BREW /v1/berichten HTTP/1.1\r\nHost: x\r\n\r\n", 501, True),
    # body framing
    (b"POST /v1/berichten HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, True),
    (b"POST /v1/berichten HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
     b"Content-Length: 5\r\n\r\n0\r\n\r\n", 400, True),
    (b"POST /v1/berichten HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, True),
    (b"POST /v1/berichten HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
     b"Content-Length: 3\r\n\r\n{}", 400, True),
    (b"POST /v1/berichten HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, True),
    (b"POST /v1/berichten HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400, True),
    (b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 400, True),
    (b"POST /v1/berichten HTTP/1.1\r\nHost: x\r\nExpect: magic\r\nContent-Length: 2\r\n\r\n{}",
     417, True),
    (b"POST /v1/berichten HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\n{}\r\n0\r\n\r\n", 400, True),
    (b"POST /v1/berichten HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"2\r\n{}XX0\r\n\r\n", 400, True),
    # a head over 64 KiB
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431, True),
], ids=["garbage", "no-version", "http-9.9", "two-spaces", "control-in-target",
        "no-colon", "space-before-colon", "obs-fold", "nul-in-value",
        "trace", "trace-known-path", "connect", "unknown-method",
        "cl-then-te", "te-then-cl", "cl-not-a-number", "two-different-cl",
        "te-gzip", "chunked-in-http-1.0", "head-with-body", "expect-other",
        "chunk-size-not-hex", "chunk-without-crlf", "head-over-64k"])
def test_requests_libevent_would_refuse_are_problems(daemon, request_bytes, status, closes):
    st, headers, body, closed = _raw_exchange(daemon.base_url, request_bytes)
    assert_raw_problem(st, headers, body, status)
    assert closed == closes
    # the daemon is fine and the next connection is served
    assert daemon.request("GET", "/healthz").status == 200


def test_the_ops_listener_refuses_the_same_way(daemon):
    st, headers, body, closed = _raw_exchange(daemon.ops_url,
                                              b"TRACE /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_raw_problem(st, headers, body, 501)
    st, headers, body, closed = _raw_exchange(daemon.ops_url, b"GARBAGE\r\n\r\n")
    assert_raw_problem(st, headers, body, 400)


def _chunked(data, size=1000):
    out = b""
    for i in range(0, len(data), size):
        part = data[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


def test_chunked_body_over_max_body_is_a_413_problem_and_the_connection_goes_on(
        small, new_bsn):
    d = small
    citizen = new_bsn()
    make_citizen(d, d.token("portal"), citizen)
    head = (b"POST /v1/batches HTTP/1.1\r\nHost: x\r\n" + _auth(d) +
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    s = _connect(d.base_url)
    try:
        s.sendall(head + _chunked(b" " * 20000))
        st, headers, body = read_response(s)
        problem_type(assert_raw_problem(st, headers, body, 413), "te-groot")
        assert headers.get("connection", "").lower() != "close"
        # the rest of that body was discarded; the same connection takes a chunked message
        msg = json.dumps({"bsn": citizen, "berichttype": "T1",
                          "referentie": "chunk-" + secrets.token_hex(4)}).encode()
        s.sendall(b"POST /v1/berichten HTTP/1.1\r\nHost: x\r\n" + _auth(d) +
                  b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
                  _chunked(msg, 7))
        st, headers, body = read_response(s)
        assert st == 201, body
        assert json.loads(body)["berichtId"]
    finally:
        s.close()
    assert d.running()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_413_with_connection_close_reaches_a_client_still_sending(small, framing):
    """A client that asked for Connection: close and is still sending its
    body when the 413 is out: the daemon reads on until the body ends, so
    the client's sends succeed and it reads the 413 (no reset). The pause
    outlasts the framing sweep (1 s) that used to close such a connection."""
    d = small
    body = b" " * (4 * 1024 * 1024)
    wire = _chunked(body, 65536) if framing == "chunked" else body
    head = (b"POST /v1/batches HTTP/1.1\r\nHost: x\r\n" + _auth(d) +
            b"Content-Type: application/json\r\nConnection: close\r\n" +
            (b"Transfer-Encoding: chunked\r\n\r\n" if framing == "chunked"
             else b"Content-Length: %d\r\n\r\n" % len(body)))
    s = _connect(d.base_url, timeout=30)
    try:
        s.sendall(head + wire[:8192])
        time.sleep(2.5)
        for i in range(8192, len(wire), 65536):
            s.sendall(wire[i:i + 65536])  # a reset here was the bug
            time.sleep(0.001)
        st, headers, resp = read_response(s)
        problem_type(assert_raw_problem(st, headers, resp, 413), "te-groot")
        assert _closed(s)
    finally:
        s.close()
    assert d.running()
    assert d.request("GET", "/healthz").status == 200


def test_chunked_with_expect_100_continue_gets_the_100_first(daemon, agency_token, new_bsn):
    citizen = new_bsn()
    make_citizen(daemon, daemon.token("portal"), citizen)
    msg = json.dumps({"bsn": citizen, "berichttype": "T1",
                      "referentie": "expect-" + secrets.token_hex(4)}).encode()
    s = _connect(daemon.base_url)
    try:
        s.sendall(b"POST /v1/berichten HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                  agency_token.encode() + b"\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
        st, _, _ = _read_interim(s)
        assert st == 100
        s.sendall(_chunked(msg, 10))
        st, headers, body = read_response(s)
        assert st == 201, body
    finally:
        s.close()


def _read_interim(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(1)
        assert chunk, "closed after %r" % buf
        buf += chunk
    line = buf.split(b"\r\n", 1)[0].decode()
    return int(line.split()[1]), None, None


@pytest.fixture
def agency_token(daemon):
    return make_agency(daemon)["token"]


def test_a_client_cannot_forge_the_internal_fault_header(daemon):
    r = daemon.request("GET", "/healthz", headers={"X-Berichtd-Fout": "te-groot"})
    assert r.status == 200 and r.json() == {"status": "ok"}


# ------------------------------------------- point 7: Content-Type exactly

@pytest.mark.parametrize("ctype, status", [
    ("application/json", 201),
    ("application/json; charset=utf-8", 201),
    ('Application/JSON;charset="UTF-8"', 201),
    ("application/json ; foo=bar;", 201),
    ("application/jsonx", 415),
    ("application/json-seq", 415),
    ("application/json+x", 415),
    ("application/json garbage", 415),
    ("application/json; charset=iso-8859-1", 415),
    ("application/json; charset", 415),
    ("application/json; =x", 415),
    ('application/json; x="unterminated', 415),
    ("text/plain", 415),
])
def test_only_application_json_with_parameters_is_accepted(daemon, agency_token, new_bsn,
                                                           ctype, status):
    citizen = new_bsn()
    make_citizen(daemon, daemon.token("portal"), citizen)
    ref = "ct-" + secrets.token_hex(4)
    r = daemon.request("POST", "/v1/berichten", token=agency_token,
                       body=json.dumps({"bsn": citizen, "berichttype": "T1", "referentie": ref}),
                       headers={"Content-Type": ctype})
    if status == 415:
        problem_type(assert_problem(r, 415), "niet-ondersteund-mediatype")
        assert daemon.services.psql("SELECT count(*) FROM messages WHERE referentie = %s",
                                    (ref,))[0][0] == 0
    else:
        assert r.status == 201, r.text


def test_two_content_types_are_415(daemon, agency_token):
    body = b'{"bsns": ["999993653"]}'
    st, headers, resp, _ = _raw_exchange(
        daemon.base_url,
        b"POST /v1/ontvangers/_zoek HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
        agency_token.encode() + b"\r\nContent-Type: application/json\r\n"
        b"Content-Type: text/plain\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
        % len(body) + body)
    assert_raw_problem(st, headers, resp, 415)


# ------------------------------------- point 7: unknown query parameters

def _names(body):
    return sorted((p["name"], p["code"]) for p in body["invalidParams"])


def test_a_bsn_in_the_query_is_refused_not_ignored(daemon, agency_token, new_bsn):
    citizen = new_bsn()
    make_citizen(daemon, daemon.token("portal"), citizen)
    ref = "q-" + secrets.token_hex(4)
    r = daemon.request("POST", "/v1/berichten", token=agency_token,
                       json={"bsn": citizen, "berichttype": "T1", "referentie": ref})
    assert r.status == 201, r.text
    loc = r.headers["Location"]
    assert daemon.request("GET", loc, token=agency_token).status == 200

    body = assert_problem(daemon.request("GET", loc + "?bsn=" + citizen, token=agency_token), 400)
    problem_type(body, "ongeldige-invoer")
    assert _names(body) == [("bsn", "unknownParameter")]
    assert citizen not in json.dumps(body)

    r = daemon.request("POST", "/v1/berichten?bsn=" + citizen, token=agency_token,
                       json={"bsn": citizen, "berichttype": "T1", "referentie": ref + "x"})
    assert _names(assert_problem(r, 400)) == [("bsn", "unknownParameter")]
    assert daemon.services.psql("SELECT count(*) FROM messages WHERE referentie = %s",
                                (ref + "x",))[0][0] == 0
    r = daemon.request("POST", "/v1/ontvangers/_zoek?bsns=" + citizen, token=agency_token,
                       json={"bsns": [citizen]})
    assert _names(assert_problem(r, 400)) == [("bsns", "unknownParameter")]
    # a query without parameters is no query
    assert daemon.request("GET", loc + "?", token=agency_token).status == 200
    # still 401 first without a token
    assert_problem(daemon.request("GET", loc + "?bsn=" + citizen), 401)


def test_routes_take_only_the_parameters_they_list(daemon, new_bsn):
    portal = daemon.token("portal")
    acc = make_citizen(daemon, portal, new_bsn())
    box = "/v1/accounts/%s/berichten" % acc
    assert daemon.request("GET", box + "?pagina=1&paginaGrootte=5", token=portal).status == 200
    body = assert_problem(daemon.request("GET", box + "?pagina=1&bsn=1&x=2", token=portal), 400)
    assert _names(body) == [("bsn", "unknownParameter"), ("x", "unknownParameter")]
    body = assert_problem(daemon.request("GET", box + "?pagina=1&pagina=2", token=portal), 400)
    assert _names(body) == [("pagina", "duplicate")]
    body = assert_problem(daemon.request("GET", box + "?pagina", token=portal), 400)
    assert _names(body) == [("query", "syntax")]
    # names are compared as sent (not decoded); a very long one is not echoed
    body = assert_problem(daemon.request("GET", box + "?pagin%61=1&" + "n" * 100 + "=1",
                                         token=portal), 400)
    assert _names(body) == [("pagin%61", "unknownParameter"), ("query", "unknownParameter")]
    # raw bytes outside ASCII never get that far: the request line is refused
    st, headers, body, _ = _raw_exchange(daemon.base_url, b"GET " + box.encode() +
                                         b"?\xff=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_raw_problem(st, headers, body, 400)
    # no parameters at all where none are listed, on both listeners
    assert _names(assert_problem(daemon.request("GET", "/healthz?x=1"), 400)) == \
        [("x", "unknownParameter")]
    assert _names(assert_problem(daemon.ops_request("GET", "/metrics?name=x"), 400)) == \
        [("name", "unknownParameter")]


def test_statistics_keep_their_own_parameters(daemon):
    ministry = daemon.token("ministry")
    path = "/v1/rapportages/openingspercentages"
    assert daemon.request("GET", path + "?jaar=2025&maand=3", token=ministry).status == 200
    body = assert_problem(daemon.request("GET", path + "?jaar=2025&oin=1", token=ministry), 400)
    assert _names(body) == [("oin", "unknownParameter")]
    body = assert_problem(daemon.request("GET", "/v1/rapportages/notificaties?jaar=2025&maand=3",
                                         token=ministry), 400)
    assert _names(body) == [("maand", "unknownParameter")]


# ------------------------------- point 7: POST /v1/ontvangers/_zoek is limited

def test_each_bsn_looked_up_costs_a_token_of_the_agencys_bucket(make_daemon, new_bsn):
    d = make_daemon("zoek-rl", **{"ratelimit.rate": 1, "ratelimit.burst": 3})
    a, b = make_agency(d), make_agency(d)
    portal = d.token("portal")
    citizen = new_bsn()
    make_citizen(d, portal, citizen)
    others = [new_bsn() for _ in range(2)]
    r = d.request("POST", "/v1/ontvangers/_zoek", token=a["token"],
                  json={"bsns": [citizen] + others})
    assert r.status == 200, r.text
    assert [o["berichtenbox"] for o in r.json()["ontvangers"]] == [True, False, False]
    # the bucket (3) is empty now: the next lookup, and the next message, wait
    r = d.request("POST", "/v1/ontvangers/_zoek", token=a["token"], json={"bsns": [citizen]})
    problem_type(assert_problem(r, 429), "te-veel-verzoeken")
    assert int(r.headers["Retry-After"]) >= 1
    assert "ontvangers" not in r.json()
    ref = "zoek-" + secrets.token_hex(4)
    r = d.request("POST", "/v1/berichten", token=a["token"],
                  json={"bsn": citizen, "berichttype": "T1", "referentie": ref})
    assert_problem(r, 429)
    # another agency has its own bucket
    r = d.request("POST", "/v1/ontvangers/_zoek", token=b["token"], json={"bsns": [citizen]})
    assert r.status == 200, r.text
    # an invalid lookup costs nothing and says why
    r = d.request("POST", "/v1/ontvangers/_zoek", token=b["token"], json={"bsns": ["1"]})
    assert_problem(r, 400)
    r = d.request("POST", "/v1/ontvangers/_zoek", token=b["token"], json={"bsns": [citizen]})
    assert r.status == 200, r.text
    # tokens come back at the rate: a lookup after Retry-After is answered
    time.sleep(int(d.request("POST", "/v1/ontvangers/_zoek", token=a["token"],
                             json={"bsns": [citizen]}).headers["Retry-After"]))
    r = d.request("POST", "/v1/ontvangers/_zoek", token=a["token"], json={"bsns": [citizen]})
    assert r.status == 200, r.text


def test_a_lookup_larger_than_the_burst_passes_a_full_bucket_and_leaves_debt(make_daemon,
                                                                            new_bsn):
    d = make_daemon("zoek-burst", **{"ratelimit.rate": 1, "ratelimit.burst": 2})
    a = make_agency(d)
    r = d.request("POST", "/v1/ontvangers/_zoek", token=a["token"],
                  json={"bsns": [new_bsn() for _ in range(5)]})
    assert r.status == 200, r.text
    r = d.request("POST", "/v1/ontvangers/_zoek", token=a["token"], json={"bsns": [new_bsn()]})
    assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) >= 4  # 5 taken from 2: 3 in debt, 1 more needed


def test_chunk_extensions_and_trailers_are_taken(daemon, agency_token, new_bsn):
    citizen = new_bsn()
    make_citizen(daemon, daemon.token("portal"), citizen)
    msg = json.dumps({"bsn": citizen, "berichttype": "T1",
                      "referentie": "ext-" + secrets.token_hex(4)}).encode()
    body = (b"%x;name=value\r\n" % 10 + msg[:10] + b"\r\n" +
            b"%X ; quoted=\"a b\"\r\n" % (len(msg) - 10) + msg[10:] + b"\r\n" +
            b"0\r\nX-Trailer: dropped\r\n\r\n")
    st, headers, resp, _ = _raw_exchange(
        daemon.base_url,
        b"POST /v1/berichten HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
        agency_token.encode() + b"\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n" + body)
    assert st == 201, resp


# ------------------------------------------- issue 15: the problem type base

def test_problem_types_are_under_the_configured_base(make_daemon):
    d = make_daemon("pbase", **{"http.problem_base": "urn:example:berichtd:"})
    r = d.http.get("/v1/bestaat-niet")
    assert r.status == 404
    assert r.json()["type"] == "urn:example:berichtd:niet-gevonden", r.json()
    r = d.http.post("/v1/berichten", body=b"{", headers={"Content-Type": "application/json"})
    assert r.json()["type"].startswith("urn:example:berichtd:"), r.json()


def test_a_problem_base_that_is_no_uri_is_refused(make_daemon):
    d = make_daemon("pbad", start=False, migrate=False, **{"http.problem_base": "geen uri"})
    out = d.cli("check-config")
    assert out.returncode == 1
    assert "http.problem_base: not an absolute URI" in out.stderr
