//! Retention policies: how long each kind of data in an audit entry is kept.
//!
//! An entry holds four kinds of data, each with its own period:
//!
//! | Kind | Members |
//! | --- | --- |
//! | metadata | the entry itself: ids, model, tokens, cost, latency, status (when it expires the whole entry goes) |
//! | content hashes | `system_prompt_hash`, `input_hash`, `output_hash` |
//! | content | `system_prompt_content`, `input_content`, `output_content` (kept by the `Encrypted` or `PlaintextUnprotected` content policy) |
//! | error details | `error_message` |
//!
//! The policies of the reference design:
//!
//! | Policy | Metadata | Content hashes | Content | Error details |
//! | --- | --- | --- | --- | --- |
//! | [`standard`](RetentionPolicy::standard) | 2 years | 1 year | 90 days | 1 year |
//! | [`hipaa`](RetentionPolicy::hipaa) | 6 years | 6 years | never stored | 6 years |
//! | [`gdpr`](RetentionPolicy::gdpr) | set by you | set by you | set by you | set by you; nothing kept forever |
//!
//! A year is a calendar year (the same date, February 29 becoming February 28), so that "6
//! years" is never a day short. Data expires when its entry's `timestamp` is before the cut-off:
//! the time of the run minus the period. The `llm-audit retention apply` command removes what
//! expired; [`AuditLayerBuilder::with_retention`](crate::AuditLayerBuilder::with_retention)
//! refuses a content policy that stores what the retention policy says must never be stored.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

/// How long one kind of data is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Not stored at all (removed whenever found).
    Never,
    /// For this many days.
    Days(u32),
    /// For this many calendar years.
    Years(u32),
    /// Not removed by age.
    Forever,
}

impl Keep {
    /// The cut-off at `as_of`: data with a timestamp before it has expired. `None` for
    /// [`Forever`](Self::Forever); `as_of` itself for [`Never`](Self::Never).
    #[must_use]
    pub fn cutoff(self, as_of: OffsetDateTime) -> Option<OffsetDateTime> {
        let as_of = as_of.to_offset(time::UtcOffset::UTC);
        match self {
            Self::Never => Some(as_of),
            Self::Forever => None,
            // A period longer than the calendar reaches back keeps everything: no cut-off.
            Self::Days(n) => as_of.checked_sub(time::Duration::days(i64::from(n))),
            Self::Years(n) => {
                let year = i32::try_from(n)
                    .ok()
                    .and_then(|n| as_of.year().checked_sub(n))?;
                let date = as_of.date();
                let day = date.day().min(date.month().length(year));
                time::Date::from_calendar_date(year, date.month(), day)
                    .ok()
                    .map(|d| as_of.replace_date(d))
            }
        }
    }
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Never => f.write_str("never stored"),
            Self::Forever => f.write_str("forever"),
            Self::Days(1) => f.write_str("1 day"),
            Self::Days(n) => write!(f, "{n} days"),
            Self::Years(1) => f.write_str("1 year"),
            Self::Years(n) => write!(f, "{n} years"),
        }
    }
}

impl FromStr for Keep {
    type Err = RetentionError;

    /// `90d`, `2y`, `never` or `forever`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || RetentionError::Period(text.to_owned());
        match text.trim() {
            "never" => Ok(Self::Never),
            "forever" => Ok(Self::Forever),
            t => {
                let number = |digits: &str| -> Result<u32, RetentionError> {
                    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad());
                    }
                    digits.parse().map_err(|_| bad())
                };
                if let Some(days) = t.strip_suffix('d') {
                    Ok(Self::Days(number(days)?))
                } else if let Some(years) = t.strip_suffix('y') {
                    Ok(Self::Years(number(years)?))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// A kind of data with its own retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DataKind {
    /// The entry itself.
    Metadata,
    /// `system_prompt_hash`, `input_hash`, `output_hash`.
    ContentHashes,
    /// `system_prompt_content`, `input_content`, `output_content`.
    Content,
    /// `error_message`.
    ErrorDetails,
}

impl DataKind {
    /// Every kind.
    pub const ALL: [Self; 4] = [
        Self::Metadata,
        Self::ContentHashes,
        Self::Content,
        Self::ErrorDetails,
    ];

