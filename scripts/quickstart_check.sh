#!/usr/bin/env bash
# The README's quick start as a newcomer runs it, in a fresh directory: `cargo run --example
# quickstart` (twice: the second run finds the keys the first made, and appends), then the two
# commands it prints. `llm-audit verify` must say intact (exit 0) and `llm-audit report html`
# must write a report. Prints how long each step took.
#
#   bash scripts/quickstart_check.sh    # after `cargo test --workspace --all-features` built the CLI
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
llm_audit="$target/debug/llm-audit"
[[ -x $llm_audit ]] || cargo build -q --manifest-path "$root/Cargo.toml" -p llm-audit
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

step() {
    local name=$1
    shift
    local start
    start=$(date +%s)
    "$@"
    echo "quick start: $name in $(($(date +%s) - start)) s" >&2
}

step "cargo run --example quickstart (first run)" \
    cargo run -q --manifest-path "$root/Cargo.toml" --example quickstart >run1.txt
step "cargo run --example quickstart (second run)" \
    cargo run -q --manifest-path "$root/Cargo.toml" --example quickstart >run2.txt
for expected in "made the demo's keys in ./audit_keys" "5 audit entries written"; do
    grep -qF "$expected" run1.txt || {
        echo "the quick start did not print: $expected" >&2
        cat run1.txt >&2
        exit 1
    }
done
# The two commands it prints, run as printed.
verify=$(grep -F 'llm-audit verify' run2.txt | sed 's/^ *//')
report=$(grep -F 'llm-audit report html' run2.txt | sed 's/^ *//')
[[ -n $verify && -n $report ]] || {
    echo "the quick start did not print the next commands" >&2
    exit 1
}
export PATH="$(dirname "$llm_audit"):$PATH"
step "$verify" bash -c "$verify"
step "$report" bash -c "$report"
grep -qi "<html" report.html || {
    echo "report.html is not an HTML report" >&2
    exit 1
}
echo "quick start: a tamper-evident log, verified, and an HTML report ($(wc -c <report.html) bytes)"
