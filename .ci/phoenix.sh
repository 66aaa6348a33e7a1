#!/usr/bin/env bash
# Arize Phoenix as a real, local OTLP receiver for the integration tests.
#
#   bash .ci/phoenix.sh install   # venv + pinned arize-phoenix, only if missing (~1 min cold)
#   bash .ci/phoenix.sh start     # start it in the background unless it already answers,
#                                 # then wait until OTLP/gRPC and HTTP both answer
#   bash .ci/phoenix.sh stop      # stop the instance this script started (by its pid file)
# Log and pid file: /tmp/llm-audit-phoenix/phoenix-<http port>.{log,pid}
#
# Quiet on success; on failure it prints why (and the log tail) and exits non-zero.
# Listens on:
#   HTTP  http://127.0.0.1:6006  (REST API under /v1, OTLP/HTTP protobuf at /v1/traces)
#   gRPC  127.0.0.1:4317         (OTLP/gRPC; Phoenix hard-codes [::] for this one, so it is
#                                 bound on all interfaces whatever PHOENIX_HOST says)
# Spans land in the project named by the resource attribute `openinference.project.name`
# (or the `x-project-name` header on OTLP/HTTP), else in project "default"; read them back
# with GET http://127.0.0.1:6006/v1/projects/<project>/spans
#
# Environment (all optional):
#   PHOENIX_VENV         venv location           (default $HOME/.cache/llm-audit/phoenix-venv)
#   PHOENIX_WORKING_DIR  Phoenix's data dir      (default /tmp/llm-audit-phoenix/data)
#   PHOENIX_PORT         HTTP port               (default 6006)
#   PHOENIX_GRPC_PORT    OTLP/gRPC port          (default 4317)
#   PHOENIX_START_TIMEOUT seconds to wait        (default 120)
set -euo pipefail

PHOENIX_VERSION="20.26.1"
PIP_VERSION="26.3" # the venv's bundled pip (23.x) resolves Phoenix's deps ~20 s slower
VENV="${PHOENIX_VENV:-$HOME/.cache/llm-audit/phoenix-venv}"
HTTP_PORT="${PHOENIX_PORT:-6006}"
RUN_DIR="/tmp/llm-audit-phoenix"
LOG="$RUN_DIR/phoenix-$HTTP_PORT.log"
PID_FILE="$RUN_DIR/phoenix-$HTTP_PORT.pid"
GRPC_PORT="${PHOENIX_GRPC_PORT:-4317}"
TIMEOUT="${PHOENIX_START_TIMEOUT:-120}"
MARKER="$VENV/.llm-audit-phoenix-$PHOENIX_VERSION"

die() {
    echo "phoenix.sh: $*" >&2
    exit 1
}

http_up() {
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$HTTP_PORT/healthz" 2>/dev/null
}

grpc_up() {
    # Opens (and at once closes) a TCP connection; the subshell keeps fd 3 out of ours.
    (exec 3<>"/dev/tcp/127.0.0.1/$GRPC_PORT") 2>/dev/null
}

cmd_install() {
    [ -f "$MARKER" ] && [ -x "$VENV/bin/phoenix" ] && return 0
    command -v python3 >/dev/null || die "python3 not found"
    # A venv without the marker is a half-finished or other-version install: start over.
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    local log
    log="$(mktemp /tmp/llm-audit-phoenix-install.XXXXXX.log)"
    if ! {
        export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
        python3 -m venv "$VENV" &&
            "$VENV/bin/python" -m pip install -q "pip==$PIP_VERSION" &&
            "$VENV/bin/python" -m pip install -q "arize-phoenix==$PHOENIX_VERSION"
    } >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        rm -rf "$VENV"
        die "installing arize-phoenix==$PHOENIX_VERSION into $VENV failed (log: $log)"
    fi
    touch "$MARKER"
    rm -f "$log"
}

cmd_start() {
    mkdir -p "$RUN_DIR"
    # Two starts at once (e.g. parallel test jobs) must not both spawn a server.
    exec 9>"$RUN_DIR/start-$HTTP_PORT.lock"
    flock -w $((TIMEOUT + 30)) 9 || die "could not take $RUN_DIR/start-$HTTP_PORT.lock"
    if http_up; then
        # Already running (ours or someone's): only make sure gRPC answers too.
        wait_until_up ""
        return 0
    fi
    [ -f "$MARKER" ] || cmd_install
    local workdir="${PHOENIX_WORKING_DIR:-$RUN_DIR/data}"
    mkdir -p "$workdir"
    # Offline, local-only: no telemetry, no fetches of its own (WASM sandbox binary, docs MCP),
    # no agent assistant or code sandboxes; HTTP bound to loopback.
    (
        exec 9>&- # the server must not hold the start lock
        cd "$RUN_DIR"
        export PHOENIX_WORKING_DIR="$workdir" \
            PHOENIX_HOST=127.0.0.1 \
            PHOENIX_PORT="$HTTP_PORT" \
            PHOENIX_GRPC_PORT="$GRPC_PORT" \
            PHOENIX_ALLOW_EXTERNAL_RESOURCES=false \
            PHOENIX_TELEMETRY_ENABLED=false \
            PHOENIX_DISABLE_AGENT_ASSISTANT=true \
            PHOENIX_ALLOWED_SANDBOX_PROVIDERS=NONE \
            PHOENIX_ENABLE_MCP_SERVER=false \
            PHOENIX_LOG_MIGRATIONS=false \
            PYTHONUNBUFFERED=1
        unset PHOENIX_COLLECTOR_ENDPOINT PHOENIX_SQL_DATABASE_URL PHOENIX_POSTGRES_HOST
        exec setsid nohup "$VENV/bin/phoenix" serve </dev/null >"$LOG" 2>&1
    ) &
    echo $! >"$PID_FILE"
    wait_until_up "$(cat "$PID_FILE")"
}

# wait_until_up PID: PID is the process we started ("" if it was already running).
wait_until_up() {
    local pid="$1" deadline=$((SECONDS + TIMEOUT))
    while :; do
        if http_up && grpc_up; then
            return 0
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            [ -f "$LOG" ] && tail -n 40 "$LOG" >&2
            die "phoenix exited before it answered (log: $LOG)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            # Don't leave a half-started server behind: the next start should begin afresh.
            [ -n "$pid" ] && cmd_stop
            [ -f "$LOG" ] && tail -n 40 "$LOG" >&2
            die "phoenix did not answer on 127.0.0.1:$HTTP_PORT (HTTP) and :$GRPC_PORT (gRPC) within ${TIMEOUT}s (log: $LOG)"
        fi
        sleep 0.5
    done
}

cmd_stop() {
    [ -f "$PID_FILE" ] || return 0
    local pid
    pid="$(cat "$PID_FILE")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 60); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$PID_FILE"
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    *)
        echo "usage: $0 install|start|stop" >&2
        exit 2
        ;;
esac
