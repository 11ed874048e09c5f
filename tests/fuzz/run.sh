#!/usr/bin/env bash
# `make fuzz`: for each harness NAME given, replay tests/fuzz/regressions/NAME/
# (every crash found once; they must all pass), then fuzz FUZZ_S seconds from
# the seed corpus tests/fuzz/corpus/NAME/ (new inputs go to
# $FUZZ_BUILD/corpus/NAME, outside the repo), two harnesses at a time on the
# 2 cores. A crash leaves $FUZZ_BUILD/crashes/NAME-crash-* and fails the run;
# each harness' figures (execs, cov, ft) are printed at the end.
set -uo pipefail
cd "$(dirname "$0")/../.."
S=${FUZZ_S:-60}
B=${FUZZ_BUILD:-build/fuzz}
JOBS=${FUZZ_JOBS:-2}
[ $# -gt 0 ] || { echo "usage: $0 NAME..." >&2; exit 2; }
mkdir -p "$B/crashes" "$B/logs"

fail=0
for n in "$@"; do
	reg=tests/fuzz/regressions/$n
	if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
		if ! "$B/fuzz_$n" -runs=1 "$reg"/* >"$B/logs/$n.regressions.log" 2>&1; then
			echo "fuzz: $n: a regression fails again (log $B/logs/$n.regressions.log)" >&2
			tail -n 30 "$B/logs/$n.regressions.log" >&2
			fail=1
		else
			echo "fuzz: $n: $(ls "$reg" | wc -l) regression(s) pass"
		fi
	fi
done
[ $fail = 0 ] || exit 1

one() {
	local n=$1
	mkdir -p "$B/corpus/$n"
	"$B/fuzz_$n" -max_total_time="$S" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
		-print_final_stats=1 -artifact_prefix="$B/crashes/$n-" \
		"$B/corpus/$n" "tests/fuzz/corpus/$n" >"$B/logs/$n.log" 2>&1
}
export -f one
export S B

printf '%s\n' "$@" | xargs -P "$JOBS" -I{} bash -c 'one {}' || fail=1

for n in "$@"; do
	log=$B/logs/$n.log
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	printf 'fuzz: %-9s %ss execs=%s %s\n' "$n" "$S" "${execs:-?}" \
		"$(echo "$last" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[^ ]+')"
	if grep -qE '^==[0-9]+==ERROR|deadly signal|SUMMARY: (Address|Undefined)|^artifact_prefix.*Test unit written' "$log" \
		|| ! grep -q 'Done [0-9]* runs' "$log"; then
		echo "fuzz: $n FAILED: see $log and $B/crashes/; add the input under tests/fuzz/regressions/$n/" >&2
		grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -n 5 >&2
		fail=1
	fi
done
exit $fail
