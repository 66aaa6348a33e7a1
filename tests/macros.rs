//! `#[llm_call]` and `llm_span!` through the public API: which span a call creates, what it
//! records, and which outcomes become `error.type`.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Span, Subscriber};
use tracing_llm_audit::{fields, llm_call};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as the capturing layer saw it: created, then recorded into.
#[derive(Debug, Clone)]
struct CapturedSpan {
    id: Id,
    name: &'static str,
    declared: Vec<&'static str>,
    values: BTreeMap<&'static str, String>,
}

impl CapturedSpan {
    fn value(&self, field: &str) -> Option<&str> {
        self.values.get(field).map(String::as_str)
    }
}

struct Values<'a>(&'a mut BTreeMap<&'static str, String>);

impl Visit for Values<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

/// Keeps every span that is created, with the values recorded on it.
#[derive(Clone, Default)]
struct CaptureSpans(Arc<Mutex<Vec<CapturedSpan>>>);

impl CaptureSpans {
    fn spans(&self) -> Vec<CapturedSpan> {
        self.0.lock().unwrap().clone()
    }

    /// The only span created so far.
    fn single(&self) -> CapturedSpan {
        let spans = self.spans();
        assert_eq!(spans.len(), 1, "{spans:#?}");
        spans.into_iter().next().unwrap()
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for CaptureSpans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut values = BTreeMap::new();
        attrs.record(&mut Values(&mut values));
        self.0.lock().unwrap().push(CapturedSpan {
            id: id.clone(),
            name: attrs.metadata().name(),
            declared: attrs.metadata().fields().iter().map(|f| f.name()).collect(),
            values,
        });
    }

    fn on_record(&self, id: &Id, record: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some(span) = spans.iter_mut().rev().find(|span| span.id == *id) {
            record.record(&mut Values(&mut span.values));
        }
    }
}

/// Runs `f` under a subscriber that captures spans.
fn captured<T>(f: impl FnOnce() -> T) -> (T, CaptureSpans) {
    let capture = CaptureSpans::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let out = tracing::subscriber::with_default(subscriber, f);
    (out, capture)
}

/// Makes a future and drives it to completion on a current-thread runtime, both under a
/// capturing subscriber.
fn captured_async<F: Future>(make_future: impl FnOnce() -> F) -> (F::Output, CaptureSpans) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    captured(|| runtime.block_on(make_future()))
}

#[derive(Debug)]
struct MyError;

impl fmt::Display for MyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the model is overloaded")
    }
}

/// An error that a `?` converts into [`MyError`].
struct Upstream;

impl From<Upstream> for MyError {
    fn from(_: Upstream) -> Self {
        Self
    }
}

type CallResult<T> = Result<T, MyError>;

struct Request {
    model: String,
    user: Option<String>,
    fail: bool,
}

/// Returns the current span's id, or fails through a `?`.
#[llm_call(provider = "openai", model = req.model, user = req.user)]
fn complete(req: Request) -> CallResult<Option<Id>> {
    if req.fail {
        Err(Upstream)?;
    }
    // The body may move what the arguments refer to: the span was created before.
    drop(req);
    Ok(Span::current().id())
}

#[llm_call(provider = "anthropic", model = model, user = user, session = "s-1", stream = true)]
async fn complete_async(model: &str, user: &str, fail: bool) -> Result<Option<Id>, MyError> {
    tokio::task::yield_now().await;
    if fail {
        return Err(MyError);
    }
    Ok(Span::current().id())
}

fn request(fail: bool) -> Request {
    Request {
        model: "gpt-4o".to_owned(),
        user: Some("alice".to_owned()),
        fail,
    }
}

#[test]
fn a_sync_call_runs_in_its_own_llm_span() {
    let (current, capture) = captured(|| complete(request(false)));
    let span = capture.single();
    assert_eq!(span.name, "complete");
    assert!(span.declared.contains(&fields::OPERATION_NAME));
    assert_eq!(span.declared, fields::DECLARED);
    assert_eq!(span.value(fields::OPERATION_NAME), Some("chat"));
    assert_eq!(span.value(fields::PROVIDER_NAME), Some("openai"));
    assert_eq!(span.value(fields::REQUEST_MODEL), Some("gpt-4o"));
    assert_eq!(span.value(fields::USER_ID), Some("alice"));
    assert_eq!(span.value(fields::ERROR_TYPE), None);
    assert_eq!(current.unwrap(), Some(span.id));
}

#[test]
fn a_sync_err_records_the_error_type() {
    let (result, capture) = captured(|| complete(request(true)));
    assert!(result.is_err());
    assert_eq!(capture.single().value(fields::ERROR_TYPE), Some("MyError"));
}

#[test]
fn an_async_call_runs_in_its_own_llm_span() {
    let (current, capture) = captured_async(|| complete_async("claude-haiku-4-5", "bob", false));
    let span = capture.single();
    assert_eq!(span.name, "complete_async");
    assert_eq!(span.declared, fields::DECLARED);
    assert_eq!(span.value(fields::PROVIDER_NAME), Some("anthropic"));
    assert_eq!(span.value(fields::REQUEST_MODEL), Some("claude-haiku-4-5"));
    assert_eq!(span.value(fields::USER_ID), Some("bob"));
    assert_eq!(span.value(fields::SESSION_ID), Some("s-1"));
    assert_eq!(span.value(fields::REQUEST_STREAM), Some("true"));
    assert_eq!(current.unwrap(), Some(span.id));
}

#[test]
fn an_async_err_records_the_error_type() {
    let (result, capture) = captured_async(|| complete_async("claude-haiku-4-5", "bob", true));
    assert!(result.is_err());
    assert_eq!(capture.single().value(fields::ERROR_TYPE), Some("MyError"));
}

