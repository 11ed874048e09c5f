"""`make run` (tests/harness/demo.sh), issue 15: the demo shows a token and a
call for every role and the mail decoded, and survives its daemon: when the
daemon dies the services stay up, the restart it prints finds the data, and
a hand-typed `services.sh start DIR` keeps the data and the ports.

The demo runs in a directory of its own (BERICHTD_DEMO_DIR) with its own
PostgreSQL, Redis and sink, not the suite's."""
import os
import re
import shutil
import signal
import subprocess
import time

import psycopg2
import pytest

from harness import BERICHTD, REPO_ROOT, free_port, read_env, request

DEMO = REPO_ROOT / "tests" / "harness" / "demo.sh"
SERVICES = REPO_ROOT / "tests" / "harness" / "services.sh"
SHOW_MAIL = REPO_ROOT / "tests" / "harness" / "show_mail.py"


def poll(what, fn, timeout=120):
    end = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() < end, "timed out waiting for " + what
        time.sleep(0.2)


def healthy(base):
    try:
        return request(base, "GET", "/healthz", timeout=2).status == 200
    except OSError:
        return False


def accounts(run):
    env = read_env(run / "env")
    with psycopg2.connect(host="127.0.0.1", port=env["BERICHTD_PG_PORT"], dbname="berichtd",
                          user="postgres") as c, c.cursor() as cur:
        cur.execute("SELECT count(*) FROM accounts")
        return cur.fetchone()[0]


def services(cmd, run, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("BERICHTD_")}
    e.update(env)
    return subprocess.run([str(SERVICES), cmd, str(run)], capture_output=True, text=True,
                          timeout=180, env=e)


@pytest.fixture
def demo_dir(tmp_path):
    run = tmp_path / "run"
    yield run
    services("stop", run, BERICHTD_KEEP_DATA="0")
    shutil.rmtree(run, ignore_errors=True)


def test_the_demo_shows_every_role_and_survives_its_daemon(demo_dir):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERICHTD_")}
    env.update(BERICHTD_DEMO_DIR=str(demo_dir), BERICHTD_BIN=str(BERICHTD),
               BERICHTD_HTTP_PORT=str(port), BERICHTD_OPS_PORT=str(free_port(port)))
    out_path = demo_dir.parent / "demo.out"
    with open(out_path, "w") as out:
        demo = subprocess.Popen([str(DEMO)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        base = "http://127.0.0.1:%d" % port
        poll("the demo daemon", lambda: healthy(base) or demo.poll() is not None)
        assert demo.poll() is None, out_path.read_text()
        text = out_path.read_text()
        tokens = read_env(demo_dir / "tokens.env")
        # a token and a call for each role, the ministry's report included
        for role in ("AGENCY", "PORTAL", "MINISTRY", "RELAY"):
            assert re.fullmatch(r"[0-9a-f]{64}", tokens[role + "_TOKEN"])
            assert tokens[role + "_TOKEN"] in text, role
        for call in ("POST %s/v1/accounts" % base, "POST %s/v1/berichten" % base,
                     "%s/v1/rapportages/openingspercentages?jaar=" % base,
                     "POST %s/v1/bounces" % base, "show_mail.py"):
            assert call in text, call
        assert "berichtd.invalid/problemen/" in text

        # the printed calls work as printed: the ministry's report, the relay's DSN
        year = time.strftime("%Y")
        r = request(base, "GET", "/v1/rapportages/openingspercentages?jaar=" + year,
                    token=tokens["MINISTRY_TOKEN"])
        assert r.status == 200, r.text
        r = request(base, "POST", "/v1/bounces", token=tokens["RELAY_TOKEN"],
                    body=(demo_dir / "dsn-example.eml").read_bytes(),
                    headers={"Content-Type": "message/rfc822"})
        assert r.status == 202 and r.json()["status"] == "geweigerd", r.text

        # a citizen with an address: the verification mail, decoded
        r = request(base, "POST", "/v1/accounts", token=tokens["PORTAL_TOKEN"],
                    json={"bsn": "999993653"})
        assert r.status in (200, 201), r.text
        account = r.json()["accountId"]
        r = request(base, "PATCH", "/v1/accounts/" + account, token=tokens["PORTAL_TOKEN"],
                    json={"emailadres": "burger@example.nl"})
        assert r.status == 200, r.text
        maildir = demo_dir / "mail"
        poll("the verification mail", lambda: list(maildir.glob("*.eml")))
        shown = subprocess.run([str(SHOW_MAIL), str(maildir)], capture_output=True, text=True,
                               check=True).stdout
        assert "Subject: Uw verificatiecode voor de Berichtenbox" in shown
        assert "U heeft dit e-mailadres opgegeven in uw Berichtenbox op MijnOverheid." in shown
        assert "=\n" not in shown and "=3D" not in shown and "=C3" not in shown
        code = subprocess.run([str(SHOW_MAIL), "--code", str(maildir)], capture_output=True,
                              text=True, check=True).stdout.strip()
        assert re.fullmatch(r"\d{6}", code)

        # the daemon dies: the demo says how to restart it, the services stay
        [daemon_pid] = [int(p) for p in subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(demo.pid)], capture_output=True,
            text=True).stdout.split()]
        os.kill(daemon_pid, signal.SIGKILL)
        assert demo.wait(timeout=60) != 0
        text = out_path.read_text()
        restart = "%s run -c %s/berichtd.conf" % (BERICHTD, demo_dir)
        assert restart in text, text[-2000:]
        assert "still up" in text
        assert services("status", demo_dir).returncode == 0
        assert accounts(demo_dir) == 1

        # the printed restart finds the data
        alone = subprocess.Popen([str(BERICHTD), "run", "-c", str(demo_dir / "berichtd.conf")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            poll("the daemon started alone", lambda: healthy(base))
            r = request(base, "GET", "/v1/accounts/" + account, token=tokens["PORTAL_TOKEN"])
            assert r.status == 200, r.text
        finally:
            alone.send_signal(signal.SIGTERM)
            assert alone.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGTERM)
            demo.wait(timeout=60)

    # services.sh start by hand, without the old ports: data and ports kept
    before = read_env(demo_dir / "env")
    started = services("start", demo_dir)
    assert started.returncode == 0, started.stderr
    after = read_env(demo_dir / "env")
    for k in ("BERICHTD_PG_PORT", "BERICHTD_REDIS_PORT", "BERICHTD_SMTP_PORT"):
        assert after[k] == before[k], k
    assert accounts(demo_dir) == 1
