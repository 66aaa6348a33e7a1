//! [`PostgresSink`]: the production store. Batched binary COPY, append-only, partitioned by
//! month, and lossless through outages.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config};

use crate::chain::{ChainLink, SigningKey};
use crate::entry::AuditEntry;
use crate::runtime::OwnRuntime;
use crate::sink::{AuditSink, SinkError};

mod chain;
mod schema;
mod spill;

use chain::{ChainSettings, PgChain};
pub use schema::{
    entry_from_row, link_from_row, MIGRATIONS, QUERY_DAILY_COST_BY_USER, QUERY_ERROR_RATE_BY_MODEL,
    QUERY_TOKEN_ANOMALIES, ROLES_SQL,
};
pub use spill::SpillStatus;
use spill::{Spill, SpillError};

/// Default bound of the spill directory: 1 GiB.
pub const DEFAULT_SPILL_MAX_BYTES: u64 = 1024 * 1024 * 1024;
/// Default rows per COPY transaction.
pub const DEFAULT_COPY_ROWS: usize = 10_000;
/// Wait after a first failed connection attempt; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the sink makes sure the partitions ahead exist.
const PARTITION_CHECK: Duration = Duration::from_secs(3600);
/// A COPY of at least this many rows is split in two halves, committed concurrently on two
/// connections (see [`PostgresSinkBuilder::with_parallel_copy`]): the server's work per row
/// (parsing, heap, indexes, WAL) is what limits a batch, and each connection has a backend
/// process of its own. Below it, a second commit costs more than it saves.
const PARALLEL_MIN_ROWS: usize = 1_000;

/// [`PostgresSink`] could not be configured, or a migration failed.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The connection string does not parse (it is never echoed: it may hold a password).
    #[error("invalid PostgreSQL connection string: {0}")]
    InvalidConnectionString(String),
    /// A setting is out of range.
    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        /// The builder method.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The spill directory cannot be used.
    #[error("cannot use the spill directory {path}")]
    SpillDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The sink's runtime could not start.
    #[error("cannot start the PostgreSQL sink's runtime")]
    Runtime(#[source] std::io::Error),
    /// TLS could not be set up.
    #[error("cannot set up TLS for PostgreSQL: {0}")]
    Tls(String),
    /// The database answered, and the sink cannot work with it as it is set up: its role
    /// lacks a privilege, the schema is missing or older than this version needs, the login
    /// was refused, the database does not exist. A configuration error, which waiting does not
    /// fix; the message says what to run.
    #[error("PostgreSQL at {target} is not set up for this sink: {message}")]
    NotSetUp {
        /// Host, port, database and user; never the password.
        target: String,
        /// The database's answer and what to do about it.
        message: String,
    },
    /// The database refused or failed (connecting, migrating).
    #[error("PostgreSQL at {target}: {message}")]
    Database {
        /// Host, port, database and user; never the password.
        target: String,
        /// The database's error.
        message: String,
    },
}

// `Debug` is the sentence too: `?` in `main` prints it.
debug_as_sentence!(PostgresError);

/// Host, port, database and user of a configuration: what errors may show.
fn describe(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map_or_else(String::new, |h| match h {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        });
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{} as {}",
        config.get_dbname().unwrap_or("postgres"),
        config.get_user().unwrap_or("?")
    )
}

fn parse(connection: &str) -> Result<Config, PostgresError> {
    // tokio-postgres's parse errors name the option, never its value.
    Config::from_str(connection).map_err(|e| PostgresError::InvalidConnectionString(e.to_string()))
}

/// Why a connection could not be opened: the text (never the password), and the server's
/// SQLSTATE when the server answered (a login refused, a database that does not exist).
struct ConnectFailure {
    message: String,
    code: Option<String>,
}

impl From<tokio_postgres::Error> for ConnectFailure {
    fn from(e: tokio_postgres::Error) -> Self {
        Self {
            message: error_text(&e),
            code: e.as_db_error().map(|db| db.code().code().to_owned()),
        }
    }
}

impl From<String> for ConnectFailure {
    fn from(message: String) -> Self {
        Self {
            message,
            code: None,
        }
    }
}

async fn connect(
    config: &Config,
    tls: Option<&tokio_postgres_rustls::MakeRustlsConnect>,
    timeout: Duration,
) -> Result<Client, ConnectFailure> {
    let connecting = async {
        // TLS when asked for (`sslmode=require`), with the server's certificate verified
        // against the system's roots (and a CA file if given); the default `prefer` connects in
        // plain text, since a certificate that is not verified protects nothing.
        if config.get_ssl_mode() != SslMode::Require {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            Ok(client)
        } else {
            let Some(connector) = tls else {
                return Err("sslmode=require, but no TLS connector was prepared"
                    .to_owned()
                    .into());
            };
            let (client, connection) = config.connect(connector.clone()).await?;
            tokio::spawn(connection);
            Ok(client)
        }
    };
    match tokio::time::timeout(timeout, connecting).await {
        Ok(result) => result,
        Err(_) => Err(format!("no connection within {timeout:?}").into()),
    }
}

/// What to run when the schema is missing or older than this version needs.
const SCHEMA_HINT: &str = "as the owner role run `llm-audit migrate`, then the roles step \
     (`llm-audit roles`, run by a superuser); see docs/postgres.md";

/// What to run when the sink's role lacks a privilege.
const PRIVILEGE_HINT: &str = "the sink's role lacks a privilege: as the owner role run \
     `llm-audit migrate`, then the roles step (`llm-audit roles`, run by a superuser, again \
     after every migrate), and connect the sink as a login role in llm_audit_writer; see \
     docs/postgres.md";

