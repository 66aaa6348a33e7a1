//! `llm-audit report html`: one self-contained page (inline SVG and CSS; no script, no fonts, no
//! address of any kind), so that it opens anywhere, offline, and can be mailed to an auditor.
//!
//! It is an audit report: it says first whether the entries can be trusted (the verdict of
//! `verify` with the key given, or why there is none), then what failed and why, what was
//! blocked, what was redacted and what the trail itself recorded, then the figures. Money is
//! exact ([`Decimal`]) in every figure; `f64` serves pixel geometry only. Every text from the log
//! is escaped. The file is written readable by its owner only, as the logs are.

mod audit;
mod chart;
mod integrity;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use rust_decimal::Decimal;
use tracing_llm_audit::chain::VerifyingKey;

use crate::figures::{AnomalySpec, Group, GroupReport, Key};
use crate::filter::Filter;
use crate::output::unpriced_calls;
use crate::source::Source;
use chart::{Row, Series, Unit};

/// How many users the "top users" chart shows.
const TOP_USERS: usize = 10;

/// `s` as HTML text: markup characters as entities; control characters, and the format
/// characters that reorder or hide text (bidirectional overrides, zero-width characters), as
/// visible `\u{…}` escapes, so that a log line can neither inject markup nor disguise itself.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() || is_hidden_format(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Characters that change how the text around them is shown without showing themselves.
fn is_hidden_format(c: char) -> bool {
    matches!(c,
        '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}'
        | '\u{feff}'
        | '\u{061c}'
        | '\u{00ad}')
}

fn name(key: &Option<String>) -> String {
    key.clone().unwrap_or_else(|| "(none)".to_owned())
}

/// Writes the page to `path`, readable and writable by its owner only (as the logs are), also
/// when the file was there before; a symbolic link or another user's file is refused.
pub(crate) fn write_file(path: &Path, page: &str) -> Result<(), String> {
    use std::io::Write;
    use tracing_llm_audit::sink::log_file::{open, Access};
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut file = open(
        path,
        std::fs::OpenOptions::new().write(true).create(true),
        Access::Rewrite,
    )
    .map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
    }
    file.set_len(0).map_err(fail)?;
    file.write_all(page.as_bytes()).map_err(fail)
}

/// Every day from the first to the last of `days` (`YYYY-MM-DD`), the days without entries too,
/// so that the time axis has no hidden gaps.
fn every_day(days: &BTreeSet<String>) -> Vec<String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let parse = |d: &String| time::Date::parse(d, format).ok();
    let (Some(first), Some(last)) = (days.first().and_then(parse), days.last().and_then(parse))
    else {
        return days.iter().cloned().collect();
    };
    if days.iter().any(|d| parse(d).is_none()) || (last - first).whole_days() > 3_660 {
        return days.iter().cloned().collect();
    }
    let mut all = Vec::new();
    let mut day = first;
    while day <= last {
        all.push(day.to_string());
        match day.next_day() {
            Some(next) => day = next,
            None => break,
        }
    }
    all
}

