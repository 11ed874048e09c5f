"""Issue 13: failover of Redis (Sentinel) and of PostgreSQL (a multi-host
conninfo with target_session_attrs=read-write) under a running daemon.

Each test starts its own servers on free ports of 127.0.0.1, next to the
session's services (which keep serving SMTP, and PostgreSQL or Redis for
the other half): a Redis primary, a replica and one sentinel (quorum 1);
or a PostgreSQL primary with a synchronous streaming standby
(pg_basebackup -R). Real servers, real kills; waits have deadlines only."""
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg2
import pytest

from harness import (PROBLEM_JSON, free_port, make_agency, make_citizen, mails_to,
                     post_message, wait_until)

MASTER = "berichtd-ha"
FAILOVER_DEADLINE_S = 60


def _strftime_in(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


def _exactly_once(services, mailbox, addresses, message_ids, timeout=FAILOVER_DEADLINE_S):
    """Every message's notification sent, and its mail in the sink once."""
    def sent():
        rows = services.psql("SELECT n.state, m.ref FROM notifications n "
                             "LEFT JOIN mails m ON m.id = n.mail_id "
                             "WHERE n.message_id = ANY(%s::uuid[]) AND n.kind = 'new'",
                             (list(message_ids),))
        return rows if len(rows) == len(message_ids) and all(
            s == "sent" for s, _ in rows) else None
    rows = wait_until(sent, timeout=timeout, interval=0.2,
                      what=lambda: "all %d notifications sent: %s" % (
                          len(message_ids), Counter(s for (s,) in services.psql(
                              "SELECT state FROM notifications WHERE message_id = ANY(%s::uuid[])",
                              (list(message_ids),)))))
    refs = {"<%s@berichtenbox.example>" % ref for _, ref in rows}
    wait_until(lambda: refs <= {m["Message-ID"] for m in mails_to(mailbox, addresses)},
               timeout=30, what="every sent mail in the sink")
    time.sleep(1)  # a duplicate would come from a batch already at the relay
    got = Counter(m["Message-ID"] for m in mails_to(mailbox, addresses))
    assert set(got) == refs, (set(got) ^ refs)
    assert all(n == 1 for n in got.values()), [k for k, n in got.items() if n > 1]


# --------------------------------------------------------------------- Redis

class RedisHA:
    """A primary, a replica and one sentinel (quorum 1)."""

    def __init__(self, root):
        self.root = root
        self.procs = {}
        self.ports = {}

    def start_server(self, name, *extra):
        port = free_port(*self.ports.values())
        self.ports[name] = port
        d = self.root / name
        d.mkdir()
        self.procs[name] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(d), "--logfile", str(d / "log"), *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.cli(name, "PING", check=False) == "PONG", timeout=20,
                   what="redis %s up" % name)
        return port

    def start_sentinel(self):
        port = free_port(*self.ports.values())
        self.ports["sentinel"] = port
        d = self.root / "sentinel"
        d.mkdir()
        conf = d / "sentinel.conf"
        conf.write_text("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"
                        "sentinel monitor %s 127.0.0.1 %d 1\n"
                        "sentinel down-after-milliseconds %s 1000\n"
                        "sentinel failover-timeout %s 5000\n"
                        % (port, d, d / "log", MASTER, self.ports["primary"], MASTER, MASTER))
        self.procs["sentinel"] = subprocess.Popen(
            ["redis-server", str(conf), "--sentinel"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.cli("sentinel", "PING", check=False) == "PONG", timeout=20,
                   what="sentinel up")
        return port

    def cli(self, name, *args, check=True):
        p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.ports[name]),
                            "--raw", *map(str, args)], capture_output=True, text=True,
                           timeout=10)
        out = p.stdout.rstrip("\n")
        if check and p.returncode != 0:
            raise RuntimeError("redis-cli %s %s: %s%s" % (name, args, out, p.stderr))
        return out

    def set_big(self, name, key, size):
        """SET key to size bytes (one command, so one command in the replication stream)."""
        with socket.create_connection(("127.0.0.1", self.ports[name]), timeout=30) as s:
            s.sendall(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n"
                      % (len(key), key.encode(), size))
            chunk = b"x" * 1048576
            for _ in range(size // len(chunk)):
                s.sendall(chunk)
            s.sendall(b"x" * (size % len(chunk)) + b"\r\n")
            assert s.recv(16).startswith(b"+OK")

    def master_port(self):
        out = self.cli("sentinel", "SENTINEL", "get-master-addr-by-name", MASTER).split("\n")
        return int(out[1]) if len(out) == 2 else None

    def clients(self, name):
        """The clients of a server other than sentinels, replicas and this cli."""
        out = []
        for line in self.cli(name, "CLIENT", "LIST").split("\n"):
            f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            if f and "S" not in f.get("flags", "") and not f.get("name", "").startswith(
                    "sentinel") and f.get("cmd") != "client|list":
                out.append(f)
        return out

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)