/// The sentence for a database answer that says the sink is not set up to work here (a
/// privilege it lacks, a table, function or column the schema does not have yet), which
/// waiting does not fix; `None` for everything else. `at_start` adds what only a first
/// connection can tell from an outage: a login refused, a database that does not exist.
fn setup_problem(code: &str, text: &str, at_start: bool) -> Option<String> {
    match code {
        // insufficient_privilege
        "42501" => Some(format!("{text}: {PRIVILEGE_HINT}")),
        // undefined_table, undefined_function, undefined_column, invalid_schema_name
        "42P01" | "42883" | "42703" | "3F000" => Some(format!(
            "{text}: the schema is missing or older than this version of tracing-llm-audit \
             needs; {SCHEMA_HINT}"
        )),
        // invalid_authorization_specification, invalid_password
        "28000" | "28P01" if at_start => Some(format!(
            "{text}: check the user and password of the connection string (the sink's login \
             role, a member of llm_audit_writer; see docs/postgres.md)"
        )),
        // invalid_catalog_name
        "3D000" if at_start => Some(format!(
            "{text}: create the database first; see docs/postgres.md"
        )),
        _ => None,
    }
}

/// rustls with the system's roots and the CA file if one is given, for `sslmode=require`.
fn tls_connector(ca: Option<&Path>) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the CA certificate {}: {e}", path.display()))?;
        let mut found = 0;
        for cert in
            <rustls_pki_types::CertificateDer<'_> as rustls_pki_types::pem::PemObject>::pem_slice_iter(&pem)
        {
            let cert = cert.map_err(|e| format!("{} is not PEM: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{} holds no usable CA: {e}", path.display()))?;
            found += 1;
        }
        if found == 0 {
            return Err(format!("{} holds no certificate", path.display()));
        }
    }
    // The provider named, not the process default: an application that compiles in another
    // provider besides must not make this builder panic.
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Applies the migrations not applied yet (needs a role that may create tables, such as the
/// owner role); returns how many were applied. What `llm-audit migrate` runs, for deployments
/// whose application role may only insert.
///
/// # Errors
/// The connection string does not parse, the database cannot be reached, or a migration fails.
pub fn migrate(connection: &str) -> Result<usize, PostgresError> {
    let config = parse(connection)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PostgresError::Runtime)?;
    let database = |e: tokio_postgres::Error| PostgresError::Database {
        target: describe(&config),
        message: error_text(&e),
    };
    runtime.block_on(async {
        let tls = (config.get_ssl_mode() == SslMode::Require)
            .then(|| tls_connector(None))
            .transpose()
            .map_err(PostgresError::Tls)?;
        let mut client = connect(&config, tls.as_ref(), Duration::from_secs(10))
            .await
            .map_err(|failure| PostgresError::Database {
                target: describe(&config),
                message: failure.message,
            })?;
        schema::migrate(&mut client).await.map_err(database)
    })
}

/// A connection for reading the log (what `llm-audit` uses), with the sink's rules: TLS when
/// the connection string says `sslmode=require` (verified against the system's roots), errors
/// that name host, port, database and user but never the password, and the session's time zone
/// set to UTC so that days are UTC days, as in the JSONL files. Call it inside a Tokio runtime:
/// the connection's task is spawned on it.
///
/// # Errors
/// The connection string does not parse, or the database cannot be reached within 10 seconds.
pub async fn connect_reader(connection: &str) -> Result<Client, PostgresError> {
    let config = parse(connection)?;
    let target = || describe(&config);
    let tls = (config.get_ssl_mode() == SslMode::Require)
        .then(|| tls_connector(None))
        .transpose()
        .map_err(PostgresError::Tls)?;
    let client = connect(&config, tls.as_ref(), Duration::from_secs(10))
        .await
        .map_err(|failure| PostgresError::Database {
            target: target(),
            message: failure.message,
        })?;
    client
        .batch_execute("SET TIME ZONE 'UTC'")
        .await
        .map_err(|e| PostgresError::Database {
            target: target(),
            message: error_text(&e),
        })?;
    Ok(client)
}

/// A database error with its detail, never the connection string.
fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                text.push_str(": ");
                text.push_str(&inner.to_string());
                source = inner.source();
            }
            text
        }
    }
}

/// Whether a row is in the table already (a replay whose first delivery did commit).
fn is_duplicate(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| db.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// Whether the database refused the rows themselves (a value it cannot store, a constraint):
/// retrying the same rows fails the same way, but their batch-mates may pass alone.
fn is_data_error(e: &tokio_postgres::Error) -> bool {
    !is_duplicate(e)
        && e.as_db_error().is_some_and(|db| {
            let code = db.code().code();
            code.starts_with("22") || code.starts_with("23")
        })
}

/// Configures a [`PostgresSink`].
pub struct PostgresSinkBuilder {
    config: Result<Config, PostgresError>,
    spill_dir: PathBuf,
    spill_max_bytes: u64,
    dead_letter: Option<PathBuf>,
    copy_rows: usize,
    connect_timeout: Duration,
    write_timeout: Duration,
    migrate: bool,
    startup_check: bool,
    parallel: bool,
    ca_certificate: Option<PathBuf>,
    chain: Option<ChainSettings>,
}

impl fmt::Debug for PostgresSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSinkBuilder")
            .field("target", &self.config.as_ref().map(describe).ok())
            .field("spill_dir", &self.spill_dir)
            .field("copy_rows", &self.copy_rows)
            .field("migrate", &self.migrate)
            .field("parallel", &self.parallel)
            .field("chained", &self.chain.is_some())
            .finish_non_exhaustive()
    }
}

impl PostgresSinkBuilder {
    /// Makes the table tamper-evident (see [`crate::chain`]): this sink becomes a stream with a
    /// fresh id, every row carries its link in the `chain_*` columns, and checkpoints signed
    /// with `key` go to `llm_audit_checkpoints` once the rows they cover are in the table.
    /// `llm-audit verify --postgres` checks them. Default: off.
    #[must_use]
    pub fn chain(mut self, key: SigningKey) -> Self {
        self.chain = Some(ChainSettings {
            key,
            every: 10_000,
            interval: Duration::from_secs(60),
        });
        self
    }

    /// Sign a checkpoint after at most `entries` entries (with [`chain`](Self::chain)).
    /// Default: 10,000.
    #[must_use]
    pub fn checkpoint_every(mut self, entries: u64) -> Self {
        if let Some(chain) = &mut self.chain {
            chain.every = entries.max(1);
        }
        self
    }

