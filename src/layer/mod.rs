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
    AuditLayerBuilder, BuildError, BuildWarning, DEFAULT_LINGER, DEFAULT_MAX_BATCH,
    DEFAULT_QUEUE_CAPACITY, DEFAULT_QUEUE_MAX_BYTES, DEFAULT_SINK_BACKLOG,
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

/// A span callsite that is never entered: asked about, it tells whether the subscriber lets
/// an LLM span at INFO (the audited clients', rig-core's and genai's level) be made at all.
static PROBE_CALLSITE: tracing::callsite::DefaultCallsite =
    tracing::callsite::DefaultCallsite::new(&PROBE);
static PROBE: Metadata<'static> = Metadata::new(
    "llm_audit.level_probe",
    "tracing_llm_audit",
    Level::INFO,
    None,
    None,
    None,
    tracing::field::FieldSet::new(
        &[fields::OPERATION_NAME],
        tracing::callsite::Identifier(&PROBE_CALLSITE),
    ),
    tracing::metadata::Kind::SPAN,
);

/// Says once, on stderr, when the subscriber this layer joined disables INFO spans for every
/// layer (a global `LevelFilter::WARN`, `RUST_LOG=warn` through an `EnvFilter` on the whole
/// subscriber): the LLM spans are then never made, and nothing would be audited, in silence.
/// Not a `tracing` event: the filter would drop it too.
fn warn_if_filtered_out(subscriber: &Dispatch) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !subscriber.enabled(&PROBE) && !WARNED.swap(true, Relaxed) {
        eprintln!(
            "tracing-llm-audit: the subscriber disables INFO spans for every layer, so LLM \
             spans (made at INFO by the audited clients, rig-core and genai) are never created \
             and NOTHING IS AUDITED. Filter the other layers instead of the whole subscriber, \
             e.g. fmt::layer().with_filter(LevelFilter::WARN) (see the README, \"Log levels\")."
        );
    }
}

/// One pass over a callsite's field names: whether its spans are LLM calls, and whether they
/// name a user, a session or a tenant. A plain span pays about what [`is_llm_span`] alone
/// cost.
fn roles(metadata: &Metadata<'_>) -> (bool, bool) {
    let mut attributes = false;
    for field in metadata.fields() {
        let name = field.name();
        if name == fields::OPERATION_NAME {
            return (true, false);
        }
        attributes |= is_attribution(name);
    }
    (false, attributes)
}

/// What no enclosing span said, from OpenTelemetry baggage (`user.id`, `enduser.id`,
/// `session.id`, `gen_ai.conversation.id`, `tenant.id`): the way a caller upstream passes who
/// the request is for across services.
#[cfg(feature = "otel")]
fn from_baggage(fields: &mut span_data::CallFields) {
    use opentelemetry::baggage::BaggageExt;
    let cx = opentelemetry::Context::current();
    let baggage = cx.baggage();
    if baggage.is_empty() {
        return;
    }
    let get = |names: &[&str]| {
        names.iter().find_map(|name| {
            baggage.get(*name).map(|value| {
                let mut text = value.as_str().to_string();
                span_data::truncate_with_ellipsis(&mut text, 1024);
                text
            })
        })
    };
    if fields.user_id.is_none() {
        if let Some(user) = get(&[fields::USER_ID, fields::ENDUSER_ID]) {
            fields.user_id = Some(user.into());
            fields.user_inherited = true;
        }
    }
    if fields.session_id.is_none() {
        if let Some(session) = get(&[fields::SESSION_ID, fields::CONVERSATION_ID]) {
            fields.session_id = Some(session.into());
            fields.session_inherited = true;
        }
    }
    if let Some(tenant) = get(&[fields::TENANT_ID]) {
        fields.inherit_meta(fields::TENANT_ID, &tenant);
    }
}

/// Whether a field name is one of the attribution fields an LLM span inherits from the spans
/// around it: the user, the session, the tenant. Lengths first: most names are none of them.
fn is_attribution(name: &str) -> bool {
    match name.len() {
        7 => name == fields::USER_ID,
        9 => name == fields::TENANT_ID,
        10 => name == fields::ENDUSER_ID || name == fields::SESSION_ID,
        22 => name == fields::CONVERSATION_ID,
        _ => false,
    }
}

/// What an ordinary span (a request, a job) says about who a call is for: kept in its
/// extensions only when it declares one of the fields.
#[derive(Debug, Default, Clone)]
struct Attribution {
    user: Option<String>,
    session: Option<String>,
    tenant: Option<String>,
}

