//! Configuration of the audit layer and its pipeline.

use std::time::Duration;

use super::span_data::DEFAULT_MAX_ERROR_MESSAGE_LEN;
use super::AuditLayer;
use crate::content::{ContentPolicies, ContentPolicy, Keyring};
use crate::cost::PriceTable;
use crate::hash::{HashKey, HashKeyError, HASH_KEY_ENV};
use crate::pipeline::{
    Assembler, Backlog, Counters, Lane, Overflow, Queue, RetryPolicy, Shared, Worker, WorkerGuard,
};
use crate::sink::AuditSink;

/// Default bound of the queue in entries.
pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;
/// Default bound in bytes of what the pipeline holds (content included): 64 MiB; see
/// [`AuditLayerBuilder::with_queue_max_bytes`].
pub const DEFAULT_QUEUE_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Default largest batch handed to a sink at once.
pub const DEFAULT_MAX_BATCH: usize = 1024;
/// Default bound, in entries, of what one sink may fall behind the others; see
/// [`AuditLayerBuilder::with_sink_backlog`].
pub const DEFAULT_SINK_BACKLOG: usize = 65_536;
/// Default time the worker lingers after emptying the queue; see
/// [`AuditLayerBuilder::with_linger`].
pub const DEFAULT_LINGER: Duration = Duration::from_millis(1);

/// Configures an [`AuditLayer`]; made by [`AuditLayer::builder`].
///
/// ```
/// use std::time::Duration;
/// use tracing_llm_audit::{AuditLayer, HashKey, Overflow, StdoutSink};
///
/// let (layer, guard) = AuditLayer::builder()
///     .with_sink(StdoutSink::new())
///     .with_hash_key(HashKey::new("docs-1", [42u8; 32])?)
///     .with_overflow(Overflow::Block)
///     .build()?;
/// # drop(layer);
/// let stats = guard.shutdown(Duration::from_secs(5))?;
/// assert_eq!(stats.dropped, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct AuditLayerBuilder {
    sinks: Vec<Box<dyn AuditSink>>,
    hash_key: Option<HashKey>,
    ephemeral_hash_key: bool,
    prices: PriceTable,
    queue_capacity: usize,
    queue_max_bytes: usize,
    overflow: Overflow,
    max_batch: usize,
    max_error_message_len: usize,
    retry: RetryPolicy,
    idle_flush: Duration,
    linger: Duration,
    sink_backlog: usize,
    content: ContentPolicies,
    keyring: Option<Keyring>,
    retention: Option<crate::retention::RetentionPolicy>,
    #[cfg(feature = "otel")]
    otel: crate::otel::OtelSpans,
}

impl Default for AuditLayerBuilder {
    fn default() -> Self {
        Self {
            sinks: Vec::new(),
            hash_key: None,
            ephemeral_hash_key: false,
            prices: PriceTable::builtin(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            queue_max_bytes: DEFAULT_QUEUE_MAX_BYTES,
            overflow: Overflow::default(),
            max_batch: DEFAULT_MAX_BATCH,
            max_error_message_len: DEFAULT_MAX_ERROR_MESSAGE_LEN,
            retry: RetryPolicy::default(),
            idle_flush: Duration::from_secs(1),
            linger: DEFAULT_LINGER,
            sink_backlog: DEFAULT_SINK_BACKLOG,
            content: ContentPolicies::default(),
            retention: None,
            keyring: None,
            #[cfg(feature = "otel")]
            otel: crate::otel::OtelSpans::default(),
        }
    }
}

/// [`AuditLayerBuilder::build`] could not build the layer.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No sink was added.
    #[error(
        "no audit sink configured: add one, for example .with_sink(JsonlSink::new(\"./audit_logs\")?)"
    )]
    NoSink,
    /// No hash key was given, none is in the environment, and no ephemeral key was asked for.
    #[error(
        "no hash key configured: set {HASH_KEY_ENV}=<key id>:<secret as hex> (`llm-audit keygen \
         --hash-key` makes one), pass one with .with_hash_key(HashKey::new(id, secret)?), or opt \
         in to a throwaway key with .with_ephemeral_hash_key() (its hashes cannot be correlated \
         across restarts)"
    )]
    NoHashKey,
    /// The key in the environment is malformed: the sentence names the variable and the
    /// problem.
    #[error(transparent)]
    HashKeyFromEnv(HashKeyError),
    /// A numeric setting is out of range.
    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        /// The builder method.
        setting: &'static str,
        /// What would be right.
        reason: &'static str,
    },
    /// A content policy is [`ContentPolicy::Encrypted`] but no keyring was given.
    #[error(
        "the content policy encrypts content, but no keyring was given: add \
         .with_keyring(Keyring::from_file(..)?) (make one with `llm-audit keygen --keyring FILE`)"
    )]
    NoKeyring,
    /// The retention policy says full content is never stored, and a content policy stores it.
    #[error(
        "the {policy} retention policy never stores full content, but the content policy of \
         the {field} is {content:?}: use HashOnly or Drop for it"
    )]
    RetentionForbidsContent {
        /// The retention policy's name.
        policy: String,
        /// The content field (`system_prompt`, `input`, `output`).
        field: &'static str,
        /// Its content policy.
        content: ContentPolicy,
    },
    /// The worker thread could not be started.
    #[error("could not start the audit worker thread")]
    SpawnWorker(#[source] std::io::Error),
}

