//! The charts of the report: inline SVG bars over round axis ticks.
//!
//! Every value is an exact [`Decimal`] (money above all); `f64` is used for pixel geometry only.
//! Labels are never cut: a long one widens its column or wraps onto more lines, and a legend is
//! HTML, which wraps on its own.

use std::fmt::Write as _;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::escape;

pub(super) const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// The width of the drawing, in SVG units.
const WIDTH: f64 = 760.0;
/// The width of one character of the 11 px axis font, in SVG units: an estimate on the wide
/// side, so that text measured with it fits.
const CHAR_W: f64 = 6.4;
/// The height of one line of axis text.
const LINE_H: f64 = 13.0;
/// The widest label column of horizontal bars; longer labels wrap.
const MAX_LABEL_W: f64 = 300.0;

/// What the values of a chart count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Usd,
    Percent,
    Tokens,
    Ms,
}

impl Unit {
    fn with(self, number: &str) -> String {
        match self {
            Self::Usd => format!("${number}"),
            Self::Percent => format!("{number}%"),
            Self::Tokens => format!("{number} tok"),
            Self::Ms => format!("{number} ms"),
        }
    }

    /// A value as it is, every digit: `$0.004912`, `1834 tok`.
    pub(super) fn exact(self, v: Decimal) -> String {
        self.with(&v.normalize().to_string())
    }
}

/// A series of a chart: its name and one value per category, with the text of each bar's
/// tooltip where it says more than the value (a cost that leaves unpriced calls out).
pub(super) struct Series {
    pub(super) name: String,
    pub(super) values: Vec<Decimal>,
    pub(super) tips: Vec<Option<String>>,
}

impl Series {
    pub(super) fn new(name: impl Into<String>, values: Vec<Decimal>) -> Self {
        Self {
            name: name.into(),
            tips: vec![None; values.len()],
            values,
        }
    }

    fn tip(&self, i: usize, unit: Unit) -> String {
        self.tips[i]
            .clone()
            .unwrap_or_else(|| unit.exact(self.values[i]))
    }
}

fn px(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

fn text_w(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_W
}

/// Round axis ticks from 0 up to at least `max`: 1, 2 or 5 times a power of ten apart, three to
/// six of them.
pub(super) fn ticks(max: Decimal) -> Vec<Decimal> {
    if max <= Decimal::ZERO {
        return vec![Decimal::ZERO, Decimal::ONE];
    }
    let nice = || -> Option<Vec<Decimal>> {
        let raw = max / Decimal::from(5);
        let mut magnitude = Decimal::ONE;
        while magnitude > raw && magnitude.scale() < 28 {
            magnitude /= Decimal::TEN;
        }
        while magnitude.checked_mul(Decimal::TEN)? <= raw {
            magnitude *= Decimal::TEN;
        }
        let step = [1u8, 2, 5, 10]
            .into_iter()
            .filter_map(|m| magnitude.checked_mul(Decimal::from(m)))
            .find(|s| *s >= raw)?;
        let n = max.checked_div(step)?.ceil().to_u32()?.max(1);
        (0..=n)
            .map(|i| step.checked_mul(Decimal::from(i)))
            .collect()
    };
    nice().unwrap_or_else(|| vec![Decimal::ZERO, max])
}

/// The texts of `ticks`, all with the same number of decimals: `0`, `$0.02`, `$0.04`;
/// `0`, `0.5M tok`, `1.0M tok`; `0`, `0.5 s`, `1.0 s`.
pub(super) fn tick_labels(ticks: &[Decimal], unit: Unit) -> Vec<String> {
    let top = ticks.last().copied().unwrap_or_default();
    let step = match ticks {
        [a, b, ..] => *b - *a,
        _ => top,
    };
    let thousand = Decimal::from(1_000);
    let (divisor, suffix, unit) = match unit {
        Unit::Ms if top >= thousand => (thousand, "", None),
        Unit::Ms | Unit::Percent => (Decimal::ONE, "", Some(unit)),
        _ if top >= Decimal::from(1_000_000_000) => (Decimal::from(1_000_000_000), "G", Some(unit)),
        _ if top >= Decimal::from(1_000_000) => (Decimal::from(1_000_000), "M", Some(unit)),
        _ if top >= thousand => (thousand, "k", Some(unit)),
        _ => (Decimal::ONE, "", Some(unit)),
    };
    let places = (step / divisor).normalize().scale() as usize;
    ticks
        .iter()
        .map(|t| {
            if t.is_zero() {
                // The origin is bare: never a "$0" that could be read as a cost.
                return "0".to_owned();
            }
            let number = format!(
                "{:.places$}{suffix}",
                (*t / divisor).round_dp(places as u32)
            );
            match unit {
                Some(unit) => unit.with(&number),
                None => format!("{number} s"),
            }
        })
        .collect()
}

/// `text` in lines of at most `width` characters, broken after a separator where one is near
/// (`-`, `_`, `/`, `.`, `:`, `@`, `,`, a space), else anywhere. Nothing is left out: the lines
/// put together are `text`.
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(2);
    let chars: Vec<char> = text.chars().collect();
    let mut lines = Vec::new();
    let mut start = 0;
    while chars.len() - start > width {
        let window = &chars[start..start + width];
        let cut = window
            .iter()
            .rposition(|c| matches!(c, '-' | '_' | '/' | '.' | ':' | '@' | ',' | ' '))
            .map(|i| i + 1)
            .filter(|&i| i > width / 3)
            .unwrap_or(width);
        lines.push(chars[start..start + cut].iter().collect());
        start += cut;
    }
    lines.push(chars[start..].iter().collect());
    lines
}

