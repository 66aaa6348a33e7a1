//! The figures of the reports: sums grouped by user, day, model, provider or status (cost,
//! errors, usage, latency), token anomalies, and the events left out of them.
//!
//! Both sources compute the same sums: a JSONL directory by one parallel scan, PostgreSQL by one
//! aggregate query per report (rows never leave the database). Means, rates and percentiles are
//! then derived from those sums by the same code, so the two give the same figures to the digit.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use rust_decimal::{Decimal, RoundingStrategy};
use time::{Duration, OffsetDateTime};

use crate::output::{Cell, CostSum, Table};
use crate::row::{micros_of, Checked};
use crate::when;

/// What a report can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    User,
    Day,
    Model,
    Provider,
    Status,
}

impl Key {
    /// `user,day` into keys; an unknown name is one clear sentence.
    pub(crate) fn parse_list(list: &str) -> Result<Vec<Self>, String> {
        let keys = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| match name {
                "user" | "user_id" => Ok(Self::User),
                "day" | "date" => Ok(Self::Day),
                "model" => Ok(Self::Model),
                "provider" => Ok(Self::Provider),
                "status" => Ok(Self::Status),
                other => Err(format!(
                    "unknown column `{other}` for --by: use user, day, model, provider or status"
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(
                "--by needs at least one column (user, day, model, provider, status)".into(),
            );
        }
        Ok(keys)
    }

    pub(crate) fn column(self) -> &'static str {
        match self {
            Self::User => "user_id",
            Self::Day => "day",
            Self::Model => "model",
            Self::Provider => "provider",
            Self::Status => "status",
        }
    }

    /// The key's value as text, in SQL.
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Self::User => "user_id",
            Self::Day => "to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            Self::Model => "model",
            Self::Provider => "provider",
            Self::Status => "status",
        }
    }
}

/// Which figures a grouping needs beyond the sums.
#[derive(Debug, Clone)]
pub(crate) struct GroupSpec {
    pub(crate) keys: Vec<Key>,
    pub(crate) percentiles: bool,
}

/// Sums of one group, as both sources compute them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Group {
    pub(crate) keys: Vec<Option<String>>,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// The sum of the priced calls' costs.
    pub(crate) cost: Decimal,
    /// Calls without a cost (`cost_usd` null): `cost` leaves them out.
    pub(crate) unpriced: u64,
    pub(crate) latency_sum: u64,
    pub(crate) input: u64,
    pub(crate) output: u64,
    pub(crate) thinking: u64,
    pub(crate) cache_read: u64,
    pub(crate) cache_write: u64,
    pub(crate) p50: Option<u64>,
    pub(crate) p95: Option<u64>,
}

fn round2(d: Decimal) -> Decimal {
    // As PostgreSQL's ROUND: halves away from zero.
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

impl Group {
    pub(crate) fn avg_latency(&self) -> Decimal {
        if self.requests == 0 {
            return Decimal::ZERO;
        }
        round2(Decimal::from(self.latency_sum) / Decimal::from(self.requests))
    }

    /// Errors per 100 requests.
    pub(crate) fn error_rate(&self) -> Decimal {
        if self.requests == 0 {
            return Decimal::ZERO;
        }
        round2(Decimal::from(self.errors * 100) / Decimal::from(self.requests))
    }

    /// The group's total cost, knowing what it leaves out.
    pub(crate) fn cost_sum(&self) -> CostSum {
        CostSum::new(self.cost, self.requests, self.unpriced)
    }

    pub(crate) fn key_cells(&self) -> impl Iterator<Item = Cell> + '_ {
        self.keys.iter().map(|k| Cell::text(k.as_deref()))
    }
}

/// Keys compare with absent values last, as PostgreSQL sorts NULLs.
pub(crate) fn cmp_keys(a: &[Option<String>], b: &[Option<String>]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Some(x), Some(y)) => x.cmp(y),
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
        };
        if o.is_ne() {
            return o;
        }
    }
    std::cmp::Ordering::Equal
}