/// The page. `public_key`: the key to verify the audit trail with, as `llm-audit verify` does.
pub(crate) fn report(
    source: &mut Source,
    filter: &Filter,
    anomaly: &AnomalySpec,
    public_key: Option<&Path>,
) -> Result<String, String> {
    let key = public_key
        .map(|path| {
            VerifyingKey::from_file(path)
                .map(|key| (path, key))
                .map_err(|e| format!("--public-key: {e}"))
        })
        .transpose()?;
    let by_day_model = GroupReport::Usage.spec(vec![Key::Day, Key::Model]);
    let by_user = GroupReport::Cost.spec(vec![Key::User]);
    let by_model = GroupReport::Latency.spec(vec![Key::Model]);
    let mut all = source.groups(&[by_day_model, by_user, by_model], filter)?;
    let mut models = all.pop().unwrap_or_default();
    let users = all.pop().unwrap_or_default();
    let days = all.pop().unwrap_or_default();
    let anomalies = source.anomalies(
        anomaly,
        &Filter {
            from: None,
            to: None,
            ..filter.clone()
        },
    )?;
    let mut audit = audit::Audit::default();
    source.entries(filter, None, |entry| {
        audit.add(&entry);
        true
    })?;
    let integrity = integrity::check(source, key.as_ref().map(|(p, k)| (*p, k)))?;
    if let Some(summary) = integrity.summary() {
        eprintln!("llm-audit: verify: {summary}");
    }

    let requests: u64 = models.iter().map(|g| g.requests).sum();
    let errors: u64 = models.iter().map(|g| g.errors).sum();
    let cost: Decimal = models.iter().map(|g| g.cost).sum();
    let unpriced: u64 = models.iter().map(|g| g.unpriced).sum();
    let total = Group {
        requests,
        errors,
        cost,
        unpriced,
        ..Group::default()
    };

    // Cost per day, stacked by model; tokens per day.
    let day_names = every_day(&days.iter().map(|g| name(&g.keys[0])).collect());
    let mut model_cost: BTreeMap<String, Decimal> = BTreeMap::new();
    for g in &days {
        *model_cost.entry(name(&g.keys[1])).or_default() += g.cost;
    }
    let mut model_names: Vec<String> = model_cost.keys().cloned().collect();
    model_names.sort_by(|a, b| model_cost[b].cmp(&model_cost[a]).then(a.cmp(b)));
    let day_index = |d: &str| day_names.iter().position(|x| x == d).unwrap_or(0);
    let mut cost_series: Vec<Series> = model_names
        .iter()
        .map(|m| Series::new(m.clone(), vec![Decimal::ZERO; day_names.len()]))
        .collect();
    let mut input = vec![Decimal::ZERO; day_names.len()];
    let mut output = vec![Decimal::ZERO; day_names.len()];
    for g in &days {
        let d = day_index(&name(&g.keys[0]));
        let m = model_names
            .iter()
            .position(|x| *x == name(&g.keys[1]))
            .unwrap_or(0);
        // Each (day, model) is one group: its bar is the priced sum, its tooltip says what that
        // leaves out.
        cost_series[m].values[d] += g.cost;
        cost_series[m].tips[d] = Some(g.cost_sum().describe("$"));
        input[d] += Decimal::from(g.input);
        output[d] += Decimal::from(g.output);
    }
    let token_series = vec![
        Series::new("input tokens", input),
        Series::new("output tokens", output),
    ];

    // Top users.
    let mut users = users;
    users.sort_by(|a, b| b.cost.cmp(&a.cost).then_with(|| a.keys.cmp(&b.keys)));
    let top: Vec<Row> = users
        .iter()
        .take(TOP_USERS)
        .map(|g| Row {
            label: name(&g.keys[0]),
            values: vec![g.cost],
            texts: vec![g.cost_sum().describe("$")],
        })
        .collect();

    // Cost per model, with what each total leaves out.
    let mut by_cost: Vec<Group> = models.clone();
    by_cost.sort_by(|a, b| b.cost.cmp(&a.cost).then_with(|| a.keys.cmp(&b.keys)));

    // Latency and errors per model.
    models.sort_by(|a, b| a.keys.cmp(&b.keys));
    let ms = |v: Option<u64>| v.map_or(Decimal::ZERO, Decimal::from);
    let latency: Vec<Row> = models
        .iter()
        .map(|g| Row {
            label: name(&g.keys[0]),
            values: vec![ms(g.p50), ms(g.p95)],
            texts: [g.p50, g.p95]
                .iter()
                .map(|v| v.map_or_else(|| "none".to_owned(), |v| format!("{v} ms")))
                .collect(),
        })
        .collect();
    let error_rate: Vec<Row> = models
        .iter()
        .map(|g| Row {
            label: name(&g.keys[0]),
            values: vec![g.error_rate()],
            texts: vec![format!(
                "{}% ({} of {})",
                g.error_rate().normalize(),
                g.errors,
                g.requests
            )],
        })
        .collect();

    let mut page = String::new();
    let period = match (filter.from, filter.to) {
        (Some(a), Some(b)) => format!("{} to {}", audit::when(a), audit::when(b)),
        (Some(a), None) => format!("since {}", audit::when(a)),
        (None, Some(b)) => format!("until {}", audit::when(b)),
        (None, None) => "all entries".to_owned(),
    };
    let from = match source {
        Source::Jsonl(j) => format!("the JSONL directory {}", j.dir.display()),
        Source::Postgres(_) => "PostgreSQL".to_owned(),
    };
    let (integrity_class, integrity_headline) = integrity.headline();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>LLM audit report</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>{CSS}</style></head><body>\
         <h1>LLM audit report</h1><p class=\"meta\">{} · from {} · generated {} by llm-audit {}</p>\
         <div class=\"cards\"><div class=\"{integrity_class}\"><b>{}</b>integrity</div>\
         <div><b>{}</b>calls</div><div class=\"cost\"><b>{}</b>total cost{}</div>\
         <div><b>{}%</b>error rate · {} failed</div><div><b>{}</b>blocked</div>\
         <div><b>{}</b>values redacted in {} calls</div><div><b>{}</b>anomalies</div></div>\n",
        escape(&period),
        escape(&from),
        audit::when(time::OffsetDateTime::now_utc()),
        env!("CARGO_PKG_VERSION"),
        escape(&integrity_headline),
        requests,
        escape(&total.cost_sum().text("$")),
        match unpriced {
            0 => String::new(),
            n => format!(" · {}", unpriced_calls(n)),
        },
        total.error_rate().normalize(),
        audit.failed(),
        audit.blocked_calls(),
        audit.redacted_values(),
        audit.redacted_calls,
        anomalies.rows.len(),
    );
    page.push_str(&integrity.section());
    page.push_str(&audit.sections());
    let cost_title = match unpriced {
        0 => "Cost per day (USD), by model".to_owned(),
        n => format!(
            "Cost per day (USD), by model: lower bounds, {} not in the bars",
            unpriced_calls(n)
        ),
    };
    page.push_str(&chart::columns(
        "cost-per-day",
        &cost_title,
        Unit::Usd,
        &day_names,
        &cost_series,
        true,
    ));
    page.push_str(&chart::rows(
        "top-users",
        &format!("Top {TOP_USERS} users by cost (USD)"),
        Unit::Usd,
        &[""],
        &top,
    ));
    page.push_str(&chart::columns(
        "tokens-per-day",
        "Tokens per day",
        Unit::Tokens,
        &day_names,
        &token_series,
        true,
    ));
    page.push_str(&chart::rows(
        "latency-per-model",
        "Latency per model, p50 and p95 (ms)",
        Unit::Ms,
        &["p50", "p95"],
        &latency,
    ));
    page.push_str(&chart::rows(
        "error-rate-per-model",
        "Error rate per model (%)",
        Unit::Percent,
        &[""],
        &error_rate,
    ));
    page.push_str(
        "<section id=\"cost-per-model\"><h2>Cost per model</h2><table><thead><tr><th>model</th>\
         <th>requests</th><th>total cost</th><th>unpriced calls</th></tr></thead><tbody>",
    );
    for g in &by_cost {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&name(&g.keys[0])),
            g.requests,
            escape(&g.cost_sum().text("$")),
            g.unpriced
        );
    }
    if by_cost.is_empty() {
        page.push_str("<tr><td colspan=\"4\">no entries</td></tr>");
    }
    page.push_str("</tbody></table></section>\n");
    audit.unpriced_section(&mut page);
    let _ = write!(
        page,
        "<section id=\"anomalies\"><h2>Anomalies</h2><p class=\"meta\">{}</p>",
        escape(&anomalies.summary(anomaly))
    );
    let table = anomalies.table();
    page.push_str("<table><thead><tr>");
    for c in &table.columns {
        let _ = write!(page, "<th>{}</th>", escape(c));
    }
    page.push_str("</tr></thead><tbody>");
    for row in &table.rows {
        page.push_str("<tr>");
        for cell in row {
            let _ = write!(page, "<td>{}</td>", escape(&cell.render()));
        }
        page.push_str("</tr>");
    }
    if table.rows.is_empty() {
        let _ = write!(
            page,
            "<tr><td colspan=\"{}\">no anomalies</td></tr>",
            table.columns.len()
        );
    }
    page.push_str("</tbody></table></section></body></html>\n");
    Ok(page)
}

