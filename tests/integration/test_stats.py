"""Open-rate statistics (DESIGN.md section 6, docs/statistics.md): the rollups
equal a brute-force count over the raw rows, before and after a retention
purge and after `stats rebuild`; agencies see only their own closed, large
enough cells; the ministry sees provisional cells flagged; the reports come
out as JSON, CSV and a self-contained HTML page that Chromium renders.

The brute-force side never calls the migration's helper functions: it spells
out the definitions (cohort = publication day in Europe/Amsterdam, opened
within 3 weeks = opened_at - publicatie_tijdstip <= 504 hours, 6 weeks = 1008
hours, a cohort closes 1008 hours after the start of the next local day)."""
import calendar
import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from harness import assert_problem, make_agency

AMS = ZoneInfo("Europe/Amsterdam")
H504 = timedelta(hours=504)
H1008 = timedelta(hours=1008)
CHROMIUM = "/usr/bin/chromium"

# ---------------------------------------------------------------- helpers


def closes_at(day):
    """The moment cohort `day` can no longer change (Python, independently)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=AMS) + H1008


def tenths(part, whole):
    """100 * part / whole, one decimal, half away from zero (as the report)."""
    if whole == 0:
        return None
    sign = -1 if part < 0 else 1
    return sign * ((2000 * abs(part) + whole) // (2 * whole)) / 10


def month_start(d, back):
    y, m = d.year, d.month - back
    while m < 1:
        m += 12
        y -= 1
    return date(y, m, 1)


def last_sunday(year, month):
    last = calendar.monthrange(year, month)[1]
    d = date(year, month, last)
    return d - timedelta(days=(d.weekday() + 1) % 7)


def ministry_get(daemon, token, query, accept=None):
    headers = {"Accept": accept} if accept else None
    return daemon.request("GET", "/v1/rapportages/openingspercentages?" + query, token=token,
                          headers=headers)


def brute_force_days(services, oins):
    """{(oin, type, papier, day): [n, g3, g6]} straight from the raw rows."""
    rows = services.psql(
        "SELECT a.oin, m.berichttype, m.papieren_kopie,"
        "  (m.publicatie_tijdstip AT TIME ZONE 'Europe/Amsterdam')::date AS dag, count(*),"
        "  count(*) FILTER (WHERE m.opened_at - m.publicatie_tijdstip <= interval '504 hours'),"
        "  count(*) FILTER (WHERE m.opened_at - m.publicatie_tijdstip <= interval '1008 hours') "
        "FROM messages m JOIN agencies a ON a.id = m.agency_id WHERE a.oin = ANY(%s) "
        "GROUP BY 1, 2, 3, 4", (list(oins),))
    return {(r[0], r[1], r[2], r[3]): [r[4], r[5], r[6]] for r in rows}


def brute_force_dp(services, agency_ids):
    """The agency view's rollup (migration 0013) spelled out: a citizen's
    messages of an agency-year numbered in the order they were inserted
    (statement by statement, created_at; within one statement by id), capped at 16."""
    return services.psql(
        "WITH m AS (SELECT *, publicatie_tijdstip AT TIME ZONE 'Europe/Amsterdam' AS loc"
        "  FROM messages WHERE agency_id = ANY(%s)), "
        "n AS (SELECT *, least(row_number() OVER (PARTITION BY agency_id, account_id,"
        "  date_trunc('year', loc) ORDER BY created_at, id), 16) AS v FROM m) "
        "SELECT agency_id, date_trunc('month', loc)::date, berichttype, papieren_kopie, v,"
        "  count(*), count(*) FILTER (WHERE opened_at - publicatie_tijdstip <= interval '504 hours'),"
        "  count(*) FILTER (WHERE opened_at - publicatie_tijdstip <= interval '1008 hours') "
        "FROM n GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5", (agency_ids,))


def rollup_dp(services, agency_ids):
    return services.psql("SELECT * FROM stats_dp_maand WHERE agency_id = ANY(%s) "
                         "ORDER BY 1, 2, 3, 4, 5", (agency_ids,))


def rollup_days(services, oins):
    rows = services.psql(
        "SELECT a.oin, s.berichttype, s.papieren_kopie, s.dag, s.verstuurd, s.geopend_3w,"
        "  s.geopend_6w FROM stats_dag s JOIN agencies a ON a.id = s.agency_id "
        "WHERE a.oin = ANY(%s) AND s.verstuurd <> 0", (list(oins),))
    return {(r[0], r[1], r[2], r[3]): [r[4], r[5], r[6]] for r in rows}


def expected_cells(days, van, tot, now):
    """Aggregates brute-force days in [van, tot) into the report's cells:
    {("org", oin) | ("type", oin, t) | ("paper", oin, p): (n, g3, g6, voorlopig)}."""
    out = {}
    for (oin, t, p, d), (n, g3, g6) in days.items():
        if not (van <= d < tot):
            continue
        for key in (("org", oin), ("type", oin, t), ("paper", oin, p)):
            c = out.setdefault(key, [0, 0, 0, False])
            c[0] += n
            c[1] += g3
            c[2] += g6
            c[3] = c[3] or closes_at(d) > now
    return out


def report_cells(rep, oins):
    out = {}
    for org in rep["organisaties"]:
        if org["oin"] not in oins:
            continue
        out[("org", org["oin"])] = org
        for c in org["berichttypes"]:
            out[("type", org["oin"], c["berichttype"])] = c
        for c in org["papierenKopie"]:
            out[("paper", org["oin"], c["papierenKopie"])] = c
    return out


def assert_cells_equal(rep, expected, oins, what):
    got = report_cells(rep, oins)
    assert set(got) == set(expected), what
    for key, (n, g3, g6, voorlopig) in expected.items():
        c = got[key]
        assert (c["aantalBerichten"], c["geopendBinnen3Weken"], c["geopendBinnen6Weken"]) == \
            (n, g3, g6), (what, key)
        assert c["percentage3Weken"] == tenths(g3, n), (what, key)
        assert c["percentage6Weken"] == tenths(g6, n), (what, key)
        assert c["voorlopig"] is voorlopig, (what, key)


def periods(van, tot):
    """(jaar, maand, start, end) for every year and month in [van, tot)."""
    out = []
    for y in range(van.year, tot.year + 1):
        out.append((y, None, date(y, 1, 1), date(y + 1, 1, 1)))
    d = van
    while d < tot:
        nxt = month_start(date(d.year + (d.month == 12), d.month % 12 + 1, 1), 0)
        out.append((d.year, d.month, d, nxt))
        d = nxt
    return out


def db_now(services):
    return services.psql("SELECT now()")[0][0]


def load_messages(services, agency_ids, types, count, van, tot, seed_label):
    """Random messages over cohorts [van, tot) loaded with SQL (the triggers
    fire as for ingest), then opened by UPDATEs in a few statements, like the
    portal does. Returns nothing; the caller counts by brute force."""
    conn = services.pg_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT setseed(0.42)")
            cur.execute(
                "INSERT INTO accounts (id, bsn_hash) SELECT gen_random_uuid(),"
                "  md5(%s || g::text) FROM generate_series(1, 500) g "
                "ON CONFLICT DO NOTHING", (seed_label,))
            cur.execute("SELECT array_agg(id::text) FROM (SELECT id FROM accounts "
                        "WHERE bsn_hash IN (SELECT md5(%s || g::text) "
                        "FROM generate_series(1, 500) g)) x", (seed_label,))
            accounts = cur.fetchone()[0]
            span = (datetime.combine(tot, time(0), tzinfo=AMS)
                    - datetime.combine(van, time(0), tzinfo=AMS)).total_seconds()
            start = datetime.combine(van, time(0), tzinfo=AMS)
            # a few statements, as ingest would send groups
            per = count // 4
            for part in range(4):
                cur.execute(
                    "INSERT INTO messages (id, agency_id, account_id, berichttype, referentie,"
                    "  content_hash, publicatie_tijdstip, papieren_kopie) "
                    "SELECT gen_random_uuid(), (%(ag)s::bigint[])[1 + (g %% %(nag)s)],"
                    "  (%(acc)s::uuid[])[1 + (g %% %(nacc)s)],"
                    "  (%(types)s::text[])[1 + ((g / 7) %% %(ntypes)s)],"
                    "  %(label)s || '-' || g, 'h',"
                    "  %(start)s::timestamptz + random() * %(span)s * interval '1 second',"
                    "  random() < 0.15 "
                    "FROM generate_series(%(lo)s, %(hi)s) g",
                    {"ag": agency_ids, "nag": len(agency_ids), "acc": accounts,
                     "nacc": len(accounts), "types": list(types), "ntypes": len(types),
                     "label": seed_label, "start": start, "span": span,
                     "lo": part * per + 1, "hi": (part + 1) * per})
            # opens: random delays, and exactly 21 and 42 days, and 1 ms past them
            cur.execute("SELECT min(referentie), max(referentie) FROM messages "
                        "WHERE referentie LIKE %s", (seed_label + "-%",))
            for lo, hi, delay in ((0.00, 0.02, "interval '504 hours'"),
                                  (0.02, 0.04, "interval '504 hours 0.001 seconds'"),
                                  (0.04, 0.06, "interval '1008 hours'"),
                                  (0.06, 0.08, "interval '1008 hours 0.001 seconds'"),
                                  (0.08, 0.40, "random() * interval '20 days'"),
                                  (0.40, 0.60, "random() * interval '60 days'"),
                                  (0.60, 0.70, "interval '21 days' + random() * interval '2 hours'"
                                   " - interval '1 hour'")):
                cur.execute(
                    "UPDATE messages SET opened_at = publicatie_tijdstip + " + delay + " "
                    "WHERE agency_id = ANY(%s) AND opened_at IS NULL "
                    "  AND ('x' || substr(md5(referentie), 1, 8))::bit(32)::bigint"
                    "      / 4294967296.0 >= %s"
                    "  AND ('x' || substr(md5(referentie), 1, 8))::bit(32)::bigint"
                    "      / 4294967296.0 < %s",
                    (agency_ids, lo, hi))
            # opens never lie in the future
            cur.execute("UPDATE messages SET opened_at = NULL WHERE agency_id = ANY(%s) "
                        "AND opened_at > now()", (agency_ids,))
    finally:
        conn.close()


def insert_edge_cases(services, agency_id, account_id, van, tot, label):
    """Messages on the edges: New Year in Amsterdam, both DST changes, opens
    at exactly 504/1008 hours and 1 ms later, and 21 local calendar days
    across a DST change (which is 503 or 505 hours)."""
    edges = []
    for y in range(van.year, tot.year + 1):
        ny = datetime(y, 1, 1, tzinfo=AMS)
        edges += [ny - timedelta(minutes=30), ny, ny - timedelta(microseconds=1),
                  datetime(y - 1, 12, 31, 23, 30, tzinfo=timezone.utc)]
        for month in (3, 10):
            s = last_sunday(y, month)
            edges += [datetime.combine(s, time(0), tzinfo=AMS) - timedelta(microseconds=1),
                      datetime.combine(s, time(0), tzinfo=AMS),
                      datetime(s.year, s.month, s.day, 0, 30, tzinfo=timezone.utc),
                      datetime(s.year, s.month, s.day, 1, 30, tzinfo=timezone.utc),
                      datetime.combine(s + timedelta(days=1), time(0), tzinfo=AMS)
                      - timedelta(microseconds=1),
                      datetime.combine(s - timedelta(days=10), time(12), tzinfo=AMS)]
    lo = datetime.combine(van, time(0), tzinfo=AMS)
    hi = datetime.combine(tot, time(0), tzinfo=AMS)
    edges = [e for e in edges if lo <= e < hi]
    rows = []
    for i, pub in enumerate(edges):
        local_21 = (pub.astimezone(AMS) + timedelta(days=21))  # wall-clock 21 days later
        for j, opened in enumerate((None, pub + H504, pub + H504 + timedelta(milliseconds=1),
                                    pub + H1008, pub + H1008 + timedelta(milliseconds=1),
                                    local_21.astimezone(timezone.utc))):
            rows.append(("%s-edge-%d-%d" % (label, i, j), pub, opened, j % 2 == 0))
    conn = services.pg_connect()
    try:
        with conn.cursor() as cur:
            for ref, pub, opened, paper in rows:
                cur.execute(
                    "INSERT INTO messages (id, agency_id, account_id, berichttype, referentie,"
                    "  content_hash, publicatie_tijdstip, papieren_kopie) "
                    "VALUES (gen_random_uuid(), %s, %s, 'T1', %s, 'h', %s, %s)",
                    (agency_id, account_id, ref, pub, paper))
            for ref, pub, opened, paper in rows:  # opened later, as the portal does
                if opened is not None:
                    cur.execute("UPDATE messages SET opened_at = %s WHERE agency_id = %s "
                                "AND referentie = %s AND opened_at IS NULL",
                                (opened, agency_id, ref))
    finally:
        conn.close()
    return len(rows)


# ------------------------------------------------------------------ tests


def test_rollups_equal_brute_force_before_and_after_purge_and_rebuild(daemon):
    svc = daemon.services
    ministry = daemon.token("ministry")
    agencies = [make_agency(daemon, types=("T1", "T2", "T3")) for _ in range(4)]
    oins = {a["oin"] for a in agencies}
    ids = [r[0] for r in svc.psql("SELECT id FROM agencies WHERE oin = ANY(%s) ORDER BY id",
                                  (list(oins),))]
    now = db_now(svc)
    today = now.astimezone(AMS).date()
    # 14 months that end three months ago: every cohort closed, away from
    # the dates other tests write to; both DST changes and a New Year inside
    van, tot = month_start(today, 17), month_start(today, 3)
    load_messages(svc, ids, ("T1", "T2", "T3"), 200_000, van, tot, "exact-%s" % ids[0])
    [(account,)] = svc.psql("SELECT account_id FROM messages WHERE agency_id = %s LIMIT 1",
                            (ids[0],))
    n_edges = insert_edge_cases(svc, ids[0], account, van, tot, "exact-%s" % ids[0])
    assert n_edges >= 60

    days = brute_force_days(svc, oins)
    assert sum(v[0] for v in days.values()) >= 200_000
    assert rollup_days(svc, oins) == days
    dp = brute_force_dp(svc, ids)
    assert rollup_dp(svc, ids) == dp
    assert max(r[4] for r in dp) == 16  # 500 citizens: many get more than 15 messages

    before = {}
    for jaar, maand, start, end in periods(van, tot):
        q = "jaar=%d" % jaar + ("&maand=%d" % maand if maand else "")
        r = ministry_get(daemon, ministry, q)
        assert r.status == 200, r.text
        rep = r.json()
        assert rep["jaar"] == jaar and rep["maand"] == maand
        assert_cells_equal(rep, expected_cells(days, start, end, now), oins, q)
        before[q] = report_cells(rep, oins)
    # the previous-year comparison of each agency, for the last year
    last = tot.year if tot.month > 1 else tot.year - 1
    rep = ministry_get(daemon, ministry, "jaar=%d" % last).json()
    prev = expected_cells(days, date(last - 1, 1, 1), date(last, 1, 1), now)
    for org in rep["organisaties"]:
        if org["oin"] in oins:
            n, g3, g6, _ = prev[("org", org["oin"])]
            assert org["vorigJaar"]["aantalBerichten"] == n
            assert org["vorigJaar"]["percentage3Weken"] == tenths(g3, n)
            assert org["groeiAantalBerichten"] == tenths(org["aantalBerichten"] - n, n)
            assert org["verschilPercentage3Weken"] == pytest.approx(
                org["percentage3Weken"] - tenths(g3, n))

    # `stats rebuild` over the period equals what the triggers kept
    levels = ("SELECT * FROM stats_maand WHERE agency_id = ANY(%s) ORDER BY 1, 2, 3, 4",
              "SELECT * FROM stats_jaar WHERE agency_id = ANY(%s) ORDER BY 1, 2, 3, 4")
    levels_before = [svc.psql(q, (ids,)) for q in levels]
    assert all(levels_before)
    p = daemon.cli("stats", "rebuild", "--van", van.isoformat(), "--tot", tot.isoformat())
    assert p.returncode == 0, p.stderr
    assert "rows/s" in p.stdout
    assert rollup_days(svc, oins) == days
    assert [svc.psql(q, (ids,)) for q in levels] == levels_before
    assert rollup_dp(svc, ids) == dp

    # retention purges the raw rows whose windows have closed: nothing changes
    purged = svc.psql(
        "WITH d AS (DELETE FROM messages WHERE agency_id = ANY(%s) AND now() >="
        "  ((((publicatie_tijdstip AT TIME ZONE 'Europe/Amsterdam')::date + 1)::timestamp"
        "   AT TIME ZONE 'Europe/Amsterdam') + interval '1008 hours') RETURNING 1) "
        "SELECT count(*) FROM d", (ids,))[0][0]
    assert purged >= 200_000
    assert rollup_days(svc, oins) == days
    assert rollup_dp(svc, ids) == dp
    assert [svc.psql(q, (ids,)) for q in levels] == levels_before
    for q, cells in before.items():
        r = ministry_get(daemon, ministry, q)
        assert r.status == 200, r.text
        assert report_cells(r.json(), oins) == cells, q
    # and a rebuild over purged cohorts refuses instead of losing them
    p = daemon.cli("stats", "rebuild", "--van", van.isoformat(), "--tot", tot.isoformat())
    assert p.returncode == 1 and "purged" in p.stderr
    assert rollup_days(svc, oins) == days


def test_ingested_and_opened_messages_update_the_rollup_at_once(daemon, new_bsn):
    from harness import make_citizen
    svc = daemon.services
    agency = make_agency(daemon)
    portal = daemon.token("portal")
    bsn = new_bsn()
    make_citizen(daemon, portal, bsn)
    for i in range(3):
        r = daemon.request("POST", "/v1/berichten", token=agency["token"],
                           json={"bsn": bsn, "berichttype": "T1", "referentie": "s-%d" % i,
                                 "papierenKopie": i == 0})
        assert r.status == 201, r.text
    [(agency_id,)] = svc.psql("SELECT id FROM agencies WHERE oin = %s", (agency["oin"],))
    q = ("SELECT sum(verstuurd), sum(geopend_3w), sum(geopend_6w) FROM stats_dag "
         "WHERE agency_id = %s")
    assert svc.psql(q, (agency_id,)) == [(3, 0, 0)]
    # the portal's open: UPDATE ... SET opened_at = now() WHERE ... IS NULL
    svc.psql("UPDATE messages SET opened_at = now() WHERE agency_id = %s AND referentie = 's-1' "
             "AND opened_at IS NULL", (agency_id,))
    svc.psql("UPDATE messages SET opened_at = now() WHERE agency_id = %s AND referentie = 's-1' "
             "AND opened_at IS NULL", (agency_id,))
    assert svc.psql(q, (agency_id,)) == [(3, 1, 1)]
    # other updates (deleted_at) change nothing
    svc.psql("UPDATE messages SET deleted_at = now() WHERE agency_id = %s", (agency_id,))
    assert svc.psql(q, (agency_id,)) == [(3, 1, 1)]


def make_history(svc, agency_id, account, year, cells):
    """cells: [(month, type, paper, n, opened)] in `year`, published on the
    10th at noon (Amsterdam), opened 1 day later."""
    for month, typ, paper, n, opened in cells:
        pub = datetime(year, month, 10, 12, tzinfo=AMS)
        svc.psql(
            "INSERT INTO messages (id, agency_id, account_id, berichttype, referentie,"
            "  content_hash, publicatie_tijdstip, papieren_kopie, opened_at) "
            "SELECT gen_random_uuid(), %s, %s, %s, 'h-' || gen_random_uuid(), 'h', %s, %s,"
            "  CASE WHEN g <= %s THEN %s::timestamptz + interval '1 day' END "
            "FROM generate_series(1, %s) g",
            (agency_id, account, typ, pub, paper, opened, pub, n))


@pytest.fixture
def two_agencies(daemon):
    svc = daemon.services
    a = make_agency(daemon, types=("T1", "T2", "T3", "KLEIN"))
    b = make_agency(daemon, types=("T1", "T2"))
    for x in (a, b):
        [(x["id"],)] = svc.psql("SELECT id FROM agencies WHERE oin = %s", (x["oin"],))
    [(acc,)] = svc.psql("INSERT INTO accounts (id, bsn_hash) VALUES (gen_random_uuid(), "
                        "md5(random()::text)) RETURNING id")
    a["account"] = b["account"] = acc
    return a, b


def agency_get(daemon, token, query):
    return daemon.request("GET", "/v1/statistieken/openingspercentages?" + query, token=token)


# ---- the agency view: differential privacy (issue 10, migration 0013) ----
#
# Assertion style: with a test seed ([stats] noise_seed) every answer must
# equal, integer for integer, the mechanism recomputed here from the exact
# bounded truth (brute force over the raw rows: a citizen's messages of an
# agency-year numbered in id order, only the first max_per_citizen counted)
# plus the noise the daemon stored in stats_dp_ruis. That cannot pass by
# accident: noise of scale 24 on 44 nodes per cell would have to cancel in
# every cell and month, and a daemon that skipped the bound, the tree, the
# stored noise or the post-processing gives other integers. The probability
# bound itself (the target's open changes the answer's distribution by at
# most e^epsilon) is a property of the noise distribution, so it is tested in
# tests/unit/test_dp.c over 200,000 simulated runs per world.

LEVEL_SIZES = (1, 2, 4, 8)


def prefix_nodes(j):
    out, pos = [], 0
    for level in (3, 2, 1, 0):
        size = 1 << level
        if j - pos >= size:
            out.append((level, pos // size))
            pos += size
    return out


def release(n, c1, c2, noise, last):
    """dp_leaf_release in Python: shown (g3, g6) through each month."""
    s1 = s2 = 0
    out = {0: (0, 0)}
    for j in range(1, 13):
        if j <= last:
            p = []
            for comp, c in ((1, c1), (2, c2)):
                p.append(sum(sum(c.get(m, 0) for m in range(i * (1 << lv) + 1,
                                                            (i + 1) * (1 << lv) + 1))
                             + noise[(comp, lv, i)] for lv, i in prefix_nodes(j)))
            inc1 = min(max(p[0] - s1, 0), n.get(j, 0))
            inc2 = min(max(p[1] - s2, 0), n.get(j, 0) - inc1)
            s1 += inc1
            s2 += inc2
        out[j] = (s1, s1 + s2)
    return out


def bounded_truth(svc, agency_id, year, m):
    """{(type, paper): {"sent", "n", "c1", "c2": {month: count}}} from raw rows."""
    rows = svc.psql(
        "SELECT created_at, id::text, account_id, berichttype, papieren_kopie,"
        "  publicatie_tijdstip, opened_at FROM messages WHERE agency_id = %s", (agency_id,))
    per_citizen = {}
    for r in rows:
        pub = r[5].astimezone(AMS)
        if pub.year == year:
            per_citizen.setdefault(r[2], []).append(r)
    leaves = {}
    for msgs in per_citizen.values():
        # numbered in the order they were inserted: statement, then id
        for k, (_, _, _, typ, paper, pub, opened) in enumerate(sorted(msgs)):
            month = pub.astimezone(AMS).month
            leaf = leaves.setdefault((typ, paper), {"sent": {}, "n": {}, "c1": {}, "c2": {}})
            leaf["sent"][month] = leaf["sent"].get(month, 0) + 1
            if k >= m:
                continue
            leaf["n"][month] = leaf["n"].get(month, 0) + 1
            if opened is not None and opened - pub <= H504:
                leaf["c1"][month] = leaf["c1"].get(month, 0) + 1
            elif opened is not None and opened - pub <= H1008:
                leaf["c2"][month] = leaf["c2"].get(month, 0) + 1
    return leaves


def stored_noise(svc, agency_id, year):
    noise = {}
    for typ, paper, comp, level, idx, r in svc.psql(
            "SELECT berichttype, papieren_kopie, component, niveau, idx, ruis FROM stats_dp_ruis "
            "WHERE agency_id = %s AND jaar = %s", (agency_id, year)):
        noise.setdefault((typ, paper), {})[(comp, level, idx)] = r
    return noise


def expected_view(leaves, noise, last, min_cell):
    """The cells the daemon must show through month `last`: sums of released leaves."""
    cells = {("totaal",): [0, 0, 0, 0]}
    for (typ, paper), leaf in leaves.items():
        sent = sum(v for mo, v in leaf["sent"].items() if mo <= last)
        if sent == 0:
            continue
        g3, g6 = release(leaf["n"], leaf["c1"], leaf["c2"], noise[(typ, paper)], last)[last]
        counted = sum(v for mo, v in leaf["n"].items() if mo <= last)
        for key in (("totaal",), ("type", typ), ("papier", paper)):
            c = cells.setdefault(key, [0, 0, 0, 0])
            for i, v in enumerate((sent, counted, g3, g6)):
                c[i] += v
    out = {}
    for key, (sent, counted, g3, g6) in cells.items():
        hidden = counted < min_cell
        out[key] = {"aantalBerichten": sent, "aantalBerichtenGeteld": counted,
                    "geopendBinnen3Weken": None if hidden else g3,
                    "geopendBinnen6Weken": None if hidden else g6,
                    "percentage3Weken": None if hidden else tenths(g3, counted),
                    "percentage6Weken": None if hidden else tenths(g6, counted),
                    "onderdrukt": hidden, "voorlopig": False}
    return out


def shown_cells(body):
    out = {("totaal",): dict(body["totaal"])}
    for c in body["berichttypes"]:
        c = dict(c)
        out[("type", c.pop("berichttype"))] = c
    for c in body["papierenKopie"]:
        c = dict(c)
        out[("papier", c.pop("papierenKopie"))] = c
    return out


def assert_consistent(body):
    """no negative or inconsistent figures; parts sum to the total"""
    cells = [body["totaal"]] + body["berichttypes"] + body["papierenKopie"]
    for c in cells:
        assert 0 <= c["aantalBerichtenGeteld"] <= c["aantalBerichten"]
        if not c["onderdrukt"]:
            assert 0 <= c["geopendBinnen3Weken"] <= c["geopendBinnen6Weken"] \
                <= c["aantalBerichtenGeteld"], c
    total = body["totaal"]
    for part in ("berichttypes", "papierenKopie"):
        for f in ("aantalBerichten", "aantalBerichtenGeteld"):
            assert sum(c[f] for c in body[part]) == total[f]


_ids = iter(range(1, 1 << 40))


def make_citizens(svc, agency_id, year, cells):
    """cells: [(month, type, paper, n, opened, account)]: n messages published on
    the 10th at noon (Amsterdam), the first `opened` of them opened a day
    later; to n new citizens, or all to `account`. Ids are in insertion order
    (as UUIDv7 are), so numbering by id is the order they were sent."""
    for month, typ, paper, n, opened, account in cells:
        pub = datetime(year, month, 10, 12, tzinfo=AMS)
        base = next(_ids) << 20
        svc.psql(
            "WITH acc AS (INSERT INTO accounts (id, bsn_hash) SELECT gen_random_uuid(),"
            "  md5(random()::text) FROM generate_series(1, CASE WHEN %(acc)s::uuid IS NULL"
            "  THEN %(n)s ELSE 0 END) RETURNING id), "
            "g AS (SELECT g, coalesce(%(acc)s::uuid, (SELECT id FROM (SELECT id,"
            "  row_number() OVER () AS k FROM acc) x WHERE x.k = g)) AS account"
            "  FROM generate_series(1, %(n)s) g) "
            "INSERT INTO messages (id, agency_id, account_id, berichttype, referentie,"
            "  content_hash, publicatie_tijdstip, papieren_kopie, opened_at) "
            "SELECT (lpad(to_hex(%(base)s::bigint + g), 16, '0')"
            "  || substr(replace(gen_random_uuid()::text, '-', ''), 17))::uuid,"
            "  %(ag)s, account, %(typ)s, 'h-' || gen_random_uuid(), 'h', %(pub)s, %(paper)s,"
            "  CASE WHEN g <= %(opened)s THEN %(pub)s::timestamptz + interval '1 day' END "
            "FROM g",
            {"acc": account, "n": n, "base": base, "ag": agency_id, "typ": typ, "pub": pub,
             "paper": paper, "opened": opened})


def new_account(svc):
    [(acc,)] = svc.psql("INSERT INTO accounts (id, bsn_hash) VALUES (gen_random_uuid(), "
                        "md5(random()::text)) RETURNING id")
    return acc


@pytest.fixture
def dp_daemon(make_daemon):
    """berichtd whose agency-view noise comes from a test seed"""
    return make_daemon("dp", stats__noise_seed="issue-10-test-seed")


def dp_agency(daemon, types):
    a = make_agency(daemon, types=types)
    [(a["id"],)] = daemon.services.psql("SELECT id FROM agencies WHERE oin = %s", (a["oin"],))
    return a


def check_mechanism(daemon, a, year, m=3, min_cell=10):
    """every monthly view equals the mechanism over the bounded truth and the
    stored noise; returns the views by month"""
    svc = daemon.services
    views = {}
    for last in range(1, 13):
        r = agency_get(daemon, a["token"], "jaar=%d&totEnMetMaand=%d" % (year, last))
        assert r.status == 200, r.text
        views[last] = r.json()
    full = agency_get(daemon, a["token"], "jaar=%d" % year)
    assert full.status == 200, full.text
    leaves = bounded_truth(svc, a["id"], year, m)
    noise = stored_noise(svc, a["id"], year)
    assert set(noise) == set(leaves)
    assert all(len(v) == 44 for v in noise.values())  # 2 components x 22 nodes
    for last, body in views.items():
        assert body["totEnMetMaand"] == last
        assert body["privacy"] == {"epsilon": 1.0, "maxBerichtenPerBurger": m}
        assert_consistent(body)
        assert shown_cells(body) == expected_view(leaves, noise, last, min_cell), last
    body = full.json()
    assert body["afgeslotenTotEnMet"] == "%d-12-31" % year
    assert shown_cells(body) == shown_cells(views[12])
    return views


def test_agency_view_is_the_mechanism_over_the_bounded_truth(dp_daemon):
    svc = dp_daemon.services
    a = dp_agency(dp_daemon, ("T1", "T2", "KLEIN", "EEN"))
    other = dp_agency(dp_daemon, ("T1",))
    past = db_now(svc).astimezone(AMS).year - 2  # every window closed
    one = new_account(svc)
    make_citizens(svc, a["id"], past, [
        (1, "T1", False, 40, 20, None), (2, "T1", True, 25, 5, None),
        (3, "T2", False, 30, 10, None), (5, "T1", False, 60, 30, None),
        (9, "T2", False, 35, 30, None), (11, "KLEIN", False, 3, 3, None),
        # attack 2: all ten messages of a type to one citizen, three opened
        (4, "EEN", False, 10, 3, one)])
    make_citizens(svc, other["id"], past, [(1, "T1", False, 50, 50, None)])

    views = check_mechanism(dp_daemon, a, past)
    body = views[12]
    assert body["oin"] == a["oin"] and other["oin"] not in json.dumps(body)
    types = {c["berichttype"]: c for c in body["berichttypes"]}
    # the one citizen's ten messages count three times, whatever else happens
    assert types["EEN"]["aantalBerichten"] == 10
    assert types["EEN"]["aantalBerichtenGeteld"] == 3
    assert types["KLEIN"]["onderdrukt"] and types["KLEIN"]["percentage3Weken"] is None
    assert body["totaal"]["aantalBerichten"] == 203
    assert body["totaal"]["aantalBerichtenGeteld"] == 196

    # repeated queries are identical (the noise is stored, not drawn again)
    again = agency_get(dp_daemon, a["token"], "jaar=%d&totEnMetMaand=12" % past)
    assert again.json() == body
    # monthly views never contradict earlier ones: nothing shown shrinks,
    # and what a month adds is at most what it counted
    for last in range(2, 13):
        before, now = shown_cells(views[last - 1]), shown_cells(views[last])
        for key, c in before.items():
            d = now[key]
            assert d["aantalBerichtenGeteld"] >= c["aantalBerichtenGeteld"]
            if not c["onderdrukt"] and not d["onderdrukt"]:
                added = d["aantalBerichtenGeteld"] - c["aantalBerichtenGeteld"]
                for f in ("geopendBinnen3Weken", "geopendBinnen6Weken"):
                    assert 0 <= d[f] - c[f] <= added, (last, key, f)


def test_agency_view_of_the_default_daemon_uses_the_csprng(daemon):
    svc = daemon.services
    a = dp_agency(daemon, ("T1", "T2"))
    past = db_now(svc).astimezone(AMS).year - 2
    make_citizens(svc, a["id"], past, [(1, "T1", False, 40, 20, None),
                                       (6, "T2", True, 30, 10, None)])
    views = check_mechanism(daemon, a, past)
    # drawn from OpenSSL, not a fixed stream: 88 nodes are not all zero
    noise = stored_noise(svc, a["id"], past)
    assert any(v != 0 for leaf in noise.values() for v in leaf.values())
    assert views[12]["totaal"]["aantalBerichtenGeteld"] == 70


def test_attack_known_others_changes_the_answer_only_through_the_mechanism(dp_daemon):
    """Attack 1: nine recipients whose behaviour the agency knows (four
    opened) and the target, one type, one month. The answer with and without
    the target's open is the mechanism over each truth with the same stored
    noise; how far apart the two can be in distribution is test_dp.c's."""
    svc = dp_daemon.services
    a = dp_agency(dp_daemon, ("T",))
    past = db_now(svc).astimezone(AMS).year - 2
    target = new_account(svc)
    make_citizens(svc, a["id"], past, [(6, "T", False, 9, 4, None),
                                       (6, "T", False, 1, 1, target)])
    opened = check_mechanism(dp_daemon, a, past)[12]
    noise = stored_noise(svc, a["id"], past)
    # the other world: the target did not open (the same stored noise applies)
    svc.psql("UPDATE messages SET opened_at = NULL WHERE account_id = %s", (target,))
    not_opened = check_mechanism(dp_daemon, a, past)[12]
    assert stored_noise(svc, a["id"], past) == noise
    t_open, t_not = opened["totaal"], not_opened["totaal"]
    assert t_open["aantalBerichtenGeteld"] == t_not["aantalBerichtenGeteld"] == 10
    # not "5 - 4 = 1": the figure is noisy; one open moves it by at most one
    assert abs(t_open["geopendBinnen3Weken"] - t_not["geopendBinnen3Weken"]) <= 1
    assert abs(t_open["geopendBinnen6Weken"] - t_not["geopendBinnen6Weken"]) <= 1


