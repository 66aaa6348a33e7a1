#!/usr/bin/env bash
# Counts the instructions a plain span costs the calling thread, with and without `AuditLayer`,
# behind each subscriber of `benches/passthrough.rs` (callgrind, collecting only inside the
# bench's `measured_spans`). Unlike times on a shared 2-core machine, these counts do not move
# with the load, so they settle differences of a few nanoseconds that medians cannot.
#
#   scripts/passthrough_instructions.sh [SPANS]     (default 20000)
#
# Prints one line per subscriber for scripts/benchmarks.sh:
#   llm-audit-bench passthrough_instructions/<subscriber> instructions_per_span=<n>
#       audit_layer_instructions_per_span=<n>
# The first counts the whole calling thread; the second only the audit layer's own callbacks
# (inclusive of what they call), which is exact where the thread's count also carries another
# subscriber's variations (a queue's growth, timestamps being formatted).
# Needs valgrind. Honours CARGO_TARGET_DIR. PASSTHROUGH_PROFILE=dev counts on the debug build that
# `cargo test` already made (CI's smoke run: the counts then mean nothing, the script is checked);
# the default is the optimized bench build, the one whose counts BENCHMARKS.md reports.
set -euo pipefail
cd "$(dirname "$0")/.."

spans=${1:-20000}
if ! command -v valgrind >/dev/null; then
    echo "skipped: passthrough instruction counts need valgrind"
    exit 0
fi
if [[ ${PASSTHROUGH_PROFILE:-bench} == dev ]]; then
    build=(cargo test --workspace --all-features --bench passthrough --no-run)
else
    build=(cargo bench --workspace --all-features --bench passthrough --no-run)
fi
# The benchmarks are a crate of their own (benches/): cargo names the source `passthrough.rs`.
bench=$("${build[@]}" 2>&1 | sed -n 's/.*Executable \(benches\/\)\{0,1\}passthrough.rs (\(.*\))$/\2/p')
[[ -x $bench ]] || { echo "cannot find the passthrough bench executable" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for subscriber in no_subscriber noop_layer noop_layer+audit_layer fmt_json fmt_json+audit_layer \
    tracing_opentelemetry_batch tracing_opentelemetry_batch+audit_layer; do
    LLM_AUDIT_PASSTHROUGH_SPANS=$spans LLM_AUDIT_PASSTHROUGH_SUBSCRIBER=$subscriber \
        valgrind --tool=callgrind --toggle-collect='*measured_spans*' \
        --callgrind-out-file="$out/callgrind.out" "$bench" >"$out/log" 2>&1 || {
        cat "$out/log" >&2
        exit 1
    }
    collected=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/log")
    [[ -n $collected ]] || { cat "$out/log" >&2; exit 1; }
    # The audit layer's own callbacks, with what they call (inclusive): exact, where the whole
    # thread's count also carries other subscribers' variations (buffer growth, formatting).
    own=$(callgrind_annotate --inclusive=yes --threshold=100 "$out/callgrind.out" 2>/dev/null |
        { grep -E 'tracing_llm_audit::[^ ]* as tracing_subscriber::layer::Layer<S>>::' || true; } |
        awk '{gsub(",", "", $1); sum += $1} END {print sum + 0}')
    echo "llm-audit-bench passthrough_instructions/$subscriber" \
        "instructions_per_span=$(python3 -c "print(f'{$collected / $spans:.1f}')")" \
        "audit_layer_instructions_per_span=$(python3 -c "print(f'{$own / $spans:.1f}')")"
done
