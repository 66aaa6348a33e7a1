#!/usr/bin/env bash
# LiteLLM, pinned, in a venv of its own, as the oracle for our LiteLLM price-file loader.
#
#   bash scripts/litellm/setup.sh OUT.jsonl [--modes chat] [--no-aliases]
#                                      # install if missing, then write the oracle's cases to OUT
#   bash scripts/litellm/setup.sh --install      # install if missing; print the venv's python
#   bash scripts/litellm/setup.sh --python       # print the venv's python (exit 1 if not installed)
#   bash scripts/litellm/setup.sh --price-file   # print the bundled price file's path (installs)
#
# The oracle (oracle.py beside this script) runs offline: LITELLM_LOCAL_MODEL_COST_MAP=True, so
# LiteLLM prices from the file inside its package (model_prices_and_context_window_backup.json),
# whose absolute path is the first line of OUT. ~30 s to install cold (PyPI only), ~5 s to run.
#
# Environment (all optional):
#   LITELLM_VENV     venv location (default $HOME/.cache/llm-audit/litellm-venv)
#
# The venv is made once per LITELLM_VERSION (a marker file names it); dependencies are pinned by
# constraints.txt beside this script (a `pip freeze` of a working install), falling back to
# LiteLLM's own ranges if that set cannot be installed. Quiet on success; on failure it prints
# the log's tail and exits non-zero. Safe to run concurrently (flock).
set -euo pipefail

LITELLM_VERSION="1.106.2"
PIP_VERSION="26.3"
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${LITELLM_VENV:-$HOME/.cache/llm-audit/litellm-venv}"
MARKER="$VENV/.llm-audit-litellm-$LITELLM_VERSION"
PY="$VENV/bin/python"

die() {
    echo "litellm/setup.sh: $*" >&2
    exit 1
}

installed() {
    [ -f "$MARKER" ] && [ -x "$PY" ]
}

install() {
    installed && return 0
    mkdir -p "$(dirname "$VENV")"
    # Two installs at once (parallel test binaries) must not both build the venv.
    exec 9>"$VENV.lock"
    flock -w 600 9 || die "could not take $VENV.lock"
    if installed; then
        exec 9>&-
        return 0
    fi
    command -v python3 >/dev/null || die "python3 not found"
    # A venv without the marker is half-built or of another version: start over.
    rm -rf "$VENV"
    local log
    log="$(mktemp /tmp/llm-audit-litellm-install.XXXXXX.log)"
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
    if ! {
        python3 -m venv "$VENV" &&
            "$PY" -m pip install -q "pip==$PIP_VERSION" &&
            {
                "$PY" -m pip install -q -c "$HERE/constraints.txt" "litellm==$LITELLM_VERSION" ||
                    {
                        echo "litellm/setup.sh: the pinned dependency set did not install; using LiteLLM's own ranges" >&2
                        "$PY" -m pip install -q "litellm==$LITELLM_VERSION"
                    }
            }
    } >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        rm -rf "$VENV"
        die "installing litellm==$LITELLM_VERSION into $VENV failed (log: $log)"
    fi
    touch "$MARKER"
    rm -f "$log"
    exec 9>&-
}

case "${1:-}" in
"" | -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    [ -n "${1:-}" ] || exit 2
    ;;
--install)
    install
    echo "$PY"
    ;;
--python)
    installed || die "not installed: run bash scripts/litellm/setup.sh --install"
    echo "$PY"
    ;;
--price-file)
    install
    LITELLM_LOCAL_MODEL_COST_MAP=True "$PY" -c \
        'import os, litellm; print(os.path.join(os.path.dirname(litellm.__file__), "model_prices_and_context_window_backup.json"))'
    ;;
-*)
    die "unknown option $1 (see --help)"
    ;;
*)
    install
    LITELLM_LOCAL_MODEL_COST_MAP=True exec "$PY" "$HERE/oracle.py" "$@"
    ;;
esac
