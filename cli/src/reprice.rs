//! `llm-audit reprice`: the stored entries' costs computed again with another price table (a
//! LiteLLM price file, or the built-in table), beside the costs they were stored with, per
//! group. For an invoice, or after a price change. The entries are read, never written.
//!
//! Each entry is priced by [`PriceTable::cost_of_entry`], exactly as the layer priced it when it
//! was written (model, tokens, service tier, time), so repricing with the table an entry names
//! gives its stored cost back. Both sources go through one path: the entries of the period,
//! whole ([`Source::entries`](crate::source::Source::entries)), priced here.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use clap::Args;
use rust_decimal::Decimal;
use time::UtcOffset;
use tracing_llm_audit::cost::{LoadReport, PriceFileError, PriceTable};
use tracing_llm_audit::AuditEntry;

use crate::args::{filter, RangeArgs, SelectArgs, SourceArgs};
use crate::figures::{cmp_keys, Events, Key};
use crate::filter::is_event;
use crate::output::{self, warn, Cell, CostDifference, CostSum, Format, Table};

#[derive(Debug, Args)]
pub(crate) struct RepriceArgs {
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
    #[arg(long, default_value = DEFAULT_BY)]
    by: String,
    /// Output format [default: table on a terminal, JSON lines otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
}

/// `llm-audit reprice`.
pub(crate) fn run(args: &RepriceArgs) -> Result<(), String> {
    let keys = Key::parse_list(&args.by)?;
    let filter = filter(&args.range, &args.select, Some("30d"))?;
    let prices = Prices::load(&args.prices)?;
    let mut source = args.source.open()?;
    let mut tally = Reprice::new(keys);
    source.entries(&filter, None, |entry| {
        tally.add(&entry, &prices.table);
        true
    })?;
    let table = tally.table(&prices);
    let format = Format::or_default(args.format);
    output::print(&table, format)?;
    // The footer goes under an aligned table; beside CSV and JSON lines, where a script does
    // not trip on it.
    if format != Format::Table {
        for note in &table.notes {
            warn(note);
        }
    }
    source.finish();
    Ok(())
}

/// The grouping when `--by` is not given.
pub(crate) const DEFAULT_BY: &str = "model,user,day";

/// What `--prices` names instead of a file: the built-in table.
pub(crate) const BUILTIN: &str = "builtin";

/// The new prices.
pub(crate) struct Prices {
    pub(crate) table: PriceTable,
    /// What loading the price file found; `None` for the built-in table.
    pub(crate) report: Option<LoadReport>,
}

impl Prices {
    /// `builtin`, or a LiteLLM-format price file. A file that cannot be loaded is one sentence
    /// naming it and what is wrong.
    pub(crate) fn load(spec: &Path) -> Result<Self, String> {
        if spec.as_os_str() == BUILTIN {
            return Ok(Self {
                table: PriceTable::builtin(),
                report: None,
            });
        }
        match PriceTable::from_litellm_file_with_report(spec) {
            Ok((table, report)) => Ok(Self {
                table,
                report: Some(report),
            }),
            Err(e) => Err(file_error(spec, &e)),
        }
    }

    /// The rules the new table cannot apply, with the models that have them (or, for a table
    /// that was not loaded from a file, their count).
    fn refused(&self) -> Vec<String> {
        match &self.report {
            Some(report) => report
                .refused
                .iter()
                .map(|(rule, models)| {
                    const SHOWN: usize = 3;
                    let mut names: Vec<&str> =
                        models.iter().take(SHOWN).map(String::as_str).collect();
                    if models.len() > SHOWN {
                        names.push("…");
                    }
                    format!(
                        "{rule} ({} model{}: {})",
                        models.len(),
                        if models.len() == 1 { "" } else { "s" },
                        names.join(", ")
                    )
                })
                .collect(),
            None => self
                .table
                .refused_rules()
                .iter()
                .map(|(rule, n)| format!("{rule} ({n} model{})", if *n == 1 { "" } else { "s" }))
                .collect(),
        }
    }
}

fn file_error(path: &Path, e: &PriceFileError) -> String {
    match e {
        // The message names the file already.
        PriceFileError::Io { source, .. } => format!("--prices: {e}: {source}"),
        PriceFileError::Json { source, .. } => {
            // The parser's words, without the position the message gives already.
            let detail = source.to_string();
            let detail = detail
                .rfind(" at line ")
                .map_or(detail.as_str(), |at| &detail[..at]);
            format!("--prices {}: {e}: {detail}", path.display())
        }
        _ => format!("--prices {}: {e}", path.display()),
    }
}

