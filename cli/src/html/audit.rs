//! What an auditor asks of the period first: what failed and why, what was blocked, what was
//! redacted, which calls have no price and why, and what the audit trail itself recorded (entries
//! it dropped, writers that crashed, erasures). Gathered in one pass over the entries.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use time::OffsetDateTime;
use tracing_llm_audit::{AuditEntry, Status, ACTION_ENTRIES_DROPPED};

use super::escape;

/// The longest message shown, in characters; the rest is left out, and the page says how much.
pub(super) const MESSAGE_CHARS: usize = 300;
/// The most rows a table of this module shows; the page says how many more there are.
pub(super) const MAX_ROWS: usize = 100;
/// The most models named in one cell; the page says how many more there are.
const MAX_MODELS: usize = 10;

/// The calls of one group: how many, the first and last, and the last one's message.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) count: u64,
    pub(super) first: OffsetDateTime,
    pub(super) last: OffsetDateTime,
    pub(super) message: Option<String>,
}

impl Seen {
    fn add(slot: &mut Option<Self>, at: OffsetDateTime, message: Option<&str>) {
        let seen = slot.get_or_insert_with(|| Self {
            count: 0,
            first: at,
            last: at,
            message: None,
        });
        seen.count += 1;
        seen.first = seen.first.min(at);
        if at >= seen.last || seen.message.is_none() {
            seen.last = seen.last.max(at);
            if let Some(m) = message.filter(|m| !m.is_empty()) {
                seen.message = Some(bounded(m));
            }
        }
    }
}

/// A message cut to [`MESSAGE_CHARS`] characters, saying how many more there were.
pub(super) fn bounded(message: &str) -> String {
    let total = message.chars().count();
    if total <= MESSAGE_CHARS {
        return message.to_owned();
    }
    let mut cut: String = message.chars().take(MESSAGE_CHARS).collect();
    let _ = write!(cut, "… ({} more characters)", total - MESSAGE_CHARS);
    cut
}

/// Redactions of one entity type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Redacted {
    /// Values redacted.
    pub(super) values: u64,
    /// Calls with at least one.
    pub(super) calls: u64,
}

type Key = Option<String>;

/// The calls of one group and the models they were made to.
#[derive(Debug, Clone)]
pub(super) struct ByModel {
    pub(super) seen: Seen,
    pub(super) models: BTreeMap<Key, u64>,
}

impl ByModel {
    fn add(
        map: &mut BTreeMap<Key, Self>,
        key: Key,
        model: Key,
        at: OffsetDateTime,
        message: Option<&str>,
    ) {
        let group = map.remove(&key);
        let (mut seen, mut models) = match group {
            Some(g) => (Some(g.seen), g.models),
            None => (None, BTreeMap::new()),
        };
        Seen::add(&mut seen, at, message);
        *models.entry(model).or_default() += 1;
        if let Some(seen) = seen {
            map.insert(key, Self { seen, models });
        }
    }

    /// The models, most calls first, one a line, each whole, with its count.
    fn models_html(&self) -> String {
        let mut models: Vec<(&Key, &u64)> = self.models.iter().collect();
        models.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let mut cell: Vec<String> = models
            .iter()
            .take(MAX_MODELS)
            .map(|(model, n)| format!("{} ({n})", escape(model.as_deref().unwrap_or("(none)"))))
            .collect();
        if models.len() > MAX_MODELS {
            cell.push(format!("and {} more models", models.len() - MAX_MODELS));
        }
        cell.join("<br>")
    }
}

/// The audit figures of the entries of a period.
#[derive(Debug, Default)]
pub(super) struct Audit {
    /// LLM calls (entries that are not events of the trail itself).
    pub(super) calls: u64,
    /// Calls with status `error`, by error type.
    pub(super) failures: BTreeMap<Key, ByModel>,
    /// Calls with status `blocked`, by reason.
    pub(super) blocked: BTreeMap<Key, ByModel>,
    /// Redactions by entity type.
    pub(super) redactions: BTreeMap<String, Redacted>,
    /// Calls with at least one redaction.
    pub(super) redacted_calls: u64,
    /// Calls without a cost, by model and the reason given (`cost_note`).
    pub(super) unpriced: BTreeMap<(Key, Key), Seen>,
    /// Events of the trail itself (`llm_audit.*`: dropped entries, repairs, erasures), by action.
    pub(super) events: BTreeMap<String, Seen>,
    /// Entries the writers said they dropped (the `dropped` counts of their drop events).
    pub(super) dropped: u64,
}

