//! `llm-audit`: query, report on and verify tracing-llm-audit audit trails.
//!
//! For now it prints its version and help; the query, report and verify commands come with
//! their issues.

use clap::Parser;

/// Query, report on and verify the audit trail that tracing-llm-audit writes.
#[derive(Debug, Parser)]
#[command(name = "llm-audit", version, about, long_about = None)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "llm-audit {}: no command yet; run `llm-audit --help`",
        env!("CARGO_PKG_VERSION")
    );
}