#[test]
fn a_missing_user_leaves_the_field_empty() {
    let req = Request {
        user: None,
        ..request(false)
    };
    let (_, capture) = captured(|| complete(req));
    let span = capture.single();
    assert_eq!(span.value(fields::USER_ID), None);
    assert!(span.declared.contains(&fields::USER_ID));
}

struct Client {
    model: &'static str,
    calls: u32,
}

impl Client {
    #[llm_call(provider = "openai", model = self.model, operation = "embeddings", name = "embed")]
    fn embed(&mut self, text: &str) -> Result<usize, MyError> {
        self.calls += 1;
        if text.is_empty() {
            return Err(MyError);
        }
        Ok(text.len())
    }

    #[llm_call(provider = "openai", model = self.model, skip_error)]
    fn quiet(&self) -> Result<(), MyError> {
        Err(MyError)
    }
}

#[test]
fn methods_and_options_work() {
    let mut client = Client {
        model: "text-embedding-3-small",
        calls: 0,
    };
    let (_, capture) = captured(|| client.embed(""));
    let span = capture.single();
    assert_eq!(span.name, "embed");
    assert_eq!(span.value(fields::OPERATION_NAME), Some("embeddings"));
    assert_eq!(
        span.value(fields::REQUEST_MODEL),
        Some("text-embedding-3-small")
    );
    assert_eq!(span.value(fields::ERROR_TYPE), Some("MyError"));
    assert_eq!(client.calls, 1);
}

#[test]
fn skip_error_records_no_error() {
    let client = Client {
        model: "gpt-4o",
        calls: 0,
    };
    let (result, capture) = captured(|| client.quiet());
    assert!(result.is_err());
    assert_eq!(capture.single().value(fields::ERROR_TYPE), None);
}

#[llm_call(provider = "openai", model = model.as_ref())]
fn generic<M: AsRef<str>, T: fmt::Debug>(model: M, value: T) -> String {
    format!("{}: {value:?}", model.as_ref())
}

#[llm_call(provider = "openai", model = "gpt-4o")]
fn returns_generic<T>(value: T) -> T {
    value
}

#[test]
fn values_that_are_not_results_record_nothing() {
    let (out, capture) = captured(|| generic(String::from("gpt-4o"), 7));
    assert_eq!(out, "gpt-4o: 7");
    assert_eq!(capture.single().value(fields::ERROR_TYPE), None);

    // Autoref specialization sees a generic `T`, not the `Result` it turns out to be.
    let (_, capture) = captured(|| returns_generic::<Result<(), MyError>>(Err(MyError)));
    assert_eq!(capture.single().value(fields::ERROR_TYPE), None);
}

#[llm_call(provider = "openai", model = model)]
fn spawn_call(model: &'static str) -> impl Future<Output = Result<Option<Id>, MyError>> + Send {
    let entered = Span::current().id();
    async move {
        assert_eq!(Span::current().id(), entered, "the future runs in the span");
        Err(MyError)
    }
}

#[test]
fn impl_future_is_instrumented_and_its_error_recorded() {
    let (result, capture) = captured_async(|| spawn_call("gpt-4o-mini"));
    assert!(result.is_err());
    let span = capture.single();
    assert_eq!(span.value(fields::REQUEST_MODEL), Some("gpt-4o-mini"));
    assert_eq!(span.value(fields::ERROR_TYPE), Some("MyError"));
}

#[test]
fn llm_span_declares_every_field() {
    let ((), capture) = captured(|| {
        let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o");
        span.record(fields::USAGE_INPUT_TOKENS, 12_u64);
    });
    let span = capture.single();
    assert_eq!(span.name, "gen_ai.call");
    assert_eq!(span.declared, fields::DECLARED);
    assert_eq!(span.value(fields::USAGE_INPUT_TOKENS), Some("12"));
}

/// The whole path: `#[llm_call]` → `AuditLayer` → an entry.
mod audited {
    use std::time::Duration;

    use tracing_llm_audit::{AuditEntry, AuditLayer, HashKey, MemorySink, Overflow, Status};
    use tracing_subscriber::layer::SubscriberExt;

    use super::{complete, request};

    fn audited(f: impl FnOnce()) -> Vec<AuditEntry> {
        let sink = MemorySink::new();
        let (layer, guard) = AuditLayer::builder()
            .with_sink(sink.clone())
            .with_hash_key(HashKey::new("test-key", [7u8; 32]).unwrap())
            .with_overflow(Overflow::Block)
            .build()
            .unwrap();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
        guard.shutdown(Duration::from_secs(10)).unwrap();
        sink.entries()
    }

    #[test]
    fn an_err_becomes_an_error_entry() {
        let entries = audited(|| {
            let _ = complete(request(true));
        });
        assert_eq!(entries.len(), 1, "{entries:?}");
        let entry = &entries[0];
        assert_eq!(entry.status, Status::Error);
        assert_eq!(entry.error_type.as_deref(), Some("MyError"));
        assert_eq!(
            entry.error_message.as_deref(),
            Some("the model is overloaded")
        );
        assert_eq!(entry.provider.as_deref(), Some("openai"));
        assert_eq!(entry.model.as_deref(), Some("gpt-4o"));
        assert_eq!(entry.user_id.as_deref(), Some("alice"));
        assert_eq!(entry.action, "chat");
    }

    #[test]
    fn an_ok_becomes_a_success_entry() {
        let entries = audited(|| {
            let _ = complete(request(false));
        });
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].status, Status::Success);
        assert_eq!(entries[0].error_type, None);
    }
}
