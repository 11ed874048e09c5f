#!/usr/bin/python3
"""The soak (issue 13): `make soak SOAK_S=600`, not part of `make test`.

The cluster of cluster.py under mixed load for SOAK_S seconds: the agencies'
ingest (single and batch) and the portal's opens (loadgen.Load), portal box
reads and ministry report pulls (threads here), deliveries, and one
PostgreSQL failover in the middle. Every SOAK_EVERY_S (60) seconds a line
per instance: RSS, open fds, its PostgreSQL connections (pg_stat_activity by
application_name), its log's error lines and its retried/failed
notifications (/metrics), and the agencies' failed answers so far. Ends
with the checker; exit 1 on any loss, or when an instance's RSS grew more
than SOAK_RSS_GROWTH (25 %) from the first minute after warm-up to the end.

    tests/faults/soak.py SECONDS [--run-dir DIR]
"""
import argparse
import os
import random
import re
import secrets
import shutil
import sys
import threading
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cluster import Cluster, harness  # noqa: E402
from checker import check  # noqa: E402
from loadgen import Journal, Load, read_journal  # noqa: E402
from harness import make_agency, metric  # noqa: E402
import run  # noqa: E402  the matrix's setup and quiescence

EVERY_S = float(os.environ.get("SOAK_EVERY_S", "60"))
RSS_GROWTH = float(os.environ.get("SOAK_RSS_GROWTH", "0.25"))


def proc_figures(pid):
    rss = 0
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir("/proc/%d/fd" % pid))


def readers(cluster, portal, accounts, stop, counts):
    """Portal box reads and ministry report pulls, through HAProxy."""
    ministry = cluster.daemons[0].token("ministry")
    rng = random.Random()

    def loop(fn, pause):
        while not stop.is_set():
            try:
                r = fn()
                counts[r.status // 100] = counts.get(r.status // 100, 0) + 1
            except OSError:
                counts["conn"] = counts.get("conn", 0) + 1
            time.sleep(pause)

    box = lambda: harness.request(cluster.lb_url, "GET", "/v1/accounts/%s/berichten?paginaGrootte=20"  # noqa: E731
                                  % rng.choice(accounts), token=portal, timeout=30)
    rep = lambda: harness.request(cluster.lb_url, "GET", "/v1/rapportages/openingspercentages"  # noqa: E731
                                  "?jaar=%d" % date.today().year, token=ministry, timeout=60)
    ts = [threading.Thread(target=loop, args=(box, 0.2), daemon=True),
          threading.Thread(target=loop, args=(rep, 2.0), daemon=True)]
    for t in ts:
        t.start()
    return ts


def sample(cluster, jpath, reads, t0):
    conns = dict(cluster.psql("SELECT application_name, count(*) FROM pg_stat_activity "
                              "WHERE application_name LIKE 'berichtd-%%' GROUP BY 1"))
    bad = sum(1 for r in read_journal(jpath)
              if r["status"] == "conn" or (isinstance(r["status"], int) and r["status"] >= 500))
    out = []
    for d in cluster.daemons:
        if not d.running():
            out.append((d.name, None))
            continue
        rss, fds = proc_figures(d.pid)
        errs = len(re.findall(r"level=error", d.log_text()))
        try:
            retried = metric(d, "berichtd_notifications_retried_total") or 0
            failed = metric(d, "berichtd_notifications_failed_total") or 0
        except (OSError, AssertionError):
            retried = failed = -1
        out.append((d.name, dict(rss_kb=rss, fds=fds, pg=conns.get("berichtd-" + d.name, 0),
                                 log_errors=errs, retried=retried, failed=failed)))
    line = "t=%4.0fs " % (time.monotonic() - t0) + "  ".join(
        "%s: %s" % (n, "DOWN" if f is None else
                    "rss=%.1fMB fds=%d pg=%d errors=%d retried=%d failed=%d"
                    % (f["rss_kb"] / 1024, f["fds"], f["pg"], f["log_errors"], f["retried"],
                       f["failed"]))
        for n, f in out) + "  agencies: 5xx/conn=%d  reads: %s" % (bad, dict(reads))
    print(line, flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("seconds", type=float, nargs="?", default=600)
    ap.add_argument("--run-dir", default=str(harness.REPO_ROOT / ".test-run"
                                             / ("soak-%d" % os.getpid())))
    args = ap.parse_args()
    run_dir = Path(args.run_dir)
    cluster = Cluster(run_dir)
    ok = True
    try:
        cluster.start(**run.CONF)
        portal, bsns, accounts = run.setup(cluster)
        agencies = [make_agency(cluster.daemons[0], name="Soak %d" % i) for i in range(3)]
        oins = [a["oin"] for a in agencies]
        tag = "s" + secrets.token_hex(3)
        jpath = run_dir / "journal-soak.jsonl"
        journal = Journal(jpath)
        print("soak: %.0f s, 2 instances behind HAProxy, a PostgreSQL failover at %.0f s"
              % (args.seconds, args.seconds / 2), flush=True)
        t0 = time.monotonic()
        load = Load(cluster.lb_url, agencies, bsns, portal, journal, tag, pause=0.1).start()
        stop = threading.Event()
        reads = {}
        rts = readers(cluster, portal, accounts, stop, reads)
        failed_over = False
        samples = []
        next_sample = t0 + EVERY_S
        while time.monotonic() - t0 < args.seconds:
            time.sleep(1)
            if not failed_over and time.monotonic() - t0 >= args.seconds / 2:
                failed_over = True
                t_fault = time.time()
                took = cluster.fail_over()
                cluster.heal_pg()
                print("failover: new primary writable %.1f s after the kill" % took, flush=True)
            if time.monotonic() >= next_sample:
                next_sample += EVERY_S
                samples.append(sample(cluster, jpath, reads, t0))
        load.stop()
        stop.set()
        for t in rts:
            t.join(90)
        journal.close()
        samples.append(sample(cluster, jpath, reads, t0))
        q = run.quiet(cluster, oins, tag)
        f = check(cluster.psql, jpath, oins, tag, cluster.services.mail_dir,
                  [d.log_text() for d in cluster.daemons])
        recover, failover = run.agency_view(jpath, t_fault)
        print("checker: %s" % {k: v for k, v in f.items() if k != "report"})
        print("quiet after %.1f s; agency-seen failover (first 503 -> first 201): %s s"
              % (q, run.fmt_s(failover)))
        if not f.ok:
            print("FAILED: " + " ".join(f.failures()))
            ok = False
        # memory flat after warm-up: the second sample against the last
        if len(samples) >= 3:
            for i, d in enumerate(cluster.daemons):
                a, b = samples[1][i][1], samples[-1][i][1]
                if a and b:
                    g = (b["rss_kb"] - a["rss_kb"]) / a["rss_kb"]
                    print("%s: RSS %.1f MB at t=%.0fs, %.1f MB at the end (%+.0f%%)"
                          % (d.name, a["rss_kb"] / 1024, 2 * EVERY_S, b["rss_kb"] / 1024,
                             100 * g))
                    if g > RSS_GROWTH:
                        print("FAILED: %s memory grew more than %.0f%%" % (d.name,
                                                                          100 * RSS_GROWTH))
                        ok = False
    finally:
        cluster.stop()
    if ok and os.environ.get("FAULTS_KEEP") != "1":
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