    /// Sign a checkpoint at least this often while entries arrive (with
    /// [`chain`](Self::chain)). Default: 60 s.
    #[must_use]
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        if let Some(chain) = &mut self.chain {
            chain.interval = interval;
        }
        self
    }

    /// Where batches wait while the database is unreachable. Default: `./audit_spill`.
    #[must_use]
    pub fn with_spill_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spill_dir = dir.into();
        self
    }

    /// Bound of the spill directory in bytes; once full, batches fail (and are counted failed by
    /// the pipeline). Default: [`DEFAULT_SPILL_MAX_BYTES`].
    #[must_use]
    pub fn with_spill_max_bytes(mut self, bytes: u64) -> Self {
        self.spill_max_bytes = bytes;
        self
    }

    /// Where rows the database refuses go, one JSON line each with the reason. Default:
    /// `dead_letter.jsonl` in the spill directory.
    #[must_use]
    pub fn with_dead_letter_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.dead_letter = Some(path.into());
        self
    }

    /// Rows per COPY transaction. Default: [`DEFAULT_COPY_ROWS`].
    #[must_use]
    pub fn with_copy_rows(mut self, rows: usize) -> Self {
        self.copy_rows = rows;
        self
    }

    /// Whether a COPY of at least 1,000 rows is split in two halves committed concurrently on
    /// two connections (the second one is opened on first use). Each half is a transaction of
    /// its own, and the batch is acknowledged once both have committed; if either fails, what
    /// did not commit is retried, dead-lettered or spilled as for a single COPY, and a replay
    /// never duplicates the rows of the half that did commit. When the second connection
    /// cannot be opened, the sink goes on with one. Off: one connection, one COPY at a time.
    /// Default: on.
    #[must_use]
    pub fn with_parallel_copy(mut self, parallel: bool) -> Self {
        self.parallel = parallel;
        self
    }

    /// How long a connection attempt may take. Default: 5 s.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one COPY transaction may take before the database counts as unreachable (a
    /// failover that drops packets silently): the batch is spilled and the connection dropped.
    /// Default: 30 s.
    #[must_use]
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// A PEM file of the CA that signed the server's certificate, trusted besides the system's
    /// roots (`sslmode=require`).
    #[must_use]
    pub fn with_ca_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_certificate = Some(path.into());
        self
    }

    /// Whether the sink applies the migrations the database lacks when it connects. It reads
    /// `llm_audit_schema_migrations` first and runs no DDL when the schema is up to date, so
    /// an application role in `llm_audit_writer` works either way once the owner has run
    /// `llm-audit migrate` (or [`migrate`]); when a migration is missing and the role may not
    /// apply it, that is a [`PostgresError::NotSetUp`]. Off: the sink never runs DDL, and a
    /// missing or older schema is the same error. Default: on.
    #[must_use]
    pub fn with_migrations(mut self, apply: bool) -> Self {
        self.migrate = apply;
        self
    }

    /// Whether [`build`](Self::build) connects once, within the
    /// [connect timeout](Self::with_connect_timeout), so that a sink that cannot work with
    /// the database as it is set up fails at start, not at its first batch. Default: on.
    #[must_use]
    pub fn with_startup_check(mut self, check: bool) -> Self {
        self.startup_check = check;
        self
    }

    /// Builds the sink, and connects once (see [`with_startup_check`](Self::with_startup_check)):
    ///
    /// - when the database answers and the sink can work with it (migrating it first if it
    ///   may, see [`with_migrations`](Self::with_migrations)), the sink keeps the connection;
    /// - when the database answers and the sink cannot work with it as it is set up (a
    ///   privilege its role lacks, a schema that is missing or older than this version needs, a
    ///   login refused, a database that does not exist), `build` fails with
    ///   [`PostgresError::NotSetUp`], which says what to run: a configuration error, not an
    ///   outage;
    /// - when the database does not answer, that is an outage like any other: the sink is
    ///   built, and entries wait in the spill directory until it answers.
    ///
    /// Batches a previous run left in the spill directory are delivered before anything new.
    ///
    /// # Errors
    /// The connection string does not parse, a setting is out of range, the spill directory
    /// cannot be created, no runtime, or [`PostgresError::NotSetUp`].
    pub fn build(self) -> Result<PostgresSink, PostgresError> {
        let config = self.config?;
        if self.copy_rows == 0 {
            return Err(PostgresError::InvalidSetting {
                setting: "with_copy_rows",
                reason: "a COPY must hold at least 1 row".to_owned(),
            });
        }
        let spill_dir_error = |source| PostgresError::SpillDir {
            path: self.spill_dir.clone(),
            source,
        };
        let spill = Spill::open(&self.spill_dir, self.spill_max_bytes).map_err(spill_dir_error)?;
        let spill_lock = spill::lock_dir(&self.spill_dir).map_err(spill_dir_error)?;
        let chain = self
            .chain
            .map(|settings| PgChain::open(&self.spill_dir, settings))
            .transpose()
            .map_err(spill_dir_error)?;
        let tls = match (&self.ca_certificate, config.get_ssl_mode()) {
            (Some(ca), _) => Some(tls_connector(Some(ca)).map_err(PostgresError::Tls)?),
            (None, SslMode::Require) => Some(tls_connector(None).map_err(PostgresError::Tls)?),
            _ => None,
        };
        let runtime = OwnRuntime::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(PostgresError::Runtime)?,
        );
        let startup_check = self.startup_check;
        let mut sink = PostgresSink {
            runtime,
            inner: Inner {
                target: describe(&config),
                config,
                tls,
                client: None,
                spare: None,
                spare_retry_at: None,
                parallel: self.parallel,
                dead_letter: self
                    .dead_letter
                    .unwrap_or_else(|| self.spill_dir.join("dead_letter.jsonl")),
                spill,
                copy_rows: self.copy_rows,
                connect_timeout: self.connect_timeout,
                write_timeout: self.write_timeout,
                migrate: self.migrate,
                partitions_checked: None,
                retry_at: None,
                backoff: MIN_BACKOFF,
                force_connect: false,
                reported_bad: std::collections::HashSet::new(),
                chain,
                spill_lock: Some(spill_lock),
                at_start: true,
                setup_problem: None,
                told_setup: false,
                last_spilled: 0,
            },
        };
        if startup_check {
            let inner = &mut sink.inner;
            let opened = sink.runtime.get().block_on(inner.client()).map(|_| ());
            match opened {
                Ok(()) => {}
                Err(NoClient::Setup(message)) => {
                    return Err(PostgresError::NotSetUp {
                        target: inner.target.clone(),
                        message,
                    })
                }
                // An outage: the first batch tries again at once, as without the check.
                Err(NoClient::Unavailable(_)) => {
                    inner.retry_at = None;
                    inner.backoff = MIN_BACKOFF;
                }
            }
        }
        sink.inner.at_start = false;
        Ok(sink)
    }
}