/// Sums of one group.
#[derive(Debug, Clone, Default)]
struct Sums {
    calls: u64,
    /// The stored costs (`cost_usd`) of the calls that have one.
    stored: Decimal,
    /// Calls stored without a cost.
    stored_unpriced: u64,
    /// The new costs of the calls the new table prices.
    repriced: Decimal,
    /// Calls the new table does not price.
    repriced_unpriced: u64,
    /// Calls with both costs: the difference is over these.
    compared: u64,
    /// Σ (new − stored) over the compared calls.
    difference: Decimal,
}

impl Sums {
    fn add(&mut self, stored: Option<Decimal>, repriced: Option<Decimal>) {
        self.calls += 1;
        match stored {
            Some(c) => self.stored += c,
            None => self.stored_unpriced += 1,
        }
        match repriced {
            Some(c) => self.repriced += c,
            None => self.repriced_unpriced += 1,
        }
        if let (Some(old), Some(new)) = (stored, repriced) {
            self.compared += 1;
            self.difference += new - old;
        }
    }

    fn stored_sum(&self) -> CostSum {
        CostSum::new(self.stored, self.calls, self.stored_unpriced)
    }

    fn repriced_sum(&self) -> CostSum {
        CostSum::new(self.repriced, self.calls, self.repriced_unpriced)
    }

    fn difference(&self) -> CostDifference {
        CostDifference {
            amount: self.difference,
            compared_calls: self.compared,
            calls: self.calls,
        }
    }
}

/// Which price table priced a stored entry, by what it says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Provenance {
    /// Its `price_table`.
    Named(String),
    /// No `price_table`, though it names a model: written before entries named their table.
    Unrecorded,
    /// No `price_table` and no model: nothing to price.
    NoModel,
}

impl Provenance {
    fn of(entry: &AuditEntry) -> Self {
        match (&entry.price_table, entry.billed_model()) {
            (Some(label), _) => Self::Named(label.clone()),
            (None, Some(_)) => Self::Unrecorded,
            (None, None) => Self::NoModel,
        }
    }

    fn text(&self) -> &str {
        match self {
            Self::Named(label) => label,
            Self::Unrecorded => "unknown (written before provenance)",
            Self::NoModel => "none (the entry names no model)",
        }
    }
}

/// The repricing of a period, entry by entry.
pub(crate) struct Reprice {
    keys: Vec<Key>,
    groups: HashMap<Vec<Option<String>>, Sums>,
    total: Sums,
    /// How many entries name each price table.
    tables: BTreeMap<Provenance, u64>,
    /// Entries that record events, not calls: not repriced.
    events: Events,
}

fn key_value(key: Key, entry: &AuditEntry) -> Option<String> {
    match key {
        Key::User => entry.user_id.clone(),
        Key::Model => entry.model.clone(),
        Key::Provider => entry.provider.clone(),
        Key::Status => Some(entry.status.as_str().to_owned()),
        Key::Day => {
            let day = entry.timestamp.to_offset(UtcOffset::UTC).date();
            Some(format!(
                "{:04}-{:02}-{:02}",
                day.year(),
                day.month() as u8,
                day.day()
            ))
        }
    }
}

impl Reprice {
    pub(crate) fn new(keys: Vec<Key>) -> Self {
        Self {
            keys,
            groups: HashMap::new(),
            total: Sums::default(),
            tables: BTreeMap::new(),
            events: Events::default(),
        }
    }

    /// Prices `entry` with `prices` and counts it beside its stored cost; an event is only
    /// counted as one.
    pub(crate) fn add(&mut self, entry: &AuditEntry, prices: &PriceTable) {
        if is_event(&entry.action) {
            self.events.add(&entry.action, 1);
            return;
        }
        let repriced = prices.cost_of_entry(entry).ok();
        let key: Vec<Option<String>> = self.keys.iter().map(|k| key_value(*k, entry)).collect();
        self.groups
            .entry(key)
            .or_default()
            .add(entry.cost_usd, repriced);
        self.total.add(entry.cost_usd, repriced);
        *self.tables.entry(Provenance::of(entry)).or_default() += 1;
    }

