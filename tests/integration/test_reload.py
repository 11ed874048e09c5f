"""SIGHUP under load (issue 15): while a thread posts messages without a
pause and the workers deliver them, the config file changes and the daemon
gets SIGHUP.

- A lower rate limit answers 429 from then on, a changed template text is
  in the next mails, a new log level stops the debug lines, a new delivery
  rate is set; the log names each changed key with `applied`; no request
  fails during the reload.
- A file with two problems (a syntax error and a bad value) keeps the
  running config and logs one line for each; so does a missing template.
- A key that is not reloadable (and a secret) says `needs restart`, by
  name only.
Every wait is a poll with a deadline; nothing is timed."""
import shutil
import signal
import uuid

import harness
from harness import Poster, make_agency, make_citizen, post_message, wait_until


def changed(d, key):
    """The effect the log gave for key in its `reload: key changed` lines."""
    return [r.get("effect") for r in d.log_records()
            if r.get("msg") == "reload: key changed" and r.get("key") == key]


def refused(d):
    return [r.get("problem", "") for r in d.log_records()
            if r.get("msg") == "reload: refused, the running config stays"]


def templates_copy(services):
    t = services.run_dir / ("templates-%s" % uuid.uuid4().hex[:8])
    shutil.copytree(harness.TEMPLATES_DIR, t)
    return t


def mails_with(mailbox, address, text):
    return [m for m in mailbox.for_rcpt(address) if text in m.get_content()]


def test_sighup_under_load_applies_what_may_change(make_daemon, mailbox, services):
    tdir = templates_copy(services)
    d = make_daemon("reload", **{"templates.dir": tdir, "ratelimit.rate": 100000,
                                 "ratelimit.burst": 100000, "log.level": "debug"})
    agency = make_agency(d)
    bsn, email = harness.new_bsn(), "reload-%s@example.org" % uuid.uuid4().hex[:6]
    make_citizen(d, d.token("portal"), bsn, email)
    load = Poster(d, agency, bsn).start()
    try:
        wait_until(lambda: load.count(201) >= 20 and len(mailbox.for_rcpt(email)) >= 5,
                   timeout=60, what="load and deliveries before the reload")
        marker = "Herladen-%s" % uuid.uuid4().hex[:8]
        t = tdir / "nieuw-bericht.nl.txt"
        t.write_text(t.read_text().replace("Beste heer, mevrouw,",
                                           "Beste heer, mevrouw, %s" % marker))
        d.rewrite_config(**{"ratelimit.rate": 1, "ratelimit.burst": 1, "log.level": "info",
                            "delivery.rate_limit": 500})
        before = load.count()
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload: done" in d.log_text(), timeout=20, what="the reload")
        # the lower limit: 429s appear among the answers that came after it
        wait_until(lambda: 429 in load.statuses()[before:], timeout=30,
                   what="a 429 at the lower limit")
        wait_until(lambda: mails_with(mailbox, email, marker), timeout=60,
                   what="a mail with the new template text")
    finally:
        load.stop()
    assert load.errors == [], load.errors[:5]
    assert set(load.statuses()) <= {201, 429}, sorted(set(load.statuses()))
    assert 429 not in load.statuses()[:before], "a 429 before the limit was lowered"
    for key in ("ratelimit.rate", "ratelimit.burst", "log.level", "delivery.rate_limit"):
        assert changed(d, key) == ["applied"], (key, changed(d, key), d.log_tail())
    assert changed(d, "http.listen") == []  # unchanged keys are not named
    # the new level: no debug line once the reload is through (from the
    # first 429 on: a worker's line racing the switch itself is not counted)
    recs = d.log_records()
    done = max(i for i, r in enumerate(recs) if r.get("msg") == "reload: done")
    first_429 = min(i for i, r in enumerate(recs)
                    if i > done and r.get("msg") == "access" and r.get("status") == "429")
    assert [r for r in recs[first_429:] if r.get("level") == "debug"] == []
    assert any(r.get("level") == "debug" for r in recs[:done])


def test_a_broken_file_keeps_the_running_config(make_daemon, mailbox, services):
    tdir = templates_copy(services)
    d = make_daemon("reload-broken", **{"templates.dir": tdir, "ratelimit.rate": 100000,
                                        "ratelimit.burst": 100000})
    agency = make_agency(d)
    bsn, email = harness.new_bsn(), "broken-%s@example.org" % uuid.uuid4().hex[:6]
    make_citizen(d, d.token("portal"), bsn, email)
    load = Poster(d, agency, bsn).start()
    try:
        wait_until(lambda: load.count(201) >= 10, timeout=60, what="load")
        d.rewrite_config(**{"ratelimit.rate": "abc", "ratelimit.burst": 1})
        with open(d.conf, "a") as f:
            f.write("this line is no key and no value\n")
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(refused(d)) >= 2, timeout=20, what="the refused reload")
        problems = refused(d)
        assert len(problems) == 2, problems
        assert any("ratelimit.rate: not an integer" in p for p in problems), problems
        assert any("expected key = value" in p for p in problems), problems

        # a template that is gone: refused as well, the old texts stay
        d.rewrite_config(**{"ratelimit.rate": 100000, "ratelimit.burst": 100000})
        (tdir / "herinnering.en.txt").unlink()
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(refused(d)) >= 3, timeout=20, what="the second refusal")
        assert "herinnering.en.txt" in refused(d)[2], refused(d)
        n = load.count()
        wait_until(lambda: load.count() >= n + 20, timeout=60, what="load after the refusals")
    finally:
        load.stop()
    assert "reload: done" not in d.log_text()
    assert load.errors == [], load.errors[:5]
    assert set(load.statuses()) == {201}, "burst 1 must not have been applied"
    sent = len(mailbox.for_rcpt(email))
    wait_until(lambda: len(mailbox.for_rcpt(email)) > sent, timeout=60,
               what="mails with the old templates after the refusals")


def test_a_key_that_needs_a_restart_says_so(make_daemon):
    d = make_daemon("reload-restart")
    new_key = uuid.uuid4().hex + uuid.uuid4().hex
    d.rewrite_config(**{"delivery.workers": 3, "security.bsn_key": new_key,
                        "retention.interval": "12h"})
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload: done" in d.log_text(), timeout=20, what="the reload")
    assert changed(d, "delivery.workers") == ["needs restart"]
    assert changed(d, "security.bsn_key") == ["needs restart"]
    assert changed(d, "retention.interval") == ["applied"]
    assert new_key not in d.log_text(), "a secret's value was logged"
    # the running key stays: the daemon still works with it
    agency = make_agency(d)
    bsn = harness.new_bsn()
    make_citizen(d, d.token("portal"), bsn)
    assert post_message(d, agency["token"], bsn).status == 201