/// An [`AuditSink`] writing to the PostgreSQL table `llm_audit_log` (feature `postgres`).
///
/// - **Batched**: each batch goes in by binary `COPY`, in transactions of up to
///   [`with_copy_rows`](PostgresSinkBuilder::with_copy_rows) rows. Replays, and a batch that
///   meets a row already stored, go through a temporary table and
///   `INSERT … ON CONFLICT DO NOTHING` instead.
/// - **Append-only and partitioned**: see `sql/migrations/` and `sql/roles.sql`; the sink
///   creates the monthly partitions ahead through `llm_audit_ensure_partitions`.
/// - **Lossless through outages**: a batch the database cannot take (unreachable, connections
///   killed, failover) is written to the spill directory and delivered, in order, before
///   anything newer once the database is back; the request id is the key, so a replayed row is
///   never a duplicate. A row the database refuses (a poison entry) goes to the dead-letter file
///   with the reason, and the rest of its batch commits; the pipeline counts it as failed.
/// - **No secrets**: errors and `Debug` show host, port, database and user, never the password.
///
/// `write_batch` returns `Ok` once every entry is in the table or durably in the spill
/// directory; [`spilled_in_last_batch`](AuditSink::spilled_in_last_batch) says how many went
/// to the spill, and the pipeline counts those in [`SinkStats::spilled`](crate::SinkStats::spilled),
/// never in `written`. [`spill_status`](Self::spill_status) says what is waiting on disk.
///
/// Run it as a login role in `llm_audit_writer` (see `sql/roles.sql` and docs/postgres.md):
/// the owner applies the migrations (`llm-audit migrate`), the sink only checks them. A
/// database that answers but is not set up for the sink (a privilege missing, the schema
/// missing or older than this version needs) is a configuration error, not an outage:
/// [`build`](PostgresSinkBuilder::build) fails with [`PostgresError::NotSetUp`], saying what to
/// run; found later, it is said once on stderr, and entries wait in the spill directory.
pub struct PostgresSink {
    runtime: OwnRuntime,
    inner: Inner,
}

/// Everything but the runtime, so that the runtime can drive the inner state's futures.
struct Inner {
    config: Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    target: String,
    client: Option<Client>,
    /// The second connection of a parallel COPY, opened on first use.
    spare: Option<Client>,
    /// After the second connection could not be opened: no new attempt before this.
    spare_retry_at: Option<Instant>,
    /// Whether large COPYs are split across two connections.
    parallel: bool,
    spill: Spill,
    dead_letter: PathBuf,
    copy_rows: usize,
    connect_timeout: Duration,
    write_timeout: Duration,
    migrate: bool,
    partitions_checked: Option<Instant>,
    /// After a failed connection attempt: no new attempt before this, so that an outage costs
    /// each batch a spill, not a connect timeout.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Flush and shutdown try to connect whatever the backoff says.
    force_connect: bool,
    /// Spill files whose unreadable lines were dead-lettered already.
    reported_bad: std::collections::HashSet<PathBuf>,
    /// The stream, when the sink is chained.
    chain: Option<PgChain>,
    /// Held until shutdown: one sink per spill directory.
    spill_lock: Option<std::fs::File>,
    /// While [`PostgresSinkBuilder::build`] connects: a login refused or a missing database
    /// is then a configuration error, not an outage.
    at_start: bool,
    /// Why the last connection attempt found the database not set up for the sink.
    setup_problem: Option<String>,
    /// Whether the sink said on stderr that the database is not set up for it (once).
    told_setup: bool,
    /// Entries of the caller's last batch that went to the spill directory.
    last_spilled: usize,
}

/// Why the sink has no usable connection.
enum NoClient {
    /// Unreachable, refused, timed out, a connection that died: an outage, waited out while
    /// entries spill.
    Unavailable(String),
    /// The database answered, and the sink cannot work with it as it is set up (see
    /// [`setup_problem`]): waiting does not fix it.
    Setup(String),
}

impl NoClient {
    fn into_message(self) -> String {
        match self {
            Self::Unavailable(message) | Self::Setup(message) => message,
        }
    }
}

impl fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSink")
            .field("target", &self.inner.target)
            .field("connected", &self.inner.client.is_some())
            .field("spill_dir", &self.inner.spill.dir())
            .field(
                "spilled_entries",
                &self.inner.spill.status.pending_entries(),
            )
            .finish_non_exhaustive()
    }
}

/// Why a COPY did not commit.
enum CopyError {
    /// The database refused or failed the statement.
    Db(tokio_postgres::Error),
    /// No usable connection.
    Unavailable(String),
    /// The database is not set up for the sink (see [`setup_problem`]).
    Setup(String),
}

impl From<NoClient> for CopyError {
    fn from(no: NoClient) -> Self {
        match no {
            NoClient::Unavailable(message) => Self::Unavailable(message),
            NoClient::Setup(message) => Self::Setup(message),
        }
    }
}

impl From<tokio_postgres::Error> for CopyError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

