"""PostgreSQL for the fault matrix under real pg_auto_failover (issue 13).

A monitor and two data nodes made with pg_autoctl (--no-ssl, --auth trust,
127.0.0.1, free ports) under a temporary root the postgres user owns; each
node's keeper runs as `pg_autoctl run` in its own session. With two nodes
pg_auto_failover keeps replication synchronous (ANY 1 (...)), so a 201 means
the message is on two servers; while the standby is away the monitor moves
the primary to wait_primary (commit on one node). The monitor's timers are
shortened (ALTER SYSTEM on the monitor, reload) so a failover takes seconds.

AutoCluster gives cluster.Cluster the same face as the self-made monitor
(FAULTS_PG=streaming): nodes, primary(), standby(), fail_over(), heal_pg(),
kill_standby(), sync(); the faults act on the machine (kill -9, SIGSTOP),
the monitor and the keepers do the rest.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from harness import free_port, wait_until

PGUSER_OS = "postgres"

# the monitor's GUCs, in ms (defaults 5000/5000/2/2000/20000/30000/10000)
MONITOR_GUCS = {
    "health_check_period": 1000,
    "health_check_timeout": 1000,
    "health_check_max_retries": 1,
    "health_check_retry_delay": 500,
    "node_considered_unhealthy_timeout": 2000,
    "primary_demote_timeout": 3000,
    "startup_grace_period": 1000,
}


def available():
    return shutil.which("pg_autoctl") is not None


class Autoctl:
    """Runs pg_autoctl and psql as the postgres user with the root's XDG dirs
    (pg_autoctl keeps its config and state there)."""

    def __init__(self, root, pg_bin):
        self.root, self.pg_bin = Path(root), pg_bin
        self.env = ["env", "PATH=%s:/usr/bin:/bin" % pg_bin,
                    "XDG_CONFIG_HOME=%s/cfg" % root, "XDG_DATA_HOME=%s/share" % root,
                    "XDG_RUNTIME_DIR=%s/run" % root]

    def cmd(self, *args):
        return ["runuser", "-u", PGUSER_OS, "--", *self.env, *map(str, args)]

    def run(self, *args, check=True, timeout=180):
        p = subprocess.run(self.cmd(*args), cwd="/", capture_output=True, text=True,
                           errors="replace", timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (rc=%d): %s%s" % (args, p.returncode, p.stdout,
                                                             p.stderr[-2000:]))
        return p


class NodeChecks:
    """What both kinds of data node ask of their PostgreSQL (this file's
    AutoNode and cluster.py's PgNode): needs name, port, pg_bin and
    postmaster_pid()."""

    def alive(self):
        pm = self.postmaster_pid()
        if not pm:
            return False
        try:
            st = Path("/proc/%d/stat" % pm).read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return st not in ("Z", "X")

    def sql(self, q, dbname="postgres"):
        p = subprocess.run([self.pg_bin + "/psql", "-X", "-q", "-At", "-h", "127.0.0.1", "-p",
                            str(self.port), "-U", "postgres", "-d", dbname, "-c", q],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError("psql %s on %s: %s" % (q, self.name, p.stderr))
        return p.stdout.strip()

    def in_recovery(self):
        return self.sql("SELECT pg_is_in_recovery()") == "t"

    def writable(self):
        try:
            return self.sql("SELECT NOT pg_is_in_recovery() AND "
                            "current_setting('transaction_read_only') = 'off'") == "t"
        except RuntimeError:
            return False


class AutoNode(NodeChecks):
    """A pg_autoctl node (monitor or data node): its keeper and its postgres."""

    def __init__(self, name, ctl, port):
        self.name, self.ctl, self.port = name, ctl, port
        self.data = ctl.root / name
        self.log = ctl.root / ("%s.log" % name)
        self.keeper = None
        self.pg_bin = ctl.pg_bin

    def run_keeper(self):
        if self.keeper and self.keeper.poll() is None:
            return
        out = open(self.log, "ab")
        self.keeper = subprocess.Popen(self.ctl.cmd("pg_autoctl", "run", "--pgdata", self.data),
                                       cwd="/", stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        out.close()

    def keeper_alive(self):
        return self.keeper is not None and self.keeper.poll() is None

    def postmaster_pid(self):
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def pids(self):
        """The keeper's session and the postmaster with its children."""
        out = []
        sid = self.keeper.pid if self.keeper_alive() else None
        pm = self.postmaster_pid()
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                st = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            pid, ppid, s = int(d.name), int(st[1]), int(st[3])
            if (sid and s == sid) or (pm and (pid == pm or ppid == pm)):
                out.append(pid)
        return out

    def signal_all(self, sig):
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def kill9(self):
        """The machine is gone: keeper and postgres die at once."""
        self.signal_all(signal.SIGKILL)
        if self.keeper:
            self.keeper.wait(30)
        wait_until(lambda: not self.alive(), timeout=30, what="%s dead" % self.name)

    def freeze(self, on):
        """Partition (no iptables here): keeper and postgres SIGSTOP/SIGCONT."""
        self.signal_all(signal.SIGSTOP if on else signal.SIGCONT)

    def stop(self, mode="fast"):
        """Postgres stops; the keeper (still running) starts it again."""
        self.ctl.run(self.pg_bin + "/pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60",
                     "stop", check=False)

    def start(self):
        if not self.keeper_alive():
            self.run_keeper()
        wait_until(self.alive, timeout=60, what="%s postgres up" % self.name)

class AutoCluster:
    """The PostgreSQL half of cluster.Cluster under pg_auto_failover."""

    def __init__(self, cluster, pg_bin):
        self.c = cluster
        root = Path(tempfile.mkdtemp(prefix="berichtd-paf."))   # short socket paths
        shutil.chown(root, PGUSER_OS)
        os.chmod(root, 0o700)
        self.ctl = Autoctl(root, pg_bin)
        self.monitor = AutoNode("monitor", self.ctl, free_port())
        self.nodes = []

    @property
    def monitor_uri(self):
        return ("postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover?sslmode=disable"
                % self.monitor.port)

    def start(self):
        m, ctl = self.monitor, self.ctl
        ctl.run("pg_autoctl", "create", "monitor", "--pgdata", m.data, "--pgport", m.port,
                "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl",
                "--pgctl", ctl.pg_bin + "/pg_ctl")
        m.run_keeper()
        wait_until(lambda: self._mon_ok(), timeout=60, what="monitor up")
        for k, v in MONITOR_GUCS.items():
            m.sql("ALTER SYSTEM SET pgautofailover.%s = %d" % (k, v), dbname="pg_auto_failover")
        m.sql("SELECT pg_reload_conf()", dbname="pg_auto_failover")
        port = m.port
        for name in ("pg-a", "pg-b"):
            port = free_port(port)
            n = AutoNode(name, ctl, port)
            ctl.run("pg_autoctl", "create", "postgres", "--pgdata", n.data, "--pgport", port,
                    "--hostname", "127.0.0.1", "--name", name, "--auth", "trust", "--no-ssl",
                    "--dbname", "berichtd", "--username", "postgres",
                    "--pgctl", ctl.pg_bin + "/pg_ctl", "--monitor", self.monitor_uri,
                    timeout=300)
            n.run_keeper()
            self.nodes.append(n)
            wait_until(lambda: n.alive(), timeout=60, what="%s up" % name)
        self.wait_healthy()
        self.c.note("pg_auto_failover: monitor :%d, %s :%d primary, %s :%d synchronous standby"
                    % (m.port, self.nodes[0].name, self.nodes[0].port, self.nodes[1].name,
                       self.nodes[1].port))

    def _mon_ok(self):
        try:
            return self.monitor.sql("SELECT 1", dbname="pg_auto_failover") == "1"
        except RuntimeError:
            return False

    def states(self):
        """{name: (reported, assigned, replication quorum)} as the monitor sees it."""
        rows = self.monitor.sql("SELECT nodename, reportedstate, goalstate, replicationquorum "
                                "FROM pgautofailover.node", dbname="pg_auto_failover")
        return {r.split("|")[0]: tuple(r.split("|")[1:]) for r in rows.splitlines()}

    def wait_healthy(self, timeout=180):
        """One primary, one secondary, both reported as assigned, sync on."""
        def ok():
            st = self.states()
            got = sorted(v[0] for v in st.values() if v[0] == v[1])
            return got == ["primary", "secondary"]
        wait_until(ok, timeout=timeout, what="formation primary + secondary %s" % (
            self.states(),))
        p = self.primary()
        wait_until(lambda: p.sql("SELECT count(*) FROM pg_stat_replication WHERE "
                                 "sync_state IN ('sync', 'quorum')") != "0",
                   timeout=60, what="synchronous standby of %s" % p.name)

    def primary(self):
        for n in self.nodes:
            if n.alive() and n.writable():
                return n
        return None

    def standby(self):
        p = self.primary()
        return next((n for n in self.nodes if n is not p), None)

    def sync(self, primary, on):
        """Replication quorum of the standby: off = asynchronous (the break)."""
        s = next(n for n in self.nodes if n is not primary)
        self.ctl.run("pg_autoctl", "set", "node", "replication-quorum",
                     "true" if on else "false", "--pgdata", s.data)
        want = "" if not on else None
        wait_until(lambda: (primary.sql("SHOW synchronous_standby_names") == "") == (want == ""),
                   timeout=60, what="synchronous_standby_names %s" % ("off" if not on else "on"))

    def fail_over(self, old=None):
        old = old or self.primary()
        new = next(n for n in self.nodes if n is not old)
        t0 = time.monotonic()
        if old.alive() or old.keeper_alive():
            old.kill9()
        self.c.note("killed primary %s (kill -9 of its postgres and keeper)" % old.name)
        wait_until(new.writable, timeout=120, what="the monitor promoted %s" % new.name)
        took = time.monotonic() - t0
        self.c.note("monitor promoted %s in %.1f s" % (new.name, took))
        return took

    def kill_standby(self):
        s = self.standby()
        s.kill9()
        self.c.note("killed standby %s" % s.name)
        wait_until(lambda: "wait_primary" in [v[0] for v in self.states().values()],
                   timeout=60, what="primary in wait_primary")
        self.c.note("monitor: primary in wait_primary while %s is away" % s.name)
        return s

    def heal_pg(self):
        for n in self.nodes:
            n.freeze(False)
            if not n.keeper_alive():
                n.run_keeper()
        for name, (_, _, quorum) in self.states().items():
            if quorum != "t":
                n = next(x for x in self.nodes if x.name == name)
                self.ctl.run("pg_autoctl", "set", "node", "replication-quorum", "true",
                             "--pgdata", n.data)
        self.wait_healthy()

    def stop(self):
        for n in self.nodes + [self.monitor]:
            n.freeze(False)
            if n.keeper_alive():
                n.keeper.send_signal(signal.SIGTERM)
        for n in self.nodes + [self.monitor]:
            try:
                if n.keeper:
                    n.keeper.wait(30)
            except subprocess.TimeoutExpired:
                n.kill9()
        shutil.rmtree(self.ctl.root, ignore_errors=True)