// `Debug` is the sentence too: `?` in `main` prints it.
debug_as_sentence!(BuildError);

/// What [`AuditLayerBuilder::build`] wants you to know: the layer works, but not as an audit
/// trail should in production.
///
/// `build` runs before most programs set up their subscriber, so a `tracing` event would reach
/// nobody. The warnings therefore reach you two ways:
///
/// - [`WorkerGuard::warnings`] returns them, to log, to show, or to fail a test on;
/// - `build` reports each one as it goes: as a `WARN` event when the calling thread has a
///   subscriber (a global default, or one set with `tracing::subscriber::with_default`), and
///   otherwise on stderr, one line each starting with `tracing-llm-audit: warning:`.
///
/// ```
/// use tracing_llm_audit::{
///     AuditLayer, BuildWarning, ContentPolicies, ContentPolicy, HashKey, StdoutSink,
/// };
///
/// let (_layer, guard) = AuditLayer::builder()
///     .with_sink(StdoutSink::new())
///     .with_hash_key(HashKey::new("docs-1", [42u8; 32])?)
///     .with_content_policy(ContentPolicies {
///         input: ContentPolicy::PlaintextUnprotected,
///         ..ContentPolicies::default()
///     })
///     .build()?; // no subscriber yet: the warning goes to stderr
/// assert_eq!(
///     guard.warnings(),
///     [BuildWarning::PlaintextContent { field: "input" }]
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildWarning {
    /// No hash key was configured, and [`AuditLayerBuilder::with_ephemeral_hash_key`] allowed
    /// a random one for this process.
    EphemeralHashKey {
        /// The key's id, as entries record it (`ephemeral-...`).
        key_id: String,
    },
    /// A content field is kept in plain text ([`ContentPolicy::PlaintextUnprotected`]).
    PlaintextContent {
        /// The field: `system_prompt`, `input` or `output`.
        field: &'static str,
    },
}

impl std::fmt::Display for BuildWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EphemeralHashKey { key_id } => write!(
                f,
                "audit content hashes use an ephemeral key ({key_id}): they cannot be \
                 correlated with hashes from any other run; set {HASH_KEY_ENV} for production \
                 (`llm-audit keygen --hash-key` makes a value)"
            ),
            Self::PlaintextContent { field } => write!(
                f,
                "audit entries keep the {field} in plain text (ContentPolicy::\
                 PlaintextUnprotected): anyone who can read the audit log can read it; use \
                 HashOnly or Encrypted in production"
            ),
        }
    }
}

/// Reports `warning` where someone sees it: a `WARN` event when this thread has a subscriber,
/// stderr otherwise (see [`BuildWarning`]).
fn report(warning: &BuildWarning) {
    let subscribed = tracing::dispatcher::get_default(|dispatch| {
        !dispatch.is::<tracing_core::subscriber::NoSubscriber>()
    });
    if subscribed {
        tracing::warn!("{warning}");
    } else {
        eprintln!("tracing-llm-audit: warning: {warning}");
    }
}

