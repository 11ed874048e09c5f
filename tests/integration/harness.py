"""Test harness for berichtd integration tests (stdlib + psycopg2 only).

Services  - the PostgreSQL/redis/SMTP sink set started by tests/harness/services.sh
write_config - berichtd INI config for those services, with overrides
Daemon    - one bin/berichtd process (migrate, run, stop, token, cli, HTTP)
request / HttpClient / Response - tiny HTTP client on http.client
Mailbox   - reads what the SMTP sink stored
new_bsn / new_oin - unique valid test identifiers
SECRETS   - every BSN, address, token and code the suite used (logscan.py):
            no daemon log of the run may hold one (conftest.py checks)
log_records - a daemon log as parsed logfmt lines
"""
import email
import email.policy
import http.client
import itertools
import json as jsonlib
import atexit
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2

import logscan

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES_SH = REPO_ROOT / "tests" / "harness" / "services.sh"
# BERICHTD_BIN lets `make test SANITIZE=...` run the instrumented build
BERICHTD = Path(os.environ.get("BERICHTD_BIN", str(REPO_ROOT / "bin" / "berichtd")))
TEMPLATES_DIR = REPO_ROOT / "config" / "templates"

# random per test session (one pytest process)
SESSION_BSN_KEY = secrets.token_hex(32)
SESSION_ID = uuid.uuid4().hex[:8]

# What the suite used that must never be in a log (conftest.py scans every
# daemon log of the run at the end). Filled where secrets are made or sent:
# new_bsn, request() (JSON bodies, DSNs, the bearer token), Daemon.token,
# verification_code. LOG_FILES: the [log] files of configs written here.
SECRETS = logscan.Secrets()
LOG_FILES = set()


def _port_block():
    """The ports this test process picks listeners from: below the kernel's
    ephemeral range, which every outgoing connection (and another test's
    2,000 idle ones) draws from, so a port picked here cannot be taken by a
    client socket before the daemon binds it; and a block of its own per
    xdist worker, so two workers never pick the same one."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    k = int(worker[2:]) if worker[2:].isdigit() else 0
    size = 4000
    start = 12000 + (k % 4) * size
    if start + size > low:
        return None
    return start, start + size


def free_port(*not_these):
    """A currently free TCP port on 127.0.0.1 (none of not_these)."""
    block = _port_block()
    for _ in range(1000 if block else 0):
        port = random.randrange(*block)
        if port in not_these:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in not_these:
            return port


def read_env(path):
    """Parse a KEY=VALUE file (DIR/env)."""
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    return env


def _tail(path, n=60):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no %s)" % path


# ------------------------------------------------------------------ services

class Services:
    """The services of one run dir (see tests/harness/services.sh)."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir).resolve()
        self.reload()

    def reload(self):
        self.env = read_env(self.run_dir / "env")
        self.pg_port = int(self.env["BERICHTD_PG_PORT"])
        self.redis_port = int(self.env["BERICHTD_REDIS_PORT"])
        self.smtp_port = int(self.env["BERICHTD_SMTP_PORT"])
        self.mail_dir = Path(self.env["BERICHTD_MAIL_DIR"])
        self.pg_bin = self.env.get("BERICHTD_PG_BIN")
        self.pg_data = self.env.get("BERICHTD_PG_DATA")

    # -- lifecycle (used by the session fixture when BERICHTD_RUN_DIR is unset)
    @classmethod
    def start(cls, run_dir, timeout=120):
        _services_sh("start", run_dir, timeout=timeout)
        return cls(run_dir)

    def stop(self):
        _services_sh("stop", self.run_dir)

    # -- PostgreSQL
    @property
    def conninfo(self):
        return "host=127.0.0.1 port=%d dbname=berichtd user=postgres" % self.pg_port

    def pg_connect(self, autocommit=True, **kw):
        """A new psycopg2 connection (caller closes it)."""
        conn = psycopg2.connect(self.conninfo, connect_timeout=10, **kw)
        conn.autocommit = autocommit
        return conn

    def psql(self, sql, params=None):
        """Run one statement (autocommit); returns the rows ([] if none)."""
        conn = self.pg_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description is not None else []
        finally:
            conn.close()

    def pg_ready(self):
        try:
            self.psql("SELECT 1")
            return True
        except psycopg2.Error:
            return False

    # -- redis
    def redis(self, *args, check=True):
        """redis-cli --raw ARGS; returns stdout without the trailing newline."""
        p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.redis_port),
                            "--raw", *map(str, args)],
                           capture_output=True, text=True, timeout=30)
        out = p.stdout[:-1] if p.stdout.endswith("\n") else p.stdout
        if check and (p.returncode != 0 or out.startswith(("ERR ", "WRONGTYPE "))):
            raise RuntimeError("redis-cli %s: rc=%d %s%s" % (args, p.returncode, out, p.stderr))
        return out

    def redis_lines(self, *args):
        out = self.redis(*args)
        return out.split("\n") if out else []

    def redis_ready(self):
        try:
            return self.redis("PING") == "PONG"
        except Exception:
            return False

    # -- SMTP
    def smtp_ready(self):
        try:
            with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=2):
                return True
        except OSError:
            return False

    def smtp_mode(self, mode=None):
        """Sink behaviour: "tempfail" (421 everything), "permfail" (554 at
        MAIL) or None (normal)."""
        f = self.run_dir / "smtp" / "mode"
        if mode:
            f.write_text(mode + "\n")
        elif f.exists():
            f.unlink()

    # -- fault injection (same ports, same data)
    def pg_stop(self, mode="fast"):
        _services_sh("pg-stop", self.run_dir, mode)

    def pg_start(self):
        _services_sh("pg-start", self.run_dir)

    def redis_restart(self):
        _services_sh("redis-restart", self.run_dir)

    def redis_stop(self):
        _services_sh("redis-stop", self.run_dir)

    def redis_start(self):
        _services_sh("redis-start", self.run_dir)

    def smtp_stop(self):
        _services_sh("smtp-stop", self.run_dir)

    def smtp_start(self):
        _services_sh("smtp-start", self.run_dir)

    def ensure_up(self):
        """Bring back anything a test left stopped; reset the sink mode."""
        self.smtp_mode(None)
        if not self.pg_ready():
            self.pg_start()
        if not self.redis_ready():
            self.redis_start()
        if not self.smtp_ready():
            self.smtp_start()

    def write_config(self, path, **overrides):
        return write_config(path, self, **overrides)