impl tracing::field::Visit for Attribution {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let slot = match field.name() {
            fields::USER_ID => &mut self.user,
            // The older name never overrides the current one.
            fields::ENDUSER_ID if self.user.is_none() => &mut self.user,
            fields::SESSION_ID => &mut self.session,
            fields::CONVERSATION_ID if self.session.is_none() => &mut self.session,
            fields::TENANT_ID => &mut self.tenant,
            _ => return,
        };
        // As the LLM span's own values are bounded: at most 1 KiB is kept.
        let mut value = value.to_owned();
        span_data::truncate_with_ellipsis(&mut value, 1024);
        *slot = Some(value);
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.record_str(field, &value.to_string());
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.record_str(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if is_attribution(field.name()) {
            self.record_str(field, &format!("{value:?}"));
        }
    }
}

/// Whether a visitor saw an attribution field among recorded values.
#[derive(Default)]
struct SeesAttribution(bool);

impl tracing::field::Visit for SeesAttribution {
    fn record_debug(&mut self, field: &tracing::field::Field, _: &dyn std::fmt::Debug) {
        self.0 |= is_attribution(field.name());
    }
}

impl<S> Layer<S> for AuditLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        #[cfg(feature = "otel")]
        let _ = self.dispatch.set(subscriber.downgrade());
        warn_if_filtered_out(subscriber);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let (llm, attributes) = roles(attrs.metadata());
        if !llm {
            // A request or job span may say who the calls inside it are for.
            if attributes {
                let mut attribution = Attribution::default();
                attrs.record(&mut attribution);
                if let Some(span) = ctx.span(id) {
                    span.extensions_mut().insert(attribution);
                }
            }
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut data = self.queue.new_record();
        data.max_error_message_len = self.max_error_message_len;
        attrs.record(&mut *data);
        // Who the call is for, when the span does not say: the nearest enclosing span that
        // does (its parents only: not a span it follows from, not a sibling). Its own value,
        // recorded now or later, wins.
        if data.fields.user_id.is_none()
            || data.fields.session_id.is_none()
            || !data.fields.has_meta(fields::TENANT_ID)
        {
            for ancestor in span.scope().skip(1) {
                let extensions = ancestor.extensions();
                let Some(found) = extensions.get::<Attribution>() else {
                    continue;
                };
                if data.fields.user_id.is_none() && found.user.is_some() {
                    data.fields.user_id = found.user.as_deref().map(Into::into);
                    data.fields.user_inherited = true;
                }
                if data.fields.session_id.is_none() && found.session.is_some() {
                    data.fields.session_id = found.session.as_deref().map(Into::into);
                    data.fields.session_inherited = true;
                }
                if let Some(tenant) = &found.tenant {
                    data.fields.inherit_meta(fields::TENANT_ID, tenant);
                }
            }
            #[cfg(feature = "otel")]
            from_baggage(&mut data.fields);
        }
        if let Some((trace_id, parent_span_id)) = span.parent().and_then(nearest_llm_span) {
            data.trace_id = trace_id;
            data.parent_span_id = Some(parent_span_id);
        }
        self.open_llm_spans.fetch_add(1, Relaxed);
        self.queue.llm_span(true);
        span.extensions_mut().insert(LlmSpan(data));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        // A user known only once the request is authenticated, recorded on its span then.
        let mut sees = SeesAttribution::default();
        values.record(&mut sees);
        if sees.0 {
            if let Some(span) = ctx.span(id).filter(|s| !is_llm_span(s.metadata())) {
                let mut extensions = span.extensions_mut();
                if let Some(attribution) = extensions.get_mut::<Attribution>() {
                    values.record(attribution);
                } else {
                    let mut attribution = Attribution::default();
                    values.record(&mut attribution);
                    extensions.insert(attribution);
                }
                return;
            }
        }
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
        self.queue.llm_span(false);
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
    /// The dispatcher this layer is part of. `tracing-subscriber` tells a layer through
    /// `on_register_dispatch`, except when it is wrapped in an `Option` or a `Vec` (0.3.23 does
    /// not pass the call on): then the thread's current dispatcher, if this very layer is in it.
    #[cfg(feature = "otel")]
    fn own_dispatch(&self) -> Option<Dispatch> {
        if let Some(dispatch) = self.dispatch.get().and_then(|weak| weak.upgrade()) {
            return Some(dispatch);
        }
        let current = tracing::dispatcher::get_default(Dispatch::clone);
        let ours = current
            .downcast_ref::<AuditLayer>()
            .is_some_and(|layer| std::ptr::eq(layer, self));
        if !ours {
            return None;
        }
        if self.dispatch.set(current.downgrade()).is_ok() {
            warn_if_filtered_out(&current);
        }
        Some(current)
    }

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
        let Some(dispatch) = self.own_dispatch() else {
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
