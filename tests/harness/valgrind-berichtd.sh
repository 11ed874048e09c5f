#!/bin/sh
# Runs bin/berichtd under valgrind memcheck for `make valgrind`: the
# integration harness starts this instead of the binary (BERICHTD_BIN).
# Invalid accesses and definite leaks make the process exit 42, which the
# harness reports as a failed test; details in $VALGRIND_LOG_DIR.
dir=${VALGRIND_LOG_DIR:-/tmp/berichtd-valgrind}
mkdir -p "$dir"
exec valgrind --quiet --error-exitcode=42 --leak-check=full --errors-for-leak-kinds=definite \
	--log-file="$dir/vg-%p.log" "$(dirname "$0")/../../bin/berichtd" "$@"
