//! Where entries come from: a JSONL directory (scanned) or PostgreSQL (asked in SQL).

use std::collections::HashSet;
use std::path::PathBuf;

use futures_util::StreamExt;
use tokio_postgres::types::ToSql;
use tracing_llm_audit::AuditEntry;

use crate::figures::{
    anomaly_ranges, Anomalies, Anomaly, AnomalySpec, Events, Group, GroupSpec, Grouper, Moments,
};
use crate::filter::{is_event, Filter, EVENTS};
use crate::output::warn;
use crate::progress::Progress;
use crate::row::{micros_of, Checked};
use crate::scan::{self, BadLine};

/// A JSONL audit directory.
pub(crate) struct Jsonl {
    pub(crate) dir: PathBuf,
    pub(crate) strict: bool,
    /// Bad lines reported so far (a line read by two passes is reported once).
    reported: HashSet<(PathBuf, usize)>,
    /// The events the last [`Source::groups`] left out.
    events: Events,
}

/// A PostgreSQL database with the `llm_audit_log` table.
pub(crate) struct Postgres {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    /// The events the last [`Source::groups`] left out.
    events: Events,
}

pub(crate) enum Source {
    Jsonl(Jsonl),
    Postgres(Postgres),
}

impl Source {
    pub(crate) fn jsonl(dir: PathBuf, strict: bool) -> Self {
        Self::Jsonl(Jsonl {
            dir,
            strict,
            reported: HashSet::new(),
            events: Events::default(),
        })
    }

    pub(crate) fn postgres(connection: &str) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        let client = runtime
            .block_on(tracing_llm_audit::sink::postgres::connect_reader(
                connection,
            ))
            .map_err(|e| e.to_string())?;
        Ok(Self::Postgres(Postgres {
            runtime,
            client,
            events: Events::default(),
        }))
    }

    /// The entries that record events, not calls, that the last [`Self::groups`] left out.
    pub(crate) fn events(&self) -> &Events {
        match self {
            Self::Jsonl(j) => &j.events,
            Self::Postgres(p) => &p.events,
        }
    }

    /// Closing words on stderr for a JSONL directory: how many lines were skipped, and what the
    /// figures rest on ([`label_dir`]).
    pub(crate) fn finish(&self) {
        if let Self::Jsonl(j) = self {
            if j.skipped() > 0 {
                warn(&format!(
                    "{} line(s) were not audit entries and were skipped",
                    j.skipped()
                ));
            }
            label_dir(&j.dir);
        }
    }

    /// Sums for each of `specs`, over the calls that match `filter`; the events that match it
    /// are counted apart ([`Self::events`]).
    pub(crate) fn groups(
        &mut self,
        specs: &[GroupSpec],
        filter: &Filter,
    ) -> Result<Vec<Vec<Group>>, String> {
        match self {
            Self::Jsonl(j) => j.groups(specs, filter),
            Self::Postgres(p) => {
                let groups = specs
                    .iter()
                    .map(|s| p.groups(s, filter))
                    .collect::<Result<_, _>>()?;
                p.events = p.count_events(filter)?;
                Ok(groups)
            }
        }
    }

    /// Entries of the window whose input tokens exceed the baseline's mean by `threshold`
    /// standard deviations. `filter`'s time range is ignored: the spec's windows decide.
    pub(crate) fn anomalies(
        &mut self,
        spec: &AnomalySpec,
        filter: &Filter,
    ) -> Result<Anomalies, String> {
        let (baseline, window) = anomaly_ranges(spec);
        let mut result = match self {
            Self::Jsonl(j) => j.anomalies(spec, baseline, window, filter)?,
            Self::Postgres(p) => p.anomalies(spec, baseline, window, filter)?,
        };
        result.sort();
        Ok(result)
    }

    /// Every matching entry, in time order; stops when `each` returns `false`.
    pub(crate) fn entries(
        &mut self,
        filter: &Filter,
        limit: Option<usize>,
        mut each: impl FnMut(AuditEntry) -> bool,
    ) -> Result<(), String> {
        match self {
            Self::Jsonl(_) | Self::Postgres(_) if limit == Some(0) => Ok(()),
            Self::Jsonl(j) => {
                let files = scan::files(&j.dir, filter.from, filter.to)?;
                let progress = Progress::start(total_bytes(&files), "scanning");
                let mut printed = 0;
                let mut bad_lines = Vec::new();
                let strict = j.strict;
                scan::ordered(
                    &files,
                    &progress,
                    // The lean decoding decides; only a match is decoded whole.
                    |line| {
                        let row = Checked::decode(line)?;
                        if !filter.matches_row(&row) {
                            return Ok(None);
                        }
                        serde_json::from_slice::<AuditEntry>(line)
                            .map(Some)
                            .map_err(|e| e.to_string())
                    },
                    |_, _, entry| {
                        printed += 1;
                        each(entry) && limit.is_none_or(|l| printed < l)
                    },
                    |bad| {
                        if strict {
                            return Err(format!(
                                "{}:{}: {}",
                                bad.file.display(),
                                bad.line,
                                bad.reason
                            ));
                        }
                        bad_lines.push(bad);
                        Ok(())
                    },
                )?;
                drop(progress);
                j.report(bad_lines)
            }
            Self::Postgres(p) => p.entries(filter, limit, each),
        }
    }
}