    /// The entry members of this kind (none for metadata: the whole entry).
    #[must_use]
    pub fn members(self) -> &'static [&'static str] {
        match self {
            Self::Metadata => &[],
            Self::ContentHashes => &["system_prompt_hash", "input_hash", "output_hash"],
            Self::Content => &["system_prompt_content", "input_content", "output_content"],
            Self::ErrorDetails => &["error_message"],
        }
    }

    /// `metadata`, `content hashes`, `content`, `error details`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Metadata => "metadata",
            Self::ContentHashes => "content hashes",
            Self::Content => "content",
            Self::ErrorDetails => "error details",
        }
    }
}

/// A retention policy: a name and a period for each [`DataKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    name: String,
    metadata: Keep,
    content_hashes: Keep,
    content: Keep,
    error_details: Keep,
}

/// The periods of a [`gdpr`](RetentionPolicy::gdpr) or [`custom`](RetentionPolicy::custom)
/// policy, each set by its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    /// The entry itself.
    pub metadata: Keep,
    /// The content hashes.
    pub content_hashes: Keep,
    /// The kept content.
    pub content: Keep,
    /// The error messages.
    pub error_details: Keep,
}

impl RetentionPolicy {
    /// Metadata 2 years, content hashes 1 year, full content 90 days, error details 1 year.
    #[must_use]
    pub fn standard() -> Self {
        Self {
            name: "standard".to_owned(),
            metadata: Keep::Years(2),
            content_hashes: Keep::Years(1),
            content: Keep::Days(90),
            error_details: Keep::Years(1),
        }
    }

    /// Six years for everything (HIPAA's documentation retention); full content is never
    /// stored.
    #[must_use]
    pub fn hipaa() -> Self {
        Self {
            name: "hipaa".to_owned(),
            metadata: Keep::Years(6),
            content_hashes: Keep::Years(6),
            content: Keep::Never,
            error_details: Keep::Years(6),
        }
    }

    /// GDPR's storage limitation: every period is the user's to set, and none may be
    /// [`Keep::Forever`]; a kept period may not be longer than the metadata's.
    ///
    /// # Errors
    /// [`RetentionError::Forever`] or [`RetentionError::OutlivesMetadata`].
    pub fn gdpr(periods: Periods) -> Result<Self, RetentionError> {
        for (kind, keep) in Self::pairs(&periods) {
            if keep == Keep::Forever {
                return Err(RetentionError::Forever(kind));
            }
        }
        Self::custom("gdpr", periods)
    }

    /// A policy of your own.
    ///
    /// # Errors
    /// [`RetentionError::OutlivesMetadata`] when a kind would be kept longer than the entry
    /// that holds it; [`RetentionError::Name`] for an empty name.
    pub fn custom(name: &str, periods: Periods) -> Result<Self, RetentionError> {
        if name.trim().is_empty() || name.contains(['\n', '\r']) {
            return Err(RetentionError::Name(name.to_owned()));
        }
        let reference = OffsetDateTime::UNIX_EPOCH + time::Duration::days(365 * 1_000);
        let outlives =
            |keep: Keep| match (keep.cutoff(reference), periods.metadata.cutoff(reference)) {
                (None, Some(_)) => true,
                (Some(a), Some(b)) => a < b,
                _ => false,
            };
        for (kind, keep) in Self::pairs(&periods).into_iter().skip(1) {
            if outlives(keep) {
                return Err(RetentionError::OutlivesMetadata {
                    kind,
                    keep,
                    metadata: periods.metadata,
                });
            }
        }
        Ok(Self {
            name: name.to_owned(),
            metadata: periods.metadata,
            content_hashes: periods.content_hashes,
            content: periods.content,
            error_details: periods.error_details,
        })
    }

    fn pairs(periods: &Periods) -> [(DataKind, Keep); 4] {
        [
            (DataKind::Metadata, periods.metadata),
            (DataKind::ContentHashes, periods.content_hashes),
            (DataKind::Content, periods.content),
            (DataKind::ErrorDetails, periods.error_details),
        ]
    }

    /// The policy's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long `kind` is kept.
    #[must_use]
    pub fn keep(&self, kind: DataKind) -> Keep {
        match kind {
            DataKind::Metadata => self.metadata,
            DataKind::ContentHashes => self.content_hashes,
            DataKind::Content => self.content,
            DataKind::ErrorDetails => self.error_details,
        }
    }

