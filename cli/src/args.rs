//! The options several commands share (where the entries are, which, when) and what they turn
//! into: a [`Source`], a [`Filter`], a time.

use std::path::{Path, PathBuf};

use clap::Args;
use time::OffsetDateTime;
use tracing_llm_audit::chain::SigningKey;
use tracing_llm_audit::Status;

use crate::filter::{self, Filter};
use crate::source::Source;
use crate::when;

/// Where the entries are.
#[derive(Debug, Args)]
pub(crate) struct SourceArgs {
    /// The JSONL audit directory [default: ./audit_logs].
    #[arg(long, conflicts_with = "postgres")]
    pub(crate) dir: Option<PathBuf>,
    /// PostgreSQL connection string (URL or key=value) [default: LLM_AUDIT_DATABASE_URL when
    /// --dir is not given].
    #[arg(long)]
    pub(crate) postgres: Option<String>,
    /// A line that is not an entry is an error, not a warning.
    #[arg(long)]
    pub(crate) strict: bool,
}

impl SourceArgs {
    pub(crate) fn open(&self) -> Result<Source, String> {
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
pub(crate) struct SelectArgs {
    /// Only this user.
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// Only this model (requested or answering).
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// Only this provider.
    #[arg(long)]
    pub(crate) provider: Option<String>,
    /// Only this status: success, error or blocked.
    #[arg(long)]
    pub(crate) status: Option<String>,
    /// Only this request id (a UUID).
    #[arg(long)]
    pub(crate) request_id: Option<String>,
    /// Only this trace id (32 hex digits).
    #[arg(long)]
    pub(crate) trace_id: Option<String>,
}

/// When.
#[derive(Debug, Args)]
pub(crate) struct RangeArgs {
    /// From this time on: RFC 3339, a date, or a span back from now (7d, 24h, 30m).
    #[arg(long)]
    pub(crate) from: Option<String>,
    /// Before this time (a date includes its whole day).
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// The "now" that relative times count back from [default: the current time].
    #[arg(long, value_name = "TIME")]
    pub(crate) as_of: Option<String>,
}

/// The time `--as-of` names, or the current time.
pub(crate) fn now(as_of: Option<&str>) -> Result<OffsetDateTime, String> {
    let current = OffsetDateTime::now_utc();
    match as_of {
        Some(v) => when::time("--as-of", v, current, false),
        None => Ok(current),
    }
}

/// The filter of `range` and `select`; `default_from` when `--from` is not given.
pub(crate) fn filter(
    range: &RangeArgs,
    select: &SelectArgs,
    default_from: Option<&str>,
) -> Result<Filter, String> {
    let now = now(range.as_of.as_deref())?;
    let from = range
        .from
        .as_deref()
        .or(default_from)
        .map(|v| when::time("--from", v, now, false))
        .transpose()?;
    let to = range
        .to
        .as_deref()
        .map(|v| when::time("--to", v, now, true))
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

/// `filter` with the selection of `select`, each value checked.
pub(crate) fn select_filter(select: &SelectArgs, mut filter: Filter) -> Result<Filter, String> {
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
    filter.request_id = select
        .request_id
        .as_deref()
        .map(|id| filter::request_id("--request-id", id))
        .transpose()?;
    filter.trace_id = select
        .trace_id
        .as_deref()
        .map(|id| filter::trace_id("--trace-id", id))
        .transpose()?;
    Ok(filter)
}

/// The key of `--signing-key`, if given.
pub(crate) fn signing_key(path: Option<&Path>) -> Result<Option<SigningKey>, String> {
    path.map(|p| SigningKey::from_file(p).map_err(|e| format!("--signing-key: {e}")))
        .transpose()
}
