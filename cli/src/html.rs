//! `llm-audit report html`: one self-contained page (inline SVG and CSS; no script, no fonts, no
//! address of any kind), so that it opens anywhere, offline, and can be mailed to an auditor.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::output::unpriced_calls;
use crate::query::Filter;
use crate::report::{AnomalySpec, Group, GroupReport, Key};
use crate::source::Source;

const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// How many users the "top users" chart shows.
const TOP_USERS: usize = 10;

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn name(key: &Option<String>) -> String {
    key.clone().unwrap_or_else(|| "(none)".to_owned())
}

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// A series of a bar chart: its name and one value per category (`f64` for the geometry only),
/// with the text of each bar's tooltip where it says more than the value (a cost that leaves
/// unpriced calls out).
struct Series {
    name: String,
    values: Vec<f64>,
    tips: Vec<Option<String>>,
}

impl Series {
    fn new(name: impl Into<String>, values: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            tips: vec![None; values.len()],
            values,
        }
    }
}

/// Vertical bars, stacked (one bar per category) or side by side.
fn bars(
    id: &str,
    title: &str,
    unit: &str,
    categories: &[String],
    series: &[Series],
    stacked: bool,
) -> String {
    let (w, h, left, bottom, top) = (760.0, 300.0, 70.0, 60.0, 20.0);
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - top;
    let max = if stacked {
        (0..categories.len())
            .map(|i| series.iter().map(|s| s.values[i]).sum::<f64>())
            .fold(0.0, f64::max)
    } else {
        series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .fold(0.0, f64::max)
    };
    let max = if max > 0.0 { max * 1.05 } else { 1.0 };
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<figure id=\"{id}\"><figcaption>{}</figcaption><svg viewBox=\"0 0 {w} {}\" role=\"img\"><title>{}</title>",
        escape(title),
        h + 20.0 * series.len().div_ceil(4) as f64,
        escape(title)
    );
    // Axis and gridlines.
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = top + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/><text x=\"{}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{}</text>",
            left + plot_w,
            left - 6.0,
            y + 4.0,
            escape(&short(v, unit))
        );
    }
    let n = categories.len().max(1) as f64;
    let slot = plot_w / n;
    let bar_w = (slot * 0.7).max(1.0);
    for (i, category) in categories.iter().enumerate() {
        let x0 = left + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut base = 0.0;
        for (k, s) in series.iter().enumerate() {
            let v = s.values[i];
            let (x, bw) = if stacked {
                (x0, bar_w)
            } else {
                let bw = bar_w / series.len() as f64;
                (x0 + bw * k as f64, bw)
            };
            let bh = plot_h * v / max;
            let y = top + plot_h - plot_h * base / max - bh;
            let tip = s.tips[i].clone().unwrap_or_else(|| short(v, unit));
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} · {}: {}</title></rect>",
                PALETTE[k % PALETTE.len()],
                escape(category),
                escape(&s.name),
                escape(&tip)
            );
            if stacked {
                base += v;
            }
        }
        // Days as MM-DD; every category labelled when the labels fit side by side (about 7
        // units per character at this size), else every few.
        let label = match category.as_bytes() {
            [_, _, _, _, b'-', _, _, b'-', _, _] => category[5..].to_owned(),
            _ => truncate(category, 14),
        };
        let widest = categories
            .iter()
            .map(|c| c.chars().count().min(14))
            .max()
            .unwrap_or(1);
        let widest = if label.len() == 5 { 5 } else { widest };
        let every = ((widest as f64 * 7.0 + 6.0) / slot).ceil().max(1.0) as usize;
        if i % every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">{}</text>",
                x0 + bar_w / 2.0,
                top + plot_h + 16.0,
                escape(&label)
            );
        }
    }
    legend(&mut svg, series.iter().map(|s| s.name.as_str()), h - 18.0);
    svg.push_str("</svg></figure>\n");
    svg
}

