#!/usr/bin/env bash
# The services the tests and benchmarks talk to, on a bare machine: installed when missing,
# started in the background, stopped by their pids. Used by .ci/run; run it yourself before
# `cargo test` to run the tests that need them (without them those tests skip, saying why).
#
#   bash scripts/services.sh start    # install what is missing, start what is not running
#   bash scripts/services.sh stop     # stop what this script started
#   bash scripts/services.sh status   # one line per service
#   bash scripts/services.sh path otelcol|jaeger|prometheus
#                                     # print the service's program (exit 1 if not built yet)
#
# Services:
#   postgres  PostgreSQL 15 from Debian's packages at 127.0.0.1:5432, database `test`, user
#             `postgres`, trust authentication on loopback only (a cluster of our own under
#             $LLM_AUDIT_SERVICES_DIR/postgres; Debian's own "main" cluster is never created).
#   phoenix   Arize Phoenix, a real OTLP receiver (.ci/phoenix.sh: HTTP :6006, gRPC :4317).
#   jaeger    Jaeger v2 (v1.75.0, tools/jaeger/), in-memory storage, tools/jaeger/config.yaml:
#             OTLP gRPC 127.0.0.1:14317, OTLP HTTP 127.0.0.1:14318, query API and UI
#             http://127.0.0.1:16686 (/api/services, /api/traces?service=S, /api/traces/<id>,
#             /api/v3/...; the UI page itself is a placeholder: the Go build has no UI assets).
#   otelcol   An OpenTelemetry Collector v0.165.0 (tools/otelcol/) with the components of
#             collector-config/. Not a running service: `start` only builds it, and the
#             end-to-end test runs it itself (path from `path otelcol`) as
#               otelcol --config collector-config/otel-collector.yaml \
#                       --config tools/otelcol/test-overlay.yaml
#             (OTLP in on 127.0.0.1:24317/24318; out to jaeger, to phoenix's :4317, logs to
#             http://127.0.0.1:24319, metrics served at 127.0.0.1:28889; see the overlay).
#   prometheus  Prometheus 2.42 from Debian's packages at 127.0.0.1:9090 with
#             tools/prometheus/prometheus.yml (scrapes 127.0.0.1:28889 every second), data
#             under $LLM_AUDIT_SERVICES_DIR/prometheus; Debian's own instance is never started.
# Name some to act on those only: `bash scripts/services.sh start postgres`.
#
# jaeger and otelcol are built from the Go modules in tools/ (pinned by their go.sum) into
# $LLM_AUDIT_CACHE_DIR/bin (default ~/.cache/llm-audit/bin), named <name>-<hash of the module's
# files>: a changed go.mod, go.sum or main.go builds afresh, else the cached binary is used.
# A cold build takes minutes (jaeger ~4, otelcol ~2 on 2 cores); a warm start, a second.
#
# Quiet on success; on failure it says which service failed and why, prints the tail of its log
# and exits non-zero. A service that already answers on its port (ours or someone else's) is
# used as it is.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE_DIR="${LLM_AUDIT_SERVICES_DIR:-/tmp/llm-audit-services}"
BIN_DIR="${LLM_AUDIT_CACHE_DIR:-$HOME/.cache/llm-audit}/bin"
ALL_SERVICES=(postgres phoenix jaeger otelcol prometheus)

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
    local options="-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_SOCKET -c max_connections=200"
    # TLS with Debian's self-signed certificate for localhost (package ssl-cert, which the
    # postgres account may read), as Debian's own clusters have it: tests/postgres.rs checks
    # that the sink verifies the server's certificate.
    if [ -r /etc/ssl/certs/ssl-cert-snakeoil.pem ] && [ -e /etc/ssl/private/ssl-cert-snakeoil.key ]; then
        options="$options -c ssl=on -c ssl_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem"
        options="$options -c ssl_key_file=/etc/ssl/private/ssl-cert-snakeoil.key"
    fi
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 -s start -o "$options" \
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
# Programs of our own in the background: started with a pid file, stopped by that pid.

# spawn PID_FILE LOG PROGRAM ARGS...: starts the program detached, in its own session.
spawn() {
    local pid_file="$1" log="$2"
    shift 2
    (
        exec 8>&- # the server must not hold our start lock
        cd "$(dirname "$log")"
        exec setsid nohup "$@" </dev/null >"$log" 2>&1
    ) &
    echo $! >"$pid_file"
}

# ours PID_FILE: the pid in the file, if that process is alive and still runs one of our
# programs (a pid can be reused after a reboot or a crash).
ours() {
    local pid cmdline
    [ -f "$1" ] || return 1
    pid="$(cat "$1")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    case "$cmdline" in
        "$BIN_DIR/"* | "$PROM_BIN "*) echo "$pid" ;;
        *) return 1 ;;
    esac
}

