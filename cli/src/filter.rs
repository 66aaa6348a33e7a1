//! Which entries a command reads: the filters of `--from`, `--to`, `--user`, `--model`, ..., and
//! which entries are calls at all.

use time::OffsetDateTime;
use tracing_llm_audit::{AuditEntry, Status};
use uuid::Uuid;

/// The action of the entry that records an erasure (`llm-audit erase`).
pub(crate) const ERASURE_ACTION: &str = "llm_audit.erasure";

/// The actions of the entries that record something other than a call: an erasure, entries the
/// pipeline had to drop, a writer's repair of a torn file. Reports do not count them as
/// requests; they say how many they left out.
pub(crate) const EVENTS: [&str; 3] = [
    ERASURE_ACTION,
    tracing_llm_audit::ACTION_ENTRIES_DROPPED,
    tracing_llm_audit::sink::repair::ACTION_REPAIR,
];

/// Whether an entry of `action` records an event, not a call.
pub(crate) fn is_event(action: &str) -> bool {
    EVENTS.contains(&action)
}

/// What an entry must match.
#[derive(Debug, Default, Clone)]
pub(crate) struct Filter {
    pub(crate) from: Option<OffsetDateTime>,
    pub(crate) to: Option<OffsetDateTime>,
    pub(crate) user: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) status: Option<Status>,
    pub(crate) request_id: Option<Uuid>,
    /// 32 lowercase hex digits (see [`trace_id`]).
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
            && self.request_id.is_none_or(|id| e.request_id == id)
            && self.trace_id.as_deref().is_none_or(|want| {
                e.trace_id
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(want))
            })
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
            && self.request_id.is_none_or(|id| {
                r.request_id
                    .eq_ignore_ascii_case(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()))
            })
            && self.trace_id.as_deref().is_none_or(|want| {
                r.trace_id
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(want))
            })
    }
}

/// A request id given to `option`: a UUID, in any of its spellings.
pub(crate) fn request_id(option: &str, value: &str) -> Result<Uuid, String> {
    Uuid::try_parse(value.trim()).map_err(|_| {
        format!(
            "{option}: `{value}` is not a request id (a UUID, such as \
             01936f0e-7c4a-7d2e-9b1f-3c5d7e9f1a2b)"
        )
    })
}

/// A trace id given to `option`: a W3C trace id, 32 hex digits, as entries record it.
pub(crate) fn trace_id(option: &str, value: &str) -> Result<String, String> {
    let text = value.trim();
    if text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!(
            "{option}: `{value}` is not a trace id (a W3C trace id: 32 hex digits, such as \
             4bf92f3577b34da6a3ce929d0e0e4736)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_and_named() {
        let id = "01936F0E-7C4A-7D2E-9B1F-3C5D7E9F1A2B";
        assert_eq!(
            request_id("--request-id", id).unwrap().to_string(),
            id.to_ascii_lowercase()
        );
        assert_eq!(
            request_id("--request-id", "nope").unwrap_err(),
            "--request-id: `nope` is not a request id (a UUID, such as \
             01936f0e-7c4a-7d2e-9b1f-3c5d7e9f1a2b)"
        );
        assert_eq!(
            trace_id("--trace-id", "4BF92F3577B34DA6A3CE929D0E0E4736").unwrap(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        for bad in ["", "abc", &"0".repeat(30), &"g".repeat(32), &"0".repeat(33)] {
            let err = trace_id("--trace-id", bad).unwrap_err();
            assert!(
                err.starts_with(&format!("--trace-id: `{bad}` is not a trace id")),
                "{err}"
            );
        }
    }

    #[test]
    fn events_are_not_calls() {
        assert!(is_event("llm_audit.erasure"));
        assert!(is_event("llm_audit.entries_dropped"));
        assert!(is_event("llm_audit.repair"));
        assert!(!is_event("chat"));
    }
}