/// The reports built from groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupReport {
    /// The reference design's daily cost by user: requests, total cost, mean latency.
    Cost,
    /// Errors, requests and error rate.
    Errors,
    /// Tokens and cost.
    Usage,
    /// Latency percentiles.
    Latency,
}

impl GroupReport {
    pub(crate) fn spec(self, keys: Vec<Key>) -> GroupSpec {
        GroupSpec {
            keys,
            percentiles: self == Self::Latency,
        }
    }
}

/// The smallest value whose cumulative share reaches `p`: PostgreSQL's `percentile_disc`, which
/// computes the rank in floating point; so does this, to agree with it.
pub(crate) fn percentile_disc(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Accumulates groups from JSONL rows (of calls: events are counted apart, as [`Events`]).
#[derive(Default)]
pub(crate) struct Grouper {
    groups: HashMap<String, (Group, Vec<u64>)>,
    key: String,
}

impl Grouper {
    pub(crate) fn add(&mut self, spec: &GroupSpec, row: &Checked<'_>) {
        let r = &row.row;
        self.key.clear();
        for key in &spec.keys {
            let value: Option<&str> = match key {
                Key::User => r.user_id.as_deref(),
                Key::Model => r.model.as_deref(),
                Key::Provider => r.provider.as_deref(),
                Key::Status => Some(r.status.as_str()),
                Key::Day => {
                    let d = row.day();
                    let _ = write!(
                        self.key,
                        "10:{:04}-{:02}-{:02}",
                        d.year(),
                        d.month() as u8,
                        d.day()
                    );
                    continue;
                }
            };
            // Length-prefixed, so that no value can fake a separator: `-` for none,
            // `<bytes>:<value>` otherwise.
            match value {
                Some(v) => {
                    let _ = write!(self.key, "{}:{v}", v.len());
                }
                None => self.key.push('-'),
            }
        }
        let (g, latencies) = match self.groups.get_mut(self.key.as_str()) {
            Some(found) => found,
            None => {
                let keys = decode_key(&self.key);
                self.groups.entry(self.key.clone()).or_insert_with(|| {
                    (
                        Group {
                            keys,
                            ..Group::default()
                        },
                        Vec::new(),
                    )
                })
            }
        };
        g.requests += 1;
        if r.status == tracing_llm_audit::Status::Error {
            g.errors += 1;
        }
        match row.cost {
            Some(c) => g.cost += c,
            None => g.unpriced += 1,
        }
        g.latency_sum += r.latency_ms;
        g.input += r.input_tokens.unwrap_or(0);
        g.output += r.output_tokens.unwrap_or(0);
        g.thinking += r.thinking_tokens.unwrap_or(0);
        g.cache_read += r.cache_read_tokens.unwrap_or(0);
        g.cache_write += r.cache_write_tokens.unwrap_or(0);
        if spec.percentiles {
            latencies.push(r.latency_ms);
        }
    }

    pub(crate) fn merge(mut self, other: Self) -> Self {
        for (key, (g, lat)) in other.groups {
            match self.groups.get_mut(&key) {
                None => {
                    self.groups.insert(key, (g, lat));
                }
                Some((mine, my_lat)) => {
                    mine.requests += g.requests;
                    mine.errors += g.errors;
                    mine.cost += g.cost;
                    mine.unpriced += g.unpriced;
                    mine.latency_sum += g.latency_sum;
                    mine.input += g.input;
                    mine.output += g.output;
                    mine.thinking += g.thinking;
                    mine.cache_read += g.cache_read;
                    mine.cache_write += g.cache_write;
                    my_lat.extend(lat);
                }
            }
        }
        self
    }

    pub(crate) fn finish(self, spec: &GroupSpec) -> Vec<Group> {
        self.groups
            .into_values()
            .map(|(mut g, mut lat)| {
                if spec.percentiles {
                    lat.sort_unstable();
                    g.p50 = percentile_disc(&lat, 0.5);
                    g.p95 = percentile_disc(&lat, 0.95);
                }
                g
            })
            .collect()
    }
}

fn decode_key(mut key: &str) -> Vec<Option<String>> {
    let mut values = Vec::new();
    while !key.is_empty() {
        if let Some(rest) = key.strip_prefix('-') {
            values.push(None);
            key = rest;
            continue;
        }
        let Some((len, rest)) = key.split_once(':') else {
            break;
        };
        let len: usize = len.parse().unwrap_or(rest.len()).min(rest.len());
        values.push(Some(rest[..len].to_owned()));
        key = &rest[len..];
    }
    values
}

/// Settings of the anomaly report.
#[derive(Debug, Clone)]
pub(crate) struct AnomalySpec {
    pub(crate) as_of: OffsetDateTime,
    /// Entries this recent are checked.
    pub(crate) window: Duration,
    /// Entries this recent make the mean and standard deviation.
    pub(crate) baseline: Duration,
    /// Standard deviations above the mean.
    pub(crate) threshold: Decimal,
}

/// Input-token statistics of the baseline: count, sum and sum of squares, exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Moments {
    pub(crate) n: i128,
    pub(crate) sum: i128,
    pub(crate) squares: i128,
}

