//! The [`AuditLayer`]: recognizes LLM spans, collects their fields, and hands each closed call
//! to the pipeline.

use std::any::TypeId;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::fields;
use crate::pipeline::Queue;

mod builder;
pub(crate) mod span_data;

pub use builder::{
    AuditLayerBuilder, BuildError, DEFAULT_LINGER, DEFAULT_MAX_BATCH, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_QUEUE_MAX_BYTES,
};
use span_data::{ErrorEvent, LlmSpan, LlmSpanData};

/// A [`tracing_subscriber::Layer`] that writes an audit entry for every LLM span.
///
/// A span is an LLM call when its metadata declares the field `gen_ai.operation.name`, whoever
/// created it. Every other span and event passes through untouched: the layer never disables
/// anything, and returns at once for what is not an LLM call.
///
/// Build it with [`AuditLayer::builder`]; see the [crate docs](crate) for a complete example.
#[derive(Debug)]
pub struct AuditLayer {
    queue: Queue,
    max_error_message_len: usize,
    /// LLM spans created and not yet closed. While there are none, callbacks for other spans
    /// return without looking the span up.
    open_llm_spans: AtomicUsize,
}

impl AuditLayer {
    /// Starts configuring an audit layer.
    #[must_use]
    pub fn builder() -> AuditLayerBuilder {
        AuditLayerBuilder::default()
    }
}

/// Whether spans of this callsite are LLM calls.
fn is_llm_span(metadata: &Metadata<'_>) -> bool {
    metadata.fields().field(fields::OPERATION_NAME).is_some()
}

impl<S> Layer<S> for AuditLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !is_llm_span(attrs.metadata()) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut data = self.queue.new_record();
        data.max_error_message_len = self.max_error_message_len;
        attrs.record(&mut *data);
        if let Some((trace_id, parent_span_id)) = span.parent().and_then(nearest_llm_span) {
            data.trace_id = trace_id;
            data.parent_span_id = Some(parent_span_id);
        }
        self.open_llm_spans.fetch_add(1, Relaxed);
        span.extensions_mut().insert(LlmSpan(data));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if self.open_llm_spans.load(Relaxed) == 0 {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        if !is_llm_span(span.metadata()) {
            return;
        }
        let mut extensions = span.extensions_mut();
        if let Some(LlmSpan(data)) = extensions.get_mut::<LlmSpan>() {
            values.record(&mut **data);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() != Level::ERROR || self.open_llm_spans.load(Relaxed) == 0 {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(span) = scope.into_iter().find(|span| is_llm_span(span.metadata())) else {
            return;
        };
        let mut error = ErrorEvent::default();
        event.record(&mut error);
        let mut extensions = span.extensions_mut();
        let Some(LlmSpan(data)) = extensions.get_mut::<LlmSpan>() else {
            return;
        };
        // The latest error's class wins, as a later `record` of `error.type` would.
        if let Some(error_type) = error.error_type {
            data.fields.error_type = Some(error_type);
        } else if data.fields.error_type.is_none() {
            data.fields.error_type = Some("error".into());
        }
        let max = data.max_error_message_len;
        data.push_error_message(&error.message, max);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if self.open_llm_spans.load(Relaxed) == 0 {
            return;
        }
        let Some(span) = ctx.span(&id) else { return };
        if !is_llm_span(span.metadata()) {
            return;
        }
        // Take the data out inside a block: the extensions lock is released before the queue
        // sees the entry.
        let taken = span.extensions_mut().remove::<LlmSpan>();
        let Some(LlmSpan(mut data)) = taken else {
            return;
        };
        self.open_llm_spans.fetch_sub(1, Relaxed);
        data.latency = data.started.elapsed();
        self.queue.offer(data);
    }

    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(std::ptr::from_ref(self).cast())
        } else if id == TypeId::of::<WithLlmSpan>() {
            let with: &'static WithLlmSpan = const { &WithLlmSpan(with_llm_span::<S>) };
            Some(std::ptr::from_ref(with).cast())
        } else {
            None
        }
    }
}

/// Trace id and span id of the nearest LLM span at or above `span`.
fn nearest_llm_span<S>(span: SpanRef<'_, S>) -> Option<([u8; 16], [u8; 8])>
where
    S: for<'a> LookupSpan<'a>,
{
    span.scope().find_map(|ancestor| {
        let extensions = ancestor.extensions();
        extensions
            .get::<LlmSpan>()
            .map(|LlmSpan(data)| (data.trace_id, data.span_id()))
    })
}

/// Lets [`LlmSpanExt`](crate::LlmSpanExt) reach a span's audit data through the dispatcher,
/// whatever the subscriber's concrete type (the pattern `tracing-opentelemetry` uses).
#[derive(Clone, Copy)]
pub(crate) struct WithLlmSpan(WithLlmSpanFn);

type WithLlmSpanFn = fn(&Dispatch, &Id, &mut dyn FnMut(&mut LlmSpanData));

impl WithLlmSpan {
    pub(crate) fn with(&self, dispatch: &Dispatch, id: &Id, f: &mut dyn FnMut(&mut LlmSpanData)) {
        (self.0)(dispatch, id, f);
    }
}

fn with_llm_span<S>(dispatch: &Dispatch, id: &Id, f: &mut dyn FnMut(&mut LlmSpanData))
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(subscriber) = dispatch.downcast_ref::<S>() else {
        return;
    };
    let Some(span) = subscriber.span(id) else {
        return;
    };
    let mut extensions = span.extensions_mut();
    if let Some(LlmSpan(data)) = extensions.get_mut::<LlmSpan>() {
        f(data);
    }
}
