#!/usr/bin/env python3
"""What issue 11's notification half costs, measured in PostgreSQL itself
(EXPLAIN ANALYZE, so the shared machine's noise outside the statement does
not count): the ingest statement of 1,000 messages as in OLD_SRC and as in
this tree, for accounts without a representation and with one each; and the
claim of one representative with N represented accounts (its plan printed).

    python3 tests/bench/rep_explain.py [OLD_SRC_DIR] [N]

OLD_SRC_DIR holds the daemon/agency/ingest.c to compare with (default: none,
only this tree). Runs on private services it starts and stops."""
import ast
import json
import re
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import harness  # noqa: E402

RUNS = 9
GROUP = 1000


def c_string(path, name):
    """The concatenated string literals of `static const char NAME[] = ...;`."""
    src = Path(path).read_text()
    start = src.index(name + "[] =")
    body = src[start:src.index(";\n", start)]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return "".join(ast.literal_eval(s) for s in re.findall(r'"(?:[^"\\]|\\.)*"', body))


def items(agency, hashes, tag):
    return json.dumps([{
        "i": k, "id": str(uuid.uuid4()), "agency_id": agency, "bsn_hash": h,
        "berichttype": "T1", "referentie": "%s-%d" % (tag, k), "content_hash": "x",
        "aanmaak": None, "publicatie": None, "eind": None, "papier": False}
        for k, h in enumerate(hashes)])


def exec_ms(cur, name, agency, hashes):
    """Median execution time of RUNS rolled-back runs of prepared statement name."""
    times = []
    for r in range(RUNS):
        cur.execute("BEGIN")
        cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE %s(%%s, '0 seconds')" % name,
                    (items(agency, hashes, "%s-%d-%s" % (name, r, uuid.uuid4().hex[:6])),))
        times.append(cur.fetchone()[0][0]["Execution Time"])
        cur.execute("ROLLBACK")
    return statistics.median(times)


def main():
    old = Path(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "-" else None
    n_bulk = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    run_dir = ROOT / ".bench-run" / ("rep-explain-%s" % uuid.uuid4().hex[:6])
    svc = harness.Services.start(run_dir)
    try:
        d = harness.Daemon(svc, "explain", migrate=True)
        agency = harness.make_agency(d)
        aid = harness.agency_id(svc, agency["oin"])
        conn = svc.pg_connect()
        cur = conn.cursor()
        cur.execute("INSERT INTO accounts (id, bsn_hash, email) SELECT gen_random_uuid(),"
                    " 'plain-' || g, 'p' || g || '@example.nl' FROM generate_series(1, %s) g",
                    (GROUP,))
        cur.execute("INSERT INTO accounts (id, bsn_hash, email) SELECT gen_random_uuid(),"
                    " 'rep1-' || g, 'r' || g || '@example.nl' FROM generate_series(1, %s) g",
                    (GROUP,))
        cur.execute("INSERT INTO accounts (id, bsn_hash, email) VALUES (gen_random_uuid(),"
                    " 'the-rep', 'rep@example.nl')")
        cur.execute("INSERT INTO representations (account_id, rep_account_id, soort,"
                    " geldig_vanaf, weergavenaam, betrokkene_ook_notificeren)"
                    " SELECT a.id, (SELECT id FROM accounts WHERE bsn_hash = 'the-rep'),"
                    " 'machtiging', now() - interval '1 day', 'C ' || a.bsn_hash, true"
                    " FROM accounts a WHERE a.bsn_hash LIKE 'rep1-%%'")
        cur.execute("ANALYZE")
        plain = ["plain-%d" % g for g in range(1, GROUP + 1)]
        withrep = ["rep1-%d" % g for g in range(1, GROUP + 1)]
        versions = [("new", ROOT / "daemon/agency/ingest.c")]
        if old:
            versions.insert(0, ("old", old / "daemon/agency/ingest.c"))
        for name, path in versions:
            cur.execute("PREPARE %s AS %s" % (name, c_string(path, "INGEST_SQL")))
        for r in range(2):  # interleaved, twice
            for name, _ in versions:
                print("ingest %s, %d messages, no representation: %.1f ms" % (
                    name, GROUP, exec_ms(cur, name, aid, plain)))
            print("ingest new, %d messages, one representation each: %.1f ms" % (
                GROUP, exec_ms(cur, "new", aid, withrep)))

        # the claim of one representative with n_bulk represented accounts
        cur.execute("INSERT INTO accounts (id, bsn_hash) SELECT gen_random_uuid(),"
                    " 'bulk-' || g FROM generate_series(1, %s) g", (n_bulk,))
        cur.execute("INSERT INTO representations (account_id, rep_account_id, soort,"
                    " geldig_vanaf, weergavenaam, betrokkene_ook_notificeren)"
                    " SELECT a.id, (SELECT id FROM accounts WHERE bsn_hash = 'the-rep'),"
                    " 'beschermingsbewind', now() - interval '1 day', 'B ' || a.bsn_hash, true"
                    " FROM accounts a WHERE a.bsn_hash LIKE 'bulk-%%'")
        bulk = ["bulk-%d" % g for g in range(1, n_bulk + 1)]
        for k in range(0, n_bulk, GROUP):
            cur.execute("EXECUTE new(%s, '0 seconds')",
                        (items(aid, bulk[k:k + GROUP], "bulk-%d" % k),))
        cur.execute("ANALYZE")
        cur.execute("SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM notifications"
                    " WHERE representation_id IS NOT NULL AND state = 'scheduled'"
                    " AND account_id = (SELECT id FROM accounts WHERE bsn_hash = 'the-rep')"
                    " ORDER BY id LIMIT 200) x")
        ids = "{%s}" % ",".join(map(str, cur.fetchone()[0]))
        claim = c_string(ROOT / "daemon/notify/claim.c", "CLAIM_SQL")
        cur.execute("PREPARE claim AS " + claim)
        cur.execute("BEGIN")
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) EXECUTE claim(%s, '3 seconds', false)", (ids,))
        plan = "\n".join(r[0] for r in cur.fetchall())
        cur.execute("ROLLBACK")
        print("\nclaim of one representative, %d rows due (200 handed out):\n%s" % (n_bulk, plan))
        conn.close()
    finally:
        svc.stop()
        subprocess.run(["rm", "-rf", str(run_dir / "pg")])


if __name__ == "__main__":
    main()