@pytest.fixture
def redis_ha(services):
    root = Path(tempfile.mkdtemp(prefix="redis-ha-", dir=services.run_dir))
    ha = RedisHA(root)
    try:
        primary = ha.start_server("primary")
        ha.start_server("replica", "--replicaof", "127.0.0.1", str(primary))
        wait_until(lambda: "master_link_status:up" in ha.cli("replica", "INFO", "replication"),
                   timeout=20, what="replica in sync")
        ha.start_sentinel()
        wait_until(lambda: ha.cli("sentinel", "SENTINEL", "replicas", MASTER), timeout=30,
                   what="sentinel knows the replica")
        yield ha
    finally:
        ha.stop()


def test_redis_failover_with_lost_writes_every_message_mailed_once(
        make_daemon, services, mailbox, new_bsn, redis_ha):
    """kill -9 of the Redis primary while the replica had not received the
    latest schedule writes: the sentinel promotes the replica, the loop and
    the workers find it, the reconciler puts the lost ids back from
    PostgreSQL, and every acked message is mailed exactly once."""
    ha = redis_ha
    d = make_daemon("redis-ha", **{
        "redis.host": None, "redis.port": None,
        "redis.sentinels": "127.0.0.1:%d" % ha.ports["sentinel"],
        "redis.master_name": MASTER, "delivery.reconcile_interval": "1s"})
    agency = make_agency(d)["token"]
    portal = d.token("portal")
    people = []
    for i in range(3):
        bsn, email = new_bsn(), "ha%d-%s@example.nl" % (i, secrets.token_hex(3))
        make_citizen(d, portal, bsn, email)
        people.append((bsn, email))
    addresses = {e for _, e in people}
    prefix = d.config["redis"]["key_prefix"]
    ids = []

    def post_all(**extra):
        out = []
        for bsn, _ in people:
            r = post_message(d, agency, bsn, **extra)
            assert r.status == 201, r.text
            out.append(r.json()["berichtId"])
        ids.extend(out)
        return out

    post_all()  # before: through the primary
    # The lost writes. The replica is stopped, and 96 MB of filler written to
    # the primary first fill the socket buffers towards it, so what follows
    # stays in the primary's memory and dies with it: acked, never replicated.
    # Due in a few seconds, so no worker takes them from the primary first.
    ha.procs["replica"].send_signal(signal.SIGSTOP)
    try:
        ha.set_big("primary", "filler", 96 * 1048576)
        late = post_all(publicatieTijdstip=_strftime_in(4))
        lane = "%sdue:%s" % (prefix, services.psql(
            "SELECT agency_id FROM messages WHERE id = %s", (late[0],))[0][0])
        wait_until(lambda: int(ha.cli("primary", "ZCARD", lane)) >= len(late),
                   timeout=10, what="the late schedule on the primary")
        ha.procs["primary"].kill()
        ha.procs["primary"].wait(10)
    finally:
        ha.procs["replica"].send_signal(signal.SIGCONT)
    # the replica never got them: they are lost with the primary
    late_ids = [str(i) for (i,) in services.psql(
        "SELECT id FROM notifications WHERE message_id = ANY(%s::uuid[])", (late,))]
    assert [ha.cli("replica", "ZSCORE", lane, i) for i in late_ids] == [""] * len(late)
    post_all()  # during the failover: 201 (PostgreSQL has them), Redis repaired later
    wait_until(lambda: ha.master_port() == ha.ports["replica"], timeout=FAILOVER_DEADLINE_S,
               what="the sentinel promoted the replica")
    wait_until(lambda: len(ha.clients("replica")) >= 3, timeout=FAILOVER_DEADLINE_S,
               what=lambda: "the loop and both workers on the new primary: %s"
               % ha.clients("replica"))
    post_all()  # after
    _exactly_once(services, mailbox, addresses, ids)
    assert "role:master" in ha.cli("replica", "INFO", "replication")