/// Horizontal bars, one per row, largest first: a label, a length and the value as text.
fn hbars(id: &str, title: &str, rows: &[(String, f64, String)]) -> String {
    let (w, left, row_h) = (760.0, 180.0, 22.0);
    let h = 20.0 + row_h * rows.len().max(1) as f64;
    let max = rows
        .iter()
        .map(|r| r.1)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let plot_w = w - left - 120.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<figure id=\"{id}\"><figcaption>{}</figcaption><svg viewBox=\"0 0 {w} {h}\" role=\"img\"><title>{}</title>",
        escape(title),
        escape(title)
    );
    for (i, (label, v, text)) in rows.iter().enumerate() {
        let y = 10.0 + row_h * i as f64;
        let bw = plot_w * v / max;
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{}</text><rect x=\"{left}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{}</text>",
            left - 6.0,
            y + 14.0,
            escape(&truncate(label, 26)),
            row_h - 6.0,
            PALETTE[0],
            escape(label),
            escape(text),
            left + bw + 6.0,
            y + 14.0,
            escape(text)
        );
    }
    if rows.is_empty() {
        svg.push_str("<text x=\"20\" y=\"30\" class=\"axis\">no entries</text>");
    }
    svg.push_str("</svg></figure>\n");
    svg
}

fn legend<'a>(svg: &mut String, names: impl Iterator<Item = &'a str>, y: f64) {
    for (k, n) in names.enumerate() {
        let x = 70.0 + 170.0 * (k % 4) as f64;
        let y = y + 20.0 * (k / 4) as f64;
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{:.1}\" class=\"axis\">{}</text>",
            y - 9.0,
            PALETTE[k % PALETTE.len()],
            x + 14.0,
            y,
            escape(&truncate(n, 22))
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// A value for an axis: `$1.2k`, `350k tok`, `120 ms`.
fn short(v: f64, unit: &str) -> String {
    let (n, suffix) = match v.abs() {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let digits = if n.abs() >= 100.0 || n == n.trunc() {
        0
    } else if n.abs() >= 1.0 {
        1
    } else {
        3
    };
    match unit {
        "$" => format!("${n:.digits$}{suffix}"),
        "%" => format!("{n:.digits$}{suffix}%"),
        u => format!("{n:.digits$}{suffix} {u}"),
    }
}

/// The page.
pub(crate) fn report(
    source: &mut Source,
    filter: &Filter,
    anomaly: &AnomalySpec,
) -> Result<String, String> {
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
    let day_names: Vec<String> = days
        .iter()
        .map(|g| name(&g.keys[0]))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut model_cost: BTreeMap<String, Decimal> = BTreeMap::new();
    for g in &days {
        *model_cost.entry(name(&g.keys[1])).or_default() += g.cost;
    }
    let mut model_names: Vec<String> = model_cost.keys().cloned().collect();
    model_names.sort_by(|a, b| model_cost[b].cmp(&model_cost[a]).then(a.cmp(b)));
    let day_index = |d: &str| day_names.iter().position(|x| x == d).unwrap_or(0);
    let mut cost_series: Vec<Series> = model_names
        .iter()
        .map(|m| Series::new(m.clone(), vec![0.0; day_names.len()]))
        .collect();
    let mut input = vec![0.0; day_names.len()];
    let mut output = vec![0.0; day_names.len()];
    for g in &days {
        let d = day_index(&name(&g.keys[0]));
        let m = model_names
            .iter()
            .position(|x| *x == name(&g.keys[1]))
            .unwrap_or(0);
        // Each (day, model) is one group: its bar is the priced sum, its tooltip says what that
        // leaves out.
        cost_series[m].values[d] += f(g.cost);
        cost_series[m].tips[d] = Some(g.cost_sum().describe("$"));
        input[d] += g.input as f64;
        output[d] += g.output as f64;
    }
    let token_series = vec![
        Series::new("input tokens", input),
        Series::new("output tokens", output),
    ];

    // Top users.
    let mut users = users;
    users.sort_by(|a, b| b.cost.cmp(&a.cost).then_with(|| a.keys.cmp(&b.keys)));
    let top: Vec<(String, f64, String)> = users
        .iter()
        .take(TOP_USERS)
        .map(|g| (name(&g.keys[0]), f(g.cost), g.cost_sum().describe("$")))
        .collect();

    // Cost per model, with what each total leaves out.
    let mut by_cost: Vec<Group> = models.clone();
    by_cost.sort_by(|a, b| b.cost.cmp(&a.cost).then_with(|| a.keys.cmp(&b.keys)));

    // Latency and errors per model.
    models.sort_by(|a, b| a.keys.cmp(&b.keys));
    let model_labels: Vec<String> = models.iter().map(|g| name(&g.keys[0])).collect();
    let latency = vec![
        Series::new(
            "p50",
            models.iter().map(|g| g.p50.unwrap_or(0) as f64).collect(),
        ),
        Series::new(
            "p95",
            models.iter().map(|g| g.p95.unwrap_or(0) as f64).collect(),
        ),
    ];
    let error_rate = vec![Series::new(
        "error rate",
        models.iter().map(|g| f(g.error_rate())).collect(),
    )];

    let mut page = String::new();
    let period = match (filter.from, filter.to) {
        (Some(a), Some(b)) => format!("{} to {}", a.date(), b.date()),
        (Some(a), None) => format!("since {}", a.date()),
        (None, Some(b)) => format!("until {}", b.date()),
        (None, None) => "all entries".to_owned(),
    };
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>LLM audit report</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>{CSS}</style></head><body>\
         <h1>LLM audit report</h1><p class=\"meta\">{} · generated {} by llm-audit {}</p>\
         <div class=\"cards\"><div><b>{}</b>requests</div><div><b>{}</b>total cost{}</div>\
         <div><b>{}%</b>error rate</div><div><b>{}</b>anomalies</div></div>\n",
        escape(&period),
        crate::report::fmt_micros(crate::row::micros_of(time::OffsetDateTime::now_utc())),
        env!("CARGO_PKG_VERSION"),
        requests,
        escape(&total.cost_sum().text("$")),
        match unpriced {
            0 => String::new(),
            n => format!(" · {}", unpriced_calls(n)),
        },
        total.error_rate().round_dp(2),
        anomalies.rows.len(),
    );
    let cost_title = match unpriced {
        0 => "Cost per day (USD), by model".to_owned(),
        n => format!(
            "Cost per day (USD), by model: lower bounds, {} not in the bars",
            unpriced_calls(n)
        ),
    };
    page.push_str(&bars(
        "cost-per-day",
        &cost_title,
        "$",
        &day_names,
        &cost_series,
        true,
    ));
    page.push_str(&hbars(
        "top-users",
        &format!("Top {TOP_USERS} users by cost (USD)"),
        &top,
    ));
    page.push_str(&bars(
        "tokens-per-day",
        "Tokens per day",
        "tok",
        &day_names,
        &token_series,
        true,
    ));
    page.push_str(&bars(
        "latency-per-model",
        "Latency per model, p50 and p95 (ms)",
        "ms",
        &model_labels,
        &latency,
        false,
    ));
    page.push_str(&bars(
        "error-rate-per-model",
        "Error rate per model (%)",
        "%",
        &model_labels,
        &error_rate,
        false,
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

const CSS: &str = "body{font:14px system-ui,sans-serif;margin:24px auto;max-width:820px;color:#222}\
h1{font-size:22px;margin:0}h2{font-size:17px}.meta{color:#666}\
.cards{display:flex;gap:12px;margin:16px 0}.cards div{flex:1;border:1px solid #ddd;border-radius:6px;padding:10px;color:#666}\
.cards b{display:block;font-size:20px;color:#222}\
figure{margin:24px 0}figcaption{font-weight:600;margin-bottom:6px}svg{width:100%;height:auto}\
.grid{stroke:#e5e5e5}.axis{font-size:11px;fill:#555}\
table{border-collapse:collapse;width:100%;font-size:12px}th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left}";

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
    fn short_values() {
        assert_eq!(short(1234.0, "$"), "$1.2k");
        assert_eq!(short(0.0123, "$"), "$0.012");
        assert_eq!(short(12.5, "%"), "12.5%");
        assert_eq!(short(350_000.0, "tok"), "350k tok");
    }
}
