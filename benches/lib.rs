//! Nothing here: the crate exists for its benchmarks (`cargo bench -p llm-audit-benches`).
