//! `llm-audit report`: cost, errors, usage, latency (figures grouped by user, day, model,
//! provider or status), token anomalies, and all of them as one HTML page.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use rust_decimal::Decimal;

use crate::args::{filter, now, select_filter, RangeArgs, SelectArgs, SourceArgs};
use crate::figures::{cmp_keys, AnomalySpec, Group, GroupReport, GroupSpec, Key};
use crate::filter::Filter;
use crate::output::{self, warn, Cell, Format, Table};
use crate::source::Source;
use crate::{html, when};

/// `llm-audit report`.
#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
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
    /// One self-contained HTML page with charts and the anomaly table, on stdout or in --out
    /// FILE. Default: --from 30d.
    Html(HtmlArgs),
}

#[derive(Debug, Args)]
pub(crate) struct GroupArgs {
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
pub(crate) struct AnomalyArgs {
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
pub(crate) struct HtmlArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    range: RangeArgs,
    #[command(flatten)]
    select: SelectArgs,
    /// Write the page to this file (mode 0600) [default: stdout].
    #[arg(long, short = 'o', visible_alias = "output", value_name = "FILE")]
    out: Option<PathBuf>,
    /// Anomalies: check the entries of this last span of time.
    #[arg(long, default_value = "24h")]
    window: String,
    /// Anomalies: mean and standard deviation over this last span of time.
    #[arg(long, default_value = "7d")]
    baseline: String,
    /// Anomalies: flag input tokens above the mean plus this many standard deviations.
    #[arg(long, default_value = "3")]
    threshold: String,
    /// Verify the audit trail with this public key (from `llm-audit keygen`), as `verify` does,
    /// and show the verdict; without it the page says the trail was not verified.
    #[arg(long, value_name = "FILE")]
    public_key: Option<PathBuf>,
}

impl ReportCommand {
    /// `report cost`, ..., for error messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Cost(_) => "report cost",
            Self::Errors(_) => "report errors",
            Self::Usage(_) => "report usage",
            Self::Latency(_) => "report latency",
            Self::Anomalies(_) => "report anomalies",
            Self::Html(_) => "report html",
        }
    }
}

/// `llm-audit report ...`.
pub(crate) fn run(command: &ReportCommand) -> Result<(), String> {
    match command {
        ReportCommand::Cost(a) => run_group(GroupReport::Cost, a),
        ReportCommand::Errors(a) => run_group(GroupReport::Errors, a),
        ReportCommand::Usage(a) => run_group(GroupReport::Usage, a),
        ReportCommand::Latency(a) => run_group(GroupReport::Latency, a),
        ReportCommand::Anomalies(a) => run_anomalies(a),
        ReportCommand::Html(a) => run_html(a),
    }
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
    let as_of = now(as_of)?;
    let window_span = when::span("--window", window)?;
    let baseline_span = when::span("--baseline", baseline)?;
    // Both spans end at `as_of`: each must start within the range of times.
    when::back("--window", window, as_of, window_span)?;
    when::back("--baseline", baseline, as_of, baseline_span)?;
    Ok(AnomalySpec {
        as_of,
        window: window_span,
        baseline: baseline_span,
        threshold,
    })
}