/// Lines of text as `<tspan>`s, one under the other from `y`, at `x`.
fn tspans(lines: &[String], x: f64, y: f64) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let _ = write!(
            out,
            "<tspan x=\"{x:.1}\" y=\"{:.1}\">{}</tspan>",
            y + LINE_H * i as f64,
            escape(line)
        );
    }
    out
}

fn open(svg: &mut String, id: &str, title: &str, h: f64) {
    let _ = write!(
        svg,
        "<figure id=\"{id}\"><figcaption>{}</figcaption><svg viewBox=\"0 0 {WIDTH} {h:.0}\" \
         role=\"img\"><title>{}</title>",
        escape(title),
        escape(title)
    );
}

fn close(svg: &mut String, series: &[Series]) {
    svg.push_str("</svg>");
    if series.len() > 1 {
        legend(svg, series.iter().map(|s| s.name.as_str()));
    }
    svg.push_str("</figure>\n");
}

/// The names of the series with their colours, as HTML: whole names, wrapped by the browser.
fn legend<'a>(out: &mut String, names: impl Iterator<Item = &'a str>) {
    out.push_str("<ul class=\"legend\">");
    for (k, name) in names.enumerate() {
        let _ = write!(
            out,
            "<li><i style=\"background:{}\"></i>{}</li>",
            PALETTE[k % PALETTE.len()],
            escape(name)
        );
    }
    out.push_str("</ul>");
}

fn tooltip(category: &str, series: &str, tip: &str) -> String {
    if series.is_empty() {
        format!("{}: {}", escape(category), escape(tip))
    } else {
        format!("{} · {}: {}", escape(category), escape(series), escape(tip))
    }
}