def test_check_config_warns_when_sentinels_and_url_are_both_set(make_daemon, services):
    d = make_daemon("sentinel-conf", start=False, **{
        "redis.sentinels": "127.0.0.1:26379, 127.0.0.1:26380",
        "redis.url": "redis://127.0.0.1:%d" % services.redis_port})
    p = d.cli("check-config")
    assert p.returncode == 0, p.stderr
    assert "sentinels is set, so url is ignored" in p.stderr
    bad = make_daemon("sentinel-bad", start=False, migrate=False,
                      **{"redis.sentinels": "127.0.0.1"})
    p = bad.cli("check-config")
    assert p.returncode != 0 and "sentinels" in p.stderr, p.stderr


# ---------------------------------------------------------------- PostgreSQL

def _as_pg(*args, check=True, timeout=60):
    p = subprocess.run(["runuser", "-u", "postgres", "--", *map(str, args)], cwd="/",
                       capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s: rc=%d %s%s" % (args, p.returncode, p.stdout, p.stderr))
    return p


class PgPair:
    """A primary and a synchronous streaming standby, trust on loopback."""

    def __init__(self, bindir):
        self.bin = Path(bindir)
        # the postgres user must reach it, and the socket path must be short
        self.root = Path(tempfile.mkdtemp(prefix="bd-pgha-"))
        shutil.chown(self.root, "postgres")
        os.chmod(self.root, 0o700)
        self.ports = {}

    def data(self, name):
        return self.root / name

    def conninfo(self, name, db="berichtd"):
        return "host=127.0.0.1 port=%d dbname=%s user=postgres" % (self.ports[name], db)

    def psql(self, name, sql, params=None):
        conn = psycopg2.connect(self.conninfo(name), connect_timeout=5)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description is not None else []
        finally:
            conn.close()

    def ctl(self, name, *args, check=True):
        return _as_pg(self.bin / "pg_ctl", "-D", self.data(name), *args, check=check)

    def start(self, name):
        port = self.ports.setdefault(name, free_port(*self.ports.values()))
        self.ctl(name, "-w", "-t", "60", "-l", self.root / (name + ".log"), "-o",
                 "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" % (port, self.root),
                 "start")

    def init_primary(self):
        _as_pg(self.bin / "initdb", "-D", self.data("p1"), "-U", "postgres", "--auth=trust",
               "-N")
        self.start("p1")
        conn = psycopg2.connect(self.conninfo("p1", "postgres"), connect_timeout=5)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE berichtd")
        conn.close()

    def init_standby(self):
        _as_pg(self.bin / "pg_basebackup", "-h", "127.0.0.1", "-p", self.ports["p1"],
               "-U", "postgres", "-D", self.data("p2"), "-R", "-X", "stream", "-c", "fast")
        self.start("p2")
        wait_until(lambda: self.psql("p1", "SELECT state FROM pg_stat_replication")
                   == [("streaming",)], timeout=30, what="standby streaming")
        # synchronous: a commit (and so a 201) waits for the standby's flush;
        # ALTER SYSTEM is not replicated, so the promoted standby does not wait
        self.psql("p1", "ALTER SYSTEM SET synchronous_standby_names = '*'")
        self.psql("p1", "SELECT pg_reload_conf()")
        wait_until(lambda: self.psql("p1", "SELECT sync_state FROM pg_stat_replication")
                   == [("sync",)], timeout=30, what="standby synchronous")

    def stop(self):
        for name in self.ports:
            self.ctl(name, "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def pg_pair(services):
    bindir = services.pg_bin or sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    pair = PgPair(bindir)
    try:
        pair.init_primary()
        pair.init_standby()
        yield pair
    finally:
        pair.stop()


def test_postgres_failover_503_with_retry_after_then_201_and_every_201_on_the_new_primary(
        make_daemon, services, mailbox, new_bsn, pg_pair):
    """Stop the primary, promote the standby: ingest answers 503 with
    Retry-After in between, never anything else; afterwards 201 again; every
    201 message is on the new primary and its notification mailed once."""
    pg = pg_pair
    conninfo = ("host=127.0.0.1,127.0.0.1 port=%d,%d dbname=berichtd user=postgres "
                "target_session_attrs=read-write" % (pg.ports["p1"], pg.ports["p2"]))
    d = make_daemon("pg-ha", **{"postgres.conninfo": conninfo,
                                "postgres.ingest_timeout": "3s",
                                "delivery.reconcile_interval": "1s"})
    agency = make_agency(d)["token"]
    portal = d.token("portal")
    bsn, email = new_bsn(), "pgha-%s@example.nl" % secrets.token_hex(3)
    make_citizen(d, portal, bsn, email)

    answers = []  # (phase, status, berichtId or None, Retry-After, Content-Type)
    phase = ["before"]
    stop = threading.Event()

    def poster():
        while not stop.is_set():
            try:
                r = post_message(d, agency, bsn, timeout=20)
            except OSError as e:
                answers.append((phase[0], "error %s" % e, None, None, None))
                continue
            bid = r.json().get("berichtId") if r.status == 201 else None
            answers.append((phase[0], r.status, bid, r.headers.get("Retry-After"),
                            r.headers.get("Content-Type")))
            time.sleep(0.02)

    t = threading.Thread(target=poster, daemon=True)
    t.start()
    try:
        wait_until(lambda: sum(1 for a in answers if a[1] == 201) >= 5, timeout=30,
                   what="201s before the failover")
        phase[0] = "switch"
        pg.ctl("p1", "-m", "fast", "-w", "stop")
        wait_until(lambda: any(a[0] == "switch" and a[1] == 503 for a in answers),
                   timeout=30, what="a 503 while there is no primary")
        pg.ctl("p2", "-w", "promote")
        phase[0] = "after"
        wait_until(lambda: sum(1 for a in answers if a[0] == "after" and a[1] == 201) >= 5,
                   timeout=FAILOVER_DEADLINE_S, what="201s from the new primary")
    finally:
        stop.set()
        t.join(30)

    statuses = Counter((a[0], a[1]) for a in answers)
    assert {s for _, s in statuses} <= {201, 503}, statuses
    for a in answers:
        if a[1] == 503:
            assert int(a[3]) > 0 and a[4].startswith(PROBLEM_JSON), a
    created = [a[2] for a in answers if a[1] == 201]
    on_new = {str(i) for (i,) in pg.psql("p2", "SELECT id FROM messages WHERE id = ANY(%s::uuid[])",
                                         (created,))}
    assert on_new == set(created), set(created) - on_new

    class OnNewPrimary:  # _exactly_once reads the notifications where they are now
        psql = staticmethod(lambda sql, params=None: pg.psql("p2", sql, params))
    _exactly_once(OnNewPrimary, mailbox, {email}, created)
    # the lifeline took its lock on the new primary again
    assert pg.psql("p2", "SELECT count(*) FROM pg_stat_activity "
                   "WHERE application_name = 'berichtd lifeline'") == [(1,)]