/// The note on the events left out of a report: under a table, or on stderr beside CSV and JSON
/// lines, where a script does not trip on it.
fn note_events(source: &Source, table: &mut Table, format: Format) {
    if let Some(note) = source.events().note() {
        match format {
            Format::Table => table.notes.push(note),
            _ => warn(&note),
        }
    }
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
    let format = Format::or_default(args.format);
    let mut table = table(report, &spec, groups);
    note_events(&source, &mut table, format);
    output::print(&table, format)?;
    source.finish();
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
    let format = Format::or_default(args.format);
    // The baseline goes where a reader sees it and a script does not trip on it.
    if format == Format::Table {
        output::say(&found.summary(&spec))?;
    } else {
        warn(&found.summary(&spec));
    }
    output::print(&found.table(), format)?;
    source.finish();
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
    let page = html::report(&mut source, &filter, &spec, args.public_key.as_deref())?;
    match &args.out {
        // Mode 0600, as the logs are.
        Some(path) => html::write_file(path, &page)?,
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(page.as_bytes()).and_then(|()| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(format!("cannot write: {e}"))
                }
                _ => {}
            }
        }
    }
    if let Some(note) = source.events().note() {
        warn(&note);
    }
    source.finish();
    match &args.out {
        Some(path) => warn(&format!("wrote {}", path.display())),
        None if std::io::stdout().is_terminal() => {
            warn("the page went to the terminal: redirect it (> report.html) or give --out FILE")
        }
        None => {}
    }
    Ok(())
}

/// Orders the groups of `report` and lays them out.
pub(crate) fn table(report: GroupReport, spec: &GroupSpec, mut groups: Vec<Group>) -> Table {
    match report {
        GroupReport::Cost => {
            groups.sort_by(|a, b| b.cost.cmp(&a.cost).then_with(|| cmp_keys(&a.keys, &b.keys)))
        }
        GroupReport::Errors => groups.sort_by(|a, b| {
            b.error_rate()
                .cmp(&a.error_rate())
                .then_with(|| cmp_keys(&a.keys, &b.keys))
        }),
        GroupReport::Usage | GroupReport::Latency => {
            groups.sort_by(|a, b| cmp_keys(&a.keys, &b.keys))
        }
    }
    let keys = spec.keys.iter().map(|k| k.column());
    let figures: &[&str] = match report {
        GroupReport::Cost => &["requests", "total_cost", "unpriced_calls", "avg_latency_ms"],
        GroupReport::Errors => &["errors", "total", "error_rate"],
        GroupReport::Usage => &[
            "requests",
            "input_tokens",
            "output_tokens",
            "thinking_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "total_cost",
            "unpriced_calls",
        ],
        GroupReport::Latency => &["requests", "p50_ms", "p95_ms", "avg_latency_ms"],
    };
    let mut table = Table::new(keys.chain(figures.iter().copied()));
    for g in &groups {
        let mut row: Vec<Cell> = g.key_cells().collect();
        row.extend(match report {
            GroupReport::Cost => vec![
                Cell::Int(g.requests),
                Cell::Cost(g.cost_sum()),
                Cell::Int(g.unpriced),
                Cell::Fixed2(g.avg_latency()),
            ],
            GroupReport::Errors => vec![
                Cell::Int(g.errors),
                Cell::Int(g.requests),
                Cell::Fixed2(g.error_rate()),
            ],
            GroupReport::Usage => vec![
                Cell::Int(g.requests),
                Cell::Int(g.input),
                Cell::Int(g.output),
                Cell::Int(g.thinking),
                Cell::Int(g.cache_read),
                Cell::Int(g.cache_write),
                Cell::Cost(g.cost_sum()),
                Cell::Int(g.unpriced),
            ],
            GroupReport::Latency => vec![
                Cell::Int(g.requests),
                g.p50.map_or(Cell::Null, Cell::Int),
                g.p95.map_or(Cell::Null, Cell::Int),
                Cell::Fixed2(g.avg_latency()),
            ],
        });
        table.rows.push(row);
    }
    if matches!(report, GroupReport::Cost | GroupReport::Usage) {
        let requests: u64 = groups.iter().map(|g| g.requests).sum();
        let unpriced: u64 = groups.iter().map(|g| g.unpriced).sum();
        if unpriced > 0 {
            table.notes.push(format!(
                "{unpriced} of {requests} calls {} no price (cost_usd null; see their \
                 cost_note): a total_cost over any of them is a lower bound (\"at least\"), \
                 and \"unknown\" where no call of the group is priced",
                if unpriced == 1 { "has" } else { "have" }
            ));
        }
    }
    table
}
