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


@pytest.fixture(scope="session")
def services():
    run_dir = os.environ.get("BERICHTD_RUN_DIR")
    if run_dir:
        _run_dirs.add(run_dir)
        yield Services(run_dir)
        return
    run_dir = harness.REPO_ROOT / ".test-run" / ("pytest-%d" % os.getpid())
    _run_dirs.add(str(run_dir))
    svc = Services.start(run_dir)
    try:
        yield svc
    finally:
        svc.stop()
        shutil.rmtree(run_dir / "pg", ignore_errors=True)  # keep logs, drop data


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
    e-mail address of anyone but the daemon itself."""
    logs = logscan.daemon_logs(_run_dirs, extra=harness.LOG_FILES)
    findings = logscan.scan_files(logs, harness.SECRETS)
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if findings:
        msg = ("log privacy check: %d of %d daemon logs hold personal data or secrets:\n%s"
               % (len(findings), len(logs), logscan.report(findings)))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        counts = {k: len(v) for k, v in harness.SECRETS.snapshot().items()}
        msg = "log privacy check: %d daemon logs clean of %s" % (len(logs), counts)
    if tr:
        tr.write_line(msg)
    else:
        print(msg)
