//! `llm-audit`: query, report on and verify tracing-llm-audit audit trails.
//!
//! Every command reads a JSONL directory (`--dir`, default `./audit_logs`) or PostgreSQL
//! (`--postgres URL`, or `LLM_AUDIT_DATABASE_URL` when no `--dir` is given). On PostgreSQL the
//! work is done by SQL; a JSONL directory is scanned as a stream, on every core.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use tracing_llm_audit::Status;

mod erase;
mod html;
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

use query::{Filter, Format};
use report::{AnomalySpec, GroupReport, Key};
use source::Source;

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
    Query(Box<QueryArgs>),
    /// Figures over the entries: cost, errors, usage, latency, anomalies, or all as an HTML page.
    #[command(subcommand)]
    Report(Box<ReportCommand>),
    /// The stored entries' costs computed again with other prices (a LiteLLM price file, or
    /// the built-in table), beside the stored costs, per model, user and day. The entries are
    /// not changed. Default: --by model,user,day --from 30d.
    Reprice(Box<RepriceArgs>),
    /// Follow a JSONL directory (or the PostgreSQL table) and print entries as they arrive.
    Tail(Box<TailArgs>),
    /// Check the hash chains and signed checkpoints of a tamper-evident JSONL directory. Exit
    /// code 0: every entry is covered by a valid signed checkpoint; 2: problems; 3: no problem,
    /// but some entries are covered only by the unkeyed chain (the tail of a writer that crashed
    /// after its last checkpoint); 1: could not verify.
    Verify(Box<VerifyArgs>),
    /// Make an Ed25519 key pair for signing checkpoints: PREFIX.key (secret, mode 0600) and
    /// PREFIX.pub (all a verifier needs). With --keyring: make a content keyring, or add a new
    /// current key to one (rotation).
    Keygen {
        /// Path prefix of the two files.
        #[arg(long, default_value = "llm-audit-signing")]
        out: PathBuf,
        /// A content keyring file (mode 0600) to create, or to add a key to.
        #[arg(long, conflicts_with = "out")]
        keyring: Option<PathBuf>,
        /// The new key's id [default: content-<UTC date and time>].
        #[arg(long, requires = "keyring")]
        key_id: Option<String>,
    },
    /// One entry, whole, as JSON; --decrypt shows its kept content (needs the keyring).
    Show(Box<ShowArgs>),
    /// Remove what a retention policy says has expired.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// GDPR erasure: replace a user's id by a keyed pseudonym and remove their content,
    /// leaving every chain verifiable.
    Erase(Box<EraseArgs>),
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

/// Where the entries are.
#[derive(Debug, Args)]
struct SourceArgs {
    /// The JSONL audit directory [default: ./audit_logs].
    #[arg(long, conflicts_with = "postgres")]
    dir: Option<PathBuf>,
    /// PostgreSQL connection string (URL or key=value) [default: LLM_AUDIT_DATABASE_URL when
    /// --dir is not given].
    #[arg(long)]
    postgres: Option<String>,
    /// A line that is not an entry is an error, not a warning.
    #[arg(long)]
    strict: bool,
}

impl SourceArgs {
    fn open(&self) -> Result<Source, String> {
        let env = || {
            std::env::var("LLM_AUDIT_DATABASE_URL")
                .ok()
                .filter(|v| !v.is_empty())
        };
        match (&self.dir, &self.postgres) {
            (_, Some(url)) => Source::postgres(url),
            (Some(dir), None) => Ok(Source::jsonl(dir.clone(), self.strict)),
            (None, None) => match env() {
                Some(url) => Source::postgres(&url),
                None => Ok(Source::jsonl(PathBuf::from("./audit_logs"), self.strict)),
            },
        }
    }
}

/// Which entries.
#[derive(Debug, Args)]
struct SelectArgs {
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
}

/// When.
#[derive(Debug, Args)]
struct RangeArgs {
    /// From this time on: RFC 3339, a date, or a span back from now (7d, 24h, 30m).
    #[arg(long)]
    from: Option<String>,
    /// Before this time (a date includes its whole day).
    #[arg(long)]
    to: Option<String>,
    /// The "now" that relative times count back from [default: the current time].
    #[arg(long, value_name = "TIME")]
    as_of: Option<String>,
}