def test_agency_sees_only_its_own_closed_cells(daemon):
    svc = daemon.services
    a = dp_agency(daemon, ("T1", "T2", "T3", "KLEIN"))
    b = dp_agency(daemon, ("T1",))
    past = db_now(svc).astimezone(AMS).year - 2
    make_citizens(svc, a["id"], past, [
        (1, "T1", False, 40, 20, None), (1, "T2", False, 30, 10, None),
        (1, "T3", True, 25, 5, None), (2, "KLEIN", False, 3, 3, None),
        (3, "T1", False, 20, 10, None)])
    make_citizens(svc, b["id"], past, [(1, "T1", False, 50, 50, None)])
    r = agency_get(daemon, a["token"], "jaar=%d" % past)
    assert r.status == 200, r.text
    body = r.json()
    assert body["oin"] == a["oin"] and b["oin"] not in r.text
    assert body["afgeslotenTotEnMet"] == "%d-12-31" % past
    assert body["totEnMetMaand"] is None
    assert body["totaal"]["aantalBerichten"] == 118
    assert_consistent(body)
    types = {c["berichttype"]: c for c in body["berichttypes"]}
    assert types["KLEIN"]["onderdrukt"] and types["KLEIN"]["geopendBinnen3Weken"] is None
    assert not types["T2"]["onderdrukt"] and types["T2"]["aantalBerichtenGeteld"] == 30
    # as of January: February's and March's messages are not in it
    jan = agency_get(daemon, a["token"], "jaar=%d&totEnMetMaand=1" % past).json()
    assert jan["afgeslotenTotEnMet"] == "%d-01-31" % past
    assert jan["totaal"]["aantalBerichten"] == 95
    assert_consistent(jan)