impl Moments {
    pub(crate) fn add(&mut self, x: u64) {
        let x = i128::from(x);
        self.n += 1;
        self.sum += x;
        self.squares = self.squares.saturating_add(x * x);
    }

    pub(crate) fn merge(self, o: Self) -> Self {
        Self {
            n: self.n + o.n,
            sum: self.sum + o.sum,
            squares: self.squares.saturating_add(o.squares),
        }
    }

    pub(crate) fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum as f64 / self.n as f64)
    }

    /// The sample standard deviation (PostgreSQL's `STDDEV`).
    pub(crate) fn stddev(&self) -> Option<f64> {
        (self.n > 1).then(|| {
            let num = (self.n * self.squares - self.sum * self.sum) as f64;
            (num / (self.n * (self.n - 1)) as f64).max(0.0).sqrt()
        })
    }

    /// Whether `x > mean + k·stddev`, decided exactly in integers:
    /// `(n·x − S)²·(n − 1)·10^(2s) > m²·n·(n·Q − S²)` for `k = m / 10^s` and `n·x > S`.
    fn exceeds(&self, x: u64, k: Decimal) -> bool {
        let (n, s, q) = (self.n, self.sum, self.squares);
        let d = n * i128::from(x) - s;
        if d <= 0 {
            return false;
        }
        let m = k.mantissa();
        let scale = 10i128.checked_pow(2 * k.scale());
        let exact = (|| {
            let lhs = d.checked_mul(d)?.checked_mul(n - 1)?.checked_mul(scale?)?;
            let rhs = m
                .checked_mul(m)?
                .checked_mul(n)?
                .checked_mul(n.checked_mul(q)?.checked_sub(s.checked_mul(s)?)?)?;
            Some(lhs > rhs)
        })();
        exact.unwrap_or_else(|| {
            let limit = self.mean().unwrap_or(0.0)
                + k.to_string().parse::<f64>().unwrap_or(3.0) * self.stddev().unwrap_or(0.0);
            (x as f64) > limit
        })
    }

    /// The least token count that is an anomaly, or `None` when there is no standard deviation
    /// (fewer than two entries).
    pub(crate) fn least_anomalous(&self, k: Decimal) -> Option<u64> {
        if self.n < 2 {
            return None;
        }
        let (mut lo, mut hi) = (0u64, u64::MAX >> 1);
        if !self.exceeds(hi, k) {
            return None;
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.exceeds(mid, k) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Some(lo)
    }
}