/// Vertical bars, one slot per category (days), stacked or side by side, over round ticks.
/// Category labels lie flat when they fit their slot, else slanted; labels are dropped (every
/// second, third...) only where even slanted ones would overlap.
pub(super) fn columns(
    id: &str,
    title: &str,
    unit: Unit,
    categories: &[String],
    series: &[Series],
    stacked: bool,
) -> String {
    let value = |s: &Series, i: usize| s.values[i].max(Decimal::ZERO);
    let max = if stacked {
        (0..categories.len())
            .map(|i| series.iter().map(|s| value(s, i)).sum::<Decimal>())
            .max()
            .unwrap_or_default()
    } else {
        series
            .iter()
            .flat_map(|s| (0..categories.len()).map(move |i| value(s, i)))
            .max()
            .unwrap_or_default()
    };
    let ticks = ticks(max);
    let top_value = px(ticks.last().copied().unwrap_or(Decimal::ONE)).max(f64::MIN_POSITIVE);
    let labels = tick_labels(&ticks, unit);
    let left = labels.iter().map(|l| text_w(l)).fold(30.0, f64::max) + 12.0;
    let (top, plot_h) = (10.0, 220.0);
    let plot_w = WIDTH - left - 10.0;
    let slot = plot_w / categories.len().max(1) as f64;
    let widest = categories.iter().map(|c| text_w(c)).fold(0.0, f64::max);
    let flat = widest + 8.0 <= slot;
    let (slant, every) = if flat {
        (0.0, 1)
    } else {
        // At 45°, neighbouring labels are slot·sin 45° apart, and need a line each.
        let apart = slot * std::f64::consts::FRAC_1_SQRT_2;
        (
            widest * std::f64::consts::FRAC_1_SQRT_2,
            (LINE_H / apart).ceil().max(1.0) as usize,
        )
    };
    let h = top + plot_h + 24.0 + slant;
    let mut svg = String::new();
    open(&mut svg, id, title, h);
    let y_of = |v: f64| top + plot_h - plot_h * v / top_value;
    for (t, label) in ticks.iter().zip(&labels) {
        let y = y_of(px(*t));
        let _ = write!(
            svg,
            "<line x1=\"{left:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"axis tick\" text-anchor=\"end\">{}</text>",
            left + plot_w,
            left - 6.0,
            y + 4.0,
            escape(label)
        );
    }
    let bar_w = (slot * 0.7).max(1.0);
    for (i, category) in categories.iter().enumerate() {
        let x0 = left + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut base = Decimal::ZERO;
        for (k, s) in series.iter().enumerate() {
            let v = value(s, i);
            let (x, bw) = if stacked {
                (x0, bar_w)
            } else {
                let bw = bar_w / series.len() as f64;
                (x0 + bw * k as f64, bw)
            };
            let y = y_of(px(base + v));
            let bh = y_of(px(base)) - y;
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" \
                 fill=\"{}\"><title>{}</title></rect>",
                PALETTE[k % PALETTE.len()],
                tooltip(category, &s.name, &s.tip(i, unit))
            );
            if stacked {
                base += v;
            }
        }
        if i % every != 0 {
            continue;
        }
        let (x, y) = (x0 + bar_w / 2.0, top + plot_h + 15.0);
        if flat {
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{y:.1}\" class=\"axis\" text-anchor=\"middle\">{}</text>",
                escape(category)
            );
        } else {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{y:.1}\" class=\"axis\" text-anchor=\"end\" \
                 transform=\"rotate(-45 {:.1} {y:.1})\">{}</text>",
                x + 4.0,
                x + 4.0,
                escape(category)
            );
        }
    }
    close(&mut svg, series);
    svg
}

/// One row of horizontal bars: its label, and one value and text per series.
pub(super) struct Row {
    pub(super) label: String,
    pub(super) values: Vec<Decimal>,
    pub(super) texts: Vec<String>,
}