# alive PID: the process runs (an exited one that init has not reaped yet is a zombie, state Z).
alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [ "${stat:0:1}" != Z ]
}

# stop_pid PID_FILE: TERM, up to 15 s, then KILL; only the process the file names.
stop_pid() {
    local pid
    if pid="$(ours "$1")"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 300); do
            alive "$pid" || break
            sleep 0.05
        done
        alive "$pid" && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$1"
}

# wait_up NAME PID_FILE LOG CHECK...: waits until CHECK succeeds; if the process dies or 60 s
# pass, stops it, prints its log tail and dies.
wait_up() {
    local name="$1" pid_file="$2" log="$3" pid deadline=$((SECONDS + 60))
    shift 3
    pid="$(cat "$pid_file")"
    until "$@"; do
        if ! alive "$pid"; then
            rm -f "$pid_file"
            [ -f "$log" ] && tail -n 40 "$log" >&2
            die "$name exited before it answered (log: $log)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            stop_pid "$pid_file"
            [ -f "$log" ] && tail -n 40 "$log" >&2
            die "$name did not answer within 60 s (log: $log)"
        fi
        sleep 0.2
    done
}

# spawned_status NAME READY PID_FILE WHERE: one line, up (ours or not) or down (exit 1).
spawned_status() {
    local name="$1" ready="$2" pid_file="$3" where="$4" pid
    if ! "$ready"; then
        echo "$name: down"
        return 1
    fi
    if pid="$(ours "$pid_file")"; then
        echo "$name: up, $where (ours, pid $pid)"
    else
        echo "$name: up, $where (not started by this script)"
    fi
}

# ---------------------------------------------------------------------------------------------
# Go programs built from our modules in tools/ (jaeger, otelcol)

go_cmd() {
    if command -v go >/dev/null; then
        echo go
    elif [ -x /usr/local/go/bin/go ]; then
        echo /usr/local/go/bin/go
    else
        die "go not found: jaeger and otelcol are built from the Go modules in tools/ (Go 1.26)"
    fi
}