def _services_sh(cmd, run_dir, *extra, timeout=120):
    p = subprocess.run([str(SERVICES_SH), cmd, str(run_dir), *extra],
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("services.sh %s %s failed (rc=%d):\n%s%s"
                           % (cmd, run_dir, p.returncode, p.stdout, p.stderr))
    return p.stdout


# -------------------------------------------------------------------- config

def _normalize_overrides(overrides):
    """Accept "section.key" keys (also "section__key" for use as kwargs)."""
    out = {}
    for k, v in overrides.items():
        if "." not in k and "__" in k:
            k = k.replace("__", ".", 1)
        if "." not in k:
            raise ValueError("config override %r is not 'section.key'" % k)
        out[k] = v
    return out


def default_config(services, http_port=None, key_prefix=None, log_file=None, ops_port=None):
    """The base config as {section: {key: value}} (insertion ordered)."""
    http_port = http_port or free_port()
    return {
        "http": {"listen": "127.0.0.1:%d" % http_port},
        # the operators' listener (/readyz, /metrics): never the API's port
        "ops": {"listen": "127.0.0.1:%d" % (ops_port or free_port(http_port))},
        "postgres": {"conninfo": services.conninfo, "pool_size": "4"},
        "redis": {"host": "127.0.0.1", "port": str(services.redis_port),
                  "key_prefix": key_prefix or "berichtd:%s-%s:" % (SESSION_ID, uuid.uuid4().hex[:8])},
        "smtp": {"host": "127.0.0.1", "port": str(services.smtp_port),
                 "from": "Berichtenbox <noreply@berichtenbox.example>",
                 "bounce_domain": "berichtenbox.example"},
        "delivery": {"workers": "2"},
        "notify": {"digest_window": "0s", "quiet_hours": "off"},
        # the retention janitor purges old rows; tests that want it set a short interval
        "retention": {"interval": "1d"},
        "security": {"bsn_key": SESSION_BSN_KEY},
        "templates": {"dir": str(TEMPLATES_DIR)},
        "log": {"level": "debug",
                "file": str(log_file or services.run_dir / ("berichtd-%s.log" % uuid.uuid4().hex[:8]))},
    }


def write_config(path, services, *, http_port=None, key_prefix=None, log_file=None,
                 ops_port=None, **overrides):
    """Write a berichtd INI config for `services` to `path`.

    overrides: {"section.key": value} (value None deletes the key; unknown
    sections/keys are added).  Pass dotted keys as **{"delivery.workers": 4}
    or as delivery__workers=4.  Returns the config dict that was written.
    """
    cfg = default_config(services, http_port, key_prefix, log_file, ops_port)
    return write_config_dict(path, cfg, **overrides)


def write_config_dict(path, cfg, **overrides):
    """Write the config dict cfg ({section: {key: value}}, changed in place
    by overrides as in write_config) to `path`, atomically; returns cfg."""
    for k, v in _normalize_overrides(overrides).items():
        section, key = k.split(".", 1)
        if v is None:
            cfg.get(section, {}).pop(key, None)
        else:
            cfg.setdefault(section, {})[key] = str(v)
    if cfg.get("log", {}).get("file"):
        LOG_FILES.add(str(cfg["log"]["file"]))
    lines = ["# berichtd test config written by tests/integration/harness.py"]
    for section, kv in cfg.items():
        if not kv:
            continue
        lines.append("")
        lines.append("[%s]" % section)
        lines.extend("%s = %s" % (k, v) for k, v in kv.items())
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return cfg


# ---------------------------------------------------------------------- HTTP

class Headers(Mapping):
    """Case-insensitive read-only header mapping; repeated headers are joined
    with ", " (get_all() returns them separately)."""

    def __init__(self, pairs):
        self._all = {}
        self._names = {}
        for k, v in pairs:
            self._all.setdefault(k.lower(), []).append(v)
            self._names.setdefault(k.lower(), k)

    def __getitem__(self, key):
        return ", ".join(self._all[key.lower()])

    def __iter__(self):
        return iter(self._names[k] for k in self._all)

    def __len__(self):
        return len(self._all)

    def __contains__(self, key):
        return isinstance(key, str) and key.lower() in self._all

    def get_all(self, key):
        return list(self._all.get(key.lower(), []))

    def __repr__(self):
        return "Headers(%r)" % dict(self.items())


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return jsonlib.loads(self.body)

    def __repr__(self):
        return "<Response %d %s %r>" % (self.status, self.reason, self.body[:200])


def request(base_url, method, path, token=None, json=None, body=None, headers=None,
            timeout=30):
    """One HTTP request on a fresh connection. `json` is serialised and sent
    as application/json; `body` (bytes/str) is sent as is."""
    u = urlsplit(base_url)
    hdrs = {"Connection": "close"}
    if token:
        hdrs["Authorization"] = "Bearer " + token
        SECRETS.add("token", token)
    if json is not None:
        SECRETS.add_from(json)
        body = jsonlib.dumps(json).encode()
        hdrs["Content-Type"] = "application/json"
    elif isinstance(body, str):
        SECRETS.add_from(body)  # a DSN names the citizen's address
        body = body.encode()
    hdrs.update(headers or {})
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        return Response(r.status, r.reason, Headers(r.getheaders()), r.read())
    finally:
        conn.close()


class HttpClient:
    """request() bound to a base URL and (optionally) a default token."""

    def __init__(self, base_url, token=None):
        self.base_url = base_url
        self.token = token

    def request(self, method, path, token=None, **kw):
        return request(self.base_url, method, path, token=token or self.token, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)


# -------------------------------------------------------------------- daemon

_daemon_seq = itertools.count(1)
_live = set()  # running Daemons, killed at interpreter exit as a last resort


@atexit.register
def _kill_leftovers():
    for d in list(_live):
        if d.proc and d.proc.poll() is None:
            d.proc.kill()


def _url(listen):
    host, _, port = listen.rpartition(":")
    return "http://%s:%s" % (host or "127.0.0.1", port)


class Daemon:
    """One berichtd instance: config file, migrate, run/stop, CLI, HTTP.

    Daemon(services, name, group=None, http_port=None, migrate=True,
           **config_overrides)
    Daemons that should share redis state (same queue) pass the same `group`
    (it sets redis.key_prefix); by default every Daemon gets its own.
    request() talks to the API listener (base_url), ops_request() to the
    operators' listener (ops_url: /healthz, /readyz, /metrics).
    """

    def __init__(self, services, name="d", group=None, http_port=None, migrate=True,
                 ops_port=None, **config_overrides):
        self.services = services
        self.name = name
        run_dir = services.run_dir
        n = next(_daemon_seq)
        while True:  # unique file names even when a run dir is reused
            stem = "berichtd-%d-%s-%s" % (n, SESSION_ID, name)
            if not (run_dir / (stem + ".conf")).exists():
                break
            n = next(_daemon_seq)
        self.conf = run_dir / (stem + ".conf")
        self.log_file = run_dir / (stem + ".log")       # [log] file
        self.out_file = run_dir / (stem + ".out")       # stdout/stderr
        LOG_FILES.update((str(self.log_file), str(self.out_file)))
        self.group = group or "%s-%s-%d" % (SESSION_ID, name, n)
        http_port = http_port or free_port()
        self.config = write_config(self.conf, services,
                                   http_port=http_port,
                                   ops_port=ops_port or free_port(http_port),
                                   key_prefix="berichtd:%s:" % self.group,
                                   log_file=self.log_file, **config_overrides)
        self.base_url = _url(self.config.get("http", {}).get("listen", "127.0.0.1:0"))
        self.ops_url = _url(self.config.get("ops", {}).get("listen", "127.0.0.1:9090"))
        self.http = HttpClient(self.base_url)
        self.ops = HttpClient(self.ops_url)
        self.proc = None
        self._out = None
        if migrate:
            self.migrate()

    def __repr__(self):
        return "<Daemon %s %s pid=%s>" % (self.name, self.base_url, self.pid)

    def rewrite_config(self, **overrides):
        """Changes the daemon's config file in place (same ports, prefix and
        log file), e.g. before a SIGHUP; overrides as for write_config."""
        write_config_dict(self.conf, self.config, **overrides)

    # -- CLI
    def cli(self, *args, input=None, timeout=60, env=None, conf=True):
        """bin/berichtd ARGS with -c CONF inserted after the leading
        subcommand words (e.g. cli("token", "create", "--role", "x") runs
        `berichtd token create -c CONF --role x`). Returns CompletedProcess
        (text mode)."""
        args = [str(a) for a in args]
        i = 0
        while i < len(args) and not args[i].startswith("-"):
            i += 1
        if conf:
            args[i:i] = ["-c", str(self.conf)]
        return subprocess.run([str(BERICHTD), *args], input=input, capture_output=True,
                              text=True, timeout=timeout, env=env, cwd=str(REPO_ROOT))

    def migrate(self):
        p = self.cli("migrate")
        assert p.returncode == 0, "berichtd migrate failed (rc=%d):\n%s%s" % (
            p.returncode, p.stdout, p.stderr)
        return p

    def token(self, role, oin=None, name=None, geldig_tot=None):
        return self.token_with_id(role, oin, name, geldig_tot)[0]

    def token_with_id(self, role, oin=None, name=None, geldig_tot=None):
        """`token create` through the CLI; returns (token, id), the id being
        what `token revoke` and `token list` name it by."""
        args = ["token", "create", "--role", role]
        if oin is not None:
            args += ["--oin", oin]
        if name is not None:
            args += ["--name", name]
        if geldig_tot is not None:
            args += ["--geldig-tot", geldig_tot]
        p = self.cli(*args)
        assert p.returncode == 0 and p.stdout.strip(), "token create failed (rc=%d):\n%s%s" % (
            p.returncode, p.stdout, p.stderr)
        token = p.stdout.strip().splitlines()[0].strip()
        SECRETS.add("token", token)
        m = re.search(r"^token (\d+) for role", p.stderr, re.MULTILINE)
        assert m, "token create named no id:\n" + p.stderr
        return token, m.group(1)

    # -- process
    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def died_unexpectedly(self):
        """The process is gone although nobody stopped it: a crash."""
        return (self.proc is not None and self.proc.poll() is not None
                and not getattr(self, "stopped_on_purpose", False))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait=True, timeout=20):
        """Launch `berichtd run`; with wait, poll until /healthz on the API
        listener and /readyz on the ops listener both answer 200 (raises with
        the log tail otherwise)."""
        self.stopped_on_purpose = False
        assert not self.running(), "already running"
        self._out = open(self.out_file, "ab")
        self._out.write(b"==== start %s ====\n" % time.strftime("%F %T").encode())
        self._out.flush()
        self.proc = subprocess.Popen([str(BERICHTD), "run", "-c", str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, cwd=str(REPO_ROOT),
                                     start_new_session=True)
        _live.add(self)
        if wait:
            try:
                self.wait_ready(timeout)
            except BaseException:
                if self.proc.poll() is None:  # don't leave a half-started daemon
                    self.proc.kill()
                self._wait(10)
                raise
        return self

    def wait_ready(self, timeout=20, paths=(("http", "/healthz"), ("ops", "/readyz"))):
        deadline = time.monotonic() + timeout
        pending = list(paths)
        last = None
        while pending:
            if self.proc.poll() is not None:
                raise RuntimeError("berichtd %s exited with %s during startup\n%s"
                                   % (self.name, self.proc.returncode, self.log_tail()))
            try:
                client = self.ops if pending[0][0] == "ops" else self.http
                last = client.get(pending[0][1], timeout=2)
                if last.status == 200:
                    pending.pop(0)
                    continue
            except OSError as e:
                last = e
            if time.monotonic() > deadline:
                raise TimeoutError("berichtd %s not ready after %ss (%s: %r)\n%s"
                                   % (self.name, timeout, pending[0], last, self.log_tail()))
            time.sleep(0.05)

    def _wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is not None:
                _live.discard(self)
                if self._out:
                    self._out.close()
                    self._out = None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Send `sig`, wait up to `timeout` s, return the exit code
        (negative = killed by that signal, as in subprocess)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.stopped_on_purpose = True
            self.proc.send_signal(sig)
            try:
                return self._wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self._wait(10)
                raise TimeoutError("berichtd %s did not exit within %ss after %s\n%s"
                                   % (self.name, timeout, signal.Signals(sig).name,
                                      self.log_tail()))
        return self._wait(0)

    def kill9(self):
        return self.stop(signal.SIGKILL, timeout=10)

    def restart(self, timeout=20):
        if self.running():
            rc = self.stop()
            assert rc == 0, "berichtd %s exited %s on SIGTERM\n%s" % (self.name, rc, self.log_tail())
        return self.start(timeout=timeout)

    # -- logs
    def log_text(self):
        """[log] file contents followed by captured stdout/stderr."""
        parts = []
        for f in (self.log_file, self.out_file):
            try:
                parts.append(f.read_text(errors="replace"))
            except OSError:
                pass
        return "\n".join(parts)

    def log_records(self):
        """The daemon's log lines (both files) as parsed logfmt {key: value}."""
        return logscan.records(self.log_text())

    def log_tail(self, n=60):
        return "---- %s ----\n%s\n---- %s ----\n%s" % (
            self.log_file, _tail(self.log_file, n), self.out_file, _tail(self.out_file, n))

    # -- HTTP
    def request(self, method, path, token=None, json=None, body=None, headers=None, timeout=30):
        return request(self.base_url, method, path, token=token, json=json, body=body,
                       headers=headers, timeout=timeout)

    def ops_request(self, method, path, headers=None, timeout=30):
        """A request to the operators' listener ([ops] listen)."""
        return request(self.ops_url, method, path, headers=headers, timeout=timeout)

    def __enter__(self):
        if not self.running():
            self.start()
        return self

    def __exit__(self, *exc):
        if self.running():
            self.stop()


# ------------------------------------------------------------------- mailbox

class Mailbox:
    """The SMTP sink's store. messages() returns email.message.EmailMessage
    objects (policy=default), oldest first, each with extra attributes:
    .envelope (the .json sidecar), .mail_from, .rcpt_tos, .raw (bytes exactly
    as received, CRLF), .path.  Parsing is done on LF-normalised bytes."""

    def __init__(self, mail_dir):
        self.mail_dir = Path(mail_dir)

    def _files(self):
        try:
            return sorted(p for p in self.mail_dir.iterdir()
                          if p.suffix == ".eml" and not p.name.startswith("."))
        except FileNotFoundError:
            return []

    def messages(self, predicate=None):
        out = []
        for p in self._files():
            try:
                raw = p.read_bytes()
                env = jsonlib.loads(p.with_suffix(".json").read_text())
            except (FileNotFoundError, ValueError):
                continue  # removed by clear() meanwhile
            # parse with LF line ends so get_content() gives "\n" text (Python's
            # parser keeps CRLF inside bodies); .raw stays byte-exact
            msg = email.message_from_bytes(raw.replace(b"\r\n", b"\n"),
                                           policy=email.policy.default)
            msg.envelope = env
            msg.mail_from = env.get("mail_from")
            msg.rcpt_tos = env.get("rcpt_tos", [])
            msg.raw = raw
            msg.path = p
            if predicate is None or predicate(msg):
                out.append(msg)
        return out

    def count(self):
        return len(self._files())

    def for_rcpt(self, address):
        a = address.lower()
        return self.messages(lambda m: a in (r.lower() for r in m.rcpt_tos))

    def wait_for(self, count, timeout=30, predicate=None):
        """Poll until at least `count` messages (matching predicate) are
        stored; returns them. Raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages(predicate)
            if len(msgs) >= count:
                return msgs
            if time.monotonic() > deadline:
                raise AssertionError(
                    "mailbox: %d of %d messages after %ss; stored: %s"
                    % (len(msgs), count, timeout,
                       [(m.rcpt_tos, m["Subject"]) for m in self.messages()][:20]))
            time.sleep(0.1)

    def clear(self):
        for p in list(self.mail_dir.glob("*")):
            if p.suffix in (".eml", ".json"):
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass


# --------------------------------------------------------------- identifiers

_id_lock = threading.Lock()
_used_bsn = set()
_used_oin = set()
_rng = random.SystemRandom()


def is_valid_bsn(bsn):
    """11-check (elfproef): 9*d1 + 8*d2 + ... + 2*d8 - d9 = 0 (mod 11)."""
    if len(bsn) != 9 or not bsn.isdigit():
        return False
    d = [int(c) for c in bsn]
    return (sum((9 - i) * d[i] for i in range(8)) - d[8]) % 11 == 0


def new_bsn():
    """A valid, never-before-returned (in this process) 9-digit BSN string."""
    with _id_lock:
        while True:
            d = [_rng.randint(1, 9)] + [_rng.randint(0, 9) for _ in range(7)]
            check = sum((9 - i) * d[i] for i in range(8)) % 11
            if check > 9:
                continue
            bsn = "".join(map(str, d)) + str(check)
            if bsn not in _used_bsn:
                _used_bsn.add(bsn)
                SECRETS.add("bsn", bsn)
                return bsn


def new_oin():
    """A unique 20-digit OIN string."""
    with _id_lock:
        while True:
            oin = "00000009" + "".join(str(_rng.randint(0, 9)) for _ in range(12))
            if oin not in _used_oin:
                _used_oin.add(oin)
                return oin


# --------------------------------------------------------------- scenarios

PROBLEM_JSON = "application/problem+json"


DEFAULT_TYPES = ("T1", "T2", "AANSLAG")


def make_agency(daemon, name=None, oin=None, types=DEFAULT_TYPES, mandatory=False):
    """Creates an agency with a token and registered message types through
    the operator CLI. Returns {"token", "oin", "name"}."""
    oin = oin or new_oin()
    name = name or "Gemeente Test %s" % os.urandom(3).hex()
    token = daemon.token("agency", oin=oin, name=name)
    for code in types:
        out = daemon.cli("berichttype", "add", "--oin", oin, "--code", code)
        assert out.returncode == 0, out.stderr
    if mandatory:
        out = daemon.cli("agency", "set", "--oin", oin, "--mandatory", "yes")
        assert out.returncode == 0, out.stderr
    return {"token": token, "oin": oin, "name": name}


def dsn_text(to, addr, envid=None, message_id=None, status="5.1.1", action="failed"):
    """A Postfix-shaped DSN delivered to `to` about a mail to `addr`."""
    return (
        "Return-Path: <>\r\n" + ("To: %s\r\n" % to if to else "") +
        "From: MAILER-DAEMON@relay.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n"
        "--b1\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example\r\n"
        + ("Original-Envelope-Id: %s\r\n" % envid if envid else "") +
        "\r\nFinal-Recipient: rfc822; %s\r\nAction: %s\r\nStatus: %s\r\n\r\n" % (addr, action, status)
        + "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        + ("Message-ID: %s\r\n" % message_id if message_id else "") + "\r\n--b1--\r\n")


VERIFY_CODE_RE = re.compile(r"^\s*(\d{6})\s*$", re.MULTILINE)


def verification_code(mail):
    """The 6-digit code of a verification mail (a line of its own)."""
    m = VERIFY_CODE_RE.search(mail.get_content())
    assert m, "no code in verification mail:\n%s" % mail.get_content()
    SECRETS.add("code", m.group(1))
    return m.group(1)


def is_verification_mail(mail):
    return VERIFY_CODE_RE.search(mail.get_content()) is not None


def verification_mails(daemon, email):
    a = email.lower()
    return Mailbox(daemon.services.mail_dir).messages(
        lambda m: a in (r.lower() for r in m.rcpt_tos) and is_verification_mail(m))


def wait_verification_mail(daemon, email, count=1, timeout=30):
    """Waits until at least count verification mails to email are in the
    SMTP sink; returns the count-th (told apart from notifications by the
    line holding only the 6-digit code)."""
    a = email.lower()
    mails = Mailbox(daemon.services.mail_dir).wait_for(
        count, timeout=timeout,
        predicate=lambda m: a in (r.lower() for r in m.rcpt_tos) and is_verification_mail(m))
    return mails[count - 1]


def _delivers(daemon):
    return str(daemon.config.get("delivery", {}).get("workers", "2")) != "0"


def make_citizen(daemon, portal, bsn, email=None):
    """Creates (or finds) the account for bsn through the portal API and, if
    email is given, gives it that address the real way: PATCH emailadres,
    wait for the verification mail in the SMTP sink, confirm its code, so
    that notifications go there. The verification mail is removed from the
    sink once read. A daemon with delivery.workers = 0 sends no mail: then
    the code is read from the scheduled verify notification instead, and
    confirming cancels that mail.
    Every test that needs a citizen with a working address uses this one
    helper. Returns the accountId."""
    r = daemon.request("POST", "/v1/accounts", token=portal, json={"bsn": bsn})
    assert r.status in (200, 201), r.text
    account_id = r.json()["accountId"]
    if email:
        before = len(verification_mails(daemon, email))
        r = daemon.request("PATCH", "/v1/accounts/%s" % account_id, token=portal,
                           json={"emailadres": email})
        assert r.status == 200, r.text
        assert r.json()["emailadres"] == email
        if not r.json()["emailGeverifieerd"] and not _delivers(daemon):
            # no worker will send it: take the code from the scheduled mail
            # itself; confirming cancels that mail
            [(code,)] = daemon.services.psql(
                "SELECT payload->>'code' FROM notifications WHERE account_id = %s "
                "AND kind = 'verify' AND state = 'scheduled' ORDER BY id DESC LIMIT 1",
                (account_id,))
            r = daemon.request("POST", "/v1/accounts/%s/emailverificaties/_bevestig"
                               % account_id, token=portal, json={"code": code})
            assert r.status == 200, r.text
        elif not r.json()["emailGeverifieerd"]:
            mail = wait_verification_mail(daemon, email, count=before + 1)
            code = verification_code(mail)
            # consumed here, so tests that count the mails to an address
            # see only the notifications they caused
            for p in (mail.path, mail.path.with_suffix(".json")):
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass
            r = daemon.request("POST", "/v1/accounts/%s/emailverificaties/_bevestig"
                               % account_id, token=portal, json={"code": code})
            assert r.status == 200, r.text
        assert r.json()["emailadres"] == email
        assert r.json()["emailGeverifieerd"] is True
    return account_id


def assert_problem(r, status):
    """Asserts an RFC 9457 problem response with the given status; returns its body."""
    assert r.status == status, r.text
    assert r.headers["Content-Type"].startswith(PROBLEM_JSON), r.headers["Content-Type"]
    assert r.headers["API-Version"]
    body = r.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    return body


# ------------------------------------------------------------------ helpers
# one definition each of what the test files share

def wait_until(pred, timeout=30, interval=0.1, what="condition"):
    """Calls pred until it returns something truthy and returns that; raises
    AssertionError naming `what` (a string, or a callable giving one, for a
    message built at the time of failure) once `timeout` seconds are over."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s"
                                 % (timeout, what() if callable(what) else what))
        time.sleep(interval)


