#!/usr/bin/env bash
# CI: every cargo-fuzz target of fuzz/ runs for a bounded time from its committed corpus; a
# crash, a failed assertion, an input slower than 10 s or an allocation past 2 GiB fails the run.
#
#   bash .ci/fuzz.sh                      # all targets, FUZZ_SECONDS (default 30) each
#   FUZZ_SECONDS=600 bash .ci/fuzz.sh sse # one target, longer
#
# What the fuzzer finds stays out of the committed corpus (it goes to a temporary directory);
# a failing input is saved under fuzz/artifacts/<target>/ and printed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-30}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (about 2 minutes)"
    cargo install cargo-fuzz --locked
fi

# The machine's one toolchain is stable. Without a sanitizer, cargo fuzz needs no nightly flag;
# the parsers are safe Rust, so the assertions in the targets are the oracle, and the build and
# the runs are about twice as fast as under AddressSanitizer.
flags=(-O --sanitizer none)

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "== cargo fuzz build (${targets[*]})"
cargo fuzz build "${flags[@]}"

failed=()
for target in "${targets[@]}"; do
    echo "== cargo fuzz run $target for ${seconds}s"
    found="$(mktemp -d)"
    if ! cargo fuzz run "${flags[@]}" "$target" "$found" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        -print_final_stats=1; then
        failed+=("$target")
    fi
    rm -rf "$found"
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing failed: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "== fuzzing: ${targets[*]} passed, ${seconds}s each"