    /// Whether full content may be stored at all.
    #[must_use]
    pub fn allows_content(&self) -> bool {
        self.content != Keep::Never
    }

    /// Why data of `kind` removed at `as_of` was removed, for tombstones and reports.
    #[must_use]
    pub fn reason(&self, kind: DataKind, as_of: OffsetDateTime) -> String {
        let keep = self.keep(kind);
        let cutoff = keep
            .cutoff(as_of)
            .and_then(|c| {
                c.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        format!(
            "expired by policy {}: {} kept {keep} (before {cutoff})",
            self.name,
            kind.name()
        )
    }
}

/// A retention policy that cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionError {
    /// A period that does not parse.
    #[error("{0:?} is not a retention period (write 90d, 2y, never or forever)")]
    Period(String),
    /// GDPR: nothing may be kept forever.
    #[error("the gdpr policy keeps nothing forever: set a period for {}", .0.name())]
    Forever(DataKind),
    /// A kind kept longer than the entries that hold it.
    #[error("{} would be kept {keep}, longer than the entries that hold it ({metadata})", kind.name())]
    OutlivesMetadata {
        /// The kind.
        kind: DataKind,
        /// Its period.
        keep: Keep,
        /// The metadata's period.
        metadata: Keep,
    },
    /// An unusable policy name.
    #[error("{0:?} is not a policy name")]
    Name(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn periods_parse_and_years_are_calendar_years() {
        assert_eq!("90d".parse::<Keep>().unwrap(), Keep::Days(90));
        assert_eq!("6y".parse::<Keep>().unwrap(), Keep::Years(6));
        assert_eq!("never".parse::<Keep>().unwrap(), Keep::Never);
        assert_eq!("forever".parse::<Keep>().unwrap(), Keep::Forever);
        for bad in [
            "",
            "d",
            "12",
            "3w",
            "-1d",
            "1.5y",
            "9é",
            "+3d",
            "99999999999d",
        ] {
            let err = bad.parse::<Keep>().unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        let leap = datetime!(2028-02-29 12:00 UTC);
        assert_eq!(
            Keep::Years(6).cutoff(leap),
            Some(datetime!(2022-02-28 12:00 UTC))
        );
        assert_eq!(
            Keep::Years(4).cutoff(leap),
            Some(datetime!(2024-02-29 12:00 UTC))
        );
        assert_eq!(
            Keep::Days(90).cutoff(leap),
            Some(datetime!(2027-12-01 12:00 UTC))
        );
        assert_eq!(Keep::Never.cutoff(leap), Some(leap));
        assert_eq!(Keep::Forever.cutoff(leap), None);
        // Beyond what the calendar reaches: no cut-off (keep everything), not a panic.
        assert_eq!(Keep::Days(u32::MAX).cutoff(leap), None);
        assert_eq!(Keep::Years(u32::MAX).cutoff(leap), None);
    }

    #[test]
    fn gdpr_keeps_nothing_forever_and_nothing_outlives_its_entry() {
        let periods = Periods {
            metadata: Keep::Years(1),
            content_hashes: Keep::Days(30),
            content: Keep::Never,
            error_details: Keep::Days(30),
        };
        assert_eq!(RetentionPolicy::gdpr(periods).unwrap().name(), "gdpr");
        let forever = Periods {
            error_details: Keep::Forever,
            ..periods
        };
        assert_eq!(
            RetentionPolicy::gdpr(forever).unwrap_err(),
            RetentionError::Forever(DataKind::ErrorDetails)
        );
        let longer = Periods {
            content_hashes: Keep::Years(2),
            ..periods
        };
        let err = RetentionPolicy::gdpr(longer).unwrap_err().to_string();
        assert!(
            err.contains("content hashes would be kept 2 years"),
            "{err}"
        );
        assert!(RetentionPolicy::custom(
            "archive",
            Periods {
                metadata: Keep::Forever,
                content_hashes: Keep::Forever,
                content: Keep::Days(7),
                error_details: Keep::Forever,
            }
        )
        .is_ok());
        assert!(!RetentionPolicy::hipaa().allows_content());
        assert!(RetentionPolicy::standard().allows_content());
    }
}