fn add(
    map: &mut BTreeMap<(Key, Key), Seen>,
    key: (Key, Key),
    at: OffsetDateTime,
    message: Option<&str>,
) {
    let mut seen = map.remove(&key);
    Seen::add(&mut seen, at, message);
    if let Some(seen) = seen {
        map.insert(key, seen);
    }
}

impl Audit {
    pub(super) fn add(&mut self, e: &AuditEntry) {
        let at = e.timestamp;
        if e.action.starts_with("llm_audit.") {
            let mut seen = self.events.remove(&e.action);
            Seen::add(&mut seen, at, e.error_message.as_deref());
            if let Some(seen) = seen {
                self.events.insert(e.action.clone(), seen);
            }
            if e.action == ACTION_ENTRIES_DROPPED {
                self.dropped += e
                    .metadata
                    .as_ref()
                    .and_then(|m| m.get("dropped"))
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
            }
            return;
        }
        self.calls += 1;
        match e.status {
            Status::Error => ByModel::add(
                &mut self.failures,
                e.error_type.clone(),
                e.model.clone(),
                at,
                e.error_message.as_deref(),
            ),
            Status::Blocked => ByModel::add(
                &mut self.blocked,
                e.error_message
                    .as_deref()
                    .or(e.error_type.as_deref())
                    .map(bounded),
                e.model.clone(),
                at,
                None,
            ),
            Status::Success => {}
        }
        let mut any = false;
        for (entity, &n) in &e.sanitization {
            if n > 0 {
                let r = self.redactions.entry(entity.clone()).or_default();
                r.values += n;
                r.calls += 1;
                any = true;
            }
        }
        // A count without its types (an older writer, or a hand-made entry).
        let typed: u64 = e.sanitization.values().sum();
        if e.sanitization_count > typed {
            let r = self
                .redactions
                .entry("(type not recorded)".to_owned())
                .or_default();
            r.values += e.sanitization_count - typed;
            r.calls += 1;
            any = true;
        }
        if any {
            self.redacted_calls += 1;
        }
        if e.cost_usd.is_none() {
            add(
                &mut self.unpriced,
                (e.model.clone(), e.cost_note.as_deref().map(bounded)),
                at,
                None,
            );
        }
    }

    pub(super) fn failed(&self) -> u64 {
        self.failures.values().map(|g| g.seen.count).sum()
    }

    pub(super) fn blocked_calls(&self) -> u64 {
        self.blocked.values().map(|g| g.seen.count).sum()
    }

    pub(super) fn redacted_values(&self) -> u64 {
        self.redactions.values().map(|r| r.values).sum()
    }

    pub(super) fn unpriced_calls(&self) -> u64 {
        self.unpriced.values().map(|s| s.count).sum()
    }

    /// The sections, in the order an auditor reads them.
    pub(super) fn sections(&self) -> String {
        let mut page = String::new();
        self.failures_section(&mut page);
        self.blocked_section(&mut page);
        self.redactions_section(&mut page);
        self.events_section(&mut page);
        page
    }

    fn failures_section(&self, page: &mut String) {
        let _ = write!(
            page,
            "<section id=\"failures\"><h2>Failures</h2><p class=\"meta\">{}</p>",
            match self.failed() {
                0 => "No call failed.".to_owned(),
                n => format!(
                    "{n} of {} calls failed (status error), by error type, most frequent \
                     first, with the models they were made to and the latest message.",
                    self.calls
                ),
            }
        );
        table(
            page,
            &[
                "error type",
                "calls",
                "models",
                "first (UTC)",
                "latest (UTC)",
                "latest message",
            ],
            by_count(&self.failures).into_iter().map(|(kind, g)| {
                vec![
                    Td::text(kind.as_deref().unwrap_or("(none)")),
                    Td::num(g.seen.count),
                    Td::html(g.models_html()),
                    Td::time(g.seen.first),
                    Td::time(g.seen.last),
                    Td::message(g.seen.message.as_deref().unwrap_or("(no message)")),
                ]
            }),
        );
        page.push_str("</section>\n");
    }

