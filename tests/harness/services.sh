#!/bin/bash
# Starts/stops the external services berichtd needs for tests and `make run`:
# a private PostgreSQL cluster, redis-server and an SMTP sink (smtp_sink.py),
# all on 127.0.0.1 with free ports, state and logs under one run DIR.
#
#   services.sh start DIR        start all three, write DIR/env (KEY=VALUE lines)
#   services.sh stop DIR         stop all three (idempotent, always exit 0)
#   services.sh pg-stop DIR [fast|immediate]   pg-start DIR
#   services.sh redis-restart DIR (data is lost: no persistence)
#   services.sh redis-stop DIR   redis-start DIR
#   services.sh smtp-stop DIR    smtp-start DIR
#   services.sh status DIR
#
# Env: BERICHTD_PG_PORT / BERICHTD_REDIS_PORT / BERICHTD_SMTP_PORT fix ports;
#      BERICHTD_KEEP_DATA=1 keeps PostgreSQL data (and mail) across stop/start,
#      and marks DIR (DIR/keep-data) so that a later start or stop without it
#      keeps them too and reuses the recorded ports where they are free (the
#      demo's .run: a hand-typed `services.sh start .run` must not wipe it);
#      BERICHTD_KEEP_DATA=0 wipes even a marked DIR.
# PostgreSQL refuses to run as root, so it runs as the `postgres` system user;
# if that user cannot reach DIR, the cluster lives in /tmp/berichtd-pg.XXXXXX.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
PGUSER_OS=postgres

die() { echo "services.sh: $*" >&2; exit 1; }

# 1 when DIR's data is kept: asked for now, or marked by an earlier start
keep_data() {
    case "${BERICHTD_KEEP_DATA:-}" in
        1) echo 1 ;;
        0) echo 0 ;;
        *) if [ -f "$RUN/keep-data" ]; then echo 1; else echo 0; fi ;;
    esac
}

# die with the tail of a log file
die_log() {
    local msg=$1 logf=$2
    echo "services.sh: $msg" >&2
    if [ -f "$logf" ]; then
        echo "---- tail of $logf ----" >&2
        tail -n 30 "$logf" >&2 || true
        echo "----" >&2
    fi
    exit 1
}

log() { echo "$(date '+%F %T') $*" >>"$RUN/services.log"; }

# run a command as the postgres user from a directory it can access
as_pg() { (cd / && runuser -u "$PGUSER_OS" -- "$@"); }

pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

# N distinct free TCP ports on 127.0.0.1 (all bound at once, then released)
free_ports() {
    "$PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# alive and not a zombie (PID 1 here may be slow to reap orphans)
pid_alive() {
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
    local st
    st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# pid from a pid file if that process is alive and its cmdline matches $2
pidfile_pid() {
    local f=$1 pat=$2 pid
    [ -f "$f" ] || return 1
    pid=$(head -n1 "$f" 2>/dev/null | tr -dc 0-9)
    pid_alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pat" || return 1
    echo "$pid"
}

# wait until command succeeds; $1 = timeout seconds
wait_for() {
    local t=$1; shift
    local end=$((SECONDS + t))
    until "$@"; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.1
    done
}

# load DIR/env (if any) into shell variables
load_env() {
    BERICHTD_PG_DATA='' BERICHTD_PG_ROOT='' BERICHTD_PG_TMP='' BERICHTD_PG_PORT_OLD=''
    BERICHTD_REDIS_PORT_OLD='' BERICHTD_SMTP_PORT_OLD='' BERICHTD_PG_BIN_OLD=''
    if [ -f "$RUN/env" ]; then
        local k v
        while IFS='=' read -r k v; do
            case "$k" in
                BERICHTD_PG_DATA) BERICHTD_PG_DATA=$v ;;
                BERICHTD_PG_ROOT) BERICHTD_PG_ROOT=$v ;;
                BERICHTD_PG_TMP) BERICHTD_PG_TMP=$v ;;
                BERICHTD_PG_PORT) BERICHTD_PG_PORT_OLD=$v ;;
                BERICHTD_REDIS_PORT) BERICHTD_REDIS_PORT_OLD=$v ;;
                BERICHTD_SMTP_PORT) BERICHTD_SMTP_PORT_OLD=$v ;;
                BERICHTD_PG_BIN) BERICHTD_PG_BIN_OLD=$v ;;
            esac
        done <"$RUN/env"
    fi
    # written early by start, so a half-failed start can still be cleaned up
    if [ -z "$BERICHTD_PG_ROOT" ] && [ -f "$RUN/pg-root" ]; then
        BERICHTD_PG_ROOT=$(cat "$RUN/pg-root")
        BERICHTD_PG_DATA=$BERICHTD_PG_ROOT/data
        [ "$BERICHTD_PG_ROOT" = "$RUN/pg" ] || BERICHTD_PG_TMP=$BERICHTD_PG_ROOT
    fi
    PGBIN=${BERICHTD_PG_BIN_OLD:-$(pg_bindir)}
}