/// One flagged entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Anomaly {
    pub(crate) request_id: String,
    pub(crate) micros: i64,
    pub(crate) user_id: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) cost: Option<Decimal>,
}

/// The anomaly report's result.
#[derive(Debug, Clone)]
pub(crate) struct Anomalies {
    pub(crate) moments: Moments,
    pub(crate) least: Option<u64>,
    pub(crate) rows: Vec<Anomaly>,
}

impl Anomalies {
    pub(crate) fn sort(&mut self) {
        self.rows.sort_by(|a, b| {
            b.input_tokens
                .cmp(&a.input_tokens)
                .then(a.micros.cmp(&b.micros))
                .then_with(|| a.request_id.cmp(&b.request_id))
        });
    }

    /// One line on the baseline, for stderr or the HTML page.
    pub(crate) fn summary(&self, spec: &AnomalySpec) -> String {
        match (self.moments.mean(), self.moments.stddev()) {
            (Some(mean), Some(sd)) => format!(
                "baseline: {} entries with input tokens in the last {}; mean {mean:.2}, standard \
                 deviation {sd:.2}; flagged: input tokens ≥ {} (mean + {} standard deviations) \
                 in the last {}",
                self.moments.n,
                human(spec.baseline),
                self.least.map_or_else(|| "-".to_owned(), |l| l.to_string()),
                spec.threshold,
                human(spec.window),
            ),
            _ => format!(
                "baseline: {} entries with input tokens in the last {}: too few for a standard \
                 deviation, nothing is flagged",
                self.moments.n,
                human(spec.baseline)
            ),
        }
    }

    pub(crate) fn table(&self) -> Table {
        let mut table = Table::new([
            "request_id",
            "timestamp",
            "user_id",
            "model",
            "input_tokens",
            "output_tokens",
            "cost_usd",
        ]);
        for a in &self.rows {
            table.rows.push(vec![
                Cell::Text(a.request_id.clone()),
                Cell::Text(fmt_micros(a.micros)),
                Cell::text(a.user_id.as_deref()),
                Cell::text(a.model.as_deref()),
                Cell::Int(a.input_tokens),
                a.output_tokens.map_or(Cell::Null, Cell::Int),
                a.cost.map_or(Cell::Unpriced, Cell::Money),
            ]);
        }
        table
    }
}

