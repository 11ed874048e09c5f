"""pytest fixtures for berichtd integration tests.

Run with: /usr/bin/python3 -m pytest tests/integration
BERICHTD_RUN_DIR=DIR uses services already started by
`tests/harness/services.sh start DIR` (the Makefile does that); without it the
session starts its own in <repo>/.test-run/pytest-<pid> and stops it at the end.

Fixtures: services (session), daemon (function, started; must exit 0 on
SIGTERM at teardown), make_daemon (function, factory for more daemons),
mailbox (function, emptied first), new_bsn / new_oin (callables).

At the end of the session every daemon log of the run (logscan.daemon_logs:
the run dir's berichtd-*.log/.out and every [log] file a config named) is
scanned for the BSNs, addresses, tokens and codes the suite used
(harness.SECRETS) and for any valid BSN or e-mail address; a finding fails
the run, whichever tests ran.
"""
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import Daemon, Mailbox, Services  # noqa: E402,F401
import logscan  # noqa: E402

_run_dirs = set()


def _xdist_worker():
    """The xdist worker id (gw0, gw1, ...) in a worker process, else None."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def _own_services(run_dir, drop_data=False):
    """Services started for this session in run_dir, stopped at its end
    (and their PostgreSQL data removed when drop_data; the logs stay)."""
    _run_dirs.add(str(run_dir))
    svc = Services.start(run_dir)
    try:
        yield svc
    finally:
        svc.stop()
        if drop_data:
            shutil.rmtree(Path(run_dir) / "pg", ignore_errors=True)


@pytest.fixture(scope="session")
def services():
    run_dir = os.environ.get("BERICHTD_RUN_DIR")
    root = os.environ.get("BERICHTD_RUN_ROOT")
    if root and _xdist_worker():
        # tests/run-integration.sh -n N: every worker has PostgreSQL, Redis and
        # an SMTP sink of its own, so one worker's fault tests (a PostgreSQL
        # restart, a FLUSHALL, the relay down) never reach another's
        yield from _own_services(Path(root) / _xdist_worker())
        return
    if run_dir:
        _run_dirs.add(run_dir)
        yield Services(run_dir)
        return
    yield from _own_services(harness.REPO_ROOT / ".test-run" / ("pytest-%d" % os.getpid()),
                             drop_data=True)


@pytest.fixture(autouse=True)
def _services_restored(request):
    """After each test, restart any service a fault-injection test left down."""
    yield
    if "services" in request.fixturenames:
        request.getfixturevalue("services").ensure_up()


def _require_binary():
    if not harness.BERICHTD.exists():
        pytest.fail("%s not built (run make)" % harness.BERICHTD, pytrace=False)


@pytest.fixture
def make_daemon(services):
    """Factory: make_daemon(name="d", start=True, group=None, **overrides).
    All daemons it made are stopped at teardown; those still running must
    exit 0 on SIGTERM."""
    _require_binary()
    made = []

    def make(name="d", start=True, **kw):
        d = Daemon(services, name, **kw)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    failures = []
    for d in made:
        if d.died_unexpectedly():
            failures.append("berichtd %s died during the test (exit %s)\n%s"
                            % (d.name, d.proc.returncode, d.log_tail()))
            continue
        if d.running():
            try:
                rc = d.stop()
            except TimeoutError as e:
                failures.append(str(e))
                continue
            if rc != 0:
                failures.append("berichtd %s exited %s on SIGTERM\n%s" % (d.name, rc, d.log_tail()))
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def daemon(make_daemon):
    """A started berichtd with the default test config."""
    return make_daemon("main")


@pytest.fixture
def mailbox(services):
    mb = Mailbox(services.mail_dir)
    mb.clear()
    return mb


@pytest.fixture(scope="session")
def new_bsn():
    return harness.new_bsn


@pytest.fixture(scope="session")
def new_oin():
    return harness.new_oin


def pytest_sessionfinish(session, exitstatus):
    """The privacy check of the logs (docs/operations.md): fails the run when
    any daemon log of it holds a secret the suite used, a valid BSN or an
    e-mail address of anyone but the daemon itself. Under xdist each worker
    checks the logs of its own services against the secrets it used and
    leaves its verdict in the run root; the controller, which runs no test,
    reads every verdict and fails the run for any finding (a worker's exit
    status alone would not fail it)."""
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    root = os.environ.get("BERICHTD_RUN_ROOT")
    if root and not _xdist_worker():
        verdicts = sorted(Path(root).glob("privacy-*.txt"))
        bad = [v for v in verdicts if not v.read_text().startswith("clean")]
        lines = [v.read_text().rstrip("\n") for v in verdicts]
        if bad or (session.testscollected and not verdicts):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            lines.append("log privacy check: %s" % (
                "findings above" if bad else "no worker left a verdict"))
        for ln in lines:
            (tr.write_line(ln) if tr else print(ln))
        return
    logs = logscan.daemon_logs(_run_dirs, extra=harness.LOG_FILES)
    findings = logscan.scan_files(logs, harness.SECRETS)
    if findings:
        msg = ("log privacy check: %d of %d daemon logs hold personal data or secrets:\n%s"
               % (len(findings), len(logs), logscan.report(findings)))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        counts = {k: len(v) for k, v in harness.SECRETS.snapshot().items()}
        msg = "log privacy check: %d daemon logs clean of %s" % (len(logs), counts)
    if root and _xdist_worker():
        verdict = ("clean " if not findings else "FOUND ") + _xdist_worker() + ": " + msg
        (Path(root) / ("privacy-%s.txt" % _xdist_worker())).write_text(verdict + "\n")
    if tr:
        tr.write_line(msg)
    else:
        print(msg)
