//! How results are printed: report tables as aligned columns, CSV or JSON lines; money; and the
//! escaping that keeps what the logs hold from acting on a terminal or a spreadsheet.
//!
//! - Money in human-readable output (tables, CSV, notes) has six decimal places; JSON keeps the
//!   exact decimal.
//! - Text from the logs in human-readable output (tables, warnings and notes on stderr) has its
//!   control characters (C0, C1, bidirectional overrides, line separators) escaped: ESC shows as
//!   `\u{1b}`.
//! - A CSV text cell that a spreadsheet would take for a formula (one starting with `=`, `+`,
//!   `-`, `@`, a tab or a carriage return) starts with `'`. Numbers are never changed: `-0.005`
//!   stays a number.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use rust_decimal::{Decimal, RoundingStrategy};

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

impl Format {
    /// The format asked for, or the default: a table on a terminal, JSON lines otherwise.
    pub(crate) fn or_default(format: Option<Self>) -> Self {
        format.unwrap_or(if std::io::stdout().is_terminal() {
            Self::Table
        } else {
            Self::Jsonl
        })
    }
}

/// Decimal places of money in human-readable output.
pub(crate) const MONEY_PLACES: u32 = 6;

/// An amount of money as people read it: six decimal places, rounded half away from zero
/// (`0.04914` is `0.049140`, `0` is `0.000000`).
pub(crate) fn money(amount: Decimal) -> String {
    let mut rounded =
        amount.round_dp_with_strategy(MONEY_PLACES, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(MONEY_PLACES);
    if rounded.is_zero() {
        rounded.set_sign_positive(true);
    }
    rounded.to_string()
}

/// Whether `c` must not reach a terminal as it is: a control character (C0, DEL, C1), a
/// bidirectional formatting character, or a line or paragraph separator.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `text` with every character that could act on a terminal written as Rust writes it in a
/// string (`\u{1b}`, `\n`, `\u{202e}`): for every human-readable output of text that may come
/// from the logs.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A warning or a note on stderr, escaped: `llm-audit: <message>`.
pub(crate) fn warn(message: &str) {
    eprintln!("llm-audit: {}", escape(message));
}

/// A line of human-readable text on stdout, escaped. A closed pipe (`| head`) is no error.
pub(crate) fn say(line: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", escape(line)).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("cannot write: {e}")),
        _ => Ok(()),
    }
}

/// A CSV field: quoted when it holds a separator, a quote or a line break. For numbers; text
/// goes through [`csv_text`].
pub(crate) fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// A CSV field of text: as [`csv_field`], and starting with `'` when a spreadsheet would take
/// it for a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return).
pub(crate) fn csv_text(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        csv_field(&format!("'{value}"))
    } else {
        csv_field(value)
    }
}

/// Prints `table` on stdout. A closed pipe (`| head`) ends the output, not in an error.
pub(crate) fn print(table: &Table, format: Format) -> Result<(), String> {
    match table.write(&mut std::io::stdout().lock(), format) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| format!("cannot write: {e}")),
    }
}

/// A sum of costs and the calls it leaves out. An unpriced call (`cost_usd` null, with a
/// `cost_note`) has no cost to add: a total over some is a lower bound ("at least"), and a total
/// over nothing else is unknown, never $0.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CostSum {
    /// The exact sum of the priced calls' costs.
    pub(crate) priced: Decimal,
    /// Calls with a cost.
    pub(crate) priced_calls: u64,
    /// Calls without one.
    pub(crate) unpriced_calls: u64,
}

impl CostSum {
    /// The sum `priced` of `requests` calls, `unpriced` of which had no cost.
    pub(crate) fn new(priced: Decimal, requests: u64, unpriced: u64) -> Self {
        Self {
            priced,
            priced_calls: requests.saturating_sub(unpriced),
            unpriced_calls: unpriced,
        }
    }

    /// The sum, or `None` when the calls are all unpriced (an empty sum is 0).
    pub(crate) fn known(&self) -> Option<Decimal> {
        (self.priced_calls > 0 || self.unpriced_calls == 0).then_some(self.priced)
    }

    /// Whether the true total may be higher: some calls are left out.
    pub(crate) fn is_lower_bound(&self) -> bool {
        self.unpriced_calls > 0
    }

