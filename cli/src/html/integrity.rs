//! Whether the entries can be trusted, said on the page: the verdict of `llm-audit verify`
//! (its own code, on the same source) when a public key is given, otherwise why there is none.
//! The page never says "intact" of what it did not check.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tracing_llm_audit::chain::VerifyingKey;

use super::audit::{table, Td};
use super::escape;
use crate::scan;
use crate::source::Source;
use crate::verify::{self, Verdict};

/// What the page can say of the integrity of the entries.
pub(crate) enum Integrity {
    /// Nothing to verify: there is no signed checkpoint.
    NotTamperEvident { postgres: bool },
    /// There are signed checkpoints, but no key was given: not checked.
    NotVerified,
    /// Checked, with this key: `verify`'s report.
    Verified {
        key_id: String,
        key_file: PathBuf,
        /// Whether the source has signed checkpoints.
        chained: bool,
        report: verify::Report,
    },
}

/// Whether `source` was written tamper-evident: it has signed checkpoints (files in a
/// directory, rows in PostgreSQL). Links are not looked for: the log has no index on them, and
/// without a checkpoint they prove nothing anyway.
fn chained(source: &mut Source) -> Result<bool, String> {
    match source {
        Source::Jsonl(j) => Ok(scan::is_chained(&j.dir)),
        Source::Postgres(pg) => {
            if !pg.has_table("llm_audit_checkpoints")? {
                return Ok(false);
            }
            let mut found = false;
            pg.each_row(
                "SELECT EXISTS (SELECT 1 FROM llm_audit_checkpoints)",
                &[],
                |row| {
                    found = row.get(0);
                    Ok(false)
                },
            )?;
            Ok(found)
        }
    }
}

/// Verifies `source` with `key` as `llm-audit verify` does, or says why it is not verified.
pub(crate) fn check(
    source: &mut Source,
    key: Option<(&Path, &VerifyingKey)>,
) -> Result<Integrity, String> {
    let chained = chained(source)?;
    let Some((key_file, key)) = key else {
        return Ok(if chained {
            Integrity::NotVerified
        } else {
            Integrity::NotTamperEvident {
                postgres: matches!(source, Source::Postgres(_)),
            }
        });
    };
    let mut report = match source {
        Source::Jsonl(j) => verify::verify(&j.dir, key)?,
        Source::Postgres(pg) => verify::verify_postgres(pg, key)?,
    };
    report.refuse_empty();
    Ok(Integrity::Verified {
        key_id: key.key_id().to_owned(),
        key_file: key_file.to_owned(),
        chained,
        report,
    })
}

impl Integrity {
    /// The class of the banner and its headline.
    pub(crate) fn headline(&self) -> (&'static str, String) {
        match self {
            Self::NotTamperEvident { .. } => ("none", "not tamper-evident".to_owned()),
            Self::NotVerified => ("unverified", "not verified: no key given".to_owned()),
            Self::Verified { report, .. } => match report.verdict() {
                Verdict::Intact => ("intact", "intact".to_owned()),
                Verdict::Unsigned => (
                    "unproven",
                    format!(
                        "not proven: {} entries covered by no signed checkpoint",
                        report.unsigned_entries
                    ),
                ),
                Verdict::Problems => (
                    "problems",
                    format!("{} problem(s) found", report.problems.len()),
                ),
            },
        }
    }

    /// One line for stderr, when there was a verification.
    pub(crate) fn summary(&self) -> Option<String> {
        match self {
            Self::Verified { report, .. } => Some(report.summary()),
            _ => None,
        }
    }

    /// The section of the page.
    pub(crate) fn section(&self) -> String {
        let (class, headline) = self.headline();
        let mut out = String::new();
        let _ = write!(
            out,
            "<section id=\"integrity\" class=\"integrity {class}\"><h2>Integrity: {}</h2>",
            escape(&headline)
        );
        match self {
            Self::NotTamperEvident { postgres } => {
                let _ = write!(
                    out,
                    "<p>The {} has no signed checkpoint: its entries were written without a \
                     signing key (or their checkpoints were removed), and nothing proves them \
                     unaltered. Whoever can write to it can change, add or remove entries \
                     unseen.</p>",
                    if *postgres { "database" } else { "directory" }
                );
            }
            Self::NotVerified => out.push_str(
                "<p>The audit trail has signed checkpoints, but no public key was given, so this \
                 report did not check them. Give <code>--public-key FILE</code> \
                 to <code>llm-audit report html</code>, or run <code>llm-audit verify \
                 --public-key FILE</code>.</p>",
            ),
            Self::Verified {
                key_id,
                key_file,
                chained,
                report,
            } => {
                let _ = write!(
                    out,
                    "<p>Verified with the public key <code>{}</code> (from <code>{}</code>), \
                     by the code of <code>llm-audit verify</code>: {}.</p><p class=\"meta\">{}. \
                     The check covers the whole audit trail, not only this report's \
                     period.</p>",
                    escape(key_id),
                    escape(&key_file.display().to_string()),
                    match report.verdict() {
                        Verdict::Intact => "every entry is covered by a valid signed checkpoint",
                        Verdict::Unsigned =>
                            "no tampering found, but some entries are covered only by the \
                             unkeyed chain (writers that stopped without a final checkpoint), \
                             and entries removed after a last checkpoint would look the same",
                        Verdict::Problems => "the audit trail is not as it was written",
                    },
                    escape(&report.summary())
                );
                if !chained {
                    out.push_str(
                        "<p>There is no signed checkpoint: the entries were written without a \
                         signing key (or their checkpoints were removed), so nothing proves them \
                         unaltered.</p>",
                    );
                }
                findings(&mut out, "Problems", &report.problems);
                findings(
                    &mut out,
                    "Entries covered by no signed checkpoint",
                    &report.unsigned,
                );
                findings(&mut out, "Notes (not problems)", &report.notes);
            }
        }
        out.push_str("</section>\n");
        out
    }
}

/// Findings counted by kind, then listed.
fn findings(out: &mut String, title: &str, found: &[verify::Problem]) {
    if found.is_empty() {
        return;
    }
    let mut kinds: BTreeMap<&str, (u64, BTreeSet<&str>)> = BTreeMap::new();
    for p in found {
        let k = kinds.entry(p.kind_name()).or_default();
        k.0 += 1;
        if !p.stream.is_empty() {
            k.1.insert(&p.stream);
        }
    }
    let _ = write!(out, "<h3>{}</h3>", escape(title));
    table(
        out,
        &["kind", "findings", "streams"],
        kinds.iter().map(|(kind, (n, streams))| {
            vec![Td::text(kind), Td::num(*n), Td::num(streams.len() as u64)]
        }),
    );
    table(
        out,
        &["stream", "seq", "kind", "detail"],
        found.iter().map(|p| {
            vec![
                Td::text(&p.stream),
                p.seq.map_or_else(|| Td::text(""), Td::num),
                Td::text(p.kind_name()),
                Td::message(&p.detail),
            ]
        }),
    );
}