const CSS: &str = "body{font:14px system-ui,sans-serif;margin:24px auto;max-width:900px;padding:0 16px;color:#222}\
h1{font-size:22px;margin:0}h2{font-size:17px;margin:28px 0 6px}h3{font-size:14px;margin:14px 0 6px}.meta{color:#666}\
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px;margin:16px 0}.cards div{border:1px solid #ddd;border-radius:6px;padding:8px 10px;color:#666}\
.cards .cost{grid-column:span 2}.cards b{display:block;font-size:19px;color:#222;overflow-wrap:break-word}\
.cards .intact,.integrity.intact{background:#eaf6ec;border-color:#59a14f}\
.cards .unproven,.cards .unverified,.cards .none,.integrity.unproven,.integrity.unverified,.integrity.none{background:#fdf6e3;border-color:#e0b300}\
.cards .problems,.integrity.problems{background:#fdecec;border-color:#e15759}\
.integrity{border:1px solid #ddd;border-left-width:6px;border-radius:6px;padding:2px 14px 8px;margin:16px 0}.integrity h2{margin-top:10px}\
code{font-size:12px;overflow-wrap:anywhere}\
figure{margin:24px 0}figcaption{font-weight:600;margin-bottom:6px}svg{width:100%;height:auto}\
.grid{stroke:#e5e5e5}.axis{font-size:11px;fill:#555}\
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:4px 16px;padding:0;margin:4px 0 0;font-size:12px;color:#555}\
.legend li{overflow-wrap:anywhere}.legend i{display:inline-block;width:10px;height:10px;margin-right:5px}\
table{border-collapse:collapse;width:100%;font-size:12px}th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word}\
td.num,th.num{text-align:right}td.time{white-space:nowrap}td.msg{font-family:ui-monospace,monospace;font-size:11px;overflow-wrap:anywhere}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_html_would_read() {
        assert_eq!(
            escape("<script>\"a\"&'b'</script>"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn control_and_hiding_characters_are_shown_as_escapes() {
        assert_eq!(escape("a\u{1b}[31mb\nc\u{0}"), "a\\u{1b}[31mb\\u{a}c\\u{0}");
        assert_eq!(escape("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(escape("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(escape("\u{85}"), "\\u{85}");
        assert_eq!(escape("café ✓"), "café ✓");
    }

    #[test]
    fn the_days_between_are_on_the_axis() {
        let days: BTreeSet<String> = ["2026-02-27", "2026-03-02"].map(str::to_owned).into();
        assert_eq!(
            every_day(&days),
            ["2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02"]
        );
        assert!(every_day(&BTreeSet::new()).is_empty());
    }
}
