#![doc = "tracing-llm-audit (crate docs are written in the core issue)"]

pub mod fields;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod macros;
#[cfg(feature = "macros")]
pub use tracing_llm_audit_macros::llm_call;

pub mod cost;
mod entry;
mod hash;
mod layer;
mod pipeline;
mod record;
pub mod sink;

pub use cost::{CostError, ModelPrice, PriceFileError, PriceTable, TokenUsage};
pub use entry::{AuditEntry, Status, ACTION_ENTRIES_DROPPED, SCHEMA_VERSION};
pub use hash::{HashKey, HashKeyError, HASH_KEY_ENV, HASH_PREFIX, MIN_SECRET_LEN};
pub use layer::{
    AuditLayer, AuditLayerBuilder, BuildError, DEFAULT_LINGER, DEFAULT_MAX_BATCH,
    DEFAULT_QUEUE_CAPACITY, DEFAULT_QUEUE_MAX_BYTES,
};
pub use pipeline::{
    FlushError, Overflow, ShutdownError, SinkStats, Stats, StatsHandle, WorkerGuard,
    DROP_FLUSH_TIMEOUT,
};
pub use record::{LlmSpanExt, Usage};
#[cfg(feature = "testing")]
pub use sink::MemorySink;
pub use sink::StdoutSink;
pub use sink::{AuditSink, SinkError};
#[cfg(feature = "jsonl")]
pub use sink::{FsyncPolicy, JsonlError, JsonlSink, JsonlSinkBuilder};