    /// `1.5`, `at least 1.5` or `unknown`, the sum after `currency` (`$` or nothing), every
    /// digit of it: for the HTML page, whose charts round and whose tooltips are exact.
    pub(crate) fn text(&self, currency: &str) -> String {
        self.text_as(currency, |d| d.normalize().to_string())
    }

    /// `1.500000`, `at least 1.500000` or `unknown`: [`Self::text`] with the sum in the money
    /// format of tables, CSV and notes ([`money`]).
    pub(crate) fn shown(&self, currency: &str) -> String {
        self.text_as(currency, money)
    }

    fn text_as(&self, currency: &str, number: impl Fn(Decimal) -> String) -> String {
        match self.known() {
            None => "unknown".to_owned(),
            Some(d) if self.is_lower_bound() => format!("at least {currency}{}", number(d)),
            Some(d) => format!("{currency}{}", number(d)),
        }
    }

    /// [`Self::text`], with the count of unpriced calls when there are any.
    pub(crate) fn describe(&self, currency: &str) -> String {
        self.with_count(self.text(currency))
    }

    /// [`Self::shown`], with the count of unpriced calls when there are any.
    pub(crate) fn describe_shown(&self, currency: &str) -> String {
        self.with_count(self.shown(currency))
    }

    fn with_count(&self, text: String) -> String {
        match self.unpriced_calls {
            0 => text,
            n => format!("{text} ({})", unpriced_calls(n)),
        }
    }
}

/// The difference between two costs of the same calls (new minus old), over the calls that have
/// both: a call with no cost on either side is left out, never counted as $0.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CostDifference {
    /// The exact sum of (new − old) over the compared calls.
    pub(crate) amount: Decimal,
    /// Calls priced on both sides: the difference is over these.
    pub(crate) compared_calls: u64,
    /// All the calls of the group.
    pub(crate) calls: u64,
}

impl CostDifference {
    /// The difference, or `None` when no call has both costs.
    pub(crate) fn known(&self) -> Option<Decimal> {
        (self.compared_calls > 0 || self.calls == 0).then_some(self.amount)
    }

    /// `+0.250000`, `-0.100000`, `0.000000`, `+0.250000 over 3 of 4 calls` or `unknown`, the
    /// amount after `currency`.
    pub(crate) fn text(&self, currency: &str) -> String {
        let Some(d) = self.known() else {
            return "unknown".to_owned();
        };
        let shown = money(d.abs());
        let signed = if shown.bytes().all(|b| matches!(b, b'0' | b'.')) {
            format!("{currency}{shown}")
        } else if d.is_sign_negative() {
            format!("-{currency}{shown}")
        } else {
            format!("+{currency}{shown}")
        };
        match self.compared_calls == self.calls {
            true => signed,
            false => format!(
                "{signed} over {} of {} calls",
                self.compared_calls, self.calls
            ),
        }
    }
}

/// `1 unpriced call`, `3 unpriced calls`.
pub(crate) fn unpriced_calls(n: u64) -> String {
    match n {
        1 => "1 unpriced call".to_owned(),
        n => format!("{n} unpriced calls"),
    }
}

/// One value of a report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Text(String),
    Int(u64),
    /// Money: six decimal places; exact in JSON.
    Money(Decimal),
    /// The cost of one call that has none (`cost_usd` null): `unknown`, null in JSON.
    Unpriced,
    /// A total cost: `1.5`, `at least 1.5` or `unknown`. In JSON the sum (null when unknown)
    /// and, beside it, `<column>_is_lower_bound`.
    Cost(CostSum),
    /// A mean or a rate: two decimal places.
    Fixed2(Decimal),
    /// A difference of costs: `+1.5`, `-0.2`, `+1.5 over 3 of 4 calls` or `unknown`. In JSON the
    /// amount (null when unknown) and, beside it, `<column>_calls`: the calls it is over.
    Difference(CostDifference),
}

impl Cell {
    pub(crate) fn text(value: Option<&str>) -> Self {
        value.map_or(Self::Null, |v| Self::Text(v.to_owned()))
    }