#[derive(Debug, Args)]
struct QueryArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    range: RangeArgs,
    #[command(flatten)]
    select: SelectArgs,
    /// At most this many entries.
    #[arg(long)]
    limit: Option<usize>,
    /// Output format [default: table on a terminal, JSON lines otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
}

#[derive(Debug, Args)]
struct GroupArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    range: RangeArgs,
    #[command(flatten)]
    select: SelectArgs,
    /// Group by these columns, comma-separated: user, day, model, provider, status.
    #[arg(long)]
    by: Option<String>,
    /// Output format [default: table on a terminal, JSON lines otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
}

#[derive(Debug, Args)]
struct RepriceArgs {
    /// The new prices: a price file in LiteLLM's format (model_prices_and_context_window.json),
    /// which is the whole table (a model it lacks is unpriced), or `builtin` for the built-in
    /// table (a file of that name: ./builtin).
    #[arg(long, value_name = "FILE|builtin")]
    prices: PathBuf,
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    range: RangeArgs,
    #[command(flatten)]
    select: SelectArgs,
    /// Group by these columns, comma-separated: model, user, day, provider, status.
    #[arg(long, default_value = reprice::DEFAULT_BY)]
    by: String,
    /// Output format [default: table on a terminal, JSON lines otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
}

#[derive(Debug, Args)]
struct AnomalyArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    select: SelectArgs,
    /// Check the entries of this last span of time.
    #[arg(long, default_value = "24h")]
    window: String,
    /// Mean and standard deviation over this last span of time.
    #[arg(long, default_value = "7d")]
    baseline: String,
    /// Flag input tokens above the mean plus this many standard deviations.
    #[arg(long, default_value = "3")]
    threshold: String,
    /// The "now" that the spans end at [default: the current time].
    #[arg(long, value_name = "TIME")]
    as_of: Option<String>,
    /// Output format [default: table on a terminal, JSON lines otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
}

#[derive(Debug, Args)]
struct HtmlArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    range: RangeArgs,
    #[command(flatten)]
    select: SelectArgs,
    /// Where to write the page.
    #[arg(short, long, default_value = "report.html")]
    output: PathBuf,
    /// Anomalies: check the entries of this last span of time.
    #[arg(long, default_value = "24h")]
    window: String,
    /// Anomalies: mean and standard deviation over this last span of time.
    #[arg(long, default_value = "7d")]
    baseline: String,
    /// Anomalies: flag input tokens above the mean plus this many standard deviations.
    #[arg(long, default_value = "3")]
    threshold: String,
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Cost by user and day (the reference design's report): requests, total cost, mean latency.
    /// Default: --by user,day --from 30d.
    Cost(GroupArgs),
    /// Errors and error rate (per 100 requests). Default: --by model --from 24h.
    Errors(GroupArgs),
    /// Tokens and cost. Default: --by day,model --from 30d.
    Usage(GroupArgs),
    /// Latency p50 and p95 (milliseconds). Default: --by model --from 30d.
    Latency(GroupArgs),
    /// Entries of the last 24 h whose input tokens exceed the 7-day mean by 3 standard
    /// deviations (window, baseline and threshold configurable).
    Anomalies(AnomalyArgs),
    /// One self-contained HTML page with charts and the anomaly table. Default: --from 30d.
    Html(HtmlArgs),
}

fn format_or_default(format: Option<Format>) -> Format {
    format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Jsonl
    })
}

fn now(as_of: Option<&str>) -> Result<OffsetDateTime, String> {
    let current = OffsetDateTime::now_utc();
    as_of
        .map(|v| when::parse(v, current, false).map_err(|e| format!("--as-of: {e}")))
        .transpose()
        .map(|at| at.unwrap_or(current))
}

fn filter(
    range: &RangeArgs,
    select: &SelectArgs,
    default_from: Option<&str>,
) -> Result<Filter, String> {
    let now = now(range.as_of.as_deref())?;
    let from = range
        .from
        .as_deref()
        .or(default_from)
        .map(|v| when::parse(v, now, false).map_err(|e| format!("--from: {e}")))
        .transpose()?;
    let to = range
        .to
        .as_deref()
        .map(|v| when::parse(v, now, true).map_err(|e| format!("--to: {e}")))
        .transpose()?;
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            return Err(format!("--from ({from}) is not before --to ({to})"));
        }
    }
    select_filter(
        select,
        Filter {
            from,
            to,
            ..Filter::default()
        },
    )
}

