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
    DEFAULT_QUEUE_MAX_BYTES, DEFAULT_SINK_BACKLOG,
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
    /// return without looking the span up. Every span close reads it, from every thread: on a
    /// cache line of its own, no write nearby (such as a scoped `Dispatch`'s reference count,
    /// which every new span bumps) makes that read a cache miss.
    open_llm_spans: crossbeam_utils::CachePadded<AtomicUsize>,
    /// Builds entries on the application's thread when their values must go onto an
    /// OpenTelemetry span before it is exported.
    #[cfg(feature = "otel")]
    assembler: std::sync::Arc<crate::pipeline::Assembler>,
    #[cfg(feature = "otel")]
    otel: crate::otel::OtelSpans,
    /// Whether the warning about the layer order was given.
    #[cfg(feature = "otel")]
    warned_layer_order: std::sync::atomic::AtomicBool,
    /// The subscriber this layer is part of, to find its OpenTelemetry spans (the thread's
    /// default dispatcher may be another one when a span closes).
    #[cfg(feature = "otel")]
    dispatch: std::sync::OnceLock<tracing::dispatcher::WeakDispatch>,
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
    #[cfg(feature = "otel")]
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

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
        #[cfg(feature = "otel")]
        let Some(data) = self.close_otel_span(&id, &span, data) else {
            return;
        };
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

#[cfg(feature = "otel")]
impl AuditLayer {
    /// When `tracing-opentelemetry` tracks the span: builds the entry here with the span's
    /// OpenTelemetry ids, puts the audit values on the span before it is exported, and hands the
    /// entry to the pipeline. Gives the record back when there is no OpenTelemetry span.
    fn close_otel_span<S>(
        &self,
        id: &Id,
        span: &SpanRef<'_, S>,
        mut data: Box<LlmSpanData>,
    ) -> Option<Box<LlmSpanData>>
    where
        S: for<'a> LookupSpan<'a>,
    {
        use opentelemetry::trace::TraceContextExt;

        use crate::hash::to_hex;
        use crate::otel;

        if !self.otel.enabled {
            return Some(data);
        }
        let Some(dispatch) = self.dispatch.get().and_then(|weak| weak.upgrade()) else {
            return Some(data);
        };
        let Some(cx) = otel::span_context(&dispatch, id) else {
            // An OpenTelemetry layer that saw the close first has exported its span already.
            // Looking at the parent (which activates its OpenTelemetry span) only until the
            // one warning is given.
            let parent_tracked = || {
                span.parent()
                    .is_some_and(|parent| otel::span_context(&dispatch, &parent.id()).is_some())
            };
            if !self.warned_layer_order.load(Relaxed)
                && parent_tracked()
                && !self.warned_layer_order.swap(true, Relaxed)
            {
                tracing::warn!(
                    "the audit layer was added after the OpenTelemetry layer: audit entries keep \
                     ids of their own and spans go out without cost and hashes; add the audit \
                     layer first, `registry().with(audit).with(otel)`"
                );
            }
            return Some(data);
        };
        let llm_parent = span
            .parent()
            .and_then(|parent| parent.scope().find(|s| is_llm_span(s.metadata())))
            .map(|ancestor| ancestor.id());
        let (trace_id, span_id) = otel::ids(&cx);
        let mut entry = self.assembler.assemble(&mut data);
        self.queue.recycle(data);
        entry.trace_id = Some(to_hex(&trace_id));
        entry.span_id = Some(to_hex(&span_id));
        if let Some(parent) = llm_parent
            .as_ref()
            .and_then(|parent| otel::span_context(&dispatch, parent))
        {
            entry.parent_span_id = Some(to_hex(&otel::ids(&parent).1));
        }
        let default_name = span.metadata().name() == otel::DEFAULT_SPAN_NAME;
        otel::annotate(&cx.span(), &entry, self.otel.openinference, default_name);
        self.queue.offer_entry(Box::new(entry));
        None
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