impl AuditLayerBuilder {
    /// Adds a sink. Every entry goes to every sink, in the order they were added. Required: at
    /// least one.
    #[must_use]
    pub fn with_sink(mut self, sink: impl AuditSink) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// The key for content hashes. Default: read from `LLM_AUDIT_HASH_KEY` at build; when that
    /// is unset too, [`build`](Self::build) fails unless
    /// [`with_ephemeral_hash_key`](Self::with_ephemeral_hash_key) was called.
    #[must_use]
    pub fn with_hash_key(mut self, key: HashKey) -> Self {
        self.hash_key = Some(key);
        self
    }

    /// Allows a random per-process key when no key is configured. Hashes made with it cannot be
    /// correlated across restarts; [`build`](Self::build) warns (a
    /// [`BuildWarning::EphemeralHashKey`]) and entries show a key id starting with
    /// `ephemeral-`. Default: off.
    #[must_use]
    pub fn with_ephemeral_hash_key(mut self) -> Self {
        self.ephemeral_hash_key = true;
        self
    }

    /// The prices used for `cost_usd`. Default: [`PriceTable::builtin`].
    #[must_use]
    pub fn with_price_table(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// Bound of the queue in entries. Default: [`DEFAULT_QUEUE_CAPACITY`].
    #[must_use]
    pub fn with_queue_capacity(mut self, entries: usize) -> Self {
        self.queue_capacity = entries;
        self
    }

    /// Bound in bytes of everything the pipeline holds: calls waiting in the queue with their
    /// content (each charged with room for the entry it becomes), the batch the worker is
    /// assembling, the assembled entries in every sink's backlog (a sink may hold half of it,
    /// see [`with_sink_backlog`](Self::with_sink_backlog)), and the records kept for reuse.
    /// A call that does not fit is dropped and counted (`DropNewest`) or waits
    /// (`Block`); a little of the bound is kept for the pipeline's reports of its drops.
    /// [`Stats::held_bytes`](crate::Stats::held_bytes) and
    /// [`Stats::peak_held_bytes`](crate::Stats::peak_held_bytes) show the account. One call
    /// larger than the whole bound passes when nothing else is held. Default:
    /// [`DEFAULT_QUEUE_MAX_BYTES`].
    #[must_use]
    pub fn with_queue_max_bytes(mut self, bytes: usize) -> Self {
        self.queue_max_bytes = bytes;
        self
    }

    /// What happens when the queue is full. Default: [`Overflow::DropNewest`].
    #[must_use]
    pub fn with_overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Largest batch handed to a sink at once. Default: [`DEFAULT_MAX_BATCH`].
    #[must_use]
    pub fn with_max_batch(mut self, entries: usize) -> Self {
        self.max_batch = entries;
        self
    }

    /// Bound of an entry's `error_message` in bytes (cut on a character boundary, ending in
    /// `…`). Default: 1024.
    #[must_use]
    pub fn with_max_error_message_len(mut self, bytes: usize) -> Self {
        self.max_error_message_len = bytes;
        self
    }

    /// How often a failed sink write is retried, and the first wait (doubling up to 1 s).
    /// Default: 3 retries, starting at 50 ms.
    #[must_use]
    pub fn with_retry(mut self, retries: u32, initial_backoff: Duration) -> Self {
        self.retry.attempts = retries;
        self.retry.initial_backoff = initial_backoff;
        self
    }

    /// After a write, every sink is flushed once no entry arrived for this long. Default: 1 s.
    #[must_use]
    pub fn with_idle_flush(mut self, idle: Duration) -> Self {
        self.idle_flush = idle;
        self
    }

    /// How long the worker waits after emptying the queue before it sleeps on it again. Entries
    /// that arrive meanwhile are batched without waking the worker, which would cost the
    /// application's thread a system call per entry under steady load; an idle worker still
    /// costs nothing. Zero turns lingering off. Default: [`DEFAULT_LINGER`] (1 ms).
    #[must_use]
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// How many assembled entries one sink may hold that it has not written yet. Every sink
    /// writes on a thread of its own, so a sink that is slow or down (a collector that hangs, a
    /// database in failover) delays only itself; once it is this far behind, new batches skip
    /// it and are counted in its [`SinkStats::dropped`](crate::SinkStats::dropped) (and
    /// reported as an `llm_audit.entries_dropped` entry to the other sinks) under
    /// [`Overflow::DropNewest`], or the worker waits for it under [`Overflow::Block`]. A sink's
    /// backlog is also bounded in bytes, at half the pipeline's byte bound
    /// ([`with_queue_max_bytes`](Self::with_queue_max_bytes)), which it is part of: a sink that
    /// hangs cannot take the whole bound and make the queue drop what the others would write.
    /// An assembled entry holds hashes, not content, and about 1.3 KB of memory. Default:
    /// [`DEFAULT_SINK_BACKLOG`].
    #[must_use]
    pub fn with_sink_backlog(mut self, entries: usize) -> Self {
        self.sink_backlog = entries;
        self
    }

    /// How the layer treats spans that `tracing-opentelemetry` exports (feature `otel`): by
    /// default it takes their trace and span ids into the entries and puts cost, hashes, status
    /// and sanitization count on them; [`OtelSpans::with_openinference`](crate::otel::OtelSpans::with_openinference)
    /// adds the OpenInference names. The audit layer must be added before the OpenTelemetry
    /// layer; see [`otel`](crate::otel).
    #[cfg(feature = "otel")]
    #[must_use]
    pub fn with_otel_spans(mut self, otel: crate::otel::OtelSpans) -> Self {
        self.otel = otel;
        self
    }

    /// What entries keep of the system prompt, input and output. Default:
    /// [`ContentPolicy::HashOnly`] for all three. [`ContentPolicy::Encrypted`] needs
    /// [`with_keyring`](Self::with_keyring); [`ContentPolicy::PlaintextUnprotected`] makes
    /// [`build`](Self::build) warn (a [`BuildWarning::PlaintextContent`]).
    #[must_use]
    pub fn with_content_policy(mut self, policies: ContentPolicies) -> Self {
        self.content = policies;
        self
    }

    /// The keys that encrypt content ([`ContentPolicy::Encrypted`]). Default: none.
    #[must_use]
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// The retention policy the entries are kept under (applied later by `llm-audit retention
    /// apply`). Here it guards the content policy: a policy that never stores full content
    /// ([`RetentionPolicy::hipaa`](crate::retention::RetentionPolicy::hipaa)) with a content
    /// policy that stores it is a build error.
    #[must_use]
    pub fn with_retention(mut self, policy: crate::retention::RetentionPolicy) -> Self {
        self.retention = Some(policy);
        self
    }

    /// Starts the worker thread and returns the layer and the guard that stops the worker.
    ///
    /// What should not go unnoticed (an ephemeral hash key, content kept in plain text) is a
    /// [`BuildWarning`]: returned by [`WorkerGuard::warnings`], and reported at once, as a
    /// `WARN` event when this thread has a subscriber, otherwise on stderr.
    ///
    /// # Errors
    /// See [`BuildError`]: no sink, no hash key, a setting out of range, or no thread.
    pub fn build(self) -> Result<(AuditLayer, WorkerGuard), BuildError> {
        self.validate()?;
        let policies = self.content.by_field();
        if let Some(retention) = self.retention.as_ref().filter(|r| !r.allows_content()) {
            if let Some((field, content)) = policies.iter().find(|(_, p)| p.stores_content()) {
                return Err(BuildError::RetentionForbidsContent {
                    policy: retention.name().to_owned(),
                    field: field.name(),
                    content: *content,
                });
            }
        }
        if policies.iter().any(|(_, p)| *p == ContentPolicy::Encrypted) && self.keyring.is_none() {
            return Err(BuildError::NoKeyring);
        }
        let mut warnings: Vec<BuildWarning> = policies
            .iter()
            .filter(|(_, p)| *p == ContentPolicy::PlaintextUnprotected)
            .map(|(field, _)| BuildWarning::PlaintextContent {
                field: field.name(),
            })
            .collect();
        let hash_key = match self.hash_key {
            Some(key) => key,
            None => match HashKey::from_env().map_err(BuildError::HashKeyFromEnv)? {
                Some(key) => key,
                None if self.ephemeral_hash_key => {
                    let key = HashKey::ephemeral();
                    warnings.push(BuildWarning::EphemeralHashKey {
                        key_id: key.id().to_owned(),
                    });
                    key
                }
                None => return Err(BuildError::NoHashKey),
            },
        };
        let counters = Counters::new(self.sinks.iter().map(|s| s.name().to_owned()));
        let stores_content = self
            .content
            .by_field()
            .iter()
            .any(|(_, policy)| policy.stores_content());
        let shared = Shared::new(counters, self.queue_max_bytes, stores_content);
        let mut lanes = Vec::with_capacity(self.sinks.len());
        for (index, (sink, counters)) in self
            .sinks
            .into_iter()
            .zip(&shared.counters.sinks)
            .enumerate()
        {
            let lane = Lane::spawn(
                index,
                sink,
                counters.clone(),
                self.retry,
                self.idle_flush,
                Backlog {
                    entries: self.sink_backlog,
                    bytes: self.queue_max_bytes / 2,
                },
            )
            .map_err(BuildError::SpawnWorker)?;
            lanes.push(lane);
        }
        let (tx, rx) = crossbeam_channel::bounded(self.queue_capacity);
        let assembler = std::sync::Arc::new(Assembler::new(
            hash_key,
            self.prices,
            self.content,
            self.keyring,
        ));
        let worker = Worker {
            rx,
            lanes,
            shared: shared.clone(),
            assembler: assembler.clone(),
            overflow: self.overflow,
            max_batch: self.max_batch,
            linger: self.linger,
        };
        let handle = std::thread::Builder::new()
            .name("llm-audit-worker".to_owned())
            .spawn(move || worker.run())
            .map_err(BuildError::SpawnWorker)?;
        let layer = AuditLayer {
            queue: Queue::new(tx.clone(), shared.clone(), self.overflow),
            max_error_message_len: self.max_error_message_len,
            open_llm_spans: crossbeam_utils::CachePadded::new(std::sync::atomic::AtomicUsize::new(
                0,
            )),
            #[cfg(feature = "otel")]
            assembler,
            #[cfg(feature = "otel")]
            otel: self.otel,
            #[cfg(feature = "otel")]
            warned_layer_order: std::sync::atomic::AtomicBool::new(false),
            #[cfg(feature = "otel")]
            dispatch: std::sync::OnceLock::new(),
        };
        // Only once the layer is built: a build that fails warns of nothing.
        warnings.iter().for_each(report);
        Ok((layer, WorkerGuard::new(tx, shared, handle, warnings)))
    }

    fn validate(&self) -> Result<(), BuildError> {
        let invalid = |setting, reason| Err(BuildError::InvalidSetting { setting, reason });
        if self.sinks.is_empty() {
            return Err(BuildError::NoSink);
        }
        if self.queue_capacity == 0 {
            return invalid(
                "with_queue_capacity",
                "the queue must hold at least 1 entry",
            );
        }
        if self.queue_max_bytes == 0 {
            return invalid(
                "with_queue_max_bytes",
                "the queue must hold at least 1 byte",
            );
        }
        if self.max_batch == 0 {
            return invalid("with_max_batch", "a batch must hold at least 1 entry");
        }
        if self.max_error_message_len < 16 {
            return invalid(
                "with_max_error_message_len",
                "keep at least 16 bytes of an error message",
            );
        }
        if self.sink_backlog == 0 {
            return invalid(
                "with_sink_backlog",
                "a sink's backlog must hold at least 1 entry",
            );
        }
        if self.idle_flush.is_zero() {
            return invalid("with_idle_flush", "the idle time must be longer than zero");
        }
        Ok(())
    }
}