    fn blocked_section(&self, page: &mut String) {
        let _ = write!(
            page,
            "<section id=\"blocked\"><h2>Blocked calls</h2><p class=\"meta\">{}</p>",
            match self.blocked_calls() {
                0 => "No call was blocked.".to_owned(),
                1 => "1 call was blocked before it was sent (status blocked), by reason, with \
                      the models it was meant for."
                    .to_owned(),
                n => format!(
                    "{n} calls were blocked before they were sent (status blocked), by reason, \
                     with the models they were meant for."
                ),
            }
        );
        table(
            page,
            &["reason", "calls", "models", "first (UTC)", "latest (UTC)"],
            by_count(&self.blocked).into_iter().map(|(reason, g)| {
                vec![
                    Td::message(reason.as_deref().unwrap_or("(no reason recorded)")),
                    Td::num(g.seen.count),
                    Td::html(g.models_html()),
                    Td::time(g.seen.first),
                    Td::time(g.seen.last),
                ]
            }),
        );
        page.push_str("</section>\n");
    }

    fn redactions_section(&self, page: &mut String) {
        let _ = write!(
            page,
            "<section id=\"redactions\"><h2>Redactions</h2><p class=\"meta\">{}</p>",
            match self.redacted_values() {
                0 => "Nothing was redacted before sending.".to_owned(),
                n => format!(
                    "{n} value(s) redacted before sending, in {} of {} calls, by entity type \
                     (counts only: the values are never recorded).",
                    self.redacted_calls, self.calls
                ),
            }
        );
        let mut rows: Vec<(&String, &Redacted)> = self.redactions.iter().collect();
        rows.sort_by(|a, b| b.1.values.cmp(&a.1.values).then(a.0.cmp(b.0)));
        table(
            page,
            &["entity type", "values redacted", "calls"],
            rows.into_iter()
                .map(|(entity, r)| vec![Td::text(entity), Td::num(r.values), Td::num(r.calls)]),
        );
        page.push_str("</section>\n");
    }

    fn events_section(&self, page: &mut String) {
        let _ = write!(
            page,
            "<section id=\"trail-events\"><h2>Events of the audit trail</h2><p class=\"meta\">{}</p>",
            match (self.events.is_empty(), self.dropped) {
                (true, _) => "The writers recorded no event of their own (no dropped entries, \
                              crash repairs or erasures)."
                    .to_owned(),
                (false, 0) => "What the writers recorded of their own: not calls, and not \
                               counted as calls above."
                    .to_owned(),
                (false, n) => format!(
                    "{n} audit entries were dropped by the writers (queue full or a sink \
                     behind): the figures of this report do not include them. Events that \
                     are not calls are not counted as calls above."
                ),
            }
        );
        if !self.events.is_empty() {
            let mut rows: Vec<(&String, &Seen)> = self.events.iter().collect();
            rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
            table(
                page,
                &[
                    "event",
                    "count",
                    "first (UTC)",
                    "latest (UTC)",
                    "latest message",
                ],
                rows.into_iter().map(|(action, seen)| {
                    vec![
                        Td::text(action),
                        Td::num(seen.count),
                        Td::time(seen.first),
                        Td::time(seen.last),
                        Td::message(seen.message.as_deref().unwrap_or("")),
                    ]
                }),
            );
        }
        page.push_str("</section>\n");
    }

    /// The unpriced calls, by model and reason.
    pub(super) fn unpriced_section(&self, page: &mut String) {
        let _ = write!(
            page,
            "<section id=\"unpriced\"><h2>Unpriced calls</h2><p class=\"meta\">{}</p>",
            match self.unpriced_calls() {
                0 => "Every call has a cost.".to_owned(),
                n => format!(
                    "{n} of {} calls have no cost (cost_usd null): every total above that \
                     includes them is a lower bound (\"at least\"), and \"unknown\" where no \
                     call is priced. By model and the reason recorded (cost_note).",
                    self.calls
                ),
            }
        );
        if self.unpriced_calls() > 0 {
            table(
                page,
                &["model", "reason", "calls", "first (UTC)", "latest (UTC)"],
                sorted(&self.unpriced)
                    .into_iter()
                    .map(|((model, note), seen)| {
                        vec![
                            Td::text(model.as_deref().unwrap_or("(none)")),
                            Td::message(note.as_deref().unwrap_or("(no reason recorded)")),
                            Td::num(seen.count),
                            Td::time(seen.first),
                            Td::time(seen.last),
                        ]
                    }),
            );
        }
        page.push_str("</section>\n");
    }
}

/// Groups by model, most calls first.
fn by_count(map: &BTreeMap<Key, ByModel>) -> Vec<(&Key, &ByModel)> {
    let mut rows: Vec<_> = map.iter().collect();
    rows.sort_by(|a, b| {
        b.1.seen
            .count
            .cmp(&a.1.seen.count)
            .then_with(|| a.0.cmp(b.0))
    });
    rows
}

