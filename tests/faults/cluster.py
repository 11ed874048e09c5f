"""The whole berichtd cluster on one box, for the fault matrix and the soak.

    Cluster(run_dir).start(instances=2)

starts under run_dir:
  * Redis and the SMTP sink (and PostgreSQL node A) from
    tests/harness/services.sh, with its port picking;
  * PostgreSQL: pg_auto_failover (autofailover.py: a monitor and two data
    nodes, synchronous); only with FAULTS_PG=streaming (or no pg_autoctl)
    the self-made pair below:
  * PostgreSQL node B, a streaming standby of A made with pg_basebackup,
    synchronous (synchronous_standby_names = '*'), so a 201 means the
    message is on two servers;
  * this file plays the failover monitor (the pg_auto_failover fallback the
    task allows, see docs/operations.md "Fault matrix"): it promotes the
    standby when told the primary is dead, turns synchronous replication off
    while no standby is attached (as pg_auto_failover's wait_primary does),
    and rebuilds the lost node as the new standby;
  * a Redis primary, a replica and a sentinel (test_failover.RedisHA), the
    daemons asking the sentinel for the primary ([redis] sentinels);
  * two berichtd instances (tests/integration/harness.py Daemon, sharing one
    Redis key prefix) with a multi-host conninfo
    (host=127.0.0.1,127.0.0.1 port=A,B target_session_attrs=read-write);
  * HAProxy in front of them, health-checked on GET /readyz of each ops
    listener; agencies talk to HAProxy only.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "integration"))

import autofailover  # noqa: E402
import harness  # noqa: E402
from harness import Daemon, Services, free_port, wait_until  # noqa: E402
from test_failover import MASTER, RedisHA  # noqa: E402  the Redis primary, replica, sentinel

PGUSER_OS = "postgres"


def as_pg(*cmd, check=True, timeout=120):
    p = subprocess.run(["runuser", "-u", PGUSER_OS, "--", *map(str, cmd)], cwd="/",
                       capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (rc=%d): %s%s" % (cmd, p.returncode, p.stdout, p.stderr))
    return p


class PgNode(autofailover.NodeChecks):
    """One PostgreSQL data node: data dir, port, start/stop/kill/freeze."""

    def __init__(self, name, root, port, pg_bin):
        self.name, self.root, self.port, self.pg_bin = name, Path(root), port, pg_bin
        self.data = self.root / "data"
        self.log = self.root / "postgresql.log"

    def conf(self):
        f = self.data / "berichtd_harness.conf"
        f.write_text("listen_addresses = '127.0.0.1'\nport = %d\n"
                     "unix_socket_directories = '%s'\nmax_connections = 200\n"
                     "shared_buffers = 128MB\nlogging_collector = off\n"
                     "log_min_messages = warning\nwal_keep_size = 512MB\n"
                     "hot_standby = on\n" % (self.port, self.data))
        shutil.chown(f, PGUSER_OS)

    def start(self):
        self.conf()
        as_pg(self.pg_bin + "/pg_ctl", "-D", self.data, "-w", "-t", "60", "-l", self.log, "start")

    def stop(self, mode="fast"):
        as_pg(self.pg_bin + "/pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop",
              check=False)

    def postmaster_pid(self):
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def pids(self):
        """The postmaster and its children."""
        pm = self.postmaster_pid()
        if not pm:
            return []
        out = [pm]
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pm:
                        out.append(int(d.name))
                except (OSError, ValueError, IndexError):
                    pass
        return out

    def kill9(self):
        """The machine is gone: every process of the node dies at once."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not self.alive(), timeout=30, what="%s dead" % self.name)
        try:
            (self.data / "postmaster.pid").unlink()
        except FileNotFoundError:
            pass

    def freeze(self, on):
        """Traffic to its port stops (SIGSTOP) / flows again (SIGCONT): the
        partition of the matrix; no iptables in this container."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGSTOP if on else signal.SIGCONT)
            except ProcessLookupError:
                pass


class ClusterServices(Services):
    """harness.Services for the cluster: Daemon writes its config from this
    (conninfo names both nodes; psql goes to whichever is primary)."""

    def __init__(self, run_dir, cluster):
        self.cluster = cluster
        super().__init__(run_dir)

    @property
    def conninfo(self):
        c = self.cluster
        return ("host=127.0.0.1,127.0.0.1 port=%d,%d dbname=berichtd user=postgres "
                "target_session_attrs=read-write connect_timeout=3"
                % (c.nodes[0].port, c.nodes[1].port))


class Cluster:
    def __init__(self, run_dir):
        self.run_dir = Path(run_dir).resolve()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.daemons = []
        self.haproxy = None
        self.events = []   # (monotonic, text): what the monitor did

    def note(self, text):
        self.events.append((time.monotonic(), text))
        print("  [cluster %s] %s" % (time.strftime("%H:%M:%S"), text), flush=True)

    # ---------------------------------------------------------- PostgreSQL
    def start_pg(self):
        env = harness.read_env(self.run_dir / "env")
        pg_bin = env["BERICHTD_PG_BIN"]
        self.pg_mode = os.environ.get("FAULTS_PG") or (
            "auto" if autofailover.available() else "streaming")
        if self.pg_mode == "auto":
            # real pg_auto_failover; services.sh's node is not used
            self.paf = autofailover.AutoCluster(self, pg_bin)
            self.paf.start()
            self.nodes = self.paf.nodes
            for m in ("primary", "standby", "sync", "fail_over", "heal_pg", "kill_standby"):
                setattr(self, m, getattr(self.paf, m))
            return
        a = PgNode("pg-a", env["BERICHTD_PG_ROOT"], int(env["BERICHTD_PG_PORT"]), pg_bin)
        broot = Path(env["BERICHTD_PG_ROOT"]).parent / (Path(env["BERICHTD_PG_ROOT"]).name + "-b")
        if broot.exists():
            shutil.rmtree(broot)
        broot.mkdir(mode=0o700)
        shutil.chown(broot, PGUSER_OS)
        b = PgNode("pg-b", broot, free_port(a.port), pg_bin)
        self.nodes = [a, b]
        a.sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        a.sql("ALTER SYSTEM SET synchronous_commit = 'on'")
        a.sql("SELECT pg_reload_conf()")
        self.make_standby(b, a)

    def primary(self):
        for n in self.nodes:
            if n.alive():
                try:
                    if not n.in_recovery():
                        return n
                except RuntimeError:
                    pass
        return None

    def standby(self):
        p = self.primary()
        return next((n for n in self.nodes if n is not p), None)

    def make_standby(self, node, primary):
        """(Re)build node as a synchronous standby of primary."""
        if node.alive():
            node.stop("immediate")
        if node.data.exists():
            shutil.rmtree(node.data)
        as_pg(primary.pg_bin + "/pg_basebackup", "-h", "127.0.0.1", "-p", primary.port,
              "-U", "postgres", "-D", node.data, "-R", "-X", "stream", "-c", "fast",
              timeout=300)
        node.start()
        wait_until(lambda: primary.sql("SELECT count(*) FROM pg_stat_replication "
                                       "WHERE state = 'streaming'") != "0",
                   timeout=60, what="%s streaming from %s" % (node.name, primary.name))
        self.sync(primary, True)
        self.note("%s is the synchronous standby of %s" % (node.name, primary.name))

    def sync(self, primary, on):
        primary.sql("ALTER SYSTEM SET synchronous_standby_names = '%s'" % ("*" if on else ""))
        primary.sql("SELECT pg_reload_conf()")

    def fail_over(self, old=None):
        """The primary's machine dies; the standby is promoted; the lost
        node comes back as the new standby. Returns the seconds from the kill
        to a writable new primary."""
        old = old or self.primary()
        new = next(n for n in self.nodes if n is not old)
        t0 = time.monotonic()
        if old.alive():
            old.kill9()
        self.note("killed primary %s (kill -9 of all its processes)" % old.name)
        as_pg(new.pg_bin + "/pg_ctl", "-D", new.data, "-w", "-t", "60", "promote")
        wait_until(lambda: not new.in_recovery(), timeout=60, what="promotion")
        self.sync(new, False)   # no standby yet: commit on one node
        took = time.monotonic() - t0
        self.note("promoted %s in %.1f s" % (new.name, took))
        return took

    def heal(self):
        """Everything back: PostgreSQL standby, Redis replica."""
        self.heal_pg()
        self.redis_heal()

    def heal_pg(self):
        """Every node up; the one that is not primary streams from it."""
        p = self.primary()
        for n in self.nodes:
            if n is p:
                continue
            try:
                ok = n.alive() and n.in_recovery() and p.sql(
                    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") != "0"
            except RuntimeError:
                ok = False
            if not ok:
                self.make_standby(n, p)
        self.sync(p, True)

    def kill_standby(self):
        s = self.standby()
        s.kill9()
        self.note("killed standby %s" % s.name)
        time.sleep(2)   # what a monitor takes to see it
        self.sync(self.primary(), False)
        self.note("synchronous replication off while %s is away" % s.name)
        return s

    # --------------------------------------------------------------- Redis
    def start_redis(self):
        root = self.run_dir / "redis-ha"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        self.redis_ha = ha = RedisHA(root)
        primary = ha.start_server("primary")
        self.redis_master = "primary"
        self.redis_n = 0
        self._redis_replica(primary)
        ha.start_sentinel()
        wait_until(lambda: ha.cli("sentinel", "SENTINEL", "replicas", MASTER), timeout=30,
                   what="sentinel knows the replica")

    def _redis_replica(self, master_port):
        self.redis_n += 1
        name = "replica%d" % self.redis_n
        self.redis_ha.start_server(name, "--replicaof", "127.0.0.1", str(master_port))
        wait_until(lambda: "master_link_status:up" in self.redis_ha.cli(name, "INFO",
                                                                         "replication"),
                   timeout=30, what="redis %s in sync" % name)
        self.redis_replica = name

    def redis(self, *args):
        """A command to the current Redis primary."""
        return self.redis_ha.cli(self.redis_master, *args)

    def redis_fail_over(self):
        """kill -9 of the Redis primary; the sentinel promotes the replica.
        Returns the seconds to the promotion."""
        ha = self.redis_ha
        old, new = self.redis_master, self.redis_replica
        t0 = time.monotonic()
        ha.procs[old].kill()
        ha.procs[old].wait(10)
        self.note("killed Redis primary %s" % old)
        wait_until(lambda: ha.master_port() == ha.ports[new], timeout=60,
                   what="the sentinel promoted %s" % new)
        self.redis_master = new
        self.redis_replica = None
        took = time.monotonic() - t0
        self.note("sentinel promoted %s in %.1f s" % (new, took))
        return took

    def redis_heal(self):
        if self.redis_replica is None:
            self._redis_replica(self.redis_ha.ports[self.redis_master])
            self.note("new Redis replica %s" % self.redis_replica)

    # ------------------------------------------------------------- daemons
    def start(self, instances=2, **overrides):
        harness._services_sh("start", self.run_dir, timeout=180)
        self.services = ClusterServices(self.run_dir, self)
        self.start_pg()
        self.start_redis()
        conf = {"delivery.workers": "2", "delivery.batch": "20",
                "delivery.reconcile_interval": "5s", "delivery.visibility_timeout": "300s",
                "postgres.pool_size": "4", "log.level": "info", "smtp.timeout": "30s",
                "redis.sentinels": "127.0.0.1:%d" % self.redis_ha.ports["sentinel"],
                "redis.master_name": MASTER}
        conf.update(overrides)
        for i in range(instances):
            name = "inst%d" % (i + 1)
            # its name in pg_stat_activity (the soak counts connections per instance)
            conf["postgres.conninfo"] = (self.services.conninfo
                                         + " application_name=berichtd-" + name)
            d = Daemon(self.services, name, group="faults-%d" % os.getpid(),
                       migrate=(i == 0), **conf)
            self.daemons.append(d)
        for d in self.daemons:
            d.start(timeout=60)
        self.start_haproxy()
        return self

    def start_haproxy(self):
        self.lb_port = free_port()
        self.lb_stats = free_port(self.lb_port)
        servers = "\n".join(
            "    server %s %s check port %s inter 500ms fall 2 rise 2"
            % (d.name, d.base_url.split("//")[1], d.ops_url.rsplit(":", 1)[1])
            for d in self.daemons)
        cfg = self.run_dir / "haproxy.cfg"
        cfg.write_text("""global
    maxconn 4096
    # one line per request in haproxy.log: which instance answered, how
    # often it was retried (a "+" before the count means redispatched)
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # every retry goes to another instance; a request is retried at layer 7
    # only if HAProxy had it whole before it forwarded it
    option redispatch 1
    option http-buffer-request
    retries 2
    # the agency API is idempotent (a resent referentie is answered 200 with
    # its first berichtId; an open twice keeps the first time), so HAProxy may
    # resend to the other instance what one refused or dropped
    retry-on conn-failure empty-response 503