impl Jsonl {
    /// Prints skipped lines (or fails, under `--strict`).
    fn report(&mut self, bad: Vec<BadLine>) -> Result<(), String> {
        for line in bad {
            let message = format!("{}:{}: {}", line.file.display(), line.line, line.reason);
            if self.strict {
                return Err(message);
            }
            if self.reported.insert((line.file, line.line)) {
                warn(&format!("skipped {message}"));
            }
        }
        Ok(())
    }

    /// How many lines were skipped.
    pub(crate) fn skipped(&self) -> usize {
        self.reported.len()
    }

    fn fold<A: Send>(
        &mut self,
        from: Option<time::OffsetDateTime>,
        to: Option<time::OffsetDateTime>,
        init: impl Fn() -> A + Sync,
        step: impl Fn(&mut A, Checked<'_>) + Sync,
    ) -> Result<Vec<A>, String> {
        let files = scan::files(&self.dir, from, to)?;
        let progress = Progress::start(total_bytes(&files), "scanning");
        let (accs, bad) = scan::fold(&files, &progress, init, step)?;
        drop(progress);
        self.report(bad)?;
        Ok(accs)
    }

    fn groups(&mut self, specs: &[GroupSpec], filter: &Filter) -> Result<Vec<Vec<Group>>, String> {
        let accs = self.fold(
            filter.from,
            filter.to,
            || {
                (
                    specs.iter().map(|_| Grouper::default()).collect::<Vec<_>>(),
                    Events::default(),
                )
            },
            |(groupers, events), row| {
                if !filter.matches_row(&row) {
                    return;
                }
                if is_event(&row.row.action) {
                    events.add(&row.row.action, 1);
                    return;
                }
                for (grouper, spec) in groupers.iter_mut().zip(specs) {
                    grouper.add(spec, &row);
                }
            },
        )?;
        let mut merged: Vec<Grouper> = specs.iter().map(|_| Grouper::default()).collect();
        let mut all_events = Events::default();
        for (acc, events) in accs {
            merged = merged
                .into_iter()
                .zip(acc)
                .map(|(a, b)| a.merge(b))
                .collect();
            all_events = all_events.merge(events);
        }
        self.events = all_events;
        Ok(merged
            .into_iter()
            .zip(specs)
            .map(|(g, spec)| g.finish(spec))
            .collect())
    }

    fn anomalies(
        &mut self,
        spec: &AnomalySpec,
        baseline: (i64, i64),
        window: (i64, i64),
        filter: &Filter,
    ) -> Result<Anomalies, String> {
        let range = |(a, b): (i64, i64)| (at(a), at(b));
        let (from, to) = range(baseline);
        let moments = self
            .fold(Some(from), Some(to), Moments::default, |m, row| {
                if row.micros >= baseline.0
                    && row.micros < baseline.1
                    && filter.matches_row(&row)
                    && !is_event(&row.row.action)
                {
                    if let Some(x) = row.row.input_tokens {
                        m.add(x);
                    }
                }
            })?
            .into_iter()
            .fold(Moments::default(), Moments::merge);
        let least = moments.least_anomalous(spec.threshold);
        let mut rows = Vec::new();
        if let Some(least) = least {
            let (from, to) = range(window);
            for part in self.fold(Some(from), Some(to), Vec::new, |found, row| {
                let hit = row.row.input_tokens.is_some_and(|x| x >= least);
                if hit
                    && row.micros >= window.0
                    && row.micros < window.1
                    && filter.matches_row(&row)
                    && !is_event(&row.row.action)
                {
                    found.push(Anomaly {
                        request_id: row.row.request_id.to_ascii_lowercase(),
                        micros: row.micros,
                        user_id: row.row.user_id.as_deref().map(str::to_owned),
                        model: row.row.model.as_deref().map(str::to_owned),
                        input_tokens: row.row.input_tokens.unwrap_or(0),
                        output_tokens: row.row.output_tokens,
                        cost: row.cost,
                    });
                }
            })? {
                rows.extend(part);
            }
        }
        Ok(Anomalies {
            moments,
            least,
            rows,
        })
    }
}

fn total_bytes(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

fn at(micros: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// The WHERE clause of `filter`, its values appended to `params` (never spliced into the SQL).
fn sql_where(filter: &Filter, params: &mut Params) -> Result<String, String> {
    let mut clauses = vec!["TRUE".to_owned()];
    let mut add = |clause: &str, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        clauses.push(clause.replace('$', &format!("${}", params.len())));
    };
    if let Some(from) = filter.from {
        add("timestamp >= $", Box::new(from));
    }
    if let Some(to) = filter.to {
        add("timestamp < $", Box::new(to));
    }
    if let Some(user) = &filter.user {
        add("user_id = $", Box::new(user.clone()));
    }
    if let Some(model) = &filter.model {
        add("(model = $ OR response_model = $)", Box::new(model.clone()));
    }
    if let Some(provider) = &filter.provider {
        add("provider = $", Box::new(provider.clone()));
    }
    if let Some(status) = filter.status {
        add("status = $", Box::new(status.as_str().to_owned()));
    }
    if let Some(id) = filter.request_id {
        add("request_id = $", Box::new(id));
    }
    if let Some(trace) = &filter.trace_id {
        add("trace_id = $", Box::new(trace.clone()));
    }
    Ok(clauses.join(" AND "))
}

/// ` AND action <> ALL(...)`, the calls only, or with `events` ` AND action = ANY(...)`, the
/// events only ([`EVENTS`]); the actions appended to `params`.
fn sql_calls(params: &mut Params, events: bool) -> String {
    params.push(Box::new(EVENTS.map(str::to_owned).to_vec()));
    match events {
        false => format!(" AND action <> ALL(${})", params.len()),
        true => format!(" AND action = ANY(${})", params.len()),
    }
}

fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

pub(crate) fn db_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) if db.code() == &tokio_postgres::error::SqlState::UNDEFINED_TABLE => format!(
            "the database has no audit log ({}): run `llm-audit migrate` first",
            db.message()
        ),
        Some(db) => format!("PostgreSQL: {}", db.message()),
        None => format!("PostgreSQL: {e}"),
    }
}

fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Postgres {
    fn groups(&mut self, spec: &GroupSpec, filter: &Filter) -> Result<Vec<Group>, String> {
        let mut params = Params::new();
        let mut clause = sql_where(filter, &mut params)?;
        clause.push_str(&sql_calls(&mut params, false));
        let keys: Vec<&str> = spec.keys.iter().map(|k| k.sql()).collect();
        let positions: Vec<String> = (1..=keys.len()).map(|i| i.to_string()).collect();
        let percentiles = if spec.percentiles {
            ", percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms), \
             percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {keys}, COUNT(*)::int8, (COUNT(*) FILTER (WHERE status = 'error'))::int8, \
             COALESCE(SUM(cost_usd), 0), COALESCE(SUM(latency_ms), 0)::int8, \
             COALESCE(SUM(input_tokens), 0)::int8, COALESCE(SUM(output_tokens), 0)::int8, \
             COALESCE(SUM(thinking_tokens), 0)::int8, COALESCE(SUM(cache_read_tokens), 0)::int8, \
             COALESCE(SUM(cache_write_tokens), 0)::int8, \
             (COUNT(*) FILTER (WHERE cost_usd IS NULL))::int8{percentiles} \
             FROM llm_audit_log WHERE {clause} GROUP BY {positions}",
            keys = keys.join(", "),
            positions = positions.join(", "),
        );
        let rows = self
            .runtime
            .block_on(self.client.query(&sql, &refs(&params)))
            .map_err(|e| db_error(&e))?;
        let k = keys.len();
        Ok(rows
            .iter()
            .map(|row| Group {
                keys: (0..k).map(|i| row.get::<_, Option<String>>(i)).collect(),
                requests: uint(row.get(k)),
                errors: uint(row.get(k + 1)),
                cost: row.get(k + 2),
                latency_sum: uint(row.get(k + 3)),
                input: uint(row.get(k + 4)),
                output: uint(row.get(k + 5)),
                thinking: uint(row.get(k + 6)),
                cache_read: uint(row.get(k + 7)),
                cache_write: uint(row.get(k + 8)),
                unpriced: uint(row.get(k + 9)),
                p50: spec.percentiles.then(|| uint(row.get(k + 10))),
                p95: spec.percentiles.then(|| uint(row.get(k + 11))),
            })
            .collect())
    }

    /// The events among the entries that match `filter`, by action.
    fn count_events(&mut self, filter: &Filter) -> Result<Events, String> {
        let mut params = Params::new();
        let mut clause = sql_where(filter, &mut params)?;
        clause.push_str(&sql_calls(&mut params, true));
        let rows = self
            .runtime
            .block_on(self.client.query(
                &format!(
                    "SELECT action, COUNT(*)::int8 FROM llm_audit_log WHERE {clause} \
                     GROUP BY action"
                ),
                &refs(&params),
            ))
            .map_err(|e| db_error(&e))?;
        let mut events = Events::default();
        for row in rows {
            events.add(row.get(0), uint(row.get(1)));
        }
        Ok(events)
    }

    fn anomalies(
        &mut self,
        spec: &AnomalySpec,
        baseline: (i64, i64),
        window: (i64, i64),
        filter: &Filter,
    ) -> Result<Anomalies, String> {
        let within = |(a, b): (i64, i64)| Filter {
            from: Some(at(a)),
            to: Some(at(b)),
            ..filter.clone()
        };
        let mut params = Params::new();
        let mut clause = sql_where(&within(baseline), &mut params)?;
        clause.push_str(&sql_calls(&mut params, false));
        let row = self
            .runtime
            .block_on(self.client.query_one(
                &format!(
                    "SELECT COUNT(input_tokens)::int8, COALESCE(SUM(input_tokens), 0)::text, \
                     COALESCE(SUM(input_tokens::numeric * input_tokens), 0)::text \
                     FROM llm_audit_log WHERE {clause}"
                ),
                &refs(&params),
            ))
            .map_err(|e| db_error(&e))?;
        let big = |i: usize| -> i128 { row.get::<_, String>(i).parse().unwrap_or(i128::MAX) };
        let moments = Moments {
            n: i128::from(row.get::<_, i64>(0)),
            sum: big(1),
            squares: big(2),
        };
        let least = moments.least_anomalous(spec.threshold);
        let mut rows = Vec::new();
        if let Some(least) = least {
            let mut params = Params::new();
            let mut clause = sql_where(&within(window), &mut params)?;
            clause.push_str(&sql_calls(&mut params, false));
            params.push(Box::new(i64::try_from(least).unwrap_or(i64::MAX)));
            let found = self
                .runtime
                .block_on(self.client.query(
                    &format!(
                        "SELECT request_id::text, timestamp, user_id, model, input_tokens, \
                         output_tokens, cost_usd FROM llm_audit_log \
                         WHERE {clause} AND input_tokens >= ${}",
                        params.len()
                    ),
                    &refs(&params),
                ))
                .map_err(|e| db_error(&e))?;
            rows = found
                .iter()
                .map(|r| Anomaly {
                    request_id: r.get(0),
                    micros: micros_of(r.get(1)),
                    user_id: r.get(2),
                    model: r.get(3),
                    input_tokens: uint(r.get(4)),
                    output_tokens: r.get::<_, Option<i64>>(5).map(uint),
                    cost: r.get(6),
                })
                .collect();
        }
        Ok(Anomalies {
            moments,
            least,
            rows,
        })
    }

    fn entries(
        &mut self,
        filter: &Filter,
        limit: Option<usize>,
        mut each: impl FnMut(AuditEntry) -> bool,
    ) -> Result<(), String> {
        let mut params = Params::new();
        let clause = sql_where(filter, &mut params)?;
        let limit = limit.map_or_else(String::new, |l| format!(" LIMIT {l}"));
        let sql = format!(
            "SELECT * FROM llm_audit_log WHERE {clause} ORDER BY timestamp, request_id{limit}"
        );
        self.each_row(&sql, &refs(&params), |row| {
            let entry = tracing_llm_audit::sink::postgres::entry_from_row(row)
                .map_err(|e| format!("a row is not an audit entry: {e}"))?;
            Ok(each(entry))
        })
    }

    /// Whether the table `name` exists (in the search path).
    pub(crate) fn has_table(&mut self, name: &str) -> Result<bool, String> {
        let client = &self.client;
        self.runtime.block_on(async {
            let row = client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
                .await
                .map_err(|e| db_error(&e))?;
            Ok(row.get(0))
        })
    }

    /// The client and the runtime to drive it, for work of several statements.
    pub(crate) fn parts(&mut self) -> (&tokio::runtime::Runtime, &mut tokio_postgres::Client) {
        (&self.runtime, &mut self.client)
    }

    /// Streams the rows of `sql`, until `each` returns `false` or an error.
    pub(crate) fn each_row(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        mut each: impl FnMut(&tokio_postgres::Row) -> Result<bool, String>,
    ) -> Result<(), String> {
        let client = &self.client;
        self.runtime.block_on(async {
            let stream = client
                .query_raw(sql, params.iter().copied())
                .await
                .map_err(|e| db_error(&e))?;
            let mut stream = std::pin::pin!(stream);
            while let Some(row) = stream.next().await {
                let row = row.map_err(|e| db_error(&e))?;
                if !each(&row)? {
                    break;
                }
            }
            Ok(())
        })
    }
}

/// Says what the figures of a JSONL directory rest on: nothing proves the entries of an
/// unchained directory unaltered, and day files of another prefix were not read.
pub(crate) fn label_dir(dir: &std::path::Path) {
    let read = scan::files(dir, None, None).unwrap_or_default();
    if !read.is_empty() && !scan::is_chained(dir) {
        warn(&format!(
            "{} is not tamper-evident (written without a signing key): nothing proves these \
             entries unaltered",
            dir.display()
        ));
    }
    let others = scan::other_prefix_files(dir);
    if let Some(first) = others.first() {
        warn(&format!(
            "{} day file(s) with another prefix than audit_ were not read ({} first)",
            others.len(),
            first.display()
        ));
    }
}