/// Horizontal bars, one row per label (in the order given), one bar per series, each with its
/// value as text, over round ticks. The label column is as wide as the longest label, up to
/// [`MAX_LABEL_W`]; longer labels wrap there.
pub(super) fn rows(id: &str, title: &str, unit: Unit, series: &[&str], rows: &[Row]) -> String {
    let n = series.len().max(1);
    let max = rows
        .iter()
        .flat_map(|r| r.values.iter().copied())
        .max()
        .unwrap_or_default();
    let ticks = ticks(max);
    let top_value = px(ticks.last().copied().unwrap_or(Decimal::ONE)).max(f64::MIN_POSITIVE);
    let labels = tick_labels(&ticks, unit);
    let label_w = rows
        .iter()
        .map(|r| text_w(&r.label))
        .fold(40.0, f64::max)
        .min(MAX_LABEL_W);
    let per_line = (label_w / CHAR_W).floor() as usize;
    let text_room = rows
        .iter()
        .flat_map(|r| r.texts.iter().map(|t| text_w(t)))
        .fold(0.0, f64::max)
        .clamp(30.0, 280.0)
        + 10.0;
    let left = label_w + 14.0;
    // Room for the last tick's label too.
    let plot_w =
        (WIDTH - left - text_room.max(text_w(labels.last().map_or("", |l| l)) / 2.0)).max(120.0);
    let bar_h = 14.0;
    let wrapped: Vec<Vec<String>> = rows.iter().map(|r| wrap(&r.label, per_line)).collect();
    let heights: Vec<f64> = wrapped
        .iter()
        .map(|lines| (bar_h * n as f64).max(LINE_H * lines.len() as f64) + 8.0)
        .collect();
    let top = 6.0;
    let plot_h = heights.iter().sum::<f64>().max(24.0);
    let h = top + plot_h + 22.0;
    let mut svg = String::new();
    open(&mut svg, id, title, h);
    let x_of = |v: Decimal| left + plot_w * px(v.max(Decimal::ZERO)) / top_value;
    for (t, label) in ticks.iter().zip(&labels) {
        let x = x_of(*t);
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{:.1}\" class=\"grid\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" class=\"axis tick\" text-anchor=\"middle\">{}</text>",
            top + plot_h,
            top + plot_h + 15.0,
            escape(label)
        );
    }
    let mut y = top;
    for ((row, lines), row_h) in rows.iter().zip(&wrapped).zip(&heights) {
        let mid = y + row_h / 2.0;
        let first = mid - LINE_H * (lines.len() - 1) as f64 / 2.0 + 4.0;
        let _ = write!(
            svg,
            "<text class=\"axis\" text-anchor=\"end\">{}</text>",
            tspans(lines, left - 6.0, first)
        );
        let bars_top = mid - bar_h * n as f64 / 2.0;
        for (k, name) in series.iter().enumerate() {
            let v = row.values.get(k).copied().unwrap_or_default();
            let text = row.texts.get(k).cloned().unwrap_or_default();
            let by = bars_top + bar_h * k as f64;
            let bw = x_of(v) - left;
            let _ = write!(
                svg,
                "<rect x=\"{left:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" \
                 fill=\"{}\"><title>{}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" \
                 class=\"axis\">{}</text>",
                by + 1.0,
                bar_h - 2.0,
                PALETTE[k % PALETTE.len()],
                tooltip(&row.label, name, &text),
                left + bw + 4.0,
                by + bar_h / 2.0 + 4.0,
                escape(&text)
            );
        }
        y += row_h;
    }
    if rows.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">no entries</text>",
            left + 6.0,
            top + 16.0
        );
    }
    svg.push_str("</svg>");
    if series.len() > 1 {
        legend(&mut svg, series.iter().copied());
    }
    svg.push_str("</figure>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn labels(max: &str, unit: Unit) -> Vec<String> {
        tick_labels(&ticks(d(max)), unit)
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            labels("0.067", Unit::Usd),
            ["0", "$0.02", "$0.04", "$0.06", "$0.08"]
        );
        assert_eq!(
            labels("0.165", Unit::Usd),
            ["0", "$0.05", "$0.10", "$0.15", "$0.20"]
        );
        assert_eq!(labels("52.5", Unit::Percent), ["0", "20%", "40%", "60%"]);
        assert_eq!(
            labels("100", Unit::Percent),
            ["0", "20%", "40%", "60%", "80%", "100%"]
        );
        assert_eq!(
            labels("2200000", Unit::Tokens),
            ["0", "0.5M tok", "1.0M tok", "1.5M tok", "2.0M tok", "2.5M tok"]
        );
        assert_eq!(labels("3800", Unit::Ms), ["0", "1 s", "2 s", "3 s", "4 s"]);
        assert_eq!(
            labels("420", Unit::Ms),
            ["0", "100 ms", "200 ms", "300 ms", "400 ms", "500 ms"]
        );
        assert_eq!(labels("1234", Unit::Usd), ["0", "$0.5k", "$1.0k", "$1.5k"]);
        assert_eq!(labels("0", Unit::Usd), ["0", "$1"]);
        assert_eq!(labels("3", Unit::Tokens), ["0", "1 tok", "2 tok", "3 tok"]);
    }

    #[test]
    fn ticks_reach_the_maximum_without_panicking_anywhere() {
        for max in [
            "0.0000000000000000000000000001",
            "0.000000000000000000000000001",
            "0.0123",
            "1",
            "7",
            "99.99",
            "1000001",
            "79228162514264337593543950335",
            "7922816251426433759354395033",
        ] {
            let t = ticks(d(max));
            assert!(t.len() >= 2, "{max}: {t:?}");
            assert_eq!(t[0], Decimal::ZERO, "{max}");
            assert!(*t.last().unwrap() >= d(max), "{max}: {t:?}");
            assert!(t.len() <= 7, "{max}: {t:?}");
            let _ = tick_labels(&t, Unit::Usd);
        }
    }

    #[test]
    fn wrapping_keeps_every_character() {
        let name = "anthropic.claude-3-5-sonnet-20241022-v2:0/with-a-very-long-deployment-name";
        for width in [2, 5, 10, 17, 30, 46, 200] {
            let lines = wrap(name, width);
            assert_eq!(lines.concat(), name, "{width}");
            assert!(
                lines.iter().all(|l| l.chars().count() <= width.max(2)),
                "{width}: {lines:?}"
            );
        }
        assert_eq!(
            wrap("claude-haiku-4-5-20251001", 14),
            ["claude-haiku-", "4-5-20251001"]
        );
        assert_eq!(wrap("", 10), [""]);
        assert_eq!(wrap("ééééé", 2), ["éé", "éé", "é"]);
    }

    #[test]
    fn exact_values_keep_every_digit() {
        assert_eq!(Unit::Usd.exact(d("0.004912000")), "$0.004912");
        assert_eq!(Unit::Tokens.exact(d("1834")), "1834 tok");
        assert_eq!(Unit::Percent.exact(d("12.50")), "12.5%");
    }
}
