"""make bench-tls: the API listener over TLS against plain HTTP, same run.

Usage: bench_tls.py RUN_DIR   (services already started there by services.sh)

Two daemons with the same config, one with [tls] cert_file (an ECDSA P-256
certificate made here with the openssl command line), one without:
1. TLS handshakes/s: `openssl s_time -new` (a full handshake per
   connection, no resumption) against the TLS daemon's /healthz;
2. requests/s on keep-alive connections: wrk, 32 connections, GET
   /healthz, over TLS and over plain HTTP, and the ratio TLS/plain.
No assertions: figures only (a shared machine is noisy).
"""
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import harness  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = 32


def wrk_rate(url):
    out = subprocess.run(["wrk", "-t2", "-c%d" % CONNECTIONS, "-d%ds" % SECONDS, url],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else float("nan")


def handshakes(port):
    out = subprocess.run(["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-new",
                          "-time", str(SECONDS), "-www", "/healthz"],
                         capture_output=True, text=True).stdout
    m = re.search(r"([\d.]+) connections/user sec", out)
    n = re.search(r"(\d+) connections in ([\d.]+)s", out)
    return (float(m.group(1)) if m else float("nan"),
            int(n.group(1)) / float(n.group(2)) if n else float("nan"))


def main():
    services = harness.Services(sys.argv[1])
    pki = Path(tempfile.mkdtemp(prefix="bench-tls-", dir=str(services.run_dir)))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", "key.pem", "-out",
                    "cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   cwd=pki, check=True, capture_output=True)
    common = {"delivery.workers": 0, "log.level": "warn", "ratelimit.rate": 0}
    plain = harness.Daemon(services, "bench-plain", **common)
    tls = harness.Daemon(services, "bench-tls", **dict(common, **{
        "tls.cert_file": str(pki / "cert.pem"), "tls.key_file": str(pki / "key.pem")}))
    plain.start()
    tls.start(wait=False)
    port = int(tls.base_url.rsplit(":", 1)[1])
    try:
        harness.wait_until(lambda: subprocess.run(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-brief"],
            input="", capture_output=True, text=True).returncode == 0, timeout=20,
            what="the TLS daemon")
        user_rate, wall_rate = handshakes(port)
        https = wrk_rate("https://127.0.0.1:%d/healthz" % port)
        http = wrk_rate(plain.base_url + "/healthz")
    finally:
        plain.stop()
        tls.stop()
    print("| measure (%ds each, loopback, same run) | figure |" % SECONDS)
    print("|---|---|")
    print("| TLS handshakes/s, openssl s_time -new (full handshake per connection) "
          "| %.0f per wall-clock s (%.0f per client CPU s) |" % (wall_rate, user_rate))
    print("| GET /healthz over TLS, wrk %d keep-alive connections | %.0f req/s |"
          % (CONNECTIONS, https))
    print("| GET /healthz plain HTTP, wrk %d keep-alive connections | %.0f req/s |"
          % (CONNECTIONS, http))
    print("| ratio TLS / plain | %.2f |" % (https / http if http else float("nan")))


if __name__ == "__main__":
    main()
