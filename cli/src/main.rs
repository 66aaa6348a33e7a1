//! `llm-audit`: query, report on and verify tracing-llm-audit audit trails.
//!
//! Commands so far: `query` (entries of a JSONL directory, filtered, as a table, JSON lines or
//! CSV), `migrate` (apply the PostgreSQL schema) and `roles` (print the SQL of the append-only
//! roles). Reports, `tail`, PostgreSQL queries and `verify` come with their issues.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use time::OffsetDateTime;
use tracing_llm_audit::Status;

mod query;
mod scan;
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
    /// Entries of a JSONL audit directory that match the filters.
    Query(Box<QueryArgs>),
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

#[derive(Debug, clap::Args)]
struct QueryArgs {
    /// The JSONL audit directory.
    #[arg(long, default_value = "./audit_logs")]
    dir: PathBuf,
    /// From this time on: RFC 3339, a date, or a span back from now (7d, 24h, 30m).
    #[arg(long)]
    from: Option<String>,
    /// Before this time (a date includes its whole day).
    #[arg(long)]
    to: Option<String>,
    /// Only this user.
    #[arg(long)]
    user: Option<String>,
    /// Only this model (requested or answering).
    #[arg(long)]
    model: Option<String>,
    /// Only this provider.
    #[arg(long)]
    provider: Option<String>,
    /// Only this status: success, error or blocked.
    #[arg(long)]
    status: Option<String>,
    /// Only this request id.
    #[arg(long)]
    request_id: Option<String>,
    /// Only this trace id.
    #[arg(long)]
    trace_id: Option<String>,
    /// At most this many entries.
    #[arg(long)]
    limit: Option<usize>,
    /// Output format; default: table on a terminal, JSON lines otherwise.
    #[arg(long, value_enum)]
    format: Option<query::Format>,
    /// A line that is not an entry is an error, not a warning.
    #[arg(long)]
    strict: bool,
}

fn run_query(args: QueryArgs) -> Result<(), String> {
    let now = OffsetDateTime::now_utc();
    let from = args
        .from
        .as_deref()
        .map(|v| when::parse(v, now, false).map_err(|e| format!("--from: {e}")))
        .transpose()?;
    let to = args
        .to
        .as_deref()
        .map(|v| when::parse(v, now, true).map_err(|e| format!("--to: {e}")))
        .transpose()?;
    let status = args
        .status
        .as_deref()
        .map(|s| {
            Status::parse(s).ok_or_else(|| {
                format!("--status: `{s}` is not a status; use success, error or blocked")
            })
        })
        .transpose()?;
    let filter = query::Filter {
        from,
        to,
        user: args.user,
        model: args.model,
        provider: args.provider,
        status,
        request_id: args.request_id,
        trace_id: args.trace_id,
    };
    let files = scan::files(&args.dir, from, to)?;
    let stdout = std::io::stdout();
    let format = args.format.unwrap_or(if stdout.is_terminal() {
        query::Format::Table
    } else {
        query::Format::Jsonl
    });
    let mut printer =
        query::Printer::new(stdout.lock(), format).map_err(|e| format!("cannot write: {e}"))?;
    let mut printed = 0;
    let mut skipped = 0;
    let mut write_error = None;
    scan::entries(
        &files,
        |entry| {
            if !filter.matches(&entry) {
                return true;
            }
            if let Err(e) = printer.print(&entry) {
                write_error = Some(e);
                return false;
            }
            printed += 1;
            args.limit.is_none_or(|limit| printed < limit)
        },
        |bad| {
            let message = format!("{}:{}: {}", bad.file.display(), bad.line, bad.reason);
            if args.strict {
                return Err(message);
            }
            eprintln!("llm-audit: skipped {message}");
            skipped += 1;
            Ok(())
        },
    )?;
    match write_error {
        // A closed pipe (`| head`) ends the output, not in an error.
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Some(e) => return Err(format!("cannot write: {e}")),
        None => {}
    }
    printer.finish().map_err(|e| format!("cannot write: {e}"))?;
    if skipped > 0 {
        eprintln!("llm-audit: {skipped} line(s) were not audit entries and were skipped");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Query(args)) => match run_query(*args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("llm-audit query: {message}");
                ExitCode::FAILURE
            }
        },
        None => {
            println!(
                "llm-audit {}: run `llm-audit --help` for the commands",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Some(Command::Roles) => {
            print!("{}", tracing_llm_audit::sink::postgres::ROLES_SQL);
            ExitCode::SUCCESS
        }
        Some(Command::Migrate { postgres }) => {
            match tracing_llm_audit::sink::postgres::migrate(&postgres) {
                Ok(0) => {
                    println!("the schema is up to date");
                    ExitCode::SUCCESS
                }
                Ok(n) => {
                    println!("applied {n} migration(s)");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("llm-audit migrate: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