fn select_filter(select: &SelectArgs, mut filter: Filter) -> Result<Filter, String> {
    filter.status = select
        .status
        .as_deref()
        .map(|s| {
            Status::parse(s).ok_or_else(|| {
                format!("--status: `{s}` is not a status; use success, error or blocked")
            })
        })
        .transpose()?;
    filter.user.clone_from(&select.user);
    filter.model.clone_from(&select.model);
    filter.provider.clone_from(&select.provider);
    filter.request_id.clone_from(&select.request_id);
    filter.trace_id.clone_from(&select.trace_id);
    Ok(filter)
}

fn anomaly_spec(
    window: &str,
    baseline: &str,
    threshold: &str,
    as_of: Option<&str>,
) -> Result<AnomalySpec, String> {
    let threshold: Decimal = threshold
        .trim()
        .parse()
        .ok()
        .filter(|t: &Decimal| !t.is_sign_negative())
        .ok_or_else(|| {
            format!(
                "--threshold: `{threshold}` is not a number of standard deviations (like 3 or 2.5)"
            )
        })?;
    Ok(AnomalySpec {
        as_of: now(as_of)?,
        window: when::span(window).map_err(|e| format!("--window: {e}"))?,
        baseline: when::span(baseline).map_err(|e| format!("--baseline: {e}"))?,
        threshold,
    })
}

/// Closing words on stderr: how many lines were skipped.
fn finish(source: &Source) {
    if let Source::Jsonl(j) = source {
        if j.skipped() > 0 {
            eprintln!(
                "llm-audit: {} line(s) were not audit entries and were skipped",
                j.skipped()
            );
        }
        label_dir(&j.dir);
    }
}

/// Says what the figures of a JSONL directory rest on: nothing proves the entries of an
/// unchained directory unaltered, and day files of another prefix were not read.
fn label_dir(dir: &std::path::Path) {
    let read = scan::files(dir, None, None).unwrap_or_default();
    if !read.is_empty() && !scan::is_chained(dir) {
        eprintln!(
            "llm-audit: {} is not tamper-evident (written without a signing key): nothing \
             proves these entries unaltered",
            dir.display()
        );
    }
    let others = scan::other_prefix_files(dir);
    if let Some(first) = others.first() {
        eprintln!(
            "llm-audit: {} day file(s) with another prefix than audit_ were not read ({} \
             first)",
            others.len(),
            first.display()
        );
    }
}

fn write_table(table: &output::Table, format: Format) -> Result<(), String> {
    match table.write(&mut std::io::stdout().lock(), format) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| format!("cannot write: {e}")),
    }
}

fn run_query(args: &QueryArgs) -> Result<(), String> {
    let filter = filter(&args.range, &args.select, None)?;
    let mut source = args.source.open()?;
    let format = format_or_default(args.format);
    let mut printer = query::Printer::new(std::io::stdout().lock(), format)
        .map_err(|e| format!("cannot write: {e}"))?;
    let mut write_error = None;
    source.entries(&filter, args.limit, |entry| match printer.print(&entry) {
        Ok(()) => true,
        Err(e) => {
            write_error = Some(e);
            false
        }
    })?;
    match write_error {
        // A closed pipe (`| head`) ends the output, not in an error.
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Some(e) => return Err(format!("cannot write: {e}")),
        None => {}
    }
    printer.finish().map_err(|e| format!("cannot write: {e}"))?;
    finish(&source);
    Ok(())
}

fn run_group(report: GroupReport, args: &GroupArgs) -> Result<(), String> {
    let (by, from) = match report {
        GroupReport::Cost => ("user,day", "30d"),
        GroupReport::Errors => ("model", "24h"),
        GroupReport::Usage => ("day,model", "30d"),
        GroupReport::Latency => ("model", "30d"),
    };
    let keys = Key::parse_list(args.by.as_deref().unwrap_or(by))?;
    let filter = filter(&args.range, &args.select, Some(from))?;
    let mut source = args.source.open()?;
    let spec = report.spec(keys);
    let groups = source
        .groups(std::slice::from_ref(&spec), &filter)?
        .pop()
        .unwrap_or_default();
    write_table(&report.table(&spec, groups), format_or_default(args.format))?;
    finish(&source);
    Ok(())
}

