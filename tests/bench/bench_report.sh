#!/usr/bin/env bash
# bench_report.sh - the yearly open-rate report from the rollups against a
# brute-force query over the raw rows (issue 6; docs/statistics.md).
#
#   tests/bench/bench_report.sh [N ...]       default: 1000000 10000000
#
# For each N, in a private PostgreSQL (tests/harness/services.sh, thrown
# away at the end): N raw messages of 500 agencies x 5 berichttypes,
# published over two years (the report year and the year before, which the
# report compares with), ~70% opened after a random delay of up to 50 days.
# The rows are generated inside PostgreSQL with generate_series and loaded
# with COPY, with the rollup triggers (and the foreign-key triggers) off and
# without the messages indexes (a lean load; the bench needs none of them).
# Then `berichtd stats rebuild` builds the rollups (rows/s); the report for
# the second year is fetched over HTTP from a running daemon (GET
# /v1/rapportages/openingspercentages, the ministry's path, warm connection
# pool) and through `berichtd report` (end to end: process start, a fresh
# connection, query, JSON written); the same figures are computed by brute
# force from the raw rows in the same run. Prints a table.
#
# Env: BERICHTD_BIN (default bin/berichtd), BENCH_REPORT_RUNS (default 5),
#      BENCH_BRUTE_RUNS (default 3). The machine may be shared: the figures
#      are medians, and noisy.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BERICHTD_BIN:-$PWD/bin/berichtd}
REPORT_RUNS=${BENCH_REPORT_RUNS:-5}
BRUTE_RUNS=${BENCH_BRUTE_RUNS:-3}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000000 10000000)
AGENCIES=500
TYPES=5
YEAR=2025
PREV=$((YEAR - 1))

