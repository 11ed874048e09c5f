#!/usr/bin/python3
"""`make bench-delivery`: mails per second from the Redis schedule into an
SMTP sink, end to end (Redis take, PostgreSQL claim and result, libesmtp),
next to two limits measured in the same run on the same machine:

  - Postfix's smtp-source with 10 sessions reusing connections into the
    same smtp-sink (the raw SMTP ceiling of this box), and
  - BullMQ processing delayed no-op jobs on the same Redis (the usual
    Node.js queue, with no database and no SMTP at all).

Then the due-to-sent lag at a steady rate below that throughput.
Everything runs on loopback; the sink is Postfix's smtp-sink, never a
system MTA."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import harness  # noqa: E402

N_MAILS = int(os.environ.get("BENCH_MAILS", "40000"))
N_SOURCE = int(os.environ.get("BENCH_SOURCE", "100000"))
N_BULL = int(os.environ.get("BENCH_BULL", "100000"))
# 6 x 200 measured best on this 2-core box (6-run sweep, BENCH_REFS=0):
# 4 x 100 about 10.2k/s, 4 x 200 11.4k, 6 x 200 12.1k, 8 x 200 11.4k,
# 6 x 400 12.4k with a higher lag; SMTP round trips leave a worker idle
# most of the time, so more sessions than cores pay off, up to a point
WORKERS = os.environ.get("BENCH_WORKERS", "6")
BATCH = os.environ.get("BENCH_BATCH", "200")
MSG_BYTES = 1500  # about the size of one notification mail


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_smtp_sink(port):
    return subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "nobody", "127.0.0.1:%d" % port,
                             "1024"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d did not open" % port)


def smtp_source_rate(port):
    t0 = time.monotonic()
    subprocess.run(["/usr/sbin/smtp-source", "-d", "-s", "10", "-m", str(N_SOURCE), "-l",
                    str(MSG_BYTES), "-f", "bench@example.nl", "-t", "sink@example.nl",
                    "127.0.0.1:%d" % port], check=True)
    return N_SOURCE / (time.monotonic() - t0)


def bullmq_rate(redis_port, node_dir):
    # BullMQ 5: the widely deployed major; 6 needs its Redis client passed in
    if not (node_dir / "node_modules" / "bullmq").exists():
        node_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(node_dir), "--no-audit", "--no-fund",
                        "--silent", "bullmq@5"], check=True)
    script = node_dir / "bullmq_bench.mjs"
    shutil.copy(REPO / "tests" / "bench" / "bullmq_bench.mjs", script)
    out = subprocess.run(["node", str(script), str(redis_port), str(N_BULL), "50"],
                         check=True, capture_output=True, text=True, cwd=node_dir)
    return json.loads(out.stdout.strip().splitlines()[-1])["rate"]


def schedule(services, daemon, agency, n, tag, spread_s=0.0, lead_s=0.0):
    """Rows as the ingest commits them, then the Redis schedule as the ingest
    writes it (one ZADD per lane): due now, or spread evenly over spread_s
    starting lead_s from now (so that, for the lag measurement, nothing is
    already overdue by the time this loader has written it).
    Returns (count, lowest id, highest id)."""
    rows = services.psql(
        "WITH a AS (INSERT INTO accounts (id, bsn_hash, email)"
        "  SELECT gen_random_uuid(), %(t)s || g, %(t)s || g || '@bench.example'"
        "  FROM generate_series(1, %(n)s) g RETURNING id),"
        " m AS (INSERT INTO messages (id, agency_id, account_id, berichttype, referentie,"
        "  content_hash, publicatie_tijdstip)"
        "  SELECT gen_random_uuid(), %(ag)s, id, 'T1', %(t)s || id, 'x', now() FROM a"
        "  RETURNING id, account_id),"
        " o AS (SELECT id, account_id, row_number() OVER () AS k FROM m)"
        " INSERT INTO notifications (message_id, account_id, due_at)"
        " SELECT id, account_id,"
        "  now() + (%(lead)s + (k - 1) * %(step)s) * interval '1 second' FROM o"
        " RETURNING id, (extract(epoch FROM due_at) * 1000)::bigint",
        {"t": tag, "n": n, "ag": agency, "step": spread_s / max(n, 1), "lead": lead_s})
    prefix = daemon.config["redis"]["key_prefix"]
    cmds = ["SADD %slanes %d" % (prefix, agency)]
    for i in range(0, len(rows), 1000):
        chunk = rows[i:i + 1000]
        cmds.append("ZADD %sdue:%d NX %s" % (prefix, agency,
                                                " ".join("%d %d" % (d, nid) for nid, d in chunk)))
    subprocess.run(["redis-cli", "-p", str(services.redis_port)], input="\n".join(cmds) + "\n",
                   text=True, check=True, stdout=subprocess.DEVNULL)
    ids = [nid for nid, _ in rows]
    return len(rows), min(ids), max(ids)


def sent_count(services, lo, hi):
    return services.psql("SELECT count(*) FROM notifications WHERE id BETWEEN %s AND %s "
                         "AND state = 'sent'", (lo, hi))[0][0]


def metric_sent(daemon):
    """The daemon's own sent counter, from /metrics: polling it costs the
    database nothing (a count(*) over the rows every 100 ms took 30-80 ms of
    PostgreSQL CPU each, a third of a core taken from the run it measured)."""
    try:
        r = daemon.ops_request("GET", "/metrics", timeout=5)
    except OSError:
        return None  # not listening yet
    m = re.search(rb"^berichtd_notifications_sent_total (\d+)", r.body, re.M)
    return int(m.group(1)) if m else None


def wait_sent(services, daemon, lo, hi, n, before=0, timeout=600):
    """Waits until the daemon counted n more sent notifications than
    `before`, then checks in PostgreSQL that exactly these n rows are 'sent'."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = metric_sent(daemon)
        if v is not None and v - before >= n:
            t = time.monotonic()
            got = sent_count(services, lo, hi)
            if got != n:
                raise RuntimeError("daemon counted %d sent, database has %d of %d"
                                   % (v - before, got, n))
            return t, v
        time.sleep(0.02)
    raise RuntimeError("only %d of %d sent" % (sent_count(services, lo, hi), n))


