#![doc = "tracing-llm-audit (crate docs are written in the core issue)"]

pub mod fields;

pub mod cost;
mod entry;
mod hash;
mod layer;
mod pipeline;
mod record;
pub mod sink;

pub use entry::{AuditEntry, Status, ACTION_ENTRIES_DROPPED, SCHEMA_VERSION};
pub use hash::{HashKey, HashKeyError, HASH_KEY_ENV, HASH_PREFIX, MIN_SECRET_LEN};
pub use record::{LlmSpanExt, Usage};
pub use sink::{AuditSink, SinkError};
pub use cost::{CostError, ModelPrice, PriceFileError, PriceTable, TokenUsage};
pub use layer::{
    AuditLayer, AuditLayerBuilder, BuildError, DEFAULT_MAX_BATCH, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_QUEUE_MAX_BYTES,
};
pub use pipeline::{
    FlushError, Overflow, ShutdownError, SinkStats, Stats, StatsHandle, WorkerGuard,
    DROP_FLUSH_TIMEOUT,
};
#[cfg(feature = "jsonl")]
pub use sink::{FsyncPolicy, JsonlError, JsonlSink, JsonlSinkBuilder};
#[cfg(feature = "testing")]
pub use sink::MemorySink;
pub use sink::StdoutSink;