frontend agencies
    bind 127.0.0.1:%d
    default_backend berichtd
backend berichtd
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
%s
""" % (self.lb_port, servers))
        self._lb_out = open(self.run_dir / "haproxy.log", "ab")
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)],
                                        stdout=self._lb_out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.lb_url = "http://127.0.0.1:%d" % self.lb_port

        def up():
            try:
                return harness.request(self.lb_url, "GET", "/healthz", timeout=2).status == 200
            except OSError:
                return False
        wait_until(up, timeout=30, what="haproxy answering")

    def psql(self, sql, params=None):
        return self.services.psql(sql, params)

    def stop(self):
        for d in self.daemons:
            try:
                if d.running():
                    d.stop(timeout=30)
            except Exception as e:   # report, go on stopping
                print("stop %s: %s" % (d.name, e))
                d.kill9()
        if getattr(self, "redis_ha", None):
            self.redis_ha.stop()
        if self.haproxy and self.haproxy.poll() is None:
            self.haproxy.terminate()
            self.haproxy.wait(10)
        if getattr(self, "paf", None):
            self.paf.stop()
            self.nodes = []
        for n in getattr(self, "nodes", []):
            n.freeze(False)
            n.stop("immediate")
        b = (getattr(self, "nodes", None) or [None, None])[1]
        harness._services_sh("stop", self.run_dir)
        if b is not None:
            shutil.rmtree(b.root, ignore_errors=True)
