#!/usr/bin/env bash
# `make run`: private PostgreSQL, Redis and SMTP sink under .run/, a demo
# config, migrations, a token for each of the four roles, a ready-to-paste
# curl for each role's main call, and the daemon in the foreground.
#
# Ctrl-C stops the daemon and the services; the database is kept, so running
# it again works and keeps earlier data. When the daemon dies on its own, the
# services stay up and the way to start the daemon alone is printed.
#
# Env: BERICHTD_DEMO_DIR (default .run), BERICHTD_BIN (default bin/berichtd),
#      BERICHTD_HTTP_PORT / BERICHTD_OPS_PORT (preferred ports, 8080 / 9090).
set -euo pipefail
cd "$(dirname "$0")/../.."
run=${BERICHTD_DEMO_DIR:-.run}
bin=${BERICHTD_BIN:-bin/berichtd}
mkdir -p "$run"
abs_run=$(cd "$run" && pwd)
run=${abs_run#"$PWD"/} # short when inside the repo, as typed

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
[ "$ops_port" != "$port" ] || ops_port=$(free_port 0)
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
bsn_key_file = $abs_run/bsn.key
[templates]
dir = $PWD/config/templates
CONF
conf=$run/berichtd.conf

"$bin" check-config -c "$conf"
"$bin" migrate -c "$conf" >/dev/null
oin=00000001823288444000
token() { "$bin" token create -c "$conf" "$@" 2>/dev/null; }
agency=$(token --role agency --oin $oin --name "Gemeente Demostad")
portal=$(token --role portal)
ministry=$(token --role ministry)
relay=$(token --role relay)
"$bin" berichttype add -c "$conf" --oin $oin --code AANSLAG >/dev/null
printf 'AGENCY_TOKEN=%s\nPORTAL_TOKEN=%s\nMINISTRY_TOKEN=%s\nRELAY_TOKEN=%s\n' \
	"$agency" "$portal" "$ministry" "$relay" > "$run/tokens.env"
chmod 600 "$run/tokens.env"

# what a relay hands back for a mail it could not deliver (this one names no
# mail of ours, so it is answered 202 "geweigerd"; a real one carries the
# VERP address the mail went out with)
cat > "$run/dsn-example.eml" <<'DSN'
From: MAILER-DAEMON@relay.example
To: bounce+00000000000000000000000000000000-0000000000000000@relay.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example

Final-Recipient: rfc822; burger@example.nl
Action: failed
Status: 5.1.1

--B--
DSN

base=http://127.0.0.1:$port
ops=http://127.0.0.1:$ops_port
year=$(date +%Y)
cat <<MSG

berichtd demo: API $base, operators $ops (/healthz, /readyz, /metrics),
mail sink stores into $BERICHTD_MAIL_DIR
Tokens, one per role (also in $run/tokens.env):
  agency (Gemeente Demostad): $agency
  portal (the citizen portal): $portal
  ministry (annual reports):  $ministry
  relay (bounces, DSNs):      $relay

Try it from another terminal.

The portal: a citizen, a verified address (the code comes by mail)

  A=\$(curl -s -X POST $base/v1/accounts -H 'Authorization: Bearer $portal' \\
        -H 'Content-Type: application/json' -d '{"bsn":"999993653"}' | sed 's/.*"accountId":"\\([^"]*\\)".*/\\1/')
  curl -s -X PATCH $base/v1/accounts/\$A -H 'Authorization: Bearer $portal' \\
        -H 'Content-Type: application/json' -d '{"emailadres":"burger@example.nl"}'
  sleep 1; CODE=\$(python3 tests/harness/show_mail.py --code $BERICHTD_MAIL_DIR)
  curl -s -X POST $base/v1/accounts/\$A/emailverificaties/_bevestig -H 'Authorization: Bearer $portal' \\
        -H 'Content-Type: application/json' -d "{\\"code\\":\\"\$CODE\\"}"

The agency: a message for that citizen, then the mail it caused, decoded

  curl -s -i -X POST $base/v1/berichten -H 'Authorization: Bearer $agency' \\
        -H 'Content-Type: application/json' \\
        -d '{"bsn":"999993653","berichttype":"AANSLAG","referentie":"demo-'\$RANDOM'"}'
  sleep 1; python3 tests/harness/show_mail.py $BERICHTD_MAIL_DIR

The portal again: the citizen's box

  curl -s $base/v1/accounts/\$A/berichten -H 'Authorization: Bearer $portal'

The ministry: this year's open-rate report (all agencies, small cells suppressed)

  curl -s '$base/v1/rapportages/openingspercentages?jaar=$year' -H 'Authorization: Bearer $ministry'

The relay: a bounce (DSN) it got back

  curl -s -X POST $base/v1/bounces -H 'Authorization: Bearer $relay' \\
        -H 'Content-Type: message/rfc822' --data-binary @$run/dsn-example.eml

Error answers are application/problem+json; their "type" is under
[http] problem_base (default https://berichtd.invalid/problemen/).

Ctrl-C stops the daemon and the services.

MSG

restart_help() {
	cat <<MSG

berichtd demo: the daemon exited ($1); PostgreSQL, Redis and the mail sink
are still up under $run, with all data. Start the daemon alone with

  $bin run -c $conf

(the tokens above still work), or everything again with \`make run\`.
Stop the services with: tests/harness/services.sh stop $run
MSG
}

pid=
stop_all() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	tests/harness/services.sh stop "$run" >/dev/null 2>&1 || true
}
trap stop_all EXIT
trap 'exit 0' INT TERM
"$bin" run -c "$conf" &
pid=$!
rc=0
wait "$pid" || rc=$?
# here only when the daemon ended by itself: a signal to us exits in its trap
trap - EXIT
pid=
if [ "$rc" -gt 128 ]; then
	restart_help "killed by signal $((rc - 128))"
else
	restart_help "exit status $rc"
fi
exit "$rc"