    pub(crate) fn render(&self) -> String {
        match self {
            Self::Null => String::new(),
            Self::Text(s) => s.clone(),
            Self::Int(n) => n.to_string(),
            Self::Money(d) => money(*d),
            Self::Unpriced => "unknown".to_owned(),
            Self::Cost(c) => c.shown(""),
            Self::Fixed2(d) => format!("{d:.2}"),
            Self::Difference(d) => d.text(""),
        }
    }

    fn is_number(&self) -> bool {
        matches!(
            self,
            Self::Int(_)
                | Self::Money(_)
                | Self::Unpriced
                | Self::Cost(_)
                | Self::Fixed2(_)
                | Self::Difference(_)
        )
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Self::Null | Self::Unpriced => serde_json::Value::Null,
            Self::Int(n) => (*n).into(),
            // Decimals stay strings, as in the entries: a JSON number would be read as a float.
            Self::Cost(c) => c.known().map_or(serde_json::Value::Null, |d| {
                d.normalize().to_string().into()
            }),
            Self::Difference(c) => c.known().map_or(serde_json::Value::Null, |d| {
                d.normalize().to_string().into()
            }),
            Self::Money(d) => d.normalize().to_string().into(),
            _ => self.render().into(),
        }
    }
}

/// A report: named columns and rows of cells.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<Vec<Cell>>,
    /// Lines printed under an aligned table (not in CSV or JSON, whose fields say it).
    pub(crate) notes: Vec<String>,
}