def test_agency_never_sees_open_windows(daemon, two_agencies):
    svc = daemon.services
    a, _ = two_agencies
    ministry = daemon.token("ministry")
    now = db_now(svc)
    # messages published now: their windows are open for six weeks
    svc.psql("INSERT INTO messages (id, agency_id, account_id, berichttype, referentie,"
             "  content_hash, publicatie_tijdstip, opened_at) "
             "SELECT gen_random_uuid(), %s, %s, 'T1', 'open-' || g, 'h', now(), now() "
             "FROM generate_series(1, 40) g", (a["id"], a["account"]))
    body = agency_get(daemon, a["token"], "jaar=%d" % now.astimezone(AMS).year).json()
    assert body["totaal"]["aantalBerichten"] == 0
    assert body["totaal"]["onderdrukt"]
    assert body["berichttypes"] == []
    # the ministry sees them, flagged as provisional
    rep = ministry_get(daemon, ministry, "jaar=%d" % now.astimezone(AMS).year).json()
    [org] = [o for o in rep["organisaties"] if o["oin"] == a["oin"]]
    assert org["aantalBerichten"] == 40 and org["voorlopig"] is True
    assert all(c["voorlopig"] for c in org["berichttypes"])
    assert rep["totaal"]["voorlopig"] is True


