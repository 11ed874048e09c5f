"""The systemd notify protocol and the watchdog (issue 15), with a datagram
socket standing in for systemd (NOTIFY_SOCKET): CI has no systemd as PID 1.

- READY=1 once the daemon serves; RELOADING=1 then READY=1 around SIGHUP;
  STOPPING=1 on SIGTERM.
- With WATCHDOG_USEC set, WATCHDOG=1 comes at half that interval while the
  event loop and every delivery worker move. A worker held up on purpose
  (a relay that trickles one byte every half second and never ends its
  reply line: every byte restarts libESMTP's read timeout, so nothing but
  the watchdog notices) stops the pings after [delivery] stall_timeout, so
  systemd would restart the daemon; they resume once the worker is free.
- WATCHDOG_PID naming another process: not our watchdog, no pings.
Every wait is a poll with a deadline."""
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid

import pytest

import harness
from harness import Daemon, wait_until

sys.path.insert(0, str(harness.REPO_ROOT / "tests" / "harness"))
from smtp_script import ScriptedSmtp  # noqa: E402


class NotifySocket:
    """What systemd listens on: an AF_UNIX datagram socket, read all the
    time by a thread (as systemd does: a full socket would make the
    daemon's sends fail); keeps every datagram with its arrival time."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bd-notify-")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.got = []  # (monotonic time, "KEY=VALUE")
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while self.running:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            t = time.monotonic()
            with self.lock:
                self.got.extend((t, ln) for ln in data.decode().split("\n") if ln)

    def poll(self):
        with self.lock:
            return list(self.got)

    def states(self):
        return [s for _, s in self.poll()]

    def times(self, state):
        return [t for t, s in self.poll() if s == state]

    def close(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


@pytest.fixture
def notify(monkeypatch):
    ns = NotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", ns.path)
    yield ns
    ns.close()


def test_ready_reloading_stopping(services, notify, monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    d = Daemon(services, "sdnotify")
    d.start()
    wait_until(lambda: "READY=1" in notify.states(), timeout=10, what="READY=1")
    assert "WATCHDOG=1" not in notify.states()  # no WATCHDOG_USEC, no pings

    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: notify.states().count("READY=1") == 2, timeout=10,
               what="READY=1 after the reload")
    s = notify.states()
    assert s.index("RELOADING=1") < len(s) - 1 - s[::-1].index("READY=1"), s
    # systemd 253's Type=notify-reload wants the time in the same message
    assert s[s.index("RELOADING=1") + 1].startswith("MONOTONIC_USEC="), s

    assert d.stop() == 0
    assert notify.states()[-1] == "STOPPING=1" or "STOPPING=1" in notify.states()


def test_watchdog_pings_while_everything_moves(services, notify, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    d = Daemon(services, "watchdog-ok")
    d.start()
    wait_until(lambda: len(notify.times("WATCHDOG=1")) >= 5, timeout=15,
               what="five watchdog pings")
    assert "watchdog: pings every 200 ms" in d.log_text()
    assert d.stop() == 0


def test_watchdog_pid_of_another_process_is_not_ours(services, notify, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    d = Daemon(services, "watchdog-other")
    d.start()
    wait_until(lambda: "READY=1" in notify.states(), timeout=10, what="READY=1")
    # ten intervals go by without a ping (a wait for an absence, bounded)
    time.sleep(1.0)
    assert "WATCHDOG=1" not in notify.states()
    assert d.stop() == 0


def test_a_stuck_worker_stops_the_pings(services, notify, monkeypatch):
    relay = ScriptedSmtp(services.run_dir / ("smtp-trickle-%s" % uuid.uuid4().hex[:8]))
    relay.start(mail="trickle")
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    d = Daemon(services, "watchdog-stuck", **{
        "smtp.port": relay.port, "smtp.timeout": "1s", "delivery.stall_timeout": "3s",
        "delivery.workers": "1", "delivery.poll_interval": "20ms"})
    try:
        d.start()
        wait_until(lambda: len(notify.times("WATCHDOG=1")) >= 3, timeout=15,
                   what="pings before the stall")
        # a verification mail goes to the relay, which holds the worker up at MAIL FROM
        portal = d.token("portal")
        r = d.request("POST", "/v1/accounts", token=portal, json={"bsn": harness.new_bsn()})
        assert r.status in (200, 201), r.text
        r = d.request("PATCH", "/v1/accounts/%s" % r.json()["accountId"], token=portal,
                      json={"emailadres": "stuck-%s@example.org" % uuid.uuid4().hex[:6]})
        assert r.status == 200, r.text
        wait_until(lambda: any("trickle mail" in str(e) for e in relay.transcript()),
                   timeout=15, what="the relay trickling")
        wait_until(lambda: "watchdog: delivery worker 0 shows no progress" in d.log_text(),
                   timeout=20, what=lambda: "the stall in the log\n" + d.log_tail())
        stalled_at = time.monotonic()
        # while it is stuck: five intervals without a ping (bounded absence)
        time.sleep(1.0)
        late = [t for t in notify.times("WATCHDOG=1") if t > stalled_at]
        assert late == [], "pings went on while a worker was stuck"
        assert d.running(), "the daemon itself must not die: systemd restarts it"
    finally:
        relay.stop()  # the connection closes: the worker is free again
    wait_until(lambda: "watchdog: every delivery worker moves again" in d.log_text(),
               timeout=20, what="the worker to move again")
    resumed = time.monotonic()
    wait_until(lambda: any(t > resumed for t in notify.times("WATCHDOG=1")), timeout=10,
               what="pings to resume")
    assert d.stop() == 0
