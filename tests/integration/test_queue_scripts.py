"""The Redis Lua scripts of daemon/core/queue.c (take with lane rotation,
ack, retry, requeue of expired in-flight ids, schedule, depth) against the
test Redis: runs the queue_scripts suite of the Criterion unit binary
(tests/unit/test_queue_scripts.c), which drives the workers' own blocking
functions. The binary is the one built next to BERICHTD_BIN (release or
sanitize); BERICHTD_UNIT_BIN overrides it."""
import os
import re
import subprocess
from pathlib import Path

import pytest

import harness


def _unit_binary():
    override = os.environ.get("BERICHTD_UNIT_BIN")
    if override:
        return Path(override)
    flavour = "sanitize" if harness.BERICHTD.name.endswith("-sanitize") else "release"
    return harness.REPO_ROOT / "build" / flavour / "unit-tests"


def test_queue_scripts_against_the_test_redis(services):
    unit = _unit_binary()
    if not unit.exists():
        pytest.fail("%s not built (run make unit)" % unit, pytrace=False)
    env = dict(os.environ, BERICHTD_REDIS_PORT=str(services.redis_port),
               BERICHTD_QUEUE_TESTS_REQUIRED="1", CRITERION_NO_EARLY_EXIT="1")
    p = subprocess.run([str(unit), "--filter", "queue_scripts/*", "--jobs", "1"],
                       env=env, capture_output=True, text=True, timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    m = re.search(r"Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)", out)
    assert m, out
    tested, passing = int(m.group(1)), int(m.group(2))
    assert tested >= 10 and passing == tested, out