@pytest.mark.parametrize("query", [
    "", "jaar=", "jaar=25", "jaar=20255", "jaar=abcd", "jaar=1999", "jaar=2101",
    "jaar=2024&jaar=2025", "jaar=2024&maand=1", "jaar=2024&oin=00000001823288444000",
    "jaar=2024&agency=1", "jaar=2024&berichttype=T1", "jaar=2024&minimum=1",
    "jaar=2024&totEnMetMaand=0", "jaar=2024&totEnMetMaand=13", "jaar=2024&totEnMetMaand=x",
    "jaar=2024&totEnMetMaand=1&totEnMetMaand=2",
])
def test_agency_parameters_other_than_jaar_are_refused(daemon, two_agencies, query):
    a, _ = two_agencies
    body = assert_problem(agency_get(daemon, a["token"], query), 400)
    assert body["invalidParams"]


def test_agency_cannot_read_the_ministry_reports(daemon, two_agencies):
    a, _ = two_agencies
    for path in ("/v1/rapportages/openingspercentages?jaar=2024",
                 "/v1/rapportages/notificaties?jaar=2024"):
        assert_problem(daemon.request("GET", path, token=a["token"]), 403)
    ministry = daemon.token("ministry")
    assert_problem(agency_get(daemon, ministry, "jaar=2024"), 403)