/// Groups, most calls first.
fn sorted(map: &BTreeMap<(Key, Key), Seen>) -> Vec<(&(Key, Key), &Seen)> {
    let mut rows: Vec<_> = map.iter().collect();
    rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
    rows
}

/// A time with its date, to the second, in UTC: `2026-11-20 11:59:58 UTC`.
pub(super) fn when(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// A cell: its escaped text and its class.
pub(super) struct Td {
    html: String,
    class: &'static str,
}

impl Td {
    pub(super) fn text(s: &str) -> Self {
        Self {
            html: escape(s),
            class: "",
        }
    }

    pub(super) fn num(n: u64) -> Self {
        Self {
            html: n.to_string(),
            class: "num",
        }
    }

    pub(super) fn message(s: &str) -> Self {
        Self {
            html: escape(s),
            class: "msg",
        }
    }

    /// A time in UTC (the column says so), kept on one line.
    pub(super) fn time(at: OffsetDateTime) -> Self {
        Self {
            html: escape(when(at).trim_end_matches(" UTC")),
            class: "time",
        }
    }

    /// Markup made here, its texts escaped already.
    fn html(html: String) -> Self {
        Self { html, class: "" }
    }
}

/// A table of at most [`MAX_ROWS`] rows, saying how many more there were. A column of
/// numbers is aligned right, its heading too.
pub(super) fn table(page: &mut String, columns: &[&str], rows: impl Iterator<Item = Vec<Td>>) {
    let mut shown: Vec<Vec<Td>> = Vec::new();
    let mut more = 0;
    for row in rows {
        if shown.len() == MAX_ROWS {
            more += 1;
        } else {
            shown.push(row);
        }
    }
    page.push_str("<table><thead><tr>");
    for (i, c) in columns.iter().enumerate() {
        match shown.first().and_then(|row| row.get(i)) {
            Some(cell) if cell.class == "num" => {
                let _ = write!(page, "<th class=\"num\">{}</th>", escape(c));
            }
            _ => {
                let _ = write!(page, "<th>{}</th>", escape(c));
            }
        }
    }
    page.push_str("</tr></thead><tbody>");
    for row in &shown {
        page.push_str("<tr>");
        for cell in row {
            if cell.class.is_empty() {
                let _ = write!(page, "<td>{}</td>", cell.html);
            } else {
                let _ = write!(page, "<td class=\"{}\">{}</td>", cell.class, cell.html);
            }
        }
        page.push_str("</tr>");
    }
    if shown.is_empty() {
        let _ = write!(page, "<tr><td colspan=\"{}\">none</td></tr>", columns.len());
    }
    page.push_str("</tbody></table>");
    if more > 0 {
        let _ = write!(
            page,
            "<p class=\"meta\">and {more} more row(s), not shown: <code>llm-audit \
             query</code> lists them all.</p>"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_bounded_and_say_so() {
        let long = "x".repeat(MESSAGE_CHARS + 17);
        let b = bounded(&long);
        assert!(b.starts_with(&"x".repeat(MESSAGE_CHARS)));
        assert!(b.ends_with("… (17 more characters)"), "{b}");
        assert_eq!(bounded("short"), "short");
    }

    #[test]
    fn a_long_table_says_how_many_rows_it_leaves_out() {
        let mut page = String::new();
        table(
            &mut page,
            &["name", "n"],
            (0..MAX_ROWS as u64 + 3).map(|i| vec![Td::text("<x>"), Td::num(i)]),
        );
        assert_eq!(page.matches("<tr>").count(), MAX_ROWS + 1);
        assert!(
            page.contains("<th>name</th><th class=\"num\">n</th>"),
            "{page}"
        );
        assert!(page.contains("<td>&lt;x&gt;</td><td class=\"num\">0</td>"));
        assert!(page.contains("and 3 more row(s)"));
        let mut empty = String::new();
        table(&mut empty, &["a", "b"], std::iter::empty());
        assert!(empty.contains("<td colspan=\"2\">none</td>"));
    }

    #[test]
    fn the_latest_message_wins_whatever_the_order() {
        let t = |s| OffsetDateTime::from_unix_timestamp(s).unwrap();
        let mut seen = None;
        Seen::add(&mut seen, t(20), Some("second"));
        Seen::add(&mut seen, t(10), Some("first"));
        Seen::add(&mut seen, t(30), None);
        Seen::add(&mut seen, t(25), Some("late but not last"));
        let seen = seen.unwrap();
        assert_eq!(seen.count, 4);
        assert_eq!((seen.first, seen.last), (t(10), t(30)));
        assert_eq!(seen.message.as_deref(), Some("second"));
    }
}
