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
import re
import secrets
import socket
import time

import pytest

from harness import assert_problem, make_agency, make_citizen

SECURITY_HEADERS = ("api-version", "cache-control", "x-content-type-options",
                    "x-frame-options", "content-security-policy",
                    "strict-transport-security", "referrer-policy")


def problem_type(body, slug):
    assert body["type"].endswith("/" + slug), body


def metric(daemon, name):
    """A counter read from the ops listener's /metrics."""
    r = daemon.ops_request("GET", "/metrics")
    assert r.status == 200, r.text
    return int(re.search(r"^%s (\d+)$" % re.escape(name), r.text, re.M).group(1))


# ------------------------------------------------------------ raw sockets

def _port(url):
    return int(url.rsplit(":", 1)[1])


def _connect(url, timeout=10):
    return socket.create_connection(("127.0.0.1", _port(url)), timeout=timeout)


def _read_response(s):
    """One response from s: (status, {lowercase header: value}, body). Reads a
    Content-Length body, or up to the close when there is none."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, "connection closed after %r" % buf[:300]
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            chunk = s.recv(65536)
            assert chunk, "body cut short"
            rest += chunk
        body = rest[:n]
    else:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        body = rest
    return int(lines[0].split()[1]), headers, body


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
        status, headers, body = _read_response(s)
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
    before = metric(daemon, "berichtd_http_requests_total")
    daemon.request("GET", "/healthz")
    assert metric(daemon, "berichtd_http_requests_total") == before + 1


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
    deadline = time.monotonic() + 30
    while state("new") != "sent" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state("repeat") == "scheduled"
    time.sleep(0.2)  # the counter is bumped just after the commit that says 'sent'
    first = sent()
    deadline = time.monotonic() + 30
    while sent() == first and time.monotonic() < deadline:
        # what the agency sees while the reminder goes out (unopened message)
        assert d.request("GET", "/metrics", token=a["token"]).status == 404
        time.sleep(0.2)
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
