"""Tokens with a lifecycle and agencies that stay as they are (issue 15):
`berichtd token create --geldig-tot`, `token list`, `token revoke`, `agency
set --name`, `agency list`, all against the real database, and what the
daemon makes of revoked and expired tokens (401 problem+json within
[security] token_cache_ttl, at their expiry at the latest)."""
import datetime
import hashlib
import json
import re
import time

from harness import assert_problem, make_agency, make_citizen, post, post_message, wait_until

HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


def agency_name(services, oin):
    return services.psql("SELECT name FROM agencies WHERE oin = %s", (oin,))[0][0]


def listed(daemon, oin):
    """`token list --oin OIN --json` as a dict by token id."""
    p = daemon.cli("token", "list", "--oin", oin, "--json")
    assert p.returncode == 0, p.stderr
    return {str(t["id"]): t for t in json.loads(p.stdout)}


def utc_in(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def stats_call(daemon, token):
    """A cheap call every agency token may make."""
    return daemon.request("GET", "/v1/statistieken/openingspercentages?jaar=2025", token=token)


# ---------------------------------------------------------------- list

def test_token_list_shows_each_token_but_never_its_secret(daemon, new_oin):
    oin = new_oin()
    token, tid = daemon.token_with_id("agency", oin=oin, name="Gemeente Lijst",
                                      geldig_tot="2099-06-01")
    digest = hashlib.sha256(token.encode()).hexdigest()

    table = daemon.cli("token", "list", "--oin", oin)
    assert table.returncode == 0, table.stderr
    head, *rows = table.stdout.splitlines()
    assert head.split()[:4] == ["id", "role", "oin", "status"], head
    assert len(rows) == 1, table.stdout
    cols = rows[0].split()
    # a date means 00:00 in Amsterdam (summer time: 22:00 UTC the day before)
    assert cols[:6] == [tid, "agency", oin, "active", cols[4], "-"], rows[0]
    assert cols[6] == "2099-05-31T22:00:00Z", rows[0]
    assert rows[0].endswith("Gemeente Lijst"), rows[0]

    whole = daemon.cli("token", "list")
    for out in (table.stdout, whole.stdout, daemon.cli("token", "list", "--json").stdout):
        assert token not in out and digest not in out
        assert not HEX64.search(out), "a hash in: " + out

    t = listed(daemon, oin)[tid]
    assert set(t) == {"id", "role", "oin", "status", "created", "last_used", "expires", "name",
                      "revoked"}
    assert (t["role"], t["oin"], t["status"], t["name"]) == ("agency", oin, "active",
                                                             "Gemeente Lijst")
    assert t["last_used"] is None and t["revoked"] is None
    assert t["expires"] == "2099-05-31T22:00:00Z"


def test_last_used_is_written_at_most_once_a_minute(make_daemon, new_oin):
    # no cache at all: every request looks the token up, and still only the
    # first writes last_used_at
    d = make_daemon("nocache", **{"security.token_cache_ttl": "0s"})
    agency = make_agency(d, oin=new_oin())
    [(tid,)] = d.services.psql("SELECT t.id FROM api_tokens t JOIN agencies a "
                               "ON a.id = t.agency_id WHERE a.oin = %s", (agency["oin"],))
    assert listed(d, agency["oin"])[str(tid)]["last_used"] is None
    assert stats_call(d, agency["token"]).status == 200
    first = d.services.psql("SELECT last_used_at, xmin::text FROM api_tokens WHERE id = %s",
                            (tid,))[0]
    assert first[0] is not None
    for _ in range(5):
        assert stats_call(d, agency["token"]).status == 200
    again = d.services.psql("SELECT last_used_at, xmin::text FROM api_tokens WHERE id = %s",
                            (tid,))[0]
    assert again == first, "the row was written again (%r -> %r)" % (first, again)
    assert listed(d, agency["oin"])[str(tid)]["last_used"] is not None


# ---------------------------------------------------------------- revoke

def test_revoked_token_is_refused_within_the_cache_ttl(make_daemon, new_oin):
    d = make_daemon("revoke", **{"security.token_cache_ttl": "1s"})
    agency = make_agency(d, oin=new_oin())
    [(tid,)] = d.services.psql("SELECT t.id FROM api_tokens t JOIN agencies a "
                               "ON a.id = t.agency_id WHERE a.oin = %s", (agency["oin"],))
    assert stats_call(d, agency["token"]).status == 200  # now in the cache

    p = d.cli("token", "revoke", str(tid))
    assert p.returncode == 0, p.stderr
    assert "revoked" in p.stdout and "1s" in p.stdout, p.stdout
    r = wait_until(lambda: (lambda r: r if r.status != 200 else None)(
        stats_call(d, agency["token"])), timeout=15, what="the revoked token refused")
    assert_problem(r, 401)
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert listed(d, agency["oin"])[str(tid)]["status"] == "revoked"

    again = d.cli("token", "revoke", str(tid))
    assert again.returncode == 0 and "already revoked" in again.stdout, again.stdout


def test_revoke_names_what_it_cannot_find(daemon):
    [(top,)] = daemon.services.psql("SELECT coalesce(max(id), 0) + 1000 FROM api_tokens")
    p = daemon.cli("token", "revoke", str(top))
    assert p.returncode == 1
    assert "no token with id %d" % top in p.stderr, p.stderr
    for bad in (["token", "revoke"], ["token", "revoke", "abc"]):
        assert daemon.cli(*bad).returncode == 2
    p = daemon.cli("token", "list", "extra")
    assert p.returncode == 2, "a stray argument was accepted"


def test_cache_ttl_is_at_most_30_seconds(daemon, tmp_path):
    conf = tmp_path / "ttl.conf"
    text = daemon.conf.read_text().replace("[security]", "[security]\ntoken_cache_ttl = 31s")
    conf.write_text(text)
    p = daemon.cli("check-config", "-c", str(conf), conf=False)
    assert p.returncode == 1 and "token_cache_ttl" in (p.stdout + p.stderr), p.stderr
    conf.write_text(daemon.conf.read_text().replace("[security]",
                                                    "[security]\ntoken_cache_ttl = 30s"))
    assert daemon.cli("check-config", "-c", str(conf), conf=False).returncode == 0


# ---------------------------------------------------------------- expiry

def test_expired_token_is_refused_at_its_expiry_even_when_cached(daemon, new_oin):
    # the default cache keeps a token 30 s; this one expires sooner
    oin = new_oin()
    token, tid = daemon.token_with_id("agency", oin=oin, geldig_tot=utc_in(6))
    used = time.monotonic()
    assert stats_call(daemon, token).status == 200, "expired before its first use"
    r = wait_until(lambda: (lambda r: r if r.status != 200 else None)(stats_call(daemon, token)),
                   timeout=25 - (time.monotonic() - used), interval=0.25,
                   what="the expired token refused before the 30 s cache entry ended")
    assert_problem(r, 401)
    assert listed(daemon, oin)[tid]["status"] == "expired"


def test_geldig_tot_takes_a_date_or_a_time_in_the_future(daemon, new_oin):
    oin = new_oin()
    today = datetime.date.today().isoformat()
    for bad in ("2020-01-01", today, "2020-01-01T00:00:00Z", utc_in(-5)):
        p = daemon.cli("token", "create", "--role", "agency", "--oin", oin, "--geldig-tot", bad)
        assert p.returncode == 2, (bad, p.stdout, p.stderr)
        assert "not in the future" in p.stderr and not p.stdout, p.stderr
    for bad in ("morgen", "2027-02-29", "2027-01-01T00:00:00", "30d"):
        p = daemon.cli("token", "create", "--role", "portal", "--geldig-tot", bad)
        assert p.returncode == 2 and "--geldig-tot must be" in p.stderr, (bad, p.stderr)
    assert not daemon.services.psql("SELECT 1 FROM agencies WHERE oin = %s", (oin,)), \
        "a refused token create left its agency behind"

    _, winter = daemon.token_with_id("agency", oin=oin, geldig_tot="2099-01-15")
    _, exact = daemon.token_with_id("agency", oin=oin, geldig_tot="2099-01-15T12:30:00+01:00")
    got = listed(daemon, oin)
    assert got[winter]["expires"] == "2099-01-14T23:00:00Z"
    assert got[exact]["expires"] == "2099-01-15T11:30:00Z"


# ---------------------------------------------------------------- rotation

def test_two_tokens_of_one_agency_overlap_for_rotation(make_daemon, new_oin, new_bsn):
    d = make_daemon("rotate", **{"security.token_cache_ttl": "1s"})
    agency = make_agency(d, oin=new_oin(), name="Gemeente Rotatie")
    portal = d.token("portal")
    bsn = new_bsn()
    make_citizen(d, portal, bsn)
    old = agency["token"]
    [(old_id,)] = d.services.psql("SELECT t.id FROM api_tokens t JOIN agencies a "
                                  "ON a.id = t.agency_id WHERE a.oin = %s", (agency["oin"],))

    new, new_id = d.token_with_id("agency", oin=agency["oin"], name="rotatie 2026")
    first = post(d, old, bsn)
    second = post(d, new, bsn)
    assert first != second
    # both speak for the same agency: each reads the other's message
    for token, msg in ((old, second), (new, first)):
        assert d.request("GET", "/v1/berichten/%s" % msg, token=token).status == 200
    assert agency_name(d.services, agency["oin"]) == "Gemeente Rotatie"

    assert d.cli("token", "revoke", str(old_id)).returncode == 0
    r = wait_until(lambda: (lambda r: r if r.status != 201 else None)(
        post_message(d, old, bsn)), timeout=15, what="the old token refused")
    assert_problem(r, 401)
    post(d, new, bsn)
    got = listed(d, agency["oin"])
    assert got[str(old_id)]["status"] == "revoked" and got[new_id]["status"] == "active"


# ---------------------------------------------------------------- agencies

def test_token_create_never_renames_an_existing_agency(daemon, new_oin):
    agency = make_agency(daemon, oin=new_oin(), name="Gemeente Origineel")
    p = daemon.cli("token", "create", "--role", "agency", "--oin", agency["oin"],
                   "--name", "Gemeente X")
    assert p.returncode == 0, p.stderr
    assert 'keeps its name "Gemeente Origineel"' in p.stderr, p.stderr
    assert "agency set --oin %s --name" % agency["oin"] in p.stderr
    assert "warning" not in p.stderr, "it has berichttypes: " + p.stderr
    assert agency_name(daemon.services, agency["oin"]) == "Gemeente Origineel"
    # the name went to the token
    assert "Gemeente X" in {t["name"] for t in listed(daemon, agency["oin"]).values()}

    p = daemon.cli("agency", "set", "--oin", agency["oin"], "--name", "Gemeente Nieuw")
    assert p.returncode == 0, p.stderr
    assert agency_name(daemon.services, agency["oin"]) == "Gemeente Nieuw"

    table = daemon.cli("agency", "list")
    assert table.returncode == 0, table.stderr
    [row] = [line for line in table.stdout.splitlines() if line.startswith(agency["oin"])]
    assert row.split()[:4] == [agency["oin"], "no", "3", "2"], row
    assert row.endswith("Gemeente Nieuw")
    rows = json.loads(daemon.cli("agency", "list", "--json").stdout)
    [a] = [a for a in rows if a["oin"] == agency["oin"]]
    assert a == {"oin": agency["oin"], "mandatory": "no", "berichttypes": 3, "active_tokens": 2,
                 "name": "Gemeente Nieuw"}


def test_token_create_warns_when_the_agency_has_no_berichttype(daemon, new_oin, new_bsn):
    oin = new_oin()
    p = daemon.cli("token", "create", "--role", "agency", "--oin", oin, "--name", "Gemeente Leeg")
    assert p.returncode == 0, p.stderr
    token = p.stdout.strip()
    assert 'agency %s created, name "Gemeente Leeg"' % oin in p.stderr, p.stderr
    assert "has no berichttype yet" in p.stderr, p.stderr
    assert "berichtd berichttype add --oin %s" % oin in p.stderr

    portal = daemon.token("portal")
    bsn = new_bsn()
    make_citizen(daemon, portal, bsn)
    r = post_message(daemon, token, bsn)
    assert 400 <= r.status < 500 and r.status not in (401, 403), r.text

    assert daemon.cli("berichttype", "add", "--oin", oin, "--code", "T1").returncode == 0
    p = daemon.cli("token", "create", "--role", "agency", "--oin", oin)
    assert p.returncode == 0 and "warning" not in p.stderr, p.stderr
    post(daemon, token, bsn)