[ -x "$BIN" ] || { echo "bench_report: $BIN not built (make)" >&2; exit 1; }
run_dir="$PWD/.bench-run/report-$$"
cleanup() {
    tests/harness/services.sh stop "$run_dir" >/dev/null 2>&1 || true
    rm -rf "$run_dir"
}
trap cleanup EXIT
tests/harness/services.sh start "$run_dir" >/dev/null
# shellcheck disable=SC1091
. "$run_dir/env"
conninfo="host=127.0.0.1 port=$BERICHTD_PG_PORT dbname=berichtd user=postgres"
conf="$run_dir/bench.conf"
# two free ports at once (both sockets bound together, so they differ)
read -r http_port ops_port < <(/usr/bin/python3 -c 'import socket; a, b = socket.socket(), socket.socket(); a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0)); print(a.getsockname()[1], b.getsockname()[1])')
cat >"$conf" <<EOF
[postgres]
conninfo = $conninfo
[security]
bsn_key = $(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
[templates]
dir = $PWD/config/templates
[redis]
port = $BERICHTD_REDIS_PORT
[smtp]
port = $BERICHTD_SMTP_PORT
[delivery]
workers = 0
[http]
listen = 127.0.0.1:$http_port
[ops]
listen = 127.0.0.1:$ops_port
[log]
level = warn
file = $run_dir/berichtd.log
EOF
psql_() { psql "$conninfo" -X -q -v ON_ERROR_STOP=1 "$@"; }
"$BIN" migrate -c "$conf" >/dev/null
ministry=$("$BIN" token create -c "$conf" --role ministry 2>/dev/null)
"$BIN" run -c "$conf" >"$run_dir/daemon.out" 2>&1 &
daemon_pid=$!
cleanup() {
    kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
    tests/harness/services.sh stop "$run_dir" >/dev/null 2>&1 || true
    rm -rf "$run_dir"
}
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$http_port/healthz" >/dev/null && break
    sleep 0.1
done

psql_ <<EOF
INSERT INTO agencies (oin, name)
SELECT lpad((10000000 + g)::text, 20, '0'), 'Bench organisatie ' || g
FROM generate_series(1, $AGENCIES) g;
INSERT INTO accounts (id, bsn_hash) VALUES (gen_random_uuid(), 'bench');
-- the raw load needs no indexes; the rollups and the brute force use none
ALTER TABLE messages DROP CONSTRAINT messages_pkey CASCADE;
ALTER TABLE messages DROP CONSTRAINT messages_agency_id_referentie_key;
DROP INDEX messages_account_idx;
EOF
agency0=$(psql_ -At -c "SELECT min(id) - 1 FROM agencies")
account=$(psql_ -At -c "SELECT id FROM accounts LIMIT 1")

# The report's figures straight from the raw rows: the same cells (grouping
# sets per agency, agency x type, agency x paper, total) for both years.
BRUTE_SQL="
SELECT agency_id, berichttype, papieren_kopie, huidig, count(*) AS n,
  count(*) FILTER (WHERE opened_at - publicatie_tijdstip <= interval '504 hours'),
  count(*) FILTER (WHERE opened_at - publicatie_tijdstip <= interval '1008 hours')
FROM (SELECT m.*, (m.publicatie_tijdstip AT TIME ZONE 'Europe/Amsterdam')::date >= '$YEAR-01-01' AS huidig
      FROM messages m
      WHERE m.publicatie_tijdstip >= timestamp '$PREV-01-01' AT TIME ZONE 'Europe/Amsterdam'
        AND m.publicatie_tijdstip < timestamp '$((YEAR + 1))-01-01' AT TIME ZONE 'Europe/Amsterdam') x
GROUP BY GROUPING SETS ((huidig), (huidig, agency_id), (huidig, agency_id, berichttype),
  (huidig, agency_id, papieren_kopie))"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

results=()
for n in "${SIZES[@]}"; do
    echo "bench_report: $n messages: loading" >&2
    psql_ -c "TRUNCATE messages, stats_dag, stats_maand"
    t0=$(now_ms)
    psql_ -c "COPY (
        SELECT gen_random_uuid(), $agency0 + 1 + (g % $AGENCIES), '$account'::uuid,
          'T' || ((g / $AGENCIES) % $TYPES), 'b' || g, 'h', p, p, (g % 10 = 0), p,
          CASE WHEN random() < 0.7 THEN p + random() * interval '50 days' END
        FROM (SELECT g, timestamptz '$PREV-01-01 00:00 Europe/Amsterdam'
                 + random() * interval '730 days' AS p
              FROM generate_series(1, $n) g) s) TO STDOUT" |
        PGOPTIONS="-c session_replication_role=replica" psql_ -c "COPY messages (id, agency_id,
          account_id, berichttype, referentie, content_hash, aanmaak_tijdstip,
          publicatie_tijdstip, papieren_kopie, created_at, opened_at) FROM STDIN"
    psql_ -c "VACUUM ANALYZE messages"
    load_ms=$(( $(now_ms) - t0 ))

    echo "bench_report: $n messages: stats rebuild" >&2
    t0=$(now_ms)
    rebuild_out=$("$BIN" stats rebuild -c "$conf")
    rebuild_ms=$(( $(now_ms) - t0 ))
    echo "  $rebuild_out" >&2
    rebuild_rate=$(sed -n 's/.*(\([0-9]*\) rows\/s).*/\1/p' <<<"$rebuild_out")
    psql_ -c "ANALYZE stats_dag; ANALYZE stats_maand"
    cells=$(psql_ -At -c "SELECT count(*) FROM stats_jaar WHERE jaar >= '$PREV-01-01'")

    echo "bench_report: $n messages: report over HTTP x$REPORT_RUNS" >&2
    url="http://127.0.0.1:$http_port/v1/rapportages/openingspercentages?jaar=$YEAR"
    curl -sf -H "Authorization: Bearer $ministry" -o "$run_dir/http.json" "$url"
    http_ms=$(for _ in $(seq "$REPORT_RUNS"); do
        curl -sf -H "Authorization: Bearer $ministry" -o "$run_dir/http.json" \
            -w '%{time_total}\n' "$url" | awk '{printf "%.1f\n", $1 * 1000}'
    done | median)

    echo "bench_report: $n messages: report from rollups x$REPORT_RUNS" >&2
    "$BIN" report -c "$conf" --jaar "$YEAR" --format json --out "$run_dir/warm.json"
    report_ms=$(for _ in $(seq "$REPORT_RUNS"); do
        t0=$(now_ms)
        "$BIN" report -c "$conf" --jaar "$YEAR" --format json --out "$run_dir/report.json"
        echo $(( $(now_ms) - t0 ))
    done | median)

    echo "bench_report: $n messages: brute force x$BRUTE_RUNS" >&2
    brute_ms=$(for _ in $(seq "$BRUTE_RUNS"); do
        psql_ -c '\timing on' -c "$BRUTE_SQL" -o /dev/null |
            sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1
    done | median)
    brute_total=$(psql_ -At -c "SELECT n FROM ($BRUTE_SQL) b
        WHERE agency_id IS NULL AND huidig" | tail -1)
    report_total=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['totaal']['aantalBerichten'])" "$run_dir/report.json")
    [ "$brute_total" = "$report_total" ] || {
        echo "bench_report: MISMATCH: brute force $brute_total, report $report_total" >&2; exit 1; }
    http_total=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['totaal']['aantalBerichten'])" "$run_dir/http.json")
    [ "$http_total" = "$report_total" ] || {
        echo "bench_report: MISMATCH: HTTP $http_total, CLI $report_total" >&2; exit 1; }
    results+=("$n $load_ms $rebuild_ms $rebuild_rate $cells $http_ms $report_ms $brute_ms")
