#!/usr/bin/env bash
# `make run`: private PostgreSQL, Redis and SMTP sink under .run/, a demo
# config, migrations, demo tokens, a ready-to-paste curl example, and the
# daemon in the foreground. Ctrl-C stops the daemon and the services; the
# database is kept, so running it again works and keeps earlier data.
set -euo pipefail
cd "$(dirname "$0")/../.."
run=.run
mkdir -p "$run"

export BERICHTD_KEEP_DATA=1
tests/harness/services.sh start "$run" >/dev/null
# shellcheck disable=SC1091
. "$run/env"

# the preferred port when it is free, else any free one
free_port() {
	if /usr/bin/python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', $1))" 2>/dev/null; then
		echo "$1"
	else
		/usr/bin/python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"
	fi
}
port=$(free_port "${BERICHTD_HTTP_PORT:-8080}")
ops_port=$(free_port "${BERICHTD_OPS_PORT:-9090}")
# the BSN key must never change for a database, so it is made once
[ -s "$run/bsn.key" ] || { openssl rand -hex 32 > "$run/bsn.key"; chmod 600 "$run/bsn.key"; }

cat > "$run/berichtd.conf" <<CONF
# demo config written by tests/harness/demo.sh (make run)
[http]
listen = 127.0.0.1:$port
[ops]
listen = 127.0.0.1:$ops_port
[postgres]
conninfo = host=127.0.0.1 port=$BERICHTD_PG_PORT dbname=berichtd user=postgres
[redis]
port = $BERICHTD_REDIS_PORT
key_prefix = berichtd:demo:
[smtp]
host = 127.0.0.1
port = $BERICHTD_SMTP_PORT
[notify]
digest_window = 0s
quiet_hours = off
[security]
bsn_key_file = $PWD/$run/bsn.key
[templates]
dir = $PWD/config/templates
CONF

bin/berichtd migrate -c "$run/berichtd.conf" >/dev/null
agency=$(bin/berichtd token create -c "$run/berichtd.conf" --role agency \
	--oin 00000001823288444000 --name "Gemeente Demostad" 2>/dev/null)
portal=$(bin/berichtd token create -c "$run/berichtd.conf" --role portal 2>/dev/null)
bin/berichtd berichttype add -c "$run/berichtd.conf" --oin 00000001823288444000 \
	--code AANSLAG >/dev/null
printf 'AGENCY_TOKEN=%s\nPORTAL_TOKEN=%s\n' "$agency" "$portal" > "$run/tokens.env"

base=http://127.0.0.1:$port
ops=http://127.0.0.1:$ops_port
cat <<MSG

berichtd demo: API $base, operators $ops (/healthz, /readyz, /metrics),
mail sink stores into $BERICHTD_MAIL_DIR
Tokens (also in $run/tokens.env):
  agency (Gemeente Demostad): $agency
  portal:                     $portal

Try it from another terminal (a citizen, a verified address, a message):

  A=\$(curl -s -X POST $base/v1/accounts -H 'Authorization: Bearer $portal' \\
        -H 'Content-Type: application/json' -d '{"bsn":"999993653"}' | sed 's/.*"accountId":"\\([^"]*\\)".*/\\1/')
  curl -s -X PATCH $base/v1/accounts/\$A -H 'Authorization: Bearer $portal' \\
        -H 'Content-Type: application/json' -d '{"emailadres":"burger@example.nl"}'
  sleep 1; CODE=\$(grep -hoE '^[0-9]{6}' \$(ls -t $BERICHTD_MAIL_DIR/*.eml | head -1))
  curl -s -X POST $base/v1/accounts/\$A/emailverificaties/_bevestig -H 'Authorization: Bearer $portal' \\
        -H 'Content-Type: application/json' -d "{\\"code\\":\\"\$CODE\\"}"
  curl -s -i -X POST $base/v1/berichten -H 'Authorization: Bearer $agency' \\
        -H 'Content-Type: application/json' \\
        -d '{"bsn":"999993653","berichttype":"AANSLAG","referentie":"demo-'\$RANDOM'"}'
  sleep 1; cat \$(ls -t $BERICHTD_MAIL_DIR/*.eml | head -1)

Ctrl-C stops the daemon and the services.

MSG

pid=
stop() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	tests/harness/services.sh stop "$run" >/dev/null 2>&1 || true
}
trap stop EXIT
trap 'exit 0' INT TERM
bin/berichtd run -c "$run/berichtd.conf" &
pid=$!
wait "$pid"