    /// The groups in the order of their keys, and the footer as the table's notes.
    pub(crate) fn table(&self, prices: &Prices) -> Table {
        let figures = [
            "calls",
            "stored_cost",
            "repriced_cost",
            "difference",
            "unpriced_before",
            "unpriced_after",
        ];
        let mut table = Table::new(self.keys.iter().map(|k| k.column()).chain(figures));
        let mut groups: Vec<(&Vec<Option<String>>, &Sums)> = self.groups.iter().collect();
        groups.sort_by(|a, b| cmp_keys(a.0, b.0));
        for (keys, g) in groups {
            let mut row: Vec<Cell> = keys.iter().map(|k| Cell::text(k.as_deref())).collect();
            row.extend([
                Cell::Int(g.calls),
                Cell::Cost(g.stored_sum()),
                Cell::Cost(g.repriced_sum()),
                Cell::Difference(g.difference()),
                Cell::Int(g.stored_unpriced),
                Cell::Int(g.repriced_unpriced),
            ]);
            table.rows.push(row);
        }
        table.notes = self.footer(prices);
        table
    }

    fn footer(&self, prices: &Prices) -> Vec<String> {
        let t = &self.total;
        let mut notes = Vec::new();
        if t.stored_unpriced > 0 || t.repriced_unpriced > 0 {
            notes.push(format!(
                "{} of {} calls had no stored cost and {} have none with the new prices \
                 (never counted as $0): a cost over any of them is a lower bound (\"at least\"), \
                 \"unknown\" where no call of the group is priced; a difference is over the \
                 calls priced both before and after",
                t.stored_unpriced, t.calls, t.repriced_unpriced
            ));
        }
        notes.push(format!(
            "total: {} call{}; stored {}; repriced {}; difference {}",
            t.calls,
            if t.calls == 1 { "" } else { "s" },
            t.stored_sum().describe_shown("$"),
            t.repriced_sum().describe_shown("$"),
            t.difference().text("$"),
        ));
        if !self.tables.is_empty() {
            notes.push("stored costs were priced with:".to_owned());
            let counts: Vec<String> = self
                .tables
                .values()
                .map(|n| format!("{n} call{}", if *n == 1 { "" } else { "s" }))
                .collect();
            let width = counts.iter().map(String::len).max().unwrap_or(0);
            for ((provenance, _), count) in self.tables.iter().zip(&counts) {
                notes.push(format!("  {count:<width$}  {}", provenance.text()));
            }
        }
        let label = prices.table.label();
        let same = self.tables.get(&Provenance::Named(label.clone()));
        notes.push(match same {
            Some(n) => format!(
                "repriced with: {label} (the table {} priced with)",
                match n {
                    1 => "1 call was".to_owned(),
                    n => format!("{n} calls were"),
                }
            ),
            None => format!("repriced with: {label}"),
        });
        notes.extend(self.events.note());
        let refused = prices.refused();
        if !refused.is_empty() {
            notes.push(
                "the new prices have rules that cannot be applied; a call of a model with one is \
                 unpriced after (never priced without the rule):"
                    .to_owned(),
            );
            for rule in refused {
                notes.push(format!("  {rule}"));
            }
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_leave_an_unpriced_call_out_of_the_difference() {
        let d = |s: &str| Decimal::from_str_exact(s).unwrap();
        let mut g = Sums::default();
        g.add(Some(d("0.010000")), Some(d("0.020000")));
        g.add(Some(d("0.005000")), None);
        g.add(None, Some(d("0.300000")));
        g.add(None, None);
        assert_eq!(g.calls, 4);
        assert_eq!(g.stored_sum().shown(""), "at least 0.015000");
        assert_eq!(g.repriced_sum().shown(""), "at least 0.320000");
        assert_eq!((g.stored_unpriced, g.repriced_unpriced), (2, 2));
        // Only the first call has both: +0.01, not 0.32 − 0.015.
        assert_eq!(g.difference().text(""), "+0.010000 over 1 of 4 calls");
    }

    #[test]
    fn a_missing_price_file_is_named() {
        let err = match Prices::load(Path::new("/nonexistent/prices.json")) {
            Err(e) => e,
            Ok(_) => panic!("loaded a missing file"),
        };
        assert!(err.contains("/nonexistent/prices.json"), "{err}");
        assert!(Prices::load(Path::new(BUILTIN))
            .is_ok_and(|p| p.report.is_none() && !p.table.is_empty()));
    }
}