@pytest.mark.parametrize("query,names", [
    ("jaar=2024&maand=13", {"maand"}), ("jaar=2024&maand=0", {"maand"}),
    ("jaar=x&maand=x&foo=1", {"jaar", "maand", "foo"}), ("maand=1", {"jaar"}),
])
def test_ministry_parameters_are_validated_all_at_once(daemon, query, names):
    ministry = daemon.token("ministry")
    body = assert_problem(ministry_get(daemon, ministry, query), 400)
    assert {p["name"] for p in body["invalidParams"]} == names


def test_ministry_report_as_csv(daemon, two_agencies):
    svc = daemon.services
    a, _ = two_agencies
    past = db_now(svc).astimezone(AMS).year - 2
    make_history(svc, a["id"], a["account"], past, [(1, "T1", True, 30, 10),
                                                      (1, "T2", False, 3, 1)])
    ministry = daemon.token("ministry")
    r = ministry_get(daemon, ministry, "jaar=%d" % past, accept="text/csv")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    mine = [row for row in rows if row["oin"] == a["oin"]]
    org = [row for row in mine if row["niveau"] == "organisatie"][0]
    assert (org["aantalBerichten"], org["geopendBinnen3Weken"], org["percentage3Weken"]) == \
        ("33", "11", "33.3")
    assert org["voorlopig"] == "false"
    t2 = [row for row in mine if row["niveau"] == "berichttype" and row["berichttype"] == "T2"]
    assert t2[0]["percentage6Weken"] == "33.3"  # the ministry sees small cells
    assert {row["papierenKopie"] for row in mine if row["niveau"] == "papierenKopie"} == \
        {"true", "false"}
    # JSON by default, with one decimal
    r = ministry_get(daemon, ministry, "jaar=%d" % past)
    assert r.headers["Content-Type"] == "application/json"
    assert '"percentage3Weken":33.3' in r.text