need_env() {
    [ -f "$RUN/env" ] || die "$RUN/env missing: run '$0 start $RUN' first"
    load_env
    PG_PORT=$BERICHTD_PG_PORT_OLD REDIS_PORT=$BERICHTD_REDIS_PORT_OLD SMTP_PORT=$BERICHTD_SMTP_PORT_OLD
}

# ---------------------------------------------------------------- PostgreSQL

# Pick the cluster root: $RUN/pg if the postgres user can write there,
# else a fresh /tmp dir.  Sets PG_ROOT, PG_DATA, PG_TMP.
pg_choose_root() {
    if [ "$KEEP" = 1 ] && [ -n "$BERICHTD_PG_ROOT" ] \
        && [ -f "$BERICHTD_PG_ROOT/data/PG_VERSION" ]; then
        PG_ROOT=$BERICHTD_PG_ROOT PG_DATA=$BERICHTD_PG_ROOT/data PG_TMP=$BERICHTD_PG_TMP
        return
    fi
    mkdir -p "$RUN/pg"
    chown "$PGUSER_OS:" "$RUN/pg"
    chmod 700 "$RUN/pg"
    # socket path "$ROOT/data/.s.PGSQL.NNNNN" must fit in sun_path (107 bytes)
    if as_pg test -w "$RUN/pg" && [ ${#RUN} -le 80 ]; then
        PG_ROOT=$RUN/pg PG_TMP=''
    else
        PG_ROOT=$(mktemp -d /tmp/berichtd-pg.XXXXXX)
        chown "$PGUSER_OS:" "$PG_ROOT"
        chmod 700 "$PG_ROOT"
        PG_TMP=$PG_ROOT
        rmdir "$RUN/pg" 2>/dev/null || true
        log "postgres user cannot use $RUN/pg; cluster in $PG_ROOT"
    fi
    PG_DATA=$PG_ROOT/data
    echo "$PG_ROOT" >"$RUN/pg-root"
}

pg_init() {
    local locale=C
    if locale -a 2>/dev/null | grep -Eqix 'c\.utf-?8'; then locale=C.UTF-8; fi
    log "initdb $PG_DATA (locale $locale)"
    as_pg "$PGBIN/initdb" -D "$PG_DATA" --auth=trust -U postgres --encoding=UTF8 \
        --locale="$locale" >>"$RUN/services.log" 2>&1 \
        || die_log "initdb failed" "$RUN/services.log"
    echo "include_if_exists = 'berichtd_harness.conf'" >>"$PG_DATA/postgresql.conf"
}

# (re)write the settings that depend on this run (port, socket dir)
pg_conf() {
    cat >"$PG_DATA/berichtd_harness.conf" <<EOF
# written by tests/harness/services.sh on every start
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DATA'
max_connections = 200
shared_buffers = 256MB
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
EOF
    chown "$PGUSER_OS:" "$PG_DATA/berichtd_harness.conf"
}

pg_ready() { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres; }

pg_start() {
    local logf=$PG_ROOT/postgresql.log
    pg_conf
    log "pg_ctl start (port $PG_PORT)"
    if ! as_pg "$PGBIN/pg_ctl" -D "$PG_DATA" -w -t 60 -l "$logf" start >>"$RUN/services.log" 2>&1; then
        die_log "PostgreSQL failed to start (log $logf)" "$logf"
    fi
    ln -sfn "$logf" "$RUN/postgresql.log"
    wait_for 30 pg_ready || die_log "PostgreSQL not ready on port $PG_PORT" "$logf"
}

pg_stop() {
    local mode=${1:-fast}
    [ -n "${PG_DATA:-}" ] && [ -f "$PG_DATA/postmaster.pid" ] || return 0
    log "pg_ctl stop -m $mode"
    as_pg "$PGBIN/pg_ctl" -D "$PG_DATA" -m "$mode" -w -t 60 stop >>"$RUN/services.log" 2>&1 || true
}

pg_create_db() {
    local psql=("$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
    if [ "$("${psql[@]}" -Atc "SELECT 1 FROM pg_database WHERE datname = 'berichtd'")" != 1 ]; then
        "${psql[@]}" -c "CREATE DATABASE berichtd OWNER postgres" >>"$RUN/services.log" 2>&1 \
            || die_log "CREATE DATABASE failed" "$RUN/services.log"
    fi
}

# --------------------------------------------------------------------- redis

redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

redis_start() {
    mkdir -p "$RUN/redis"
    log "redis-server start (port $REDIS_PORT)"
    local n0=0
    [ -f "$RUN/redis/redis.log" ] && n0=$(wc -l <"$RUN/redis/redis.log")
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN/redis" \
        --daemonize yes --pidfile "$RUN/redis/redis.pid" --logfile "$RUN/redis/redis.log" \
        --save "" --appendonly no >>"$RUN/services.log" 2>&1 \
        || die_log "redis-server failed to start" "$RUN/redis/redis.log"
    # give up early if this start's log lines say it aborted (e.g. bind failed)
    wait_for 20 eval 'redis_ping || { tail -n +$((n0 + 1)) "$RUN/redis/redis.log" | grep -q aborting && return 0; false; }' \
        && redis_ping || die_log "redis not answering PING on port $REDIS_PORT" "$RUN/redis/redis.log"
}

redis_stop() {
    local pid
    pid=$(pidfile_pid "$RUN/redis/redis.pid" redis-server) || pid=''
    [ -n "$pid" ] || { rm -f "$RUN/redis/redis.pid"; return 0; }
    # only talk to the port if it is really our redis (ports get reused)
    if [ -n "${REDIS_PORT:-}" ] && redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info server 2>/dev/null \
            | tr -d '\r' | grep -qx "process_id:$pid"; then
        log "redis shutdown nosave (pid $pid)"
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    else
        log "redis kill (pid $pid)"
        kill "$pid" 2>/dev/null || true
    fi
    wait_for 10 eval '! pid_alive '"$pid" || kill -9 "$pid" 2>/dev/null || true
    rm -f "$RUN/redis/redis.pid"
}

# ---------------------------------------------------------------------- smtp

smtp_start() {
    mkdir -p "$RUN/smtp" "$RUN/mail"
    rm -f "$RUN/smtp/smtp.pid"
    log "smtp sink start (port $SMTP_PORT)"
    # setsid: keep it out of the caller's process group (Ctrl-C, make)
    setsid nohup "$PY" "$HERE/smtp_sink.py" --host 127.0.0.1 --port "$SMTP_PORT" \
        --dir "$RUN/mail" --pidfile "$RUN/smtp/smtp.pid" \
        >>"$RUN/smtp/smtp.log" 2>&1 </dev/null &
    local bg=$!
    # stop waiting early if the sink died (setsid did not fork, so $! is it)
    wait_for 20 eval '{ [ -s "$RUN/smtp/smtp.pid" ] && port_open "$SMTP_PORT"; } || { pid_alive $bg || return 0; false; }' \
        && port_open "$SMTP_PORT" || die_log "SMTP sink not listening on port $SMTP_PORT" "$RUN/smtp/smtp.log"
}

smtp_stop() {
    local pid
    pid=$(pidfile_pid "$RUN/smtp/smtp.pid" smtp_sink.py) || { rm -f "$RUN/smtp/smtp.pid"; return 0; }
    log "smtp sink stop (pid $pid)"
    kill "$pid" 2>/dev/null || true
    wait_for 10 eval '! pid_alive '"$pid" || kill -9 "$pid" 2>/dev/null || true
    rm -f "$RUN/smtp/smtp.pid"
}

# ------------------------------------------------------------------ commands

write_env() {
    cat >"$RUN/env.tmp" <<EOF
BERICHTD_RUN_DIR=$RUN
BERICHTD_PG_PORT=$PG_PORT
BERICHTD_PG_DATA=$PG_DATA
BERICHTD_PG_ROOT=$PG_ROOT
BERICHTD_PG_TMP=$PG_TMP
BERICHTD_PG_BIN=$PGBIN
BERICHTD_PG_LOG=$PG_ROOT/postgresql.log
BERICHTD_REDIS_PORT=$REDIS_PORT
BERICHTD_SMTP_PORT=$SMTP_PORT
BERICHTD_MAIL_DIR=$RUN/mail
EOF
    mv "$RUN/env.tmp" "$RUN/env"
}

cmd_stop() {
    [ -d "$RUN" ] || return 0
    load_env
    PG_DATA=$BERICHTD_PG_DATA REDIS_PORT=$BERICHTD_REDIS_PORT_OLD
    [ -n "$PG_DATA" ] || PG_DATA=$RUN/pg/data
    pg_stop fast
    redis_stop
    smtp_stop
    if [ "$KEEP" != 1 ] && [ -n "$BERICHTD_PG_TMP" ]; then
        case "$BERICHTD_PG_TMP" in
            /tmp/berichtd-pg.*)
                rm -rf "$BERICHTD_PG_TMP"
                rm -f "$RUN/pg-root" "$RUN/postgresql.log"
                log "removed $BERICHTD_PG_TMP" ;;
        esac
    fi
    return 0
}

cmd_start() {
    local t0=$SECONDS
    id "$PGUSER_OS" >/dev/null 2>&1 || die "system user '$PGUSER_OS' missing"
    [ "$(id -u)" = 0 ] || die "must run as root (PostgreSQL is started via runuser)"
    # anything still running here is stopped first (data kept or wiped below)
    cmd_stop
    load_env
    [ -x "$PGBIN/initdb" ] || die "no PostgreSQL binaries found in /usr/lib/postgresql/*/bin"

    if [ "$KEEP" != 1 ]; then
        rm -rf "$RUN/pg" "$RUN/mail" "$RUN/redis" "$RUN/smtp" "$RUN/pg-root" "$RUN/env" \
            "$RUN/keep-data"
        BERICHTD_PG_ROOT='' BERICHTD_PG_TMP=''
        BERICHTD_PG_PORT_OLD='' BERICHTD_REDIS_PORT_OLD='' BERICHTD_SMTP_PORT_OLD=''
    fi
    mkdir -p "$RUN"
    [ "$KEEP" != 1 ] || touch "$RUN/keep-data"

    # kept data keeps its ports (configs written for them), where still free
    local ports old
    ports=($(free_ports 3))
    for old in BERICHTD_PG_PORT_OLD BERICHTD_REDIS_PORT_OLD BERICHTD_SMTP_PORT_OLD; do
        if [ -n "${!old}" ] && port_open "${!old}"; then
            log "recorded port ${!old} is taken now; another one is used"
            printf -v "$old" '%s' ''
        fi
    done
    PG_PORT=${BERICHTD_PG_PORT:-${BERICHTD_PG_PORT_OLD:-${ports[0]}}}
    REDIS_PORT=${BERICHTD_REDIS_PORT:-${BERICHTD_REDIS_PORT_OLD:-${ports[1]}}}
    SMTP_PORT=${BERICHTD_SMTP_PORT:-${BERICHTD_SMTP_PORT_OLD:-${ports[2]}}}

    local p
    for p in "$PG_PORT" "$REDIS_PORT" "$SMTP_PORT"; do
        ! port_open "$p" || die "port $p on 127.0.0.1 is already in use"
    done

    # on any failure below, stop whatever did start (logs stay in $RUN)
    trap 'cmd_stop >/dev/null 2>&1 || true' EXIT
    pg_choose_root
    [ -f "$PG_DATA/PG_VERSION" ] || pg_init
    pg_start
    pg_create_db
    redis_start
    rm -f "$RUN/smtp/mode"
    smtp_start
    write_env
    trap - EXIT
    log "started in $((SECONDS - t0))s"
    echo "berichtd services up in $RUN: postgres 127.0.0.1:$PG_PORT redis 127.0.0.1:$REDIS_PORT smtp 127.0.0.1:$SMTP_PORT (env: $RUN/env)"
}

cmd_status() {
    need_env
    PG_DATA=$BERICHTD_PG_DATA
    local s=0
    if pg_ready; then echo "postgres up ($PG_PORT)"; else echo "postgres DOWN ($PG_PORT)"; s=1; fi
    if redis_ping; then echo "redis up ($REDIS_PORT)"; else echo "redis DOWN ($REDIS_PORT)"; s=1; fi
    if port_open "$SMTP_PORT"; then echo "smtp up ($SMTP_PORT)"; else echo "smtp DOWN ($SMTP_PORT)"; s=1; fi
    return $s
}

[ $# -ge 2 ] || die "usage: $0 {start|stop|status|pg-stop|pg-start|redis-restart|redis-stop|redis-start|smtp-stop|smtp-start} DIR"
CMD=$1
if [ "$CMD" = stop ] && [ ! -d "$2" ]; then exit 0; fi   # nothing to stop
mkdir -p "$2" || die "cannot create $2"
RUN=$(cd "$2" && pwd)
KEEP=$(keep_data)

case "$CMD" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    pg-stop)
        need_env; PG_DATA=$BERICHTD_PG_DATA
        mode=${3:-fast}
        case "$mode" in fast|immediate|smart) ;; *) die "pg-stop mode must be fast|immediate|smart" ;; esac
        pg_stop "$mode" ;;
    pg-start)
        need_env; PG_DATA=$BERICHTD_PG_DATA PG_ROOT=$BERICHTD_PG_ROOT
        pg_ready || pg_start ;;
    redis-restart) need_env; redis_stop; redis_start ;;
    redis-stop) need_env; redis_stop ;;
    redis-start) need_env; redis_ping || redis_start ;;
    smtp-stop) need_env; smtp_stop ;;
    smtp-start) need_env; port_open "$SMTP_PORT" || smtp_start ;;
    *) die "unknown command '$CMD'" ;;
esac