impl PostgresSink {
    /// Starts configuring a sink for `connection`, a URL (`postgres://user:pass@host/db`) or
    /// key-value string (`host=... user=... dbname=...`), `sslmode=require` for TLS.
    #[must_use]
    pub fn builder(connection: &str) -> PostgresSinkBuilder {
        PostgresSinkBuilder {
            config: parse(connection),
            spill_dir: PathBuf::from("./audit_spill"),
            spill_max_bytes: DEFAULT_SPILL_MAX_BYTES,
            dead_letter: None,
            copy_rows: DEFAULT_COPY_ROWS,
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            migrate: true,
            startup_check: true,
            parallel: true,
            ca_certificate: None,
            chain: None,
        }
    }

    /// What waits in the spill directory, readable while the sink runs in the pipeline.
    #[must_use]
    pub fn spill_status(&self) -> Arc<SpillStatus> {
        self.inner.spill.status.clone()
    }

    /// The dead-letter file.
    #[must_use]
    pub fn dead_letter_file(&self) -> &Path {
        &self.inner.dead_letter
    }

    /// The stream id of a chained sink (see [`chain`](PostgresSinkBuilder::chain)).
    #[must_use]
    pub fn stream_id(&self) -> Option<&str> {
        self.inner.chain.as_ref().map(PgChain::stream)
    }
}