def main():
    run_dir = REPO / ".bench-run" / "delivery"
    shutil.rmtree(run_dir, ignore_errors=True)
    services = harness.Services.start(run_dir)
    sink_port = free_port()
    sink = start_smtp_sink(sink_port)
    daemon = None
    try:
        wait_port(sink_port)
        # BENCH_REFS=0 skips the two reference runs (for profiling berichtd alone)
        refs = os.environ.get("BENCH_REFS", "1") != "0"
        source = smtp_source_rate(sink_port) if refs else float("nan")
        bull = bullmq_rate(services.redis_port, REPO / "build" / "bench-node") if refs \
            else float("nan")

        daemon = harness.Daemon(services, "bench", **{
            "smtp.port": str(sink_port), "delivery.workers": WORKERS,
            "delivery.batch": BATCH, "delivery.reconcile_interval": "1h",
            "delivery.poll_interval": "5ms", "notify.repeat_after": "30d",
            "log.level": "info"})
        agency = harness.make_agency(daemon, types=())
        ag = services.psql("SELECT id FROM agencies WHERE oin = %s", (agency["oin"],))[0][0]

        # throughput: a backlog of N due now, from daemon start to the last row 'sent'
        n, lo, hi = schedule(services, daemon, ag, N_MAILS, "tp")
        t0 = time.monotonic()
        daemon.start()
        t1, total = wait_sent(services, daemon, lo, hi, n)
        rate = n / (t1 - t0)

        # lag: a steady stream at 70% of that throughput for 10 s
        steady = int(rate * 0.7 * 10)
        m, lo, hi = schedule(services, daemon, ag, steady, "lag", spread_s=10.0, lead_s=8.0)
        wait_sent(services, daemon, lo, hi, m, before=total)
        p50, p99 = services.psql(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s),"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY s) FROM ("
            " SELECT extract(epoch FROM sent_at - due_at) AS s FROM notifications"
            " WHERE id BETWEEN %s AND %s AND kind = 'new') x", (lo, hi))[0]
        rss = int(Path("/proc/%d/status" % daemon.pid).read_text()
                  .split("VmRSS:")[1].split()[0])
    finally:
        if daemon and daemon.running():
            daemon.stop()
        sink.terminate()
        sink.wait()
        services.stop()

    print()
    print("delivery bench (%d mails, %s workers x batch %s, %d cores, one box)"
          % (N_MAILS, WORKERS, BATCH, os.cpu_count()))
    print("%-52s %12s %10s" % ("what", "per second", "ratio"))
    print("%-52s %12.0f %10s" % ("smtp-source, 10 sessions, into smtp-sink (limit)", source, "1.00"))
    print("%-52s %12.0f %10.2f" % ("berichtd: Redis -> PostgreSQL claim -> SMTP -> record",
                                   rate, rate / source))
    print("%-52s %12.0f %10.2f" % ("BullMQ, delayed no-op jobs, same Redis", bull, bull / source))
    print("berichtd / BullMQ: %.2f" % (rate / bull))
    print("due-to-sent lag at %.0f mails/s: p50 %.3f s, p99 %.3f s" % (steady / 10.0, p50, p99))
    print("daemon RSS at the end: %.1f MiB" % (rss / 1024.0))


if __name__ == "__main__":
    main()