def test_notificaties_report_counts_mails_bounces_and_accounts(daemon, two_agencies):
    svc = daemon.services
    a, _ = two_agencies
    ministry = daemon.token("ministry")
    year = db_now(svc).astimezone(AMS).year
    path = "/v1/rapportages/notificaties?jaar=%d" % year
    before = daemon.request("GET", path, token=ministry).json()
    [(acc,)] = svc.psql("INSERT INTO accounts (id, bsn_hash, email) VALUES (gen_random_uuid(),"
                        " md5(random()::text), 'slaper@example.nl') RETURNING id")
    [(mid,)] = svc.psql("INSERT INTO messages (id, agency_id, account_id, berichttype,"
                        " referentie, content_hash, publicatie_tijdstip) VALUES "
                        "(gen_random_uuid(), %s, %s, 'T1', 'n-' || gen_random_uuid(), 'h',"
                        " now() - interval '1 day') RETURNING id", (a["id"], acc))
    ids = svc.psql("INSERT INTO notifications (message_id, account_id, kind, due_at) "
                   "SELECT %s, %s, k, now() FROM unnest(ARRAY['new','new','repeat']) k "
                   "RETURNING id", (mid, acc))
    ids = [i for (i,) in ids]
    svc.psql("UPDATE notifications SET state = 'sent', sent_at = now() WHERE id = ANY(%s)",
             (ids,))
    svc.psql("UPDATE notifications SET state = 'bounced' WHERE id = %s", (ids[0],))
    after = daemon.request("GET", path, token=ministry)
    assert after.status == 200, after.text
    after = after.json()
    assert after["notificatiesVerstuurd"] - before["notificatiesVerstuurd"] == 2
    assert after["herinneringenVerstuurd"] - before["herinneringenVerstuurd"] == 1
    assert after["bounces"] - before["bounces"] == 1
    assert after["bouncePercentage"] == tenths(
        after["bounces"], after["notificatiesVerstuurd"] + after["herinneringenVerstuurd"])
    assert after["actieveAccounts"] - before["actieveAccounts"] == 1
    assert after["accountsMetGeverifieerdAdres"] - before["accountsMetGeverifieerdAdres"] == 1
    assert after["slapendeAccounts"] - before["slapendeAccounts"] == 1
    assert after["slapendNaWeken"] == 6
    assert "accountsZonderEmailBevestigd" in after
    # purging the message (and with it its notifications) changes nothing
    svc.psql("DELETE FROM messages WHERE id = %s", (mid,))
    again = daemon.request("GET", path, token=ministry).json()
    for k in ("notificatiesVerstuurd", "herinneringenVerstuurd", "bounces"):
        assert again[k] == after[k]


