//! `llm-audit`: query, report on and verify tracing-llm-audit audit trails.
//!
//! Every command reads a JSONL directory (`--dir`, default `./audit_logs`) or PostgreSQL
//! (`--postgres URL`, or `LLM_AUDIT_DATABASE_URL` when no `--dir` is given). On PostgreSQL the
//! work is done by SQL; a JSONL directory is scanned as a stream, on every core.
//!
//! One module per command, with its options and its `run`: `query`, `report` (with `html`, its
//! page), `reprice`, `tail`, `verify`, `keygen`, `show`, `retention`, `erase`, `migrate` (and
//! `roles`). What several commands share is in modules that import no command:
//!
//! - `args`: the shared options (where, which, when) and what they become;
//! - `when`: the one parser of times and spans; `filter`: which entries;
//! - `source`, `scan`, `row`, `progress`: reading a JSONL directory or PostgreSQL;
//! - `figures`: the sums, percentiles and anomalies of the reports;
//! - `listing`, `output`: how entries and tables are printed, money, escaping;
//! - `log`, `files`: changing an audit log in place (retention, erasure) and what `verify`
//!   reads of it.
//!
//! Only `retention` uses another command, `verify` (it checks the log before it signs
//! tombstones).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod erase;
mod figures;
mod files;
mod filter;
mod html;
mod keygen;
mod listing;
mod log;
mod migrate;
mod output;
mod progress;
mod query;
mod report;
mod reprice;
mod retention;
mod row;
mod scan;
mod show;
mod source;
mod tail;
mod verify;
mod when;

/// Query, report on and verify the audit trail that tracing-llm-audit writes.
#[derive(Debug, Parser)]
#[command(name = "llm-audit", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Entries that match the filters, as a table, JSON lines or CSV.
    Query(Box<query::QueryArgs>),
    /// Figures over the entries: cost, errors, usage, latency, anomalies, or all as an HTML page.
    #[command(subcommand)]
    Report(Box<report::ReportCommand>),
    /// The stored entries' costs computed again with other prices (a LiteLLM price file, or
    /// the built-in table), beside the stored costs, per model, user and day. The entries are
    /// not changed. Default: --by model,user,day --from 30d.
    Reprice(Box<reprice::RepriceArgs>),
    /// Follow a JSONL directory (or the PostgreSQL table) and print entries as they arrive.
    Tail(Box<tail::TailArgs>),
    /// Check the hash chains and signed checkpoints of a tamper-evident JSONL directory. Exit
    /// code 0: every entry is covered by a valid signed checkpoint; 2: problems; 3: no problem,
    /// but some entries are covered only by the unkeyed chain (the tail of a writer that crashed
    /// after its last checkpoint); 1: could not verify.
    Verify(Box<verify::VerifyArgs>),
    /// Make an Ed25519 key pair for signing checkpoints: PREFIX.key (secret, mode 0600) and
    /// PREFIX.pub (all a verifier needs). With --keyring: make a content keyring, or add a new
    /// current key to one (rotation). With --hash-key: print a key for content hashes, the value
    /// of LLM_AUDIT_HASH_KEY.
    Keygen(keygen::KeygenArgs),
    /// One entry, whole, as JSON; --decrypt shows its kept content (needs the keyring).
    Show(Box<show::ShowArgs>),
    /// Remove what a retention policy says has expired.
    #[command(subcommand)]
    Retention(retention::RetentionCommand),
    /// GDPR erasure: replace a user's id by a keyed pseudonym and remove their content,
    /// leaving every chain verifiable.
    Erase(Box<erase::EraseArgs>),
    /// Apply the PostgreSQL migrations (versioned, idempotent) as a role that may create
    /// tables, for deployments whose application role may only insert.
    Migrate {
        /// Connection string (URL or key=value); default: LLM_AUDIT_DATABASE_URL.
        #[arg(long, env = "LLM_AUDIT_DATABASE_URL", hide_env_values = true)]
        postgres: String,
    },
    /// Print the SQL that creates the owner, writer and reader roles of the append-only table.
    Roles,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        println!(
            "llm-audit {}: run `llm-audit --help` for the commands",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    };
    let (name, result) = match &command {
        Command::Query(args) => ("query", query::run(args)),
        Command::Report(command) => (command.name(), report::run(command)),
        Command::Reprice(args) => ("reprice", reprice::run(args)),
        Command::Tail(args) => ("tail", tail::run(args)),
        Command::Verify(args) => match verify::run(args) {
            Ok(verify::Verdict::Intact) => return ExitCode::SUCCESS,
            Ok(verify::Verdict::Problems) => return ExitCode::from(2),
            Ok(verify::Verdict::Unsigned) => return ExitCode::from(3),
            Err(e) => ("verify", Err(e)),
        },
        Command::Keygen(args) => ("keygen", keygen::run(args)),
        Command::Show(args) => ("show", show::run(args)),
        Command::Retention(command) => ("retention apply", retention::run(command)),
        Command::Erase(args) => ("erase", erase::run(args)),
        Command::Migrate { postgres } => ("migrate", migrate::migrate(postgres)),
        Command::Roles => ("roles", migrate::roles()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // The message may quote what the logs hold: escaped, as every warning is.
            eprintln!("llm-audit {name}: {}", output::escape(&message));
            ExitCode::FAILURE
        }
    }
}