# go_bin NAME: the cached binary's path for the module in tools/NAME, keyed by its files.
go_bin() {
    local dir="$ROOT/tools/$1" f files=()
    for f in "$dir/go.mod" "$dir/go.sum" "$dir"/*.go; do
        [ -f "$f" ] && files+=("$f")
    done
    echo "$BIN_DIR/$1-$(cat "${files[@]}" | sha256sum | cut -c1-12)"
}

# go_build NAME PACKAGE: builds the binary unless the cache has it; older builds of NAME go.
go_build() {
    local name="$1" pkg="$2" bin go
    bin="$(go_bin "$name")"
    [ -x "$bin" ] && return 0
    go="$(go_cmd)"
    mkdir -p "$BIN_DIR"
    # -mod=readonly: go.mod and go.sum are the pins; a build never edits them.
    # -trimpath -s -w: no local paths, no symbol tables (smaller, faster to link).
    (
        cd "$ROOT/tools/$name"
        quiet "$name: go build of $pkg in tools/$name failed" \
            "$go" build -mod=readonly -trimpath -ldflags="-s -w" -o "$bin.tmp.$$" "$pkg"
    ) || { rm -f "$bin.tmp.$$"; exit 1; }
    mv -f "$bin.tmp.$$" "$bin"
    find "$BIN_DIR" -maxdepth 1 -name "$name-*" ! -path "$bin" -delete
}

go_path() {
    local bin
    bin="$(go_bin "$1")"
    [ -x "$bin" ] || die "$1 is not built yet: bash scripts/services.sh start $1 (builds $bin)"
    echo "$bin"
}

# ---------------------------------------------------------------------------------------------
# Jaeger v2 (all-in-one, in-memory storage)

JAEGER_QUERY_PORT=16686
JAEGER_OTLP_GRPC_PORT=14317
JAEGER_DIR="$BASE_DIR/jaeger"
JAEGER_LOG="$JAEGER_DIR/jaeger.log"
JAEGER_PID="$JAEGER_DIR/jaeger.pid"

jaeger_ready() {
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$JAEGER_QUERY_PORT/api/services" 2>/dev/null &&
        port_open "$JAEGER_OTLP_GRPC_PORT"
}

jaeger_start() {
    local port
    jaeger_ready && return 0
    for port in "$JAEGER_QUERY_PORT" "$JAEGER_OTLP_GRPC_PORT" 14318 16685; do
        port_open "$port" && die "jaeger: 127.0.0.1:$port is taken by something that is not a Jaeger answering on :$JAEGER_QUERY_PORT and :$JAEGER_OTLP_GRPC_PORT; stop it or free the port"
    done
    go_build jaeger github.com/jaegertracing/jaeger/cmd/jaeger
    mkdir -p "$JAEGER_DIR"
    spawn "$JAEGER_PID" "$JAEGER_LOG" "$(go_bin jaeger)" --config "$ROOT/tools/jaeger/config.yaml"
    wait_up jaeger "$JAEGER_PID" "$JAEGER_LOG" jaeger_ready
}

jaeger_stop() { stop_pid "$JAEGER_PID"; }

jaeger_status() {
    spawned_status jaeger jaeger_ready "$JAEGER_PID" \
        "query http://127.0.0.1:$JAEGER_QUERY_PORT, OTLP gRPC 127.0.0.1:$JAEGER_OTLP_GRPC_PORT"
}

# ---------------------------------------------------------------------------------------------
# OpenTelemetry Collector: only built here; the end-to-end test runs it (see the header).

otelcol_start() { go_build otelcol .; }
otelcol_stop() { :; }
otelcol_status() {
    local bin
    bin="$(go_bin otelcol)"
    if [ -x "$bin" ]; then
        echo "otelcol: built at $bin (run by the end-to-end test, not kept running)"
    else
        echo "otelcol: not built"
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------
# Prometheus 2.42 from Debian's packages

PROM_BIN=/usr/bin/prometheus
PROM_PORT=9090
PROM_DIR="$BASE_DIR/prometheus"
PROM_LOG="$PROM_DIR/prometheus.log"
PROM_PID="$PROM_DIR/prometheus.pid"
PROM_CONFIG="$ROOT/tools/prometheus/prometheus.yml"

prometheus_ready() {
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PROM_PORT/-/ready" 2>/dev/null
}

prometheus_install() {
    [ -x "$PROM_BIN" ] && return 0
    [ "$(id -u)" = 0 ] || die "prometheus missing and not root: install it with apt-get (Debian package prometheus)"
    # The package starts Debian's own instance on :9090 (invoke-rc.d or deb-systemd-invoke)
    # unless policy-rc.d forbids it; ours is the only one we want.
    local guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        guard=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$guard"
        chmod 755 "$guard"
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt_install prometheus
    if [ -n "$guard" ]; then
        rm -f "$guard"
        trap - EXIT
    fi
    [ -x "$PROM_BIN" ] || die "prometheus: $PROM_BIN is missing after the install"
}

prometheus_start() {
    if prometheus_ready; then
        ours "$PROM_PID" >/dev/null && return 0
        # Someone else's: use it only if it scrapes the test collector as ours would.
        local config
        config="$(curl -fsS --max-time 2 "http://127.0.0.1:$PROM_PORT/api/v1/status/config" 2>/dev/null)" || true
        case "$config" in *127.0.0.1:28889*) return 0 ;; esac
        die "prometheus: 127.0.0.1:$PROM_PORT is taken by a Prometheus that does not scrape 127.0.0.1:28889; stop it or free the port"
    fi
    port_open "$PROM_PORT" && die "prometheus: 127.0.0.1:$PROM_PORT is taken by something that is not Prometheus; stop it or free the port"
    prometheus_install
    mkdir -p "$PROM_DIR/data"
    spawn "$PROM_PID" "$PROM_LOG" "$PROM_BIN" \
        --config.file="$PROM_CONFIG" \
        --storage.tsdb.path="$PROM_DIR/data" \
        --storage.tsdb.retention.time=1d \
        --web.listen-address="127.0.0.1:$PROM_PORT"
    wait_up prometheus "$PROM_PID" "$PROM_LOG" prometheus_ready
}

prometheus_stop() { stop_pid "$PROM_PID"; }

prometheus_status() {
    spawned_status prometheus prometheus_ready "$PROM_PID" "http://127.0.0.1:$PROM_PORT"
}

# ---------------------------------------------------------------------------------------------

cmd="${1:-}"
[ $# -gt 0 ] && shift
services=("$@")
[ "$cmd" = path ] && [ ${#services[@]} -eq 0 ] && die "path: name a service (jaeger, otelcol or prometheus)"
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
        # Two starts at once must not both install, build or spawn a server (a cold build
        # of jaeger and otelcol takes minutes).
        exec 8>"$BASE_DIR/start.lock"
        flock -w 1800 8 || die "could not take $BASE_DIR/start.lock"
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
    path)
        for s in "${services[@]}"; do
            case "$s" in
                jaeger | otelcol) go_path "$s" ;;
                prometheus) [ -x "$PROM_BIN" ] && echo "$PROM_BIN" || die "prometheus is not installed: bash scripts/services.sh start prometheus" ;;
                *) die "path: $s has no program of ours (jaeger, otelcol, prometheus do)" ;;
            esac
        done
        ;;
    *)
        echo "usage: $0 start|stop|status|path [${ALL_SERVICES[*]// /|}]..." >&2
        exit 2
        ;;
esac