impl Inner {
    async fn client(&mut self) -> Result<&mut Client, NoClient> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            if let Some(at) = self.retry_at.filter(|_| !self.force_connect) {
                if let Some(wait) = at.checked_duration_since(Instant::now()) {
                    // Between attempts, the last attempt's answer stands.
                    return Err(match &self.setup_problem {
                        Some(problem) => NoClient::Setup(problem.clone()),
                        None => NoClient::Unavailable(format!(
                            "unavailable since the last attempt; the next one in {wait:.1?}"
                        )),
                    });
                }
            }
            let client = self.open().await;
            match client {
                Ok(client) => {
                    self.client = Some(client);
                    self.partitions_checked = None;
                    self.retry_at = None;
                    self.backoff = MIN_BACKOFF;
                    // Set up now: a later problem is said again.
                    self.setup_problem = None;
                    self.told_setup = false;
                }
                Err(why) => {
                    self.retry_at = Some(Instant::now() + self.backoff);
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    self.setup_problem = None;
                    if let NoClient::Setup(problem) = &why {
                        self.tell_setup(problem);
                    }
                    return Err(why);
                }
            }
        }
        if self
            .partitions_checked
            .is_none_or(|at| at.elapsed() > PARTITION_CHECK)
        {
            let client = self.client.as_ref().expect("connected above");
            // Not an outage when it fails: rows outside every partition go to the default one.
            if let Err(e) = client
                .execute("SELECT llm_audit_ensure_partitions()", &[])
                .await
            {
                self.spill.status.set_error(format!(
                    "creating partitions ahead failed: {}",
                    error_text(&e)
                ));
                if client.is_closed() {
                    self.client = None;
                    return Err(NoClient::Unavailable(error_text(&e)));
                }
            }
            self.partitions_checked = Some(Instant::now());
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// Says once, on stderr, that the database is not set up for the sink: once the pipeline
    /// runs, the sink's errors reach the counters only, and a configuration error must not
    /// pass for an outage. Not a `tracing` event: sinks run with tracing suppressed.
    fn tell_setup(&mut self, problem: &str) {
        self.setup_problem = Some(problem.to_owned());
        self.spill.status.set_error(problem.to_owned());
        if !self.at_start && !std::mem::replace(&mut self.told_setup, true) {
            eprintln!(
                "tracing-llm-audit: PostgreSQL at {} is not set up for this sink: {problem}. \
                 Entries wait in the spill directory {} until it is.",
                self.target,
                self.spill.dir().display()
            );
        }
    }

    /// A new connection, migrated (or checked) and with its staging table.
    async fn open(&self) -> Result<Client, NoClient> {
        let at_start = self.at_start;
        let classify = |code: Option<&str>, text: String| match code
            .and_then(|code| setup_problem(code, &text, at_start))
        {
            Some(problem) => NoClient::Setup(problem),
            None => NoClient::Unavailable(text),
        };
        let db = |e: &tokio_postgres::Error| {
            classify(e.as_db_error().map(|db| db.code().code()), error_text(e))
        };
        let mut client = connect(&self.config, self.tls.as_ref(), self.connect_timeout)
            .await
            .map_err(|failure| classify(failure.code.as_deref(), failure.message))?;
        let latest = schema::latest_version();
        if self.migrate {
            schema::migrate(&mut client)
                .await
                .map_err(|e| match db(&e) {
                    NoClient::Setup(problem) => NoClient::Setup(format!(
                        "applying the migrations this version needs (up to {latest}): {problem}"
                    )),
                    other => other,
                })?;
        } else {
            match schema::schema_version(&client).await.map_err(|e| db(&e))? {
                None => {
                    return Err(NoClient::Setup(format!(
                        "role {} finds no llm_audit_schema_migrations table (the migrations \
                         are not applied, or the role has no privilege on their schema); \
                         {SCHEMA_HINT}",
                        self.config.get_user().unwrap_or("?")
                    )))
                }
                Some(version) if version < latest => {
                    return Err(NoClient::Setup(format!(
                        "the schema is at migration {version}, and this version of \
                         tracing-llm-audit needs {latest}; {SCHEMA_HINT}"
                    )))
                }
                Some(_) => {}
            }
        }
        // What the sink does on every batch, asked now: a role that may not do it is not set
        // up, which the first COPY would otherwise find.
        let mut tables = vec!["llm_audit_log"];
        if self.chain.is_some() {
            tables.push("llm_audit_checkpoints");
        }
        for table in tables {
            let may: bool = client
                .query_one("SELECT has_table_privilege($1::text, 'INSERT')", &[&table])
                .await
                .map_err(|e| db(&e))?
                .get(0);
            if !may {
                return Err(NoClient::Setup(format!(
                    "role {} may not insert into {table}: {PRIVILEGE_HINT}",
                    self.config.get_user().unwrap_or("?")
                )));
            }
        }
        client
            .batch_execute(&schema::create_staging())
            .await
            .map_err(|e| db(&e))?;
        Ok(client)
    }

    /// A second connection for a parallel COPY: the one kept from before, or a new one (with
    /// its staging table; the main connection has migrated the schema already). `None` when it
    /// cannot be opened now, and then for [`MAX_BACKOFF`]: the sink goes on with one.
    async fn spare(&mut self) -> Option<Client> {
        if let Some(client) = self.spare.take().filter(|c| !c.is_closed()) {
            return Some(client);
        }
        if self.spare_retry_at.is_some_and(|at| Instant::now() < at) {
            return None;
        }
        let opened = async {
            let client = connect(&self.config, self.tls.as_ref(), self.connect_timeout)
                .await
                .map_err(|failure| failure.message)?;
            client
                .batch_execute(&schema::create_staging())
                .await
                .map_err(|e| error_text(&e))?;
            Ok::<_, String>(client)
        };
        match opened.await {
            Ok(client) => {
                self.spare_retry_at = None;
                Some(client)
            }
            Err(_) => {
                self.spare_retry_at = Some(Instant::now() + MAX_BACKOFF);
                None
            }
        }
    }

    /// Copies `[a, b)` in two halves on two connections at once, when the range is large
    /// enough and both connections are there. `None` when it did not try (the caller copies on
    /// one connection); otherwise the outcomes of `[a, mid)` and `[mid, b)`.
    #[allow(clippy::type_complexity)]
    async fn copy_parallel(
        &mut self,
        entries: &[AuditEntry],
        links: &[Option<ChainLink>],
        (a, b, dedupe): (usize, usize, bool),
    ) -> Option<(usize, Result<(), CopyError>, Result<(), CopyError>)> {
        // Only on a main connection that is open already: connecting, and finding an outage
        // with its reason, is the single COPY's business.
        if !self.parallel
            || b - a < PARALLEL_MIN_ROWS
            || self.client.as_ref().is_none_or(Client::is_closed)
        {
            return None;
        }
        self.client().await.ok()?;
        let mut spare = self.spare().await?;
        let mut main = self.client.take()?;
        let mid = a + (b - a) / 2;
        let timeout = self.write_timeout;
        let half = |client, from: usize, to: usize| {
            let rows = &entries[from..to];
            let rows_links = links.get(from..to).unwrap_or_default();
            async move {
                match tokio::time::timeout(timeout, copy_in(client, rows, rows_links, dedupe)).await
                {
                    Ok(outcome) => outcome.map_err(CopyError::Db),
                    Err(_) => Err(CopyError::Unavailable(format!(
                        "no answer within {timeout:?}"
                    ))),
                }
            }
        };
        let (first, second) = tokio::join!(half(&mut main, a, mid), half(&mut spare, mid, b));
        // A connection that timed out or closed is as good as gone.
        let usable = |client: Client, outcome: &Result<(), CopyError>| {
            let timed_out = matches!(outcome, Err(CopyError::Unavailable(_)));
            (!timed_out && !client.is_closed()).then_some(client)
        };
        self.client = usable(main, &first);
        self.spare = usable(spare, &second);
        Some((mid, first, second))
    }

    /// One transaction of binary COPY on the main connection (see [`copy_in`]).
    async fn copy(
        &mut self,
        entries: &[AuditEntry],
        links: &[Option<ChainLink>],
        dedupe: bool,
    ) -> Result<(), CopyError> {
        let client = self.client().await?;
        copy_in(client, entries, links, dedupe).await?;
        Ok(())
    }

    /// Stores `entries`, isolating rows the database refuses (dead-lettered, counted in the
    /// result). On an outage, returns the index from which nothing is committed.
    async fn store(
        &mut self,
        entries: &[AuditEntry],
        links: &[Option<ChainLink>],
        replay: bool,
    ) -> Result<usize, (usize, String, usize)> {
        let mut dead = 0;
        // Ranges still to store, in order (the last pushed is the next one), and whether they
        // may hold rows the table has already.
        let mut todo: Vec<(usize, usize, bool)> = entries
            .chunks(self.copy_rows)
            .scan(0, |start, chunk| {
                let range = (*start, *start + chunk.len(), replay);
                *start += chunk.len();
                Some(range)
            })
            .collect();
        todo.reverse();
        while let Some((a, b, dedupe)) = todo.pop() {
            if let Some((mid, first, second)) =
                self.copy_parallel(entries, links, (a, b, dedupe)).await
            {
                // The second half's retries go on the stack first, so that the first half's
                // come out first: ranges stay in order.
                let mut retry_second = Vec::new();
                let second =
                    self.settle(entries, links, (mid, b, dedupe), second, &mut retry_second);
                let mut retry_first = Vec::new();
                let first = self.settle(entries, links, (a, mid, dedupe), first, &mut retry_first);
                match (first, second) {
                    (Err((_, why, n)), _) => return Err((a, why, dead + n)),
                    // Nothing before `mid` is lost: the first half committed, or waits to be
                    // retried, in which case it is spilled with the rest (a replay of rows that
                    // did commit is ignored, never a duplicate).
                    (Ok(n_first), Err((_, why, n_second))) => {
                        let from = if retry_first.is_empty() { mid } else { a };
                        return Err((from, why, dead + n_first + n_second));
                    }
                    (Ok(n_first), Ok(n_second)) => {
                        dead += n_first + n_second;
                        todo.extend(retry_second);
                        todo.extend(retry_first);
                    }
                }
                continue;
            }
            let range_links = links.get(a..b).unwrap_or_default();
            let attempt = tokio::time::timeout(
                self.write_timeout,
                self.copy(&entries[a..b], range_links, dedupe),
            );
            let outcome = match attempt.await {
                Ok(outcome) => outcome,
                Err(_) => {
                    // No answer: the connection is as good as gone.
                    self.client = None;
                    Err(CopyError::Unavailable(format!(
                        "no answer within {:?}",
                        self.write_timeout
                    )))
                }
            };
            match self.settle(entries, links, (a, b, dedupe), outcome, &mut todo) {
                Ok(n) => dead += n,
                Err((from, why, n)) => return Err((from, why, dead + n)),
            }
        }
        Ok(dead)
    }

    /// What follows one COPY's outcome for the range `[a, b)`: nothing when it committed; a
    /// retry (pushed on `todo`) through the staging table when it met a row already stored; the
    /// refused rows isolated (halves pushed on `todo`) or, alone, dead-lettered; and on an
    /// outage, the error to spill from `a` on. Returns the rows dead-lettered.
    #[allow(clippy::type_complexity)]
    fn settle(
        &mut self,
        entries: &[AuditEntry],
        links: &[Option<ChainLink>],
        (a, b, dedupe): (usize, usize, bool),
        outcome: Result<(), CopyError>,
        todo: &mut Vec<(usize, usize, bool)>,
    ) -> Result<usize, (usize, String, usize)> {
        match outcome {
            Ok(()) => {
                self.setup_problem = None;
                Ok(0)
            }
            Err(CopyError::Db(e)) if is_duplicate(&e) && !dedupe => {
                todo.push((a, b, true));
                Ok(0)
            }
            Err(CopyError::Unavailable(why)) => Err((a, format!("database unavailable: {why}"), 0)),
            Err(CopyError::Setup(why)) => Err((a, format!("not set up for this sink: {why}"), 0)),
            Err(CopyError::Db(e)) if is_data_error(&e) && b - a == 1 => {
                let reason = error_text(&e);
                let row = Ok((&entries[a], links.get(a).and_then(Option::as_ref)));
                spill::dead_letter(&self.dead_letter, &[(row, &reason)])
                    .map_err(|io| (a, format!("cannot write the dead-letter file: {io}"), 0))?;
                self.spill.status.dead_lettered(1);
                Ok(1)
            }
            Err(CopyError::Db(e)) if is_data_error(&e) => {
                // Halve until the refused rows stand alone; the others commit.
                let mid = a + (b - a) / 2;
                todo.push((mid, b, dedupe));
                todo.push((a, mid, dedupe));
                Ok(0)
            }
            Err(CopyError::Db(e)) => {
                if self.client.as_ref().is_some_and(Client::is_closed) {
                    self.client = None;
                }
                let setup = e
                    .as_db_error()
                    .and_then(|db| setup_problem(db.code().code(), &error_text(&e), false));
                let message = match (setup, self.client.is_none()) {
                    // A privilege revoked, a table gone: waiting does not fix it, say so.
                    (Some(problem), _) => {
                        self.tell_setup(&problem);
                        format!("not set up for this sink: {problem}")
                    }
                    (None, true) => format!("database unavailable: {}", error_text(&e)),
                    (None, false) => error_text(&e),
                };
                // Ranges are disjoint and ordered: nothing from `a` on has committed, but for
                // the second half of a parallel COPY, whose rows a replay then finds stored.
                Err((a, message, 0))
            }
        }
    }

    /// Delivers what waits in the spill directory, oldest first. Stops at the first batch the
    /// database cannot take.
    async fn replay(&mut self) -> Result<usize, String> {
        let mut dead = 0;
        while let Some(batch) = self.spill.front() {
            let batch = batch.map_err(|e| format!("cannot read the spill: {e}"))?;
            let front = self.spill.front_path().to_owned();
            if !batch.bad.is_empty() && self.reported_bad.insert(front) {
                let rows: Vec<_> = batch
                    .bad
                    .iter()
                    .map(|line| (Err(line.as_str()), "not an audit entry"))
                    .collect();
                spill::dead_letter(&self.dead_letter, &rows)
                    .map_err(|e| format!("cannot write the dead-letter file: {e}"))?;
                self.spill.status.dead_lettered(batch.bad.len() as u64);
            }
            dead += self
                .store(&batch.entries, &batch.links, true)
                .await
                .map_err(|(_, message, _)| message)?;
            self.spill
                .pop_front()
                .map_err(|e| format!("cannot remove a delivered spill file: {e}"))?;
        }
        Ok(dead)
    }

    fn spill(
        &mut self,
        entries: &[AuditEntry],
        links: &[Option<ChainLink>],
        why: String,
    ) -> Result<(), SinkError> {
        self.spill.status.set_error(why.clone());
        self.spill.push(entries, links).map_err(|e: SpillError| {
            SinkError::with_source(
                format!(
                    "PostgreSQL at {} did not take the batch ({why}), and",
                    self.target
                ),
                e,
            )
        })
    }
}