done

echo
echo "Yearly open-rate report ($YEAR, with $PREV for the comparison; $AGENCIES agencies x $TYPES types)"
echo "host: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo); medians of $REPORT_RUNS report / $BRUTE_RUNS brute-force runs; shared machine"
printf '%-10s %7s %9s %10s %7s %9s %9s %9s %9s %9s\n' messages "load s" "rebuild s" \
    "rebuild/s" "cells" "http ms" "cli ms" "brute ms" "brute/http" "brute/cli"
first_http= first_cli=
for r in "${results[@]}"; do
    read -r n load rebuild rate cells http report brute <<<"$r"
    [ -n "$first_http" ] || { first_http=$http; first_cli=$report; }
    printf '%-10s %7.1f %9.1f %10s %7s %9s %9s %9.0f %9s %9s\n' "$n" \
        "$(awk -v x="$load" 'BEGIN {print x / 1000}')" \
        "$(awk -v x="$rebuild" 'BEGIN {print x / 1000}')" "$rate" "$cells" "$http" "$report" \
        "$brute" "$(awk -v b="$brute" -v r="$http" 'BEGIN {printf "%.0fx", b / (r > 0 ? r : 1)}')" \
        "$(awk -v b="$brute" -v r="$report" 'BEGIN {printf "%.0fx", b / (r > 0 ? r : 1)}')"
done
if [ ${#results[@]} -gt 1 ]; then
    read -r _ _ _ _ _ last_http last_cli _ <<<"${results[-1]}"
    awk -v a="$first_http" -v b="$last_http" -v c="$first_cli" -v d="$last_cli" \
        'BEGIN {printf "report time, largest vs smallest: http %.2fx, cli %.2fx (target <= 1.2x)\n", b / (a > 0 ? a : 1), d / (c > 0 ? c : 1)}'
fi
echo "cells: rows of the yearly rollup read (both years); http ms: GET /v1/rapportages/"
echo "openingspercentages?jaar=$YEAR on the running daemon (curl time_total); cli ms:"
echo "\`berichtd report --format json\` end to end (process start and a fresh connection);"
echo "brute ms: the same cells by one GROUPING SETS query over the raw rows (psql \\timing)."
