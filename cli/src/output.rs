//! Report tables, printed as aligned columns, CSV or JSON lines.

use std::io::Write;

use rust_decimal::Decimal;

use crate::query::Format;

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

    /// `1.5`, `at least 1.5` or `unknown`, the sum after `currency` (`$` or nothing).
    pub(crate) fn text(&self, currency: &str) -> String {
        match self.known() {
            None => "unknown".to_owned(),
            Some(d) if self.is_lower_bound() => format!("at least {currency}{}", d.normalize()),
            Some(d) => format!("{currency}{}", d.normalize()),
        }
    }

    /// [`Self::text`], with the count of unpriced calls when there are any.
    pub(crate) fn describe(&self, currency: &str) -> String {
        match self.unpriced_calls {
            0 => self.text(currency),
            n => format!("{} ({})", self.text(currency), unpriced_calls(n)),
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

    /// `+0.25`, `-0.1`, `0`, `+0.25 over 3 of 4 calls` or `unknown`, the amount after `currency`.
    pub(crate) fn text(&self, currency: &str) -> String {
        let Some(d) = self.known() else {
            return "unknown".to_owned();
        };
        let d = d.normalize();
        let signed = if d.is_zero() {
            format!("{currency}0")
        } else if d.is_sign_negative() {
            format!("-{currency}{}", d.abs())
        } else {
            format!("+{currency}{d}")
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
    /// Money: exact, trailing zeros dropped.
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
            Self::Money(d) => d.normalize().to_string(),
            Self::Unpriced => "unknown".to_owned(),
            Self::Cost(c) => c.text(""),
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
                        .map(|c| crate::query::csv_field(&c.render()))
                        .collect();
                    writeln!(out, "{}", cells.join(","))?;
                }
            }
            Format::Table => {
                let rendered: Vec<Vec<String>> = self
                    .rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|c| c.render().replace(char::is_control, " "))
                            .collect()
                    })
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
                    writeln!(out, "{note}")?;
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
        let partial = CostSum::new(Decimal::new(150, 2), 3, 1);
        assert!(partial.is_lower_bound());
        assert_eq!(partial.text(""), "at least 1.5");
        assert_eq!(partial.describe("$"), "at least $1.5 (1 unpriced call)");
        let none = CostSum::new(Decimal::ZERO, 2, 2);
        assert_eq!(none.known(), None);
        assert_eq!(none.describe("$"), "unknown (2 unpriced calls)");
        assert_eq!(Cell::Cost(none).json(), serde_json::Value::Null);
        assert_eq!(Cell::Cost(partial).json(), "1.5");
        // No call at all: nothing is left out, the sum is 0.
        assert_eq!(CostSum::default().text("$"), "$0");
    }

    #[test]
    fn a_cost_difference_says_which_calls_it_is_over() {
        let all = CostDifference {
            amount: Decimal::new(2500, 4),
            compared_calls: 2,
            calls: 2,
        };
        assert_eq!(all.text(""), "+0.25");
        assert_eq!(all.text("$"), "+$0.25");
        let down = CostDifference {
            amount: Decimal::new(-10, 2),
            ..all
        };
        assert_eq!(down.text("$"), "-$0.1");
        let same = CostDifference {
            amount: Decimal::new(0, 6),
            ..all
        };
        assert_eq!(same.text(""), "0");
        let some = CostDifference { calls: 3, ..all };
        assert_eq!(some.text(""), "+0.25 over 2 of 3 calls");
        assert_eq!(Cell::Difference(some).json(), "0.25");
        let none = CostDifference {
            amount: Decimal::ZERO,
            compared_calls: 0,
            calls: 3,
        };
        assert_eq!(none.text(""), "unknown");
        assert_eq!(Cell::Difference(none).json(), serde_json::Value::Null);
    }
}