/// One transaction of binary COPY on `client`. Straight into the log; with `dedupe`, into the
/// connection's staging table and from there into the log with duplicates ignored (a replay
/// after an outage, or a range the straight path found a duplicate in).
async fn copy_in(
    client: &mut Client,
    entries: &[AuditEntry],
    links: &[Option<ChainLink>],
    dedupe: bool,
) -> Result<(), tokio_postgres::Error> {
    let columns = schema::column_list();
    let types: Vec<_> = schema::COLUMNS.iter().map(|(_, t)| t.clone()).collect();
    let tx = client.transaction().await?;
    let table = if dedupe {
        "llm_audit_staging"
    } else {
        "llm_audit_log"
    };
    let sink = tx
        .copy_in(&format!("COPY {table} ({columns}) FROM STDIN BINARY"))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    for (i, entry) in entries.iter().enumerate() {
        let link = links.get(i).and_then(Option::as_ref);
        schema::write_row(writer.as_mut(), entry, link).await?;
    }
    writer.finish().await?;
    if dedupe {
        tx.execute(
            &format!(
                "INSERT INTO llm_audit_log ({columns}) SELECT {columns} \
                 FROM llm_audit_staging ON CONFLICT DO NOTHING"
            ),
            &[],
        )
        .await?;
    }
    tx.commit().await
}