fn run_reprice(args: &RepriceArgs) -> Result<(), String> {
    let keys = Key::parse_list(&args.by)?;
    let filter = filter(&args.range, &args.select, Some("30d"))?;
    let prices = reprice::Prices::load(&args.prices)?;
    let mut source = args.source.open()?;
    let mut tally = reprice::Reprice::new(keys);
    source.entries(&filter, None, |entry| {
        tally.add(&entry, &prices.table);
        true
    })?;
    let table = tally.table(&prices);
    let format = format_or_default(args.format);
    write_table(&table, format)?;
    // The footer goes under an aligned table; beside CSV and JSON lines, where a script does
    // not trip on it.
    if format != Format::Table {
        for note in &table.notes {
            eprintln!("llm-audit: {note}");
        }
    }
    finish(&source);
    Ok(())
}

fn run_anomalies(args: &AnomalyArgs) -> Result<(), String> {
    let spec = anomaly_spec(
        &args.window,
        &args.baseline,
        &args.threshold,
        args.as_of.as_deref(),
    )?;
    let filter = select_filter(&args.select, Filter::default())?;
    let mut source = args.source.open()?;
    let found = source.anomalies(&spec, &filter)?;
    let format = format_or_default(args.format);
    // The baseline goes where a reader sees it and a script does not trip on it.
    if format == Format::Table {
        println!("{}", found.summary(&spec));
    } else {
        eprintln!("llm-audit: {}", found.summary(&spec));
    }
    write_table(&found.table(), format)?;
    finish(&source);
    Ok(())
}

