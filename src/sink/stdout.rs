//! A sink that prints entries to standard output, one JSON line each.

use std::io::{self, Write};

use super::line::{unserializable_error, write_lines, EncodedBatch, LinesNotWritten};
use super::{AuditSink, SinkError};
use crate::entry::AuditEntry;

/// Writes every entry to standard output as one JSON line, for development and for platforms
/// that collect a container's output.
///
/// Lines use the same encoding as [`JsonlSink`](crate::JsonlSink): whatever an entry's strings
/// contain, it stays one line and carries no raw terminal control sequences.
///
/// ```
/// use tracing_llm_audit::{AuditEntry, AuditSink, StdoutSink};
///
/// let mut sink = StdoutSink::new();
/// assert_eq!(sink.name(), "stdout");
/// sink.write_batch(&[AuditEntry::new("chat")]).unwrap();
/// sink.flush().unwrap();
/// ```
#[derive(Debug, Default)]
pub struct StdoutSink {
    encoded: EncodedBatch,
    /// A failed write left part of a line on stdout; the next write ends it first.
    ends_mid_line: bool,
}

impl StdoutSink {
    /// A sink writing to this process's standard output.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl AuditSink for StdoutSink {
    fn name(&self) -> &str {
        "stdout"
    }

    /// Writes the batch under one lock of stdout, so that other output cannot interleave with
    /// it. An entry that cannot be serialized is handled as in
    /// [`JsonlSink`](crate::JsonlSink#method.write_batch): left out, reported, not retried.
    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        self.encoded.encode(entries);
        let lines = 0..self.encoded.lines();
        write_lines(
            &mut io::stdout().lock(),
            &self.encoded,
            lines,
            &mut self.ends_mid_line,
        )
        .map_err(|LinesNotWritten { accepted, error }| {
            SinkError::with_source("could not write audit entries to stdout", error)
                .accepted_before_failure(accepted)
        })?;
        match self.encoded.take_unserializable() {
            None => Ok(()),
            Some(skipped) => Err(unserializable_error(entries, skipped)),
        }
    }

    /// Flushes the standard output buffer.
    fn flush(&mut self) -> Result<(), SinkError> {
        io::stdout()
            .flush()
            .map_err(|error| SinkError::with_source("could not flush stdout", error))
    }

    /// Flushes the standard output buffer; stdout itself stays open for the rest of the
    /// process.
    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.flush()
    }
}
