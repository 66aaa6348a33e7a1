//! `llm-audit query`: the entries that match the filters, as a table, JSON lines or CSV.

use std::io::Write;

use time::OffsetDateTime;
use tracing_llm_audit::{AuditEntry, Status};

/// What an entry must match.
#[derive(Debug, Default, Clone)]
pub(crate) struct Filter {
    pub(crate) from: Option<OffsetDateTime>,
    pub(crate) to: Option<OffsetDateTime>,
    pub(crate) user: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) status: Option<Status>,
    pub(crate) request_id: Option<String>,
    pub(crate) trace_id: Option<String>,
}

impl Filter {
    pub(crate) fn matches(&self, e: &AuditEntry) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        self.from.is_none_or(|from| e.timestamp >= from)
            && self.to.is_none_or(|to| e.timestamp < to)
            && eq(&self.user, e.user_id.as_deref())
            && self.model.as_deref().is_none_or(|m| {
                e.model.as_deref() == Some(m) || e.response_model.as_deref() == Some(m)
            })
            && eq(&self.provider, e.provider.as_deref())
            && self.status.is_none_or(|s| e.status == s)
            && self
                .request_id
                .as_deref()
                .is_none_or(|id| e.request_id.to_string() == id.to_ascii_lowercase())
            && eq(&self.trace_id, e.trace_id.as_deref())
    }

    /// The same test on a row decoded for a report.
    pub(crate) fn matches_row(&self, row: &crate::row::Checked<'_>) -> bool {
        let r = &row.row;
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        self.from
            .is_none_or(|from| row.micros >= crate::row::micros_of(from))
            && self
                .to
                .is_none_or(|to| row.micros < crate::row::micros_of(to))
            && eq(&self.user, r.user_id.as_deref())
            && self.model.as_deref().is_none_or(|m| {
                r.model.as_deref() == Some(m) || r.response_model.as_deref() == Some(m)
            })
            && eq(&self.provider, r.provider.as_deref())
            && self.status.is_none_or(|s| r.status == s)
            && self
                .request_id
                .as_deref()
                .is_none_or(|id| r.request_id.eq_ignore_ascii_case(id))
            && eq(&self.trace_id, r.trace_id.as_deref())
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns (the default on a terminal).
    Table,
    /// One JSON entry per line, as stored (the default otherwise).
    Jsonl,
    /// Comma-separated values with a header.
    Csv,
}

pub(crate) const COLUMNS: [&str; 11] = [
    "timestamp",
    "request_id",
    "user_id",
    "provider",
    "model",
    "status",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms",
    "error_type",
];

fn cells(e: &AuditEntry) -> [String; 11] {
    let opt = |v: Option<&str>| v.unwrap_or("").to_owned();
    let num = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
    [
        e.timestamp
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        e.request_id.to_string(),
        opt(e.user_id.as_deref()),
        opt(e.provider.as_deref()),
        opt(e.billed_model()),
        e.status.as_str().to_owned(),
        num(e.input_tokens),
        num(e.output_tokens),
        e.cost_usd.map(|c| c.to_string()).unwrap_or_default(),
        e.latency_ms.to_string(),
        opt(e.error_type.as_deref()),
    ]
}

pub(crate) fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// One entry as a CSV row.
pub(crate) fn csv_row(e: &AuditEntry) -> String {
    let row: Vec<String> = cells(e).iter().map(|c| csv_field(c)).collect();
    row.join(",")
}

/// One entry on one line with fixed-width columns, for `tail` (which cannot wait to align).
pub(crate) fn tail_line(e: &AuditEntry) -> String {
    let c = cells(e).map(|c| c.replace(char::is_control, " "));
    format!(
        "{:<27}  {:<36}  {:<12}  {:<10}  {:<24}  {:<7}  {:>8}  {:>8}  {:>12}  {:>8}  {}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10]
    )
    .trim_end()
    .to_owned()
}

/// Writes matching entries as they come (JSONL, CSV) or once all are known (a table, whose
/// columns are as wide as their widest cell).
pub(crate) struct Printer<W: Write> {
    out: W,
    format: Format,
    rows: Vec<[String; 11]>,
}

impl<W: Write> Printer<W> {
    pub(crate) fn new(mut out: W, format: Format) -> std::io::Result<Self> {
        if format == Format::Csv {
            writeln!(out, "{}", COLUMNS.join(","))?;
        }
        Ok(Self {
            out,
            format,
            rows: Vec::new(),
        })
    }

    pub(crate) fn print(&mut self, e: &AuditEntry) -> std::io::Result<()> {
        match self.format {
            Format::Jsonl => {
                serde_json::to_writer(&mut self.out, e)?;
                writeln!(self.out)
            }
            Format::Csv => writeln!(self.out, "{}", csv_row(e)),
            Format::Table => {
                // Control characters would break the alignment (and a terminal).
                self.rows
                    .push(cells(e).map(|c| c.replace(char::is_control, " ")));
                Ok(())
            }
        }
    }

    pub(crate) fn finish(mut self) -> std::io::Result<()> {
        if self.format == Format::Table {
            let mut widths = COLUMNS.map(str::len);
            for row in &self.rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let line = |cells: &[String]| {
                cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_owned()
            };
            writeln!(self.out, "{}", line(&COLUMNS.map(str::to_owned)))?;
            for row in &self.rows {
                writeln!(self.out, "{}", line(row))?;
            }
        }
        self.out.flush()
    }
}