fn run_html(args: &HtmlArgs) -> Result<(), String> {
    let filter = filter(&args.range, &args.select, Some("30d"))?;
    let spec = anomaly_spec(
        &args.window,
        &args.baseline,
        &args.threshold,
        args.range.as_of.as_deref(),
    )?;
    let mut source = args.source.open()?;
    let page = html::report(&mut source, &filter, &spec)?;
    std::fs::write(&args.output, page)
        .map_err(|e| format!("cannot write {}: {e}", args.output.display()))?;
    finish(&source);
    eprintln!("llm-audit: wrote {}", args.output.display());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, result) = match cli.command {
        None => {
            println!(
                "llm-audit {}: run `llm-audit --help` for the commands",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        Some(Command::Roles) => {
            print!("{}", tracing_llm_audit::sink::postgres::ROLES_SQL);
            return ExitCode::SUCCESS;
        }
        Some(Command::Migrate { postgres }) => (
            "migrate",
            tracing_llm_audit::sink::postgres::migrate(&postgres)
                .map(|n| match n {
                    0 => println!("the schema is up to date"),
                    n => println!("applied {n} migration(s)"),
                })
                .map_err(|e| e.to_string()),
        ),
        Some(Command::Query(args)) => ("query", run_query(&args)),
        Some(Command::Reprice(args)) => ("reprice", run_reprice(&args)),
        Some(Command::Tail(args)) => ("tail", tail::run(&args)),
        Some(Command::Keygen {
            keyring: Some(path),
            key_id,
            ..
        }) => (
            "keygen",
            show::keygen_keyring(&path, key_id.as_deref()).map(|m| println!("{m}")),
        ),
        Some(Command::Keygen { out, .. }) => ("keygen", run_keygen(&out)),
        Some(Command::Show(args)) => ("show", run_show(&args)),
        Some(Command::Retention(RetentionCommand::Apply(args))) => {
            ("retention apply", run_retention(&args))
        }
        Some(Command::Erase(args)) => ("erase", run_erase(&args)),
        Some(Command::Verify(args)) => match run_verify(&args) {
            Ok(verify::Verdict::Intact) => return ExitCode::SUCCESS,
            Ok(verify::Verdict::Problems) => return ExitCode::from(2),
            Ok(verify::Verdict::Unsigned) => return ExitCode::from(3),
            Err(e) => ("verify", Err(e)),
        },
        Some(Command::Report(report)) => match *report {
            ReportCommand::Cost(a) => ("report cost", run_group(GroupReport::Cost, &a)),
            ReportCommand::Errors(a) => ("report errors", run_group(GroupReport::Errors, &a)),
            ReportCommand::Usage(a) => ("report usage", run_group(GroupReport::Usage, &a)),
            ReportCommand::Latency(a) => ("report latency", run_group(GroupReport::Latency, &a)),
            ReportCommand::Anomalies(a) => ("report anomalies", run_anomalies(&a)),
            ReportCommand::Html(a) => ("report html", run_html(&a)),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("llm-audit {name}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `llm-audit verify`.
#[derive(Debug, Args)]
struct VerifyArgs {
    /// The JSONL audit directory [default: ./audit_logs].
    #[arg(long, conflicts_with = "postgres")]
    dir: Option<PathBuf>,
    /// PostgreSQL connection string (URL or key=value) [default: LLM_AUDIT_DATABASE_URL when
    /// --dir is not given].
    #[arg(long)]
    postgres: Option<String>,
    /// The public key file (from `llm-audit keygen`).
    #[arg(long)]
    public_key: PathBuf,
    /// Output format of the problems [default: table on a terminal, JSON lines otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
}

fn run_verify(args: &VerifyArgs) -> Result<verify::Verdict, String> {
    let key = tracing_llm_audit::chain::VerifyingKey::from_file(&args.public_key)
        .map_err(|e| format!("--public-key: {e}"))?;
    let source = SourceArgs {
        dir: args.dir.clone(),
        postgres: args.postgres.clone(),
        strict: false,
    }
    .open()?;
    let mut report = match source {
        Source::Jsonl(jsonl) => verify::verify(&jsonl.dir, &key)?,
        Source::Postgres(mut pg) => verify::verify_postgres(&mut pg, &key)?,
    };
    report.refuse_empty();
    let format = format_or_default(args.format);
    if report.has_findings() {
        write_table(&report.table(), format)?;
    }
    if format == Format::Table {
        println!("{}", report.summary());
    } else {
        eprintln!("llm-audit: {}", report.summary());
    }
    Ok(report.verdict())
}

fn run_keygen(out: &std::path::Path) -> Result<(), String> {
    let key = tracing_llm_audit::chain::SigningKey::generate().map_err(|e| e.to_string())?;
    let secret = out.with_extension("key");
    let public = out.with_extension("pub");
    for path in [&secret, &public] {
        if path.exists() {
            return Err(format!("{} exists; it is not overwritten", path.display()));
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = |path: &std::path::Path, text: &str, options: &std::fs::OpenOptions| {
        use std::io::Write;
        options
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(&secret, &key.to_secret_text(), &options)?;
    let mut public_options = std::fs::OpenOptions::new();
    public_options.write(true).create_new(true);
    write(
        &public,
        &key.verifying_key().to_public_text(),
        &public_options,
    )?;
    println!(
        "key {}: secret in {} (keep it away from the logs), public in {}",
        key.key_id(),
        secret.display(),
        public.display()
    );
    Ok(())
}

/// `llm-audit retention`.
#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Remove expired data: whole day files or partitions where possible, otherwise the expired
    /// entries or members; signed tombstones make `verify` report the removed entries as
    /// expired by policy.
    Apply(Box<RetentionArgs>),
}

#[derive(Debug, Args)]
struct RetentionArgs {
    /// standard, hipaa, gdpr (give every period) or custom (give every period).
    #[arg(long)]
    policy: String,
    /// How long entries are kept (90d, 2y, never, forever).
    #[arg(long)]
    metadata: Option<String>,
    /// How long content hashes are kept.
    #[arg(long)]
    hashes: Option<String>,
    /// How long kept content is kept.
    #[arg(long)]
    content: Option<String>,
    /// How long error details are kept.
    #[arg(long)]
    errors: Option<String>,
    /// Apply as at this time (RFC 3339) [default: now].
    #[arg(long)]
    as_of: Option<String>,
    /// Print what would be removed; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The Ed25519 key that signs the checkpoints (from `llm-audit keygen`): signs the
    /// tombstones. Needed when chained entries expire.
    #[arg(long)]
    signing_key: Option<PathBuf>,
    /// Apply even if the log does not verify now (the tombstones then cover what was there).
    #[arg(long)]
    force: bool,
    /// The JSONL audit directory [default: ./audit_logs].
    #[arg(long, conflicts_with = "postgres")]
    dir: Option<PathBuf>,
    /// PostgreSQL connection string, as the owner role.
    #[arg(long)]
    postgres: Option<String>,
}

fn retention_policy(args: &RetentionArgs) -> Result<tracing_llm_audit::RetentionPolicy, String> {
    use tracing_llm_audit::retention::{Keep, Periods, RetentionPolicy};
    let given = [
        ("--metadata", &args.metadata),
        ("--hashes", &args.hashes),
        ("--content", &args.content),
        ("--errors", &args.errors),
    ];
    let periods = || -> Result<Periods, String> {
        let mut keep = Vec::new();
        for (flag, value) in given {
            let value = value.as_deref().ok_or_else(|| {
                format!(
                    "the {} policy needs every period: {flag} is missing (90d, 2y, never or forever)",
                    args.policy
                )
            })?;
            keep.push(value.parse::<Keep>().map_err(|e| format!("{flag}: {e}"))?);
        }
        Ok(Periods {
            metadata: keep[0],
            content_hashes: keep[1],
            content: keep[2],
            error_details: keep[3],
        })
    };
    match args.policy.as_str() {
        "standard" | "hipaa" => {
            if let Some((flag, _)) = given.iter().find(|(_, v)| v.is_some()) {
                return Err(format!(
                    "the {} policy has fixed periods; {flag} is for gdpr and custom",
                    args.policy
                ));
            }
            Ok(if args.policy == "standard" {
                RetentionPolicy::standard()
            } else {
                RetentionPolicy::hipaa()
            })
        }
        "gdpr" => RetentionPolicy::gdpr(periods()?).map_err(|e| e.to_string()),
        "custom" => RetentionPolicy::custom("custom", periods()?).map_err(|e| e.to_string()),
        other => Err(format!(
            "unknown policy {other:?}: standard, hipaa, gdpr or custom"
        )),
    }
}

fn signing_key(
    path: Option<&std::path::Path>,
) -> Result<Option<tracing_llm_audit::chain::SigningKey>, String> {
    path.map(|p| {
        tracing_llm_audit::chain::SigningKey::from_file(p)
            .map_err(|e| format!("--signing-key: {e}"))
    })
    .transpose()
}

fn run_retention(args: &RetentionArgs) -> Result<(), String> {
    let policy = retention_policy(args)?;
    let as_of = match &args.as_of {
        Some(t) => {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("--as-of {t:?}: {e} (RFC 3339, e.g. 2026-11-24T00:00:00Z)"))?
        }
        None => time::OffsetDateTime::now_utc(),
    };
    let key = signing_key(args.signing_key.as_deref())?;
    let source = SourceArgs {
        dir: args.dir.clone(),
        postgres: args.postgres.clone(),
        strict: false,
    }
    .open()?;
    let outcome = match source {
        Source::Jsonl(jsonl) => {
            scan::refuse_other_prefixes(&jsonl.dir, "retention")?;
            if let (Some(key), false) = (&key, args.force) {
                retention::check_intact(&verify::verify(&jsonl.dir, &key.verifying_key())?)?;
            }
            retention::apply_jsonl(&jsonl.dir, &policy, as_of, key.as_ref(), args.dry_run)?
        }
        Source::Postgres(mut pg) => {
            if let (Some(key), false) = (&key, args.force) {
                retention::check_intact(&verify::verify_postgres(&mut pg, &key.verifying_key())?)?;
            }
            retention::apply_postgres(&mut pg, &policy, as_of, key.as_ref(), args.dry_run)?
        }
    };
    for line in outcome.lines(args.dry_run, &policy) {
        println!("{line}");
    }
    Ok(())
}

/// `llm-audit erase`.
#[derive(Debug, Args)]
struct EraseArgs {
    /// The user id to erase.
    #[arg(long)]
    user: String,
    /// The Ed25519 key that signs the checkpoints: signs the erasure event's stream.
    #[arg(long)]
    signing_key: Option<PathBuf>,
    /// The JSONL audit directory [default: ./audit_logs].
    #[arg(long, conflicts_with = "postgres")]
    dir: Option<PathBuf>,
    /// PostgreSQL connection string, as the owner role.
    #[arg(long)]
    postgres: Option<String>,
    /// With --postgres: a PostgresSink's spill directory, whose waiting batches and
    /// dead-letter file hold entries too (repeatable) [default: ./audit_spill, the sink's
    /// default, when it exists]. The sink using it must be stopped.
    #[arg(long, requires = "postgres")]
    spill_dir: Vec<PathBuf>,
    /// With --postgres: a dead-letter file kept outside the spill directory (repeatable).
    #[arg(long, requires = "postgres")]
    dead_letter: Vec<PathBuf>,
}

fn run_erase(args: &EraseArgs) -> Result<(), String> {
    let key = tracing_llm_audit::HashKey::from_env()
        .map_err(|e| format!("{}: {e}", tracing_llm_audit::HASH_KEY_ENV))?
        .ok_or_else(|| {
            format!(
                "erase needs the key of the pseudonyms in {} (<key id>:<secret as hex>), the \
                 application's hash key",
                tracing_llm_audit::HASH_KEY_ENV
            )
        })?;
    if args.user.is_empty() {
        return Err("--user is empty".to_owned());
    }
    let signing = signing_key(args.signing_key.as_deref())?;
    let source = SourceArgs {
        dir: args.dir.clone(),
        postgres: args.postgres.clone(),
        strict: false,
    }
    .open()?;
    let (done, pseudonym) = match source {
        Source::Jsonl(jsonl) => {
            scan::refuse_other_prefixes(&jsonl.dir, "erase")?;
            erase::erase_jsonl(&jsonl.dir, &args.user, &key, signing.as_ref())?
        }
        Source::Postgres(mut pg) => {
            let url = args
                .postgres
                .clone()
                .or_else(|| std::env::var("LLM_AUDIT_DATABASE_URL").ok())
                .unwrap_or_default();
            let mut spill_dirs = args.spill_dir.clone();
            let default = PathBuf::from("audit_spill");
            if spill_dirs.is_empty() && default.is_dir() {
                eprintln!("llm-audit: erasing from the spill directory ./audit_spill too");
                spill_dirs.push(default);
            }
            let files = erase::SinkFiles::open(&spill_dirs, &args.dead_letter)?;
            erase::erase_postgres(&mut pg, &url, &args.user, &key, signing.as_ref(), &files)?
        }
    };
    let torn = match done.torn_lines {
        0 => String::new(),
        n => format!(" and {n} torn line(s)"),
    };
    println!(
        "erased user {:?} from {} entries{torn}; their id is now {pseudonym}; the erasure is \
         recorded",
        args.user, done.entries
    );
    Ok(())
}

/// `llm-audit show`.
#[derive(Debug, Args)]
struct ShowArgs {
    /// The entry's request id.
    request_id: String,
    #[command(flatten)]
    source: SourceArgs,
    /// Decrypt the kept content (system prompt, input, output) with the keyring.
    #[arg(long)]
    decrypt: bool,
    /// The content keyring [default: LLM_AUDIT_KEYRING].
    #[arg(long, requires = "decrypt")]
    keyring: Option<PathBuf>,
}

fn run_show(args: &ShowArgs) -> Result<(), String> {
    let keyring = show::keyring_for(args.decrypt, args.keyring.as_deref())?;
    let mut source = args.source.open()?;
    let text = show::show(&mut source, &args.request_id, keyring.as_ref())?;
    if let Source::Jsonl(j) = &source {
        label_dir(&j.dir);
    }
    use std::io::Write;
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| format!("cannot write: {e}"))
}

/// `llm-audit tail`.
#[derive(Debug, Args)]
struct TailArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    select: SelectArgs,
    /// Print the entries already there too (default: only new ones).
    #[arg(long)]
    from_start: bool,
    /// How often to look for new entries, in milliseconds.
    #[arg(long, default_value = "250")]
    poll_ms: u64,
    /// Output format [default: table on a terminal, JSON lines otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
}
