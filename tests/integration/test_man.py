"""`berichtd man 8|5` (issue 15): the manual pages come from the command table
and the config key table, so every command `berichtd help` lists and every key
`berichtd config-example` writes is in them, and groff has nothing to say.
Only the binary runs: no services are needed."""
import re
import subprocess

from harness import BERICHTD


def run(*args):
    return subprocess.run([str(BERICHTD), *args], capture_output=True, text=True, timeout=60)


def groff_warnings(page):
    out = subprocess.run(["groff", "-man", "-ww", "-z"], input=page, capture_output=True,
                         text=True, timeout=60)
    return out.stderr


def test_man_8_has_every_listed_command_with_its_usage():
    page = run("man", "8")
    assert page.returncode == 0, page.stderr
    assert page.stdout.startswith(".TH BERICHTD 8 ")
    listed = re.findall(r"^  (\S+)", run("help").stdout, re.M)
    assert "man" in listed and "check-config" in listed
    for name in listed:
        roff_name = name.replace("-", "\\-")
        assert '.SS "%s' % roff_name in page.stdout, name
        usage = run(name, "--help") if name not in ("version",) else None
        if usage and usage.returncode == 0:
            first = usage.stdout.splitlines()[0].replace("usage: ", "").replace("-", "\\-")
            assert first in page.stdout, name
    assert groff_warnings(page.stdout) == ""


def test_man_5_has_every_key_of_the_example_config():
    page = run("man", "5")
    assert page.returncode == 0, page.stderr
    assert page.stdout.startswith(".TH BERICHTD.CONF 5 ")
    section = None
    keys = []
    for line in run("config-example").stdout.splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
        m = re.match(r"^#?(\w+) =", line)
        if m:
            keys.append((section, m.group(1)))
    assert len(keys) > 50
    for section, key in keys:
        start = page.stdout.index(".SS [%s]\n" % section)
        end = page.stdout.find(".SS ", start + 1)
        body = page.stdout[start:end if end > 0 else None]
        assert "\\fB%s\\fR" % key.replace("-", "\\-") in body, (section, key)
    assert groff_warnings(page.stdout) == ""


def test_man_wants_8_or_5():
    out = run("man", "7")
    assert out.returncode == 2
    assert "usage: berichtd man 8|5" in out.stderr
