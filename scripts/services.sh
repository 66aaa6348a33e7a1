#!/usr/bin/env bash
# The services the tests and benchmarks talk to, on a bare machine: installed when missing,
# started in the background, stopped by their pids. Used by .ci/run; run it yourself before
# `cargo test` to run the tests that need them (without them those tests skip, saying why).
#
#   bash scripts/services.sh start    # install what is missing, start what is not running
#   bash scripts/services.sh stop     # stop what this script started
#   bash scripts/services.sh status   # one line per service
#
# Services:
#   postgres  PostgreSQL 15 from Debian's packages at 127.0.0.1:5432, database `test`, user
#             `postgres`, trust authentication on loopback only (a cluster of our own under
#             $LLM_AUDIT_SERVICES_DIR/postgres; Debian's own "main" cluster is never created).
#   phoenix   Arize Phoenix, a real OTLP receiver (.ci/phoenix.sh: HTTP :6006, gRPC :4317).
# Name some to act on those only: `bash scripts/services.sh start postgres`.
#
# Quiet on success; on failure it says which service failed and why, prints the tail of its log
# and exits non-zero. A service that already answers on its port (ours or someone else's) is
# used as it is.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE_DIR="${LLM_AUDIT_SERVICES_DIR:-/tmp/llm-audit-services}"
ALL_SERVICES=(postgres phoenix)

die() {
    echo "services.sh: $*" >&2
    exit 1
}

# Runs "$@" quietly; on failure prints its output and dies with the sentence $1.
quiet() {
    local what="$1" log
    shift
    log="$(mktemp /tmp/llm-audit-services.XXXXXX.log)"
    if ! "$@" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        die "$what"
    fi
    rm -f "$log"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

apt_install() {
    [ "$(id -u)" = 0 ] || die "$* missing and not root: install them with apt-get (Debian packages)"
    # Debian's postgresql-common creates and starts a "main" cluster on 5432 when it is
    # installed; ours is the only one we want.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/llm-audit.conf
    export DEBIAN_FRONTEND=noninteractive
    quiet "apt-get update failed" apt-get update -q
    quiet "apt-get install $* failed" apt-get install -y -q --no-install-recommends "$@"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL 15

PG_VERSION=15
PG_BIN="/usr/lib/postgresql/$PG_VERSION/bin"
PG_PORT=5432
PG_DIR="$BASE_DIR/postgres"
PG_DATA="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"
PG_SOCKET="$PG_DIR/socket"

# Runs a PostgreSQL program as the owner of the cluster: the `postgres` account when we are
# root (the server refuses to run as root), else ourselves.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_sql() {
    psql -X -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt "$@" </dev/null
}

pg_ready() {
    pg_sql -d test -c 'SELECT 1' >/dev/null 2>&1
}

postgres_install() {
    if [ ! -x "$PG_BIN/postgres" ] || [ ! -x "$PG_BIN/psql" ]; then
        apt_install "postgresql-$PG_VERSION" "postgresql-client-$PG_VERSION"
    fi
    [ -x "$PG_BIN/postgres" ] || die "postgres: $PG_BIN/postgres is missing after the install"
}

postgres_fail() {
    [ -f "$PG_LOG" ] && tail -n 40 "$PG_LOG" >&2
    die "postgres: $* (log: $PG_LOG)"
}

postgres_start() {
    pg_ready && return 0
    if port_open "$PG_PORT" && [ ! -f "$PG_DATA/postmaster.pid" ]; then
        # Someone else's server: use it if it lets us make the database, else say so.
        if pg_sql -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
            quiet "postgres: could not create database test on the server at 127.0.0.1:$PG_PORT" \
                pg_sql -d postgres -c 'CREATE DATABASE test'
            return 0
        fi
        die "postgres: 127.0.0.1:$PG_PORT is taken by a server that does not let user postgres in without a password; stop it or free the port"
    fi
    postgres_install
    mkdir -p "$PG_DIR"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR"
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        rm -rf "$PG_DATA"
        # --auth=trust writes pg_hba.conf lines for the socket, 127.0.0.1/32 and ::1/128 only;
        # the server listens on 127.0.0.1 alone.
        quiet "postgres: initdb failed" as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres \
            --auth=trust --encoding=UTF8 --locale=C.UTF-8
    fi
    as_pg mkdir -p "$PG_SOCKET"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 -s start \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_SOCKET -c max_connections=200" \
        >/dev/null 2>&1 8>&-; then
        postgres_fail "the server did not start on 127.0.0.1:$PG_PORT"
    fi
    if ! pg_sql -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
        quiet "postgres: could not create database test" pg_sql -d postgres -c 'CREATE DATABASE test'
    fi
    pg_ready || postgres_fail "the server started but database test does not answer"
}

postgres_stop() {
    [ -f "$PG_DATA/postmaster.pid" ] || return 0
    # pg_ctl stops the postmaster whose pid the data directory records: only ours.
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 -s stop >/dev/null 2>&1 ||
        postgres_fail "pg_ctl stop failed"
}

postgres_status() {
    if pg_ready; then
        if [ -f "$PG_DATA/postmaster.pid" ]; then
            echo "postgres: up at 127.0.0.1:$PG_PORT (ours, pid $(head -n 1 "$PG_DATA/postmaster.pid"))"
        else
            echo "postgres: up at 127.0.0.1:$PG_PORT (not started by this script)"
        fi
    else
        echo "postgres: down"
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------
# Arize Phoenix (its own script installs it into a venv and knows how it answers)

# 8>&-: the server must not hold our start lock.
phoenix_start() { bash "$ROOT/.ci/phoenix.sh" start 8>&-; }
phoenix_stop() { bash "$ROOT/.ci/phoenix.sh" stop; }
phoenix_status() {
    if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${PHOENIX_PORT:-6006}/healthz" 2>/dev/null; then
        echo "phoenix: up at 127.0.0.1:${PHOENIX_PORT:-6006}"
    else
        echo "phoenix: down"
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------

cmd="${1:-}"
[ $# -gt 0 ] && shift
services=("$@")
[ ${#services[@]} -eq 0 ] && services=("${ALL_SERVICES[@]}")
for s in "${services[@]}"; do
    case " ${ALL_SERVICES[*]} " in
        *" $s "*) ;;
        *) die "unknown service '$s' (known: ${ALL_SERVICES[*]})" ;;
    esac
done

mkdir -p "$BASE_DIR"
case "$cmd" in
    start)
        # Two starts at once must not both install or spawn a server.
        exec 8>"$BASE_DIR/start.lock"
        flock -w 600 8 || die "could not take $BASE_DIR/start.lock"
        for s in "${services[@]}"; do "${s}_start"; done
        ;;
    stop)
        for s in "${services[@]}"; do "${s}_stop"; done
        ;;
    status)
        rc=0
        for s in "${services[@]}"; do "${s}_status" || rc=1; done
        exit "$rc"
        ;;
    *)
        echo "usage: $0 start|stop|status [${ALL_SERVICES[*]// /|}]..." >&2
        exit 2
        ;;
esac
