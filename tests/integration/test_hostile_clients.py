"""Hostile clients (issue 15): a slowloris head or body is cut off, a limit
on connections gives a clear 503 instead of a crash, and 2,000 idle
keep-alive connections leave normal requests served. Raw sockets on
loopback; every wait is a poll with a deadline (no timing assertions)."""
import json
import resource
import socket
import threading
import time

import pytest

from harness import metric, problem_type, read_response, wait_until


def raw(daemon):
    host, port = daemon.base_url.rsplit("/", 1)[1].split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def closed_by_peer(s, timeout=20):
    """Waits until the daemon closes s (EOF or reset); True if it did."""
    s.settimeout(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if s.recv(4096) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


class Trickle(threading.Thread):
    """Sends data one byte every `every` seconds until stopped or cut off."""

    def __init__(self, s, data, every=0.5):
        super().__init__(daemon=True)
        self.s, self.data, self.every = s, data, every
        self.stop = False
        self.cut = False

    def run(self):
        for b in self.data:
            if self.stop:
                return
            try:
                self.s.send(bytes([b]))
            except OSError:
                self.cut = True
                return
            time.sleep(self.every)


def healthz_ok(daemon):
    return daemon.request("GET", "/healthz").status == 200


@pytest.fixture
def slowd(make_daemon):
    return make_daemon("hostile", **{"http.header_timeout": "2s",
                                     "http.request_timeout": "3s"})


def test_a_slowloris_head_is_cut_off_and_others_are_served(slowd):
    s = raw(slowd)
    t = Trickle(s, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200)
    t.start()
    # while it trickles, everyone else is served
    for _ in range(5):
        assert healthz_ok(slowd)
    assert closed_by_peer(s), "a head trickled for ever and was not cut off"
    t.stop = True
    s.close()
    assert metric(slowd, "berichtd_http_slow_clients_cut_total") >= 1
    assert healthz_ok(slowd)


def test_a_slow_body_is_cut_off(slowd):
    token = slowd.token("portal")
    s = raw(slowd)
    s.sendall(b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
              + token.encode() + b"\r\nContent-Type: application/json\r\n"
              b"Content-Length: 200\r\n\r\n")
    t = Trickle(s, b"{" + b" " * 199)
    t.start()
    assert closed_by_peer(s), "a body trickled for ever and was not cut off"
    t.stop = True
    s.close()
    assert healthz_ok(slowd)


def test_a_request_that_is_merely_slow_to_start_is_not_cut(slowd):
    """The deadline runs from a request's first byte: an idle keep-alive
    connection between requests is the idle timeout's business."""
    s = raw(slowd)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = read_response(s)
    assert status == 200
    time.sleep(3.5)  # longer than both deadlines, idle between requests
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = read_response(s)
    assert status == 200
    s.close()


def test_over_max_connections_gets_503_not_a_crash(make_daemon):
    d = make_daemon("maxconn", **{"http.max_connections": "40"})
    idle = []
    try:
        # the harness' own polls may hold a connection or two: fill up to the limit
        for _ in range(45):
            idle.append(raw(d))
        wait_until(lambda: (metric(d, "berichtd_http_connections") or 0) >= 40, timeout=10,
                   what="the idle connections to be counted")
        s = raw(d)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = read_response(s)
        assert status == 503
        assert headers.get("connection", "").lower() == "close"
        assert "retry-after" in headers
        problem_type(json.loads(body), "niet-beschikbaar")
        s.close()
        assert metric(d, "berichtd_http_connections_refused_total") >= 1
    finally:
        for s in idle:
            s.close()
    # once they are gone (the sweep runs every second) the daemon serves again
    wait_until(lambda: healthz_ok(d), timeout=10, what="service after the idle ones left")
    assert d.running()


def test_two_thousand_idle_keepalive_connections(make_daemon):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2500:
        pytest.skip("descriptor hard limit %d is below 2,500" % hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    d = make_daemon("idle2000", **{"http.timeout": "120s"})
    conns = []
    try:
        for _ in range(2000):
            s = raw(d)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            conns.append(s)
        for s in conns:
            status, _, _ = read_response(s)  # each answered, and kept alive
            assert status == 200
        assert metric(d, "berichtd_http_connections") >= 2000
        # normal traffic meanwhile: every request answered
        for _ in range(200):
            assert healthz_ok(d)
        # the kept connections still work
        for s in conns[:50]:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(s)[0] == 200
    finally:
        for s in conns:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert d.running()