/// `7d`, `24h`, `90m` for a span.
pub(crate) fn human(span: Duration) -> String {
    let s = span.whole_seconds();
    match s {
        s if s % 86_400 == 0 && s > 86_400 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// RFC 3339 with microseconds, in UTC.
pub(crate) fn fmt_micros(micros: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

/// The instants an anomaly report reads: the baseline and the checked window, ending at `as_of`.
pub(crate) fn anomaly_ranges(spec: &AnomalySpec) -> ((i64, i64), (i64, i64)) {
    let end = micros_of(spec.as_of);
    // The spans were checked against `as_of` when the spec was made (`when::back`).
    let start = |span| micros_of(spec.as_of.checked_sub(span).unwrap_or(when::EARLIEST));
    ((start(spec.baseline), end), (start(spec.window), end))
}

/// Entries that record events, not calls (see [`crate::filter::EVENTS`]), by action: left out of
/// the figures, and said so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Events(pub(crate) BTreeMap<String, u64>);

impl Events {
    pub(crate) fn add(&mut self, action: &str, n: u64) {
        match self.0.get_mut(action) {
            Some(count) => *count += n,
            None => {
                self.0.insert(action.to_owned(), n);
            }
        }
    }

    pub(crate) fn merge(mut self, other: Self) -> Self {
        for (action, n) in other.0 {
            self.add(&action, n);
        }
        self
    }

    /// `1 entry is an event, not a call (llm_audit.erasure): not counted as a request`, or
    /// `None` when there are none: the note of a report.
    pub(crate) fn note(&self) -> Option<String> {
        self.describe().map(|(total, text)| match total {
            1 => format!("{text}: not counted as a request"),
            _ => format!("{text}: not counted as requests"),
        })
    }

    /// `1 entry is an event, not a call (llm_audit.erasure): listed, its action says what it
    /// records`, or `None`: the note of a listing.
    pub(crate) fn listed_note(&self) -> Option<String> {
        self.describe()
            .map(|(_, text)| format!("{text}: listed, its action says what it records"))
    }

    /// How many events, and `1 entry is an event, not a call (llm_audit.erasure)`.
    fn describe(&self) -> Option<(u64, String)> {
        let total: u64 = self.0.values().sum();
        if total == 0 {
            return None;
        }
        let actions: Vec<String> = self
            .0
            .iter()
            .map(|(action, n)| match self.0.len() {
                1 => action.clone(),
                _ => format!("{action}: {n}"),
            })
            .collect();
        let actions = actions.join(", ");
        Some((
            total,
            match total {
                1 => format!("1 entry is an event, not a call ({actions})"),
                n => format!("{n} entries are events, not calls ({actions})"),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_agree_with_postgres_definition() {
        let v: Vec<u64> = (1..=20).collect();
        assert_eq!(percentile_disc(&v, 0.5), Some(10));
        assert_eq!(percentile_disc(&v, 0.95), Some(19));
        assert_eq!(percentile_disc(&[7], 0.95), Some(7));
        assert_eq!(percentile_disc(&[], 0.5), None);
    }

    #[test]
    fn the_anomaly_bound_is_exact() {
        let mut m = Moments::default();
        for x in [10, 12, 14, 16, 18] {
            m.add(x);
        }
        // mean 14, sample sd sqrt(10) = 3.1623; 14 + 3·3.1623 = 23.49
        assert_eq!(m.least_anomalous(Decimal::from(3)), Some(24));
        assert_eq!(m.least_anomalous(Decimal::new(15, 1)), Some(19)); // 18.74
        let mut flat = Moments::default();
        flat.add(5);
        flat.add(5);
        assert_eq!(flat.least_anomalous(Decimal::from(3)), Some(6));
        let mut one = Moments::default();
        one.add(5);
        assert_eq!(one.least_anomalous(Decimal::from(3)), None);
    }

    #[test]
    fn group_keys_round_trip_whatever_the_values() {
        let mut g = Grouper::default();
        for v in [
            Some("a:b"),
            None,
            Some("-"),
            Some("\u{1f}x\u{1}"),
            Some(""),
            Some("3:abc"),
        ] {
            g.key.clear();
            match v {
                Some(v) => {
                    let _ = write!(g.key, "{}:{v}", v.len());
                }
                None => g.key.push('-'),
            }
            g.key.push_str("10:2026-11-24");
            assert_eq!(
                decode_key(&g.key),
                vec![v.map(str::to_owned), Some("2026-11-24".to_owned())],
                "{v:?}"
            );
        }
    }

    #[test]
    fn events_are_named_in_one_note() {
        let mut events = Events::default();
        assert_eq!(events.note(), None);
        events.add("llm_audit.erasure", 1);
        assert_eq!(
            events.note().unwrap(),
            "1 entry is an event, not a call (llm_audit.erasure): not counted as a request"
        );
        let more = Events([("llm_audit.repair".to_owned(), 2)].into());
        assert_eq!(
            events.merge(more).note().unwrap(),
            "3 entries are events, not calls (llm_audit.erasure: 1, llm_audit.repair: 2): not \
             counted as requests"
        );
    }

    #[test]
    fn an_unknown_column_is_one_sentence() {
        assert_eq!(
            Key::parse_list("user, day").unwrap(),
            vec![Key::User, Key::Day]
        );
        let err = Key::parse_list("user,colour").unwrap_err();
        assert_eq!(
            err,
            "unknown column `colour` for --by: use user, day, model, provider or status"
        );
    }
}