impl Inner {
    fn write_batch(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        entries: &[AuditEntry],
    ) -> Result<(), SinkError> {
        self.last_spilled = 0;
        let linked = match &mut self.chain {
            Some(chain) => Some(chain.link(entries).map_err(SinkError::new)?),
            None => None,
        };
        let (rows, links) = match &linked {
            Some((rows, links)) => (rows.as_slice(), links.as_slice()),
            None => (entries, &[][..]),
        };
        // A repair entry ahead of the caller's entries: the error counts are the caller's.
        let extra = rows.len() - entries.len();
        let result = runtime.block_on(async {
            // Older entries first: while anything waits on disk, new ones queue behind it.
            if !self.spill.is_empty() {
                if let Err(why) = self.replay().await {
                    return Err((0, why, 0));
                }
            }
            self.store(rows, links, false).await
        });
        let (dead, rest) = match result {
            Ok(dead) => (dead, None),
            Err((from, why, dead)) => (dead, Some((from, why))),
        };
        if let Some((from, why)) = rest {
            let tail_links = links.get(from..).unwrap_or_default();
            if let Err(error) = self.spill(&rows[from..], tail_links, why) {
                if let Some(chain) = &mut self.chain {
                    chain.lost();
                }
                return Err(error
                    .accepted_before_failure(from.saturating_sub(extra))
                    .with_rejected(dead));
            }
            // The caller's rows from `from` on (a repair entry ahead of them is not theirs).
            self.last_spilled = rows.len() - from.max(extra);
        }
        self.after_stored(runtime);
        if dead == 0 {
            return Ok(());
        }
        Err(SinkError::new(format!(
            "PostgreSQL refused {dead} of {} rows; they are in the dead-letter file {}",
            rows.len(),
            self.dead_letter.display()
        ))
        .accepted_before_failure(entries.len())
        .with_rejected(dead.min(entries.len())))
    }

    /// After a batch is in the table or the spill: signs a checkpoint if one is due, and
    /// inserts the pending ones if nothing waits in the spill. A checkpoint that cannot be
    /// inserted now stays pending (on disk), like a spilled batch.
    fn after_stored(&mut self, runtime: &tokio::runtime::Runtime) {
        let Some(chain) = &mut self.chain else {
            return;
        };
        chain.stored();
        match chain.sign_if_due(false) {
            Ok(true) if self.spill.is_empty() => {
                if let Err(why) = runtime.block_on(self.insert_checkpoints()) {
                    self.spill.status.set_error(why);
                }
            }
            Ok(_) => {}
            Err(e) => self.spill.status.set_error(format!(
                "cannot keep a signed checkpoint in {}: {e}",
                self.spill.dir().display()
            )),
        }
    }

    /// Inserts the pending checkpoints, in one transaction; a replayed one is ignored.
    async fn insert_checkpoints(&mut self) -> Result<(), String> {
        let pending = match &self.chain {
            Some(chain) if !chain.pending.is_empty() => chain.pending.clone(),
            _ => return Ok(()),
        };
        let client = self.client().await.map_err(NoClient::into_message)?;
        let inserted = async {
            let tx = client.transaction().await?;
            let statement = tx
                .prepare(
                    "INSERT INTO llm_audit_checkpoints \
                     (stream, idx, seq, head, signed_at, key_id, final, signature) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                )
                .await?;
            for cp in &pending {
                let index = i64::try_from(cp.index).unwrap_or(i64::MAX);
                let seq = i64::try_from(cp.seq).unwrap_or(i64::MAX);
                tx.execute(
                    &statement,
                    &[
                        &cp.stream,
                        &index,
                        &seq,
                        &cp.head,
                        &cp.time,
                        &cp.key_id,
                        &cp.last,
                        &cp.signature,
                    ],
                )
                .await?;
            }
            tx.commit().await
        };
        inserted
            .await
            .map_err(|e| format!("cannot insert checkpoints: {}", error_text(&e)))?;
        if let Some(chain) = &mut self.chain {
            chain.inserted().map_err(|e| {
                format!(
                    "checkpoints inserted, but cannot clear the pending file in {}: {e}",
                    self.spill.dir().display()
                )
            })?;
        }
        Ok(())
    }

    fn flush(&mut self, runtime: &tokio::runtime::Runtime) -> Result<(), SinkError> {
        let pending = self.chain.as_ref().is_some_and(|c| !c.pending.is_empty());
        if self.spill.is_empty() && !pending {
            return Ok(());
        }
        self.force_connect = true;
        let delivered = runtime.block_on(async {
            self.replay().await?;
            self.insert_checkpoints().await
        });
        self.force_connect = false;
        delivered.map_err(|why| {
            self.spill.status.set_error(why.clone());
            SinkError::new(format!(
                "{} entries wait in {} for PostgreSQL at {}: {why}",
                self.spill.status.pending_entries(),
                self.spill.dir().display(),
                self.target
            ))
        })
    }

    /// Seals a chained stream (its final checkpoint), then delivers what it can.
    fn shutdown(&mut self, runtime: &tokio::runtime::Runtime) -> Result<(), SinkError> {
        let sealed = match &mut self.chain {
            Some(chain) => chain.sign_if_due(true).map(|_| ()).map_err(|e| {
                SinkError::with_source(
                    format!(
                        "cannot keep the final checkpoint of stream {} in {}",
                        chain.stream(),
                        self.spill.dir().display()
                    ),
                    e,
                )
            }),
            None => Ok(()),
        };
        let flushed = self.flush(runtime);
        self.client = None;
        self.spare = None;
        self.spill_lock = None;
        sealed.and(flushed)
    }
}

impl AuditSink for PostgresSink {
    fn name(&self) -> &str {
        "postgres"
    }

    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        self.inner.write_batch(self.runtime.get(), entries)
    }

    /// The entries of the last batch that went to the spill directory (the database
    /// unreachable, or not set up for the sink): durable on disk and delivered later, but not
    /// in the table yet. The pipeline counts them as spilled, not written.
    fn spilled_in_last_batch(&self) -> usize {
        self.inner.last_spilled
    }

    /// Every batch is committed (or spilled durably) before `write_batch` returns; a flush
    /// tries to deliver what waits in the spill directory.
    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush(self.runtime.get())
    }

    /// Delivers what it can of the spill; what remains stays on disk for the next start. A
    /// chained sink signs its final checkpoint first.
    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.inner.shutdown(self.runtime.get())
    }
}
