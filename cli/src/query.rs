//! `llm-audit query`: the entries that match the filters, as a table, JSON lines or CSV.

use std::io::Write;

use clap::Args;
use tracing_llm_audit::AuditEntry;

use crate::args::{filter, RangeArgs, SelectArgs, SourceArgs};
use crate::figures::Events;
use crate::filter::is_event;
use crate::listing::{csv_header, csv_row, shown_cells, COLUMNS};
use crate::output::{escape, warn, Format};

#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
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

/// `llm-audit query`.
pub(crate) fn run(args: &QueryArgs) -> Result<(), String> {
    let filter = filter(&args.range, &args.select, None)?;
    let mut source = args.source.open()?;
    let format = Format::or_default(args.format);
    let mut printer =
        Printer::new(std::io::stdout().lock(), format).map_err(|e| format!("cannot write: {e}"))?;
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
    source.finish();
    Ok(())
}

/// Writes matching entries as they come (JSONL, CSV) or once all are known (a table, whose
/// columns are as wide as their widest cell). Entries that record events, not calls, are listed
/// like the others, and a note under the table (on stderr beside CSV) says which they are.
pub(crate) struct Printer<W: Write> {
    out: W,
    format: Format,
    rows: Vec<[String; 11]>,
    events: Events,
}

impl<W: Write> Printer<W> {
    pub(crate) fn new(mut out: W, format: Format) -> std::io::Result<Self> {
        if format == Format::Csv {
            writeln!(out, "{}", csv_header())?;
        }
        Ok(Self {
            out,
            format,
            rows: Vec::new(),
            events: Events::default(),
        })
    }

    pub(crate) fn print(&mut self, e: &AuditEntry) -> std::io::Result<()> {
        if is_event(&e.action) {
            self.events.add(&e.action, 1);
        }
        match self.format {
            Format::Jsonl => {
                serde_json::to_writer(&mut self.out, e)?;
                writeln!(self.out)
            }
            Format::Csv => writeln!(self.out, "{}", csv_row(e)),
            Format::Table => {
                // Control characters would break the alignment (and a terminal).
                self.rows.push(shown_cells(e));
                Ok(())
            }
        }
    }

    pub(crate) fn finish(mut self) -> std::io::Result<()> {
        let note = self.events.listed_note();
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
            if let Some(note) = &note {
                writeln!(self.out, "{}", escape(note))?;
            }
        } else if let (Format::Csv, Some(note)) = (self.format, &note) {
            warn(note);
        }
        self.out.flush()
    }
}
