"""make bench: berichtd ingest against the raw limits of the same PostgreSQL.

Usage: bench.py RUN_DIR   (services already started there by services.sh)

1. loads ACCOUNTS accounts (HMAC'd BSNs, with an address) with COPY;
2. raw limit: COPY of N message rows into bench_messages, a table made
   LIKE messages (same columns, defaults and indexes), rows/s;
3. batch ingest through the API: N messages in batches of 1,000 over
   BATCH_CLIENTS connections, messages/s and the ratio to the COPY rate;
4. single-message ingest: wrk, 64 connections, unique referenties, req/s and
   p50/p99, and the ratio to pgbench (8 clients, one single-row INSERT
   transaction each into a table shaped like messages) in the same run;
5. the daemon's RSS at the end.
"""
import hashlib
import hmac
import http.client
import io
import json
import os
import random
import re
import secrets
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import harness  # noqa: E402

ACCOUNTS = 100_000
N = int(os.environ.get("BENCH_MESSAGES", "100000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
BATCH = 1000
BATCH_CLIENTS = 4
WRK_CONNECTIONS = 64
PGBENCH_CLIENTS = 8


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def bsns(n, rng):
    out, seen = [], set()
    while len(out) < n:
        d = [rng.randint(1, 9)] + [rng.randint(0, 9) for _ in range(7)]
        check = sum((9 - i) * d[i] for i in range(8)) % 11
        if check > 9:
            continue
        b = "".join(map(str, d)) + str(check)
        if b not in seen:
            seen.add(b)
            out.append(b)
    return out


def copy_from(conn, table, columns, rows):
    buf = io.StringIO("".join("\t".join(r) + "\n" for r in rows))
    with conn.cursor() as cur:
        cur.copy_from(buf, table, columns=columns)


def post_batches(base_url, token, bodies):
    from urllib.parse import urlsplit
    u = urlsplit(base_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    for body in bodies:
        conn.request("POST", "/v1/batches", body=body,
                     headers={"Authorization": "Bearer " + token,
                              "Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError("batch: %d %s" % (r.status, data[:200]))
        counts = json.loads(data)["aantallen"]
        if counts["aangenomen"] != BATCH:
            raise RuntimeError("batch: %s" % counts)
    conn.close()


def rss_kb(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s(pid):
    """User + system CPU seconds of a process so far."""
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_latency(out, pct):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % pct, out, re.M)
    if not m:
        return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def main():
    services = harness.Services(sys.argv[1])
    rng = random.Random(42)
    d = harness.Daemon(services, "bench", **{
        "ratelimit.rate": 0, "delivery.workers": 0,
        "postgres.pool_size": os.environ.get("BENCH_POOL_SIZE", "4"),  # the default
        "log.level": "warn"})
    d.start()
    try:
        run(services, d, rng)
    finally:
        d.stop()


def run(services, d, rng):
    agency = harness.make_agency(d, types=("T1",))
    token = agency["token"]
    key = bytes.fromhex(harness.SESSION_BSN_KEY)
    conn = services.pg_connect()

    log("loading %d accounts" % ACCOUNTS)
    people = bsns(ACCOUNTS, rng)
    copy_from(conn, "accounts", ("id", "bsn_hash", "email"), (
        (str(uuid.uuid4()), hmac.new(key, b.encode(), hashlib.sha256).hexdigest(),
         "b%d@bench.example" % i) for i, b in enumerate(people)))
    with conn.cursor() as cur:
        cur.execute("ANALYZE accounts")
        cur.execute("SELECT id FROM agencies WHERE oin = %s", (agency["oin"],))
        agency_id = cur.fetchone()[0]
        cur.execute("SELECT id FROM accounts LIMIT %s", (ACCOUNTS,))
        account_ids = [r[0] for r in cur.fetchall()]
        cur.execute("CREATE TABLE bench_messages (LIKE messages INCLUDING ALL)")
        cur.execute("CREATE TABLE bench_insert (LIKE messages INCLUDING ALL)")

    # -- raw limit: COPY
    rows = [(str(uuid.uuid4()), str(agency_id), account_ids[i % len(account_ids)], "T1",
             "c-%d" % i, secrets.token_hex(32), "2026-01-01 00:00:00+00",
             "2026-01-01 00:00:00+00", "\\N", "f") for i in range(N)]
    cols = ("id", "agency_id", "account_id", "berichttype", "referentie", "content_hash",
            "aanmaak_tijdstip", "publicatie_tijdstip", "eind_datum_handelingstermijn",
            "papieren_kopie")
    log("COPY %d rows" % N)
    t0 = time.monotonic()
    copy_from(conn, "bench_messages", cols, rows)
    copy_rate = N / (time.monotonic() - t0)
    del rows

    # -- batch ingest through the API
    bodies = []
    for b in range(N // BATCH):
        items = [{"bsn": people[(b * BATCH + i) % ACCOUNTS], "berichttype": "T1",
                  "referentie": "b-%d-%d" % (b, i)} for i in range(BATCH)]
        bodies.append(json.dumps({"berichten": items}).encode())
    log("batch ingest: %d batches of %d over %d connections" % (len(bodies), BATCH,
                                                                BATCH_CLIENTS))
    threads = [threading.Thread(target=post_batches,
                                args=(d.base_url, token, bodies[k::BATCH_CLIENTS]))
               for k in range(BATCH_CLIENTS)]
    t0 = time.monotonic()
    cpu0 = cpu_s(d.pid)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batch_rate = len(bodies) * BATCH / (time.monotonic() - t0)
    batch_cpu_us = (cpu_s(d.pid) - cpu0) * 1e6 / (len(bodies) * BATCH)
    stored = services.psql("SELECT count(*) FROM messages WHERE referentie LIKE 'b-%%'")[0][0]
    if stored != len(bodies) * BATCH:
        raise RuntimeError("batch ingest stored %d of %d" % (stored, len(bodies) * BATCH))

    # -- single messages: wrk, then pgbench
    bsn_file = Path(services.run_dir) / "bench-bsns.txt"
    bsn_file.write_text("\n".join(people[:10000]) + "\n")
    log("single ingest: wrk %d connections, %ds" % (WRK_CONNECTIONS, SECONDS))
    env = dict(os.environ, BENCH_BSNS=str(bsn_file), BENCH_TOKEN=token)
    cpu0 = cpu_s(d.pid)
    wrk = subprocess.run(["wrk", "-t2", "-c%d" % WRK_CONNECTIONS, "-d%ds" % SECONDS,
                          "--latency", "-s", str(Path(__file__).parent / "post.lua"),
                          d.base_url], capture_output=True, text=True, env=env, check=True)
    out = wrk.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    single_rate = float(m.group(1)) if m else float("nan")
    p50, p99 = wrk_latency(out, 50), wrk_latency(out, 99)
    single_cpu_us = (cpu_s(d.pid) - cpu0) * 1e6 / max(single_rate * SECONDS, 1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)

    script = Path(services.run_dir) / "pgbench-insert.sql"
    script.write_text(
        "\\set n random(1, 1000000000)\n"
        "INSERT INTO bench_insert (id, agency_id, account_id, berichttype, referentie,"
        " content_hash, publicatie_tijdstip) VALUES (gen_random_uuid(), %d, '%s', 'T1',"
        " 'p-' || :client_id || '-' || :n || '-' || random(), md5(random()::text), now());\n"
        % (agency_id, account_ids[0]))
    log("pgbench: %d clients, %ds" % (PGBENCH_CLIENTS, SECONDS))
    pgb = subprocess.run([str(Path(services.pg_bin) / "pgbench"), "-n", "-h", "127.0.0.1",
                          "-p", str(services.pg_port), "-U", "postgres",
                          "-c", str(PGBENCH_CLIENTS), "-j", "2", "-T", str(SECONDS),
                          "-f", str(script), "berichtd"],
                         capture_output=True, text=True, check=True)
    m = re.search(r"tps = ([\d.]+)", pgb.stdout)
    pgbench_rate = float(m.group(1)) if m else float("nan")
    rss = rss_kb(d.pid)

    print()
    print("| measurement | value | ratio | target |")
    print("|---|---|---|---|")
    print("| COPY of message rows (%d rows, raw limit) | %.0f rows/s | | |" % (N, copy_rate))
    print("| batch ingest via API (batches of %d, %d connections) | %.0f msgs/s | %.2f of COPY "
          "| >= 0.50 |" % (BATCH, BATCH_CLIENTS, batch_rate, batch_rate / copy_rate))
    print("| pgbench single-row INSERT transactions (%d clients) | %.0f tps | | |"
          % (PGBENCH_CLIENTS, pgbench_rate))
    print("| single-message ingest via API (wrk, %d connections, %ds) | %.0f req/s | %.2fx "
          "pgbench | >= 1.5x |" % (WRK_CONNECTIONS, SECONDS, single_rate,
                                   single_rate / pgbench_rate))
    print("| single-message latency p50 / p99 | %.1f ms / %.1f ms | | p99 < 50 ms |" % (p50, p99))
    print("| daemon RSS at the end | %.1f MiB | | |" % (rss / 1024))
    print("| daemon CPU per message: batch / single | %.0f us / %.0f us | | |"
          % (batch_cpu_us, single_cpu_us))
    print()
    print("accounts: %d; non-2xx responses from wrk: %s; socket errors: %s"
          % (ACCOUNTS, non2xx.group(1) if non2xx else 0,
             errors.group(1) if errors else "none"))


if __name__ == "__main__":
    main()