def post_message(daemon, token, bsn, ref=None, typ="T1", **extra):
    """POST /v1/berichten for one message as the agency of `token`; returns
    the Response (a fresh referentie unless `ref` is given)."""
    body = {"bsn": bsn, "berichttype": typ,
            "referentie": ref or "ref-%s" % secrets.token_hex(4)}
    body.update(extra)
    return daemon.request("POST", "/v1/berichten", token=token, json=body)


def post(daemon, token, bsn, ref=None, typ="T1", **extra):
    """post_message that must be answered 201; returns the berichtId."""
    r = post_message(daemon, token, bsn, ref, typ, **extra)
    assert r.status == 201, r.text
    return r.json()["berichtId"]


class Poster:
    """A thread posting one message after another on fresh connections, to
    bsn (or in turn to each of a list of bsns); keeps (status, berichtId or
    None), every exception, and the referentie each exception's request
    carried (failed_refs)."""

    def __init__(self, d, agency, bsn):
        self.d, self.agency = d, agency
        self.bsns = itertools.cycle(bsn if isinstance(bsn, (list, tuple)) else [bsn])
        self.results, self.errors, self.failed_refs = [], [], []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while self.running:
            ref = "ref-%s" % secrets.token_hex(4)
            try:
                r = post_message(self.d, self.agency["token"], next(self.bsns), ref)
                rid = r.json().get("berichtId") if r.status == 201 else None
                with self.lock:
                    self.results.append((r.status, rid))
            except Exception as e:  # noqa: BLE001 - every failure is counted
                with self.lock:
                    self.errors.append(e)
                    self.failed_refs.append(ref)
                time.sleep(0.02)  # e.g. refused: the daemon is gone

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.running = False
        self.thread.join(60)

    def count(self, status=None):
        with self.lock:
            return sum(1 for s, _ in self.results if status is None or s == status)

    def ids(self):
        """The berichtIds of the 201 answers."""
        with self.lock:
            return [i for s, i in self.results if s == 201]

    def statuses(self):
        with self.lock:
            return [s for s, _ in self.results]


