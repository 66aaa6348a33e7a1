//! Entries listed one per row, as `query` and `tail` print them: the columns, a CSV row, a
//! line of fixed-width columns.

use tracing_llm_audit::AuditEntry;

use crate::output::{csv_field, csv_text, escape, money};

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

/// Whether the column at an index holds a number (right-aligned; never changed in CSV).
fn is_number(column: usize) -> bool {
    (6..=9).contains(&column)
}

/// The cells of an entry, as they are (control characters and all).
pub(crate) fn cells(e: &AuditEntry) -> [String; 11] {
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
        e.cost_usd.map(money).unwrap_or_default(),
        e.latency_ms.to_string(),
        opt(e.error_type.as_deref()),
    ]
}

/// The cells of an entry for a terminal: control characters escaped.
pub(crate) fn shown_cells(e: &AuditEntry) -> [String; 11] {
    cells(e).map(|c| escape(&c).into_owned())
}

/// The CSV header.
pub(crate) fn csv_header() -> String {
    COLUMNS.join(",")
}

/// One entry as a CSV row: text that a spreadsheet would take for a formula neutralised.
pub(crate) fn csv_row(e: &AuditEntry) -> String {
    let row: Vec<String> = cells(e)
        .iter()
        .enumerate()
        .map(|(i, c)| match is_number(i) {
            true => csv_field(c),
            false => csv_text(c),
        })
        .collect();
    row.join(",")
}

/// One line with fixed-width columns, for `tail` (which cannot wait to align).
fn fixed_line(c: &[String; 11]) -> String {
    format!(
        "{:<27}  {:<36}  {:<12}  {:<10}  {:<24}  {:<7}  {:>12}  {:>13}  {:>12}  {:>10}  {}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10]
    )
    .trim_end()
    .to_owned()
}

/// The header of [`tail_line`]'s columns.
pub(crate) fn tail_header() -> String {
    fixed_line(&COLUMNS.map(str::to_owned))
}

/// One entry on one line with fixed-width columns, control characters escaped.
pub(crate) fn tail_line(e: &AuditEntry) -> String {
    fixed_line(&shown_cells(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_header_sits_over_its_columns() {
        let mut e = AuditEntry::new("chat");
        e.user_id = Some("alice".to_owned());
        e.input_tokens = Some(1);
        e.output_tokens = Some(2);
        e.cost_usd = Some(rust_decimal::Decimal::new(5, 3));
        e.latency_ms = 3;
        e.error_type = Some("x".to_owned());
        let header = tail_header();
        let line = tail_line(&e);
        // Every column ends (numbers) or starts (text) where its header does.
        for (column, value) in [("input_tokens", "1"), ("output_tokens", "2")] {
            let end = header.find(column).unwrap() + column.len();
            assert_eq!(
                &line[end - value.len()..end],
                value,
                "{column}\n{header}\n{line}"
            );
        }
        let end = header.find("cost_usd").unwrap() + "cost_usd".len();
        assert_eq!(&line[end - 8..end], "0.005000");
        assert_eq!(header.find("error_type"), line.find('x'));
    }
}
