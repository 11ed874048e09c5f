#!/usr/bin/env bash
# make bench: ingest throughput of berichtd against the raw limits of the
# same PostgreSQL, on private services (started here, stopped on exit).
# Prints one table; see tests/bench/bench.py for what each line measures.
# Env: BENCH_SECONDS (wrk and pgbench duration, default 10),
#      BENCH_MESSAGES (COPY rows and batch messages, default 100000).
set -euo pipefail
cd "$(dirname "$0")/../.."

run_dir=".bench-run/$(date +%Y%m%d-%H%M%S)-$$"
cleanup() { tests/harness/services.sh stop "$run_dir" >/dev/null 2>&1 || true; }
trap cleanup EXIT

tests/harness/services.sh start "$run_dir" >/dev/null
/usr/bin/python3 tests/bench/bench.py "$run_dir"
