#!/usr/bin/env bash
# Runs the integration tests against private PostgreSQL, Redis and SMTP
# servers on loopback (started here, stopped on exit whatever happens).
# Called by `make integration` / `make test`; BERICHTD_BIN names the binary.
set -euo pipefail
cd "$(dirname "$0")/.."

run_dir=".test-run/$(date +%Y%m%d-%H%M%S)-$$"
cleanup() { tests/harness/services.sh stop "$run_dir" >/dev/null 2>&1 || true; }
trap cleanup EXIT

tests/harness/services.sh start "$run_dir"
export BERICHTD_RUN_DIR="$PWD/$run_dir"
# ASan: leaks are errors; UBSan: stop at the first finding with a trace
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=24}"
/usr/bin/python3 -m pytest -p no:cacheprovider -q tests/integration "$@"