impl Table {
    pub(crate) fn new(columns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub(crate) fn write(&self, out: &mut impl Write, format: Format) -> std::io::Result<()> {
        match format {
            Format::Jsonl => {
                for row in &self.rows {
                    let mut object = serde_json::Map::new();
                    for (c, v) in self.columns.iter().zip(row) {
                        object.insert(c.clone(), v.json());
                        match v {
                            Cell::Cost(sum) => {
                                object.insert(
                                    format!("{c}_is_lower_bound"),
                                    sum.is_lower_bound().into(),
                                );
                            }
                            Cell::Difference(d) => {
                                object.insert(format!("{c}_calls"), d.compared_calls.into());
                            }
                            _ => {}
                        }
                    }
                    serde_json::to_writer(&mut *out, &object)?;
                    writeln!(out)?;
                }
            }
            Format::Csv => {
                writeln!(out, "{}", self.columns.join(","))?;
                for row in &self.rows {
                    let cells: Vec<String> = row
                        .iter()
                        .map(|c| match c {
                            Cell::Text(_) => csv_text(&c.render()),
                            _ => csv_field(&c.render()),
                        })
                        .collect();
                    writeln!(out, "{}", cells.join(","))?;
                }
            }
            Format::Table => {
                let rendered: Vec<Vec<String>> = self
                    .rows
                    .iter()
                    .map(|r| r.iter().map(|c| escape(&c.render()).into_owned()).collect())
                    .collect();
                let mut widths: Vec<usize> =
                    self.columns.iter().map(|c| c.chars().count()).collect();
                for row in &rendered {
                    for (w, cell) in widths.iter_mut().zip(row) {
                        *w = (*w).max(cell.chars().count());
                    }
                }
                let header: Vec<String> = self
                    .columns
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                writeln!(out, "{}", header.join("  ").trim_end())?;
                for (row, cells) in self.rows.iter().zip(&rendered) {
                    let line: Vec<String> = cells
                        .iter()
                        .zip(&widths)
                        .zip(row)
                        .map(|((text, w), cell)| match cell.is_number() {
                            true => format!("{text:>w$}"),
                            false => format!("{text:<w$}"),
                        })
                        .collect();
                    writeln!(out, "{}", line.join("  ").trim_end())?;
                }
                if self.rows.is_empty() {
                    writeln!(out, "(no entries)")?;
                }
                for note in &self.notes {
                    writeln!(out, "{}", escape(note))?;
                }
            }
        }
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cost_total_says_what_it_leaves_out() {
        let exact = CostSum::new(Decimal::new(150, 2), 3, 0);
        assert_eq!(exact.known(), Some(Decimal::new(15, 1)));
        assert!(!exact.is_lower_bound());
        assert_eq!(exact.describe("$"), "$1.5");
        assert_eq!(exact.describe_shown("$"), "$1.500000");
        let partial = CostSum::new(Decimal::new(150, 2), 3, 1);
        assert!(partial.is_lower_bound());
        assert_eq!(partial.text(""), "at least 1.5");
        assert_eq!(partial.shown(""), "at least 1.500000");
        assert_eq!(Cell::Cost(partial).render(), "at least 1.500000");
        assert_eq!(partial.describe("$"), "at least $1.5 (1 unpriced call)");
        assert_eq!(
            partial.describe_shown("$"),
            "at least $1.500000 (1 unpriced call)"
        );
        let none = CostSum::new(Decimal::ZERO, 2, 2);
        assert_eq!(none.known(), None);
        assert_eq!(none.describe("$"), "unknown (2 unpriced calls)");
        assert_eq!(none.describe_shown("$"), "unknown (2 unpriced calls)");
        assert_eq!(Cell::Cost(none).json(), serde_json::Value::Null);
        assert_eq!(Cell::Cost(partial).json(), "1.5");
        // No call at all: nothing is left out, the sum is 0.
        assert_eq!(CostSum::default().text("$"), "$0");
        assert_eq!(CostSum::default().shown("$"), "$0.000000");
    }

    #[test]
    fn a_cost_difference_says_which_calls_it_is_over() {
        let all = CostDifference {
            amount: Decimal::new(2500, 4),
            compared_calls: 2,
            calls: 2,
        };
        assert_eq!(all.text(""), "+0.250000");
        assert_eq!(all.text("$"), "+$0.250000");
        let down = CostDifference {
            amount: Decimal::new(-10, 2),
            ..all
        };
        assert_eq!(down.text("$"), "-$0.100000");
        let same = CostDifference {
            amount: Decimal::new(0, 6),
            ..all
        };
        assert_eq!(same.text(""), "0.000000");
        // Less than the last place shown: no sign for what shows as zero.
        let tiny = CostDifference {
            amount: Decimal::new(-4, 7),
            ..all
        };
        assert_eq!(tiny.text(""), "0.000000");
        let some = CostDifference { calls: 3, ..all };
        assert_eq!(some.text(""), "+0.250000 over 2 of 3 calls");
        assert_eq!(Cell::Difference(some).json(), "0.25");
        let none = CostDifference {
            amount: Decimal::ZERO,
            compared_calls: 0,
            calls: 3,
        };
        assert_eq!(none.text(""), "unknown");
        assert_eq!(Cell::Difference(none).json(), serde_json::Value::Null);
    }

    #[test]
    fn money_has_six_places_and_json_stays_exact() {
        for (amount, shown) in [
            (Decimal::new(4914, 5), "0.049140"),
            (Decimal::ZERO, "0.000000"),
            (Decimal::new(63, 4), "0.006300"),
            (Decimal::new(123_456_789, 9), "0.123457"),
            (Decimal::new(-5, 3), "-0.005000"),
            (Decimal::new(-1, 9), "0.000000"),
            (Decimal::new(1_000, 0), "1000.000000"),
        ] {
            assert_eq!(money(amount), shown, "{amount}");
            assert_eq!(Cell::Money(amount).render(), shown);
        }
        assert_eq!(
            Cell::Money(Decimal::new(123_456_789, 9)).json(),
            "0.123456789"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("plain, café"), "plain, café");
        assert_eq!(
            escape("a\u{1b}[31mred\u{7}\n\t\u{85}\u{202e}z\u{2028}"),
            "a\\u{1b}[31mred\\u{7}\\n\\t\\u{85}\\u{202e}z\\u{2028}"
        );
    }

    #[test]
    fn csv_text_cells_cannot_be_formulas_and_numbers_stay_numbers() {
        for (text, cell) in [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "\"'\rx\""),
            ("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""),
            ("alice", "alice"),
            ("a=b", "a=b"),
        ] {
            assert_eq!(csv_text(text), cell, "{text:?}");
        }
        let mut table = Table::new(["user_id", "difference"]);
        table.rows.push(vec![
            Cell::Text("-alice".to_owned()),
            Cell::Difference(CostDifference {
                amount: Decimal::new(-5, 3),
                compared_calls: 1,
                calls: 1,
            }),
        ]);
        let mut out = Vec::new();
        table.write(&mut out, Format::Csv).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "user_id,difference\n'-alice,-0.005000\n"
        );
    }
}
