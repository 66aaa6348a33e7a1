//! Report tables, printed as aligned columns, CSV or JSON lines.

use std::io::Write;

use rust_decimal::Decimal;

use crate::query::Format;

/// One value of a report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Text(String),
    Int(u64),
    /// Money: exact, trailing zeros dropped.
    Money(Decimal),
    /// A mean or a rate: two decimal places.
    Fixed2(Decimal),
}

impl Cell {
    pub(crate) fn text(value: Option<&str>) -> Self {
        value.map_or(Self::Null, |v| Self::Text(v.to_owned()))
    }

    fn render(&self) -> String {
        match self {
            Self::Null => String::new(),
            Self::Text(s) => s.clone(),
            Self::Int(n) => n.to_string(),
            Self::Money(d) => d.normalize().to_string(),
            Self::Fixed2(d) => format!("{d:.2}"),
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, Self::Int(_) | Self::Money(_) | Self::Fixed2(_))
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Self::Null => serde_json::Value::Null,
            Self::Int(n) => (*n).into(),
            // Decimals stay strings, as in the entries: a JSON number would be read as a float.
            _ => self.render().into(),
        }
    }
}

/// A report: named columns and rows of cells.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<Vec<Cell>>,
}

impl Table {
    pub(crate) fn new(columns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn write(&self, out: &mut impl Write, format: Format) -> std::io::Result<()> {
        match format {
            Format::Jsonl => {
                for row in &self.rows {
                    let object: serde_json::Map<String, serde_json::Value> = self
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| (c.clone(), v.json()))
                        .collect();
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
            }
        }
        out.flush()
    }
}