def mails_to(mailbox, addresses):
    """The stored mails with a recipient in `addresses` (a set, or one address)."""
    if isinstance(addresses, str):
        addresses = {addresses}
    return [m for m in mailbox.messages() if set(m.rcpt_tos) & set(addresses)]


def agency_id(services, oin):
    return services.psql("SELECT id FROM agencies WHERE oin = %s", (oin,))[0][0]


def prompt_kinds(daemon, portal, account):
    """The soorten of the account's meldingen, sorted."""
    r = daemon.request("GET", "/v1/accounts/%s/meldingen" % account, token=portal)
    assert r.status == 200, r.text
    return sorted(m["soort"] for m in r.json()["meldingen"])


def metric(daemon, name, **labels):
    """A sample from the ops listener's /metrics (labels as keywords, e.g.
    reason="too_old"); None when the series is not there."""
    r = daemon.ops_request("GET", "/metrics")
    assert r.status == 200, r.text
    series = re.escape(name)
    if labels:
        series += re.escape("{%s}" % ",".join('%s="%s"' % kv for kv in labels.items()))
    m = re.search(r"^%s (\d+)$" % series, r.text, re.M)
    return int(m.group(1)) if m else None


def inflight(daemon):
    """How many notifications the daemon's workers hold (Redis inflight set):
    taken, not yet recorded and acked."""
    return int(daemon.services.redis("ZCARD", daemon.config["redis"]["key_prefix"] + "inflight"))


