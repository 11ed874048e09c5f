"""make bench-idle: request latency with N idle keep-alive connections open,
against the same daemon without them, same run (issue 15).

Usage: bench_idle.py RUN_DIR   (services already started there by services.sh)
Env: BENCH_IDLE (default 10000), BENCH_SECONDS (wrk duration, default 10).
Each idle connection made one request and stays open (keep-alive); then wrk
(32 connections) measures GET /healthz. Figures only, no assertions.
"""
import os
import re
import resource
import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import harness  # noqa: E402

IDLE = int(os.environ.get("BENCH_IDLE", "10000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))


def wrk(url):
    out = subprocess.run(["wrk", "-t2", "-c32", "-d%ds" % SECONDS, "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    return rate, pct(50), pct(99)


def rss_mb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    services = harness.Services(sys.argv[1])
    d = harness.Daemon(services, "bench-idle", **{
        "delivery.workers": 0, "log.level": "warn", "ratelimit.rate": 0,
        "http.timeout": "600s", "http.max_connections": str(IDLE + 1000)})
    d.start()
    host, port = d.base_url.rsplit("/", 1)[1].split(":")
    try:
        before = wrk(d.base_url + "/healthz")
        rss0 = rss_mb(d.pid)
        conns = []
        for _ in range(IDLE):
            s = socket.create_connection((host, int(port)))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            conns.append(s)
        for s in conns:
            s.recv(4096)
        open_now = harness.metric(d, "berichtd_http_connections")
        after = wrk(d.base_url + "/healthz")
        rss1 = rss_mb(d.pid)
        for s in conns[:100]:  # the idle ones still answer
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b" 200 " in s.recv(4096)
        for s in conns:
            s.close()
    finally:
        d.stop()
    print("| GET /healthz, wrk 32 connections, %ds | req/s | p50 ms | p99 ms | daemon RSS MB |"
          % SECONDS)
    print("|---|---|---|---|---|")
    print("| no idle connections | %.0f | %.2f | %.2f | %.0f |" % (before + (rss0,)))
    print("| %d idle keep-alive connections open (daemon counted %s) | %.0f | %.2f | %.2f | %.0f |"
          % ((IDLE, open_now) + after + (rss1,)))
    print("| ratio p99 with/without | %.2f |" % (after[2] / before[2]))


if __name__ == "__main__":
    main()