def test_report_cli_writes_csv_json_and_html(daemon, two_agencies, tmp_path):
    svc = daemon.services
    a, _ = two_agencies
    past = db_now(svc).astimezone(AMS).year - 2
    make_history(svc, a["id"], a["account"], past, [(1, "T1", True, 30, 10)])
    for fmt in ("csv", "json", "html"):
        out = tmp_path / ("r." + fmt)
        p = daemon.cli("report", "--jaar", past, "--format", fmt, "--out", out)
        assert p.returncode == 0, p.stderr
        text = out.read_text()
        assert a["oin"] in text or a["name"] in text
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["jaar"] == past
    html = (tmp_path / "r.html").read_text()
    assert html.index("<table") < html.index("<svg")
    assert "<title" in html and "<desc" in html and "@media print" in html
    assert "src=" not in html and "href=" not in html and "http://" not in \
        html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    p = daemon.cli("report", "--jaar", "20x5", "--format", "pdf", "--out", tmp_path / "x")
    assert p.returncode == 2


def test_html_report_renders_in_headless_chromium(daemon, two_agencies, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian's chromium is not installed (make deps installs it)")
    svc = daemon.services
    a, _ = two_agencies
    past = db_now(svc).astimezone(AMS).year - 2
    make_history(svc, a["id"], a["account"], past, [(1, "T1", True, 30, 10)])
    out = tmp_path / "rapport.html"
    p = daemon.cli("report", "--jaar", past, "--format", "html", "--out", out)
    assert p.returncode == 0, p.stderr
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        dom = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--user-data-dir=" + profile, "--dump-dom", out.as_uri()],
            capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<table" in dom.stdout and "</table>" in dom.stdout
    assert "<svg" in dom.stdout and "<rect" in dom.stdout
    assert a["name"] in dom.stdout