def bulk_scheduled(services, agency_id, n, tag):
    """n accounts with an address, one message each and a due 'new'
    notification, written straight into PostgreSQL (what an ingest would
    have committed just before Redis lost it). Returns the addresses."""
    services.psql(
        "WITH a AS ("
        "  INSERT INTO accounts (id, bsn_hash, email)"
        "  SELECT gen_random_uuid(), %(tag)s || '-' || g, %(tag)s || '-' || g || '@bulk.example'"
        "  FROM generate_series(1, %(n)s) g RETURNING id"
        "), m AS ("
        "  INSERT INTO messages (id, agency_id, account_id, berichttype, referentie,"
        "    content_hash, publicatie_tijdstip)"
        "  SELECT gen_random_uuid(), %(agency)s, a.id, 'T1', %(tag)s || '-' || a.id, 'x', now()"
        "  FROM a RETURNING id, account_id"
        ") INSERT INTO notifications (message_id, account_id, due_at)"
        "  SELECT id, account_id, now() FROM m", {"tag": tag, "n": n, "agency": agency_id})
    return {"%s-%d@bulk.example" % (tag, g) for g in range(1, n + 1)}


def instance_id(daemon):
    """The id the running daemon registered in `instances` (migration 0015)
    and names in its claims (notifications.claimed_by); waits for it."""
    def registered():
        rows = daemon.services.psql("SELECT id FROM instances WHERE pid = %s "
                                    "ORDER BY id DESC LIMIT 1", (daemon.pid,))
        return rows[0][0] if rows else None
    return wait_until(registered, timeout=30, what="instance of %s registered" % daemon.name)


# [http] problem_base's default: under .invalid (RFC 6761), a domain nobody owns
PROBLEM_BASE = "https://berichtd.invalid/problemen/"


def problem_type(body, slug, base=PROBLEM_BASE):
    assert body["type"] == base + slug, body["type"]


def read_response(s):
    """One HTTP/1.1 response from socket s: (status, {lowercase header: value},
    body). Reads a Content-Length body, or up to the close when there is none."""
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
