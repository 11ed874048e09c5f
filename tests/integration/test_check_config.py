"""`berichtd check-config` checks what start needs (issue 15): the templates,
the shipped example with the key beside it, keys under an unknown section,
"did you mean". Only the binary runs: no services are needed."""
import secrets
import shutil
import subprocess

from harness import BERICHTD, REPO_ROOT, TEMPLATES_DIR

EXAMPLE = REPO_ROOT / "config" / "berichtd.conf"


def check(conf, env=None):
    return subprocess.run([str(BERICHTD), "check-config", "-c", str(conf)], capture_output=True,
                          text=True, timeout=60, env=env)


def good_config(tmp_path, templates):
    conf = tmp_path / "berichtd.conf"
    conf.write_text("[http]\nlisten = 127.0.0.1:1\n[security]\nbsn_key = %s\n"
                    "[templates]\ndir = %s\n" % (secrets.token_hex(32), templates))
    return conf


def test_the_templates_start_needs_pass(tmp_path):
    out = check(good_config(tmp_path, TEMPLATES_DIR))
    assert out.returncode == 0, out.stderr


def test_a_missing_templates_directory_fails(tmp_path):
    out = check(good_config(tmp_path, tmp_path / "geen-templates"))
    assert out.returncode == 1
    assert "templates.dir: %s: No such file or directory" % (tmp_path / "geen-templates") \
        in out.stderr
    assert "start would fail" in out.stderr


def test_a_missing_or_broken_template_fails_and_each_is_named(tmp_path):
    tdir = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, tdir)
    (tdir / "herinnering.en.txt").unlink()
    (tdir / "verificatie.nl.txt").write_text("Subject: code {{code\n\n{{code}}\n")
    out = check(good_config(tmp_path, tdir))
    assert out.returncode == 1
    assert "herinnering.en.txt" in out.stderr
    assert "verificatie.nl.txt:1:" in out.stderr
    assert "2 problem(s)" in out.stderr


def test_the_shipped_example_passes_with_its_key_beside_it(tmp_path):
    conf = tmp_path / "berichtd.conf"
    shutil.copy(EXAMPLE, conf)
    shutil.copytree(REPO_ROOT / "config" / "templates", tmp_path / "templates")
    out = check(conf)
    assert out.returncode == 1
    # what an operator is told to do, done: then it passes
    assert "openssl rand -hex 32 > %s" % (tmp_path / "bsn.key") in out.stderr
    subprocess.run("openssl rand -hex 32 > %s" % (tmp_path / "bsn.key"), shell=True, check=True)
    out = check(conf)
    assert out.returncode == 0, out.stderr


def test_the_shipped_example_passes_with_a_systemd_credential(tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "bsn.key").write_text(secrets.token_hex(32) + "\n")
    out = check(EXAMPLE, env={"CREDENTIALS_DIRECTORY": str(creds), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr


def test_keys_under_an_unknown_section_and_misspelt_keys_are_reported(tmp_path):
    conf = good_config(tmp_path, TEMPLATES_DIR)
    conf.write_text(conf.read_text() + "[smpt]\nhost = relay\n[delivery]\nworkerz = 2\n")
    out = check(conf)
    assert out.returncode == 1
    assert "berichtd.conf:7: [smpt]: unknown section; did you mean [smtp]?" in out.stderr
    assert "berichtd.conf:8: smpt.host: key under the unknown section [smpt]" in out.stderr
    assert "berichtd.conf:10: delivery.workerz: unknown key; did you mean workers?" \
        in out.stderr
