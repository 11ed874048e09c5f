#!/usr/bin/env bash
# Runs the integration tests against private PostgreSQL, Redis and SMTP
# servers on loopback (started here, stopped on exit whatever happens).
# Called by `make integration` / `make test`; BERICHTD_BIN names the binary.
#
# INTEGRATION_JOBS=N (default: 2 on a machine with two cores or more, when
# python3-pytest-xdist is installed) runs the test files in N processes,
# each with its own PostgreSQL, Redis and SMTP sink under the run dir
# (conftest.py), so that a fault test of one never touches another's
# servers; a file's tests stay in one process (--dist loadfile). 1 runs
# them in this process against one set of servers, as before.
set -euo pipefail
cd "$(dirname "$0")/.."

run_dir=".test-run/$(date +%Y%m%d-%H%M%S)-$$"
# ASan: leaks are errors; UBSan: stop at the first finding with a trace
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=24}"

jobs=${INTEGRATION_JOBS:-}
if [ -z "$jobs" ]; then
	jobs=1
	if [ "$(nproc)" -ge 2 ] && /usr/bin/python3 -c 'import xdist' 2>/dev/null; then jobs=2; fi
fi

if [ "$jobs" -gt 1 ]; then
	mkdir -p "$run_dir"
	export BERICHTD_RUN_ROOT="$PWD/$run_dir"
	unset BERICHTD_RUN_DIR
	stop_all() {
		for d in "$run_dir"/gw*; do
			[ -d "$d" ] && tests/harness/services.sh stop "$d" >/dev/null 2>&1 || true
		done
	}
	trap stop_all EXIT
	echo "integration: $jobs processes, each with its own services under $run_dir/gw*"
	/usr/bin/python3 -m pytest -p no:cacheprovider -q -n "$jobs" --dist loadfile \
		tests/integration "$@"
	exit $?
fi

cleanup() { tests/harness/services.sh stop "$run_dir" >/dev/null 2>&1 || true; }
trap cleanup EXIT
tests/harness/services.sh start "$run_dir"
export BERICHTD_RUN_DIR="$PWD/$run_dir"
/usr/bin/python3 -m pytest -p no:cacheprovider -q tests/integration "$@"
