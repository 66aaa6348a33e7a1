//! The [`llm_span!`](crate::llm_span) macro.

/// Creates the span of an LLM call, declaring every field in [`fields::DECLARED`].
///
/// The span declares `gen_ai.operation.name`, so the [`AuditLayer`] treats it as an LLM call,
/// and every other field it reads, so that the code can fill them in later with
/// [`LlmSpanExt`] or [`Span::record`]. A field that is not given stays empty.
///
/// ```text
/// llm_span!(
///     [name: "gen_ai.call",]            // the span's name, a string literal (default shown)
///     [target: "my_app::llm",]          // default: the calling module's path
///     [level: tracing::Level::DEBUG,]   // default: INFO
///     provider = <str-like>,            // gen_ai.provider.name (required)
///     model = <str-like>,               // gen_ai.request.model (required)
///     [operation = <str-like>,]         // gen_ai.operation.name (default "chat")
///     [user = <str-like>,]              // user.id
///     [session = <str-like>,]           // session.id
///     [stream = <bool>,]                // gen_ai.request.stream
/// )
/// ```
///
/// The options `name:`, `target:` and `level:` come first, in that order; the fields follow in
/// any order. A *str-like* value is a `&str`, `String`, `&String`, `Cow<str>`, or an `Option` of
/// one, where `None` leaves the field empty. Values are borrowed, never moved; like any `tracing`
/// field value, they are not evaluated when the span is disabled.
///
/// The span's name is static: `tracing` fixes names at compile time, so the name cannot follow
/// the operation or the model the way the GenAI conventions' `{operation} {model}` names do. The
/// default `gen_ai.call` says what the span is; `#[llm_call]` names it after the function.
///
/// No `tracing` import is needed: the expansion names everything through this crate.
///
/// # Examples
///
/// ```
/// use tracing_llm_audit::{llm_span, LlmSpanExt, Usage};
///
/// fn complete(model: &str, user: Option<String>, prompt: &str) -> String {
///     let span = llm_span!(provider = "openai", model = model, user = user);
///     let _entered = span.enter();
///     let reply = format!("echo: {prompt}"); // the provider call goes here
///     span.record_usage(&Usage {
///         input_tokens: Some(12),
///         output_tokens: Some(3),
///         ..Usage::default()
///     });
///     span.record_response_model("gpt-4o-2024-08-06");
///     reply
/// }
///
/// assert_eq!(complete("gpt-4o", None, "hi"), "echo: hi");
/// ```
///
/// With the options and every field:
///
/// ```
/// use std::borrow::Cow;
///
/// let model: Cow<'_, str> = Cow::Borrowed("text-embedding-3-small");
/// let span = tracing_llm_audit::llm_span!(
///     name: "embed_documents",
///     target: "my_app::search",
///     level: tracing::Level::DEBUG,
///     provider = "openai",
///     model = model,
///     operation = "embeddings",
///     user = String::from("user-42"),
///     session = Some("session-7"),
///     stream = false,
/// );
/// # drop(span);
/// ```
///
/// [`fields::DECLARED`]: crate::fields::DECLARED
/// [`AuditLayer`]: crate::AuditLayer
/// [`LlmSpanExt`]: crate::LlmSpanExt
/// [`Span::record`]: tracing::Span::record
#[macro_export]
macro_rules! llm_span {
    ($($args:tt)*) => {
        $crate::__llm_span!(
            @options [
                "gen_ai.call",
                ::core::module_path!(),
                $crate::__private::tracing::Level::INFO
            ]
            $($args)*
        )
    };
}

/// The implementation of [`llm_span!`]: a muncher that fills the options
/// `[name, target, level]`, then one slot per field, `()` while the field is not given.
#[doc(hidden)]
#[macro_export]
macro_rules! __llm_span {
    // Options, in tracing's order.
    (@options [$n:expr, $t:expr, $l:expr] name: $name:expr, $($rest:tt)*) => {
        $crate::__llm_span!(@options [$name, $t, $l] $($rest)*)
    };
    (@options [$n:expr, $t:expr, $l:expr] target: $target:expr, $($rest:tt)*) => {
        $crate::__llm_span!(@options [$n, $target, $l] $($rest)*)
    };
    (@options [$n:expr, $t:expr, $l:expr] level: $level:expr, $($rest:tt)*) => {
        $crate::__llm_span!(@options [$n, $t, $level] $($rest)*)
    };
    (@options $options:tt $($rest:tt)*) => {
        $crate::__llm_span!(@fields $options [() () () () () ()] $($rest)*)
    };

    // Fields; the slots are [operation provider model user session stream].
    (@fields $o:tt [() $p:tt $m:tt $u:tt $s:tt $st:tt] operation = $v:expr $(, $($rest:tt)*)?) => {
        $crate::__llm_span!(@fields $o [($v) $p $m $u $s $st] $($($rest)*)?)
    };
    (@fields $o:tt [$op:tt () $m:tt $u:tt $s:tt $st:tt] provider = $v:expr $(, $($rest:tt)*)?) => {
        $crate::__llm_span!(@fields $o [$op ($v) $m $u $s $st] $($($rest)*)?)
    };
    (@fields $o:tt [$op:tt $p:tt () $u:tt $s:tt $st:tt] model = $v:expr $(, $($rest:tt)*)?) => {
        $crate::__llm_span!(@fields $o [$op $p ($v) $u $s $st] $($($rest)*)?)
    };
    (@fields $o:tt [$op:tt $p:tt $m:tt () $s:tt $st:tt] user = $v:expr $(, $($rest:tt)*)?) => {
        $crate::__llm_span!(@fields $o [$op $p $m ($v) $s $st] $($($rest)*)?)
    };
    (@fields $o:tt [$op:tt $p:tt $m:tt $u:tt () $st:tt] session = $v:expr $(, $($rest:tt)*)?) => {
        $crate::__llm_span!(@fields $o [$op $p $m $u ($v) $st] $($($rest)*)?)
    };
    (@fields $o:tt [$op:tt $p:tt $m:tt $u:tt $s:tt ()] stream = $v:expr $(, $($rest:tt)*)?) => {
        $crate::__llm_span!(@fields $o [$op $p $m $u $s ($v)] $($($rest)*)?)
    };
    (@fields $o:tt $slots:tt $key:ident = $($rest:tt)*) => {
        $crate::__llm_span!(@rejected $key)
    };
    (@fields $o:tt [$op:tt () $m:tt $u:tt $s:tt $st:tt]) => {
        ::core::compile_error!(
            "llm_span!: missing `provider = ...`, for example `provider = \"openai\"`"
        )
    };
    (@fields $o:tt [$op:tt $p:tt () $u:tt $s:tt $st:tt]) => {
        ::core::compile_error!("llm_span!: missing `model = ...`, for example `model = \"gpt-4o\"`")
    };
    // The field names are the constants of `fields` (tracing's `{ CONST } = value` syntax), in
    // the order of `fields::DECLARED`, so the two cannot drift apart unnoticed.
    (@fields [$n:expr, $t:expr, $l:expr] [$op:tt $p:tt $m:tt $u:tt $s:tt $st:tt]) => {
        $crate::__private::tracing::span!(
            target: $t,
            $l,
            $n,
            { $crate::fields::OPERATION_NAME } = $crate::__llm_span!(@operation $op),
            { $crate::fields::PROVIDER_NAME } = $crate::__llm_span!(@str $p),
            { $crate::fields::REQUEST_MODEL } = $crate::__llm_span!(@str $m),
            { $crate::fields::RESPONSE_MODEL } = $crate::__private::tracing::field::Empty,
            { $crate::fields::RESPONSE_ID } = $crate::__private::tracing::field::Empty,
            { $crate::fields::RESPONSE_FINISH_REASONS } = $crate::__private::tracing::field::Empty,
            { $crate::fields::REQUEST_STREAM } = $crate::__llm_span!(@bool $st),
            { $crate::fields::RESPONSE_TIME_TO_FIRST_CHUNK } =
                $crate::__private::tracing::field::Empty,
            { $crate::fields::USAGE_INPUT_TOKENS } = $crate::__private::tracing::field::Empty,
            { $crate::fields::USAGE_OUTPUT_TOKENS } = $crate::__private::tracing::field::Empty,
            { $crate::fields::USAGE_CACHE_READ_INPUT_TOKENS } =
                $crate::__private::tracing::field::Empty,
            { $crate::fields::USAGE_CACHE_CREATION_INPUT_TOKENS } =
                $crate::__private::tracing::field::Empty,
            { $crate::fields::USAGE_REASONING_OUTPUT_TOKENS } =
                $crate::__private::tracing::field::Empty,
            { $crate::fields::USAGE_CACHE_WRITE_1H_INPUT_TOKENS } =
                $crate::__private::tracing::field::Empty,
            { $crate::fields::RESPONSE_SERVICE_TIER } = $crate::__private::tracing::field::Empty,
            { $crate::fields::USAGE_COST } = $crate::__private::tracing::field::Empty,
            { $crate::fields::USER_ID } = $crate::__llm_span!(@str $u),
            { $crate::fields::SESSION_ID } = $crate::__llm_span!(@str $s),
            { $crate::fields::ERROR_TYPE } = $crate::__private::tracing::field::Empty,
            { $crate::fields::STATUS } = $crate::__private::tracing::field::Empty,
            { $crate::fields::SANITIZATION_COUNT } = $crate::__private::tracing::field::Empty,
        )
    };
    (@fields $o:tt $slots:tt $($unexpected:tt)+) => {
        ::core::compile_error!(::core::concat!(
            "llm_span!: unexpected `", ::core::stringify!($($unexpected)+), "`; expected ",
            "`key = value` arguments (provider, model, operation, user, session, stream), ",
            "after the options `name:`, `target:`, `level:`"
        ))
    };

    // A `key =` that no field rule took: a known key given twice, or an unknown one.
    (@rejected operation) => { $crate::__llm_span!(@duplicate "operation") };
    (@rejected provider) => { $crate::__llm_span!(@duplicate "provider") };
    (@rejected model) => { $crate::__llm_span!(@duplicate "model") };
    (@rejected user) => { $crate::__llm_span!(@duplicate "user") };
    (@rejected session) => { $crate::__llm_span!(@duplicate "session") };
    (@rejected stream) => { $crate::__llm_span!(@duplicate "stream") };
    (@rejected $key:ident) => {
        ::core::compile_error!(::core::concat!(
            "llm_span!: unknown argument `", ::core::stringify!($key),
            "`; expected one of: provider, model, operation, user, session, stream"
        ))
    };
    (@duplicate $key:literal) => {
        ::core::compile_error!(::core::concat!("llm_span!: duplicate argument `", $key, "`"))
    };

    // Slot values.
    (@operation ()) => { "chat" };
    (@operation ($v:expr)) => { $crate::__llm_span!(@str ($v)) };
    (@str ()) => { $crate::__private::tracing::field::Empty };
    (@str ($v:expr)) => { $crate::__private::AsFieldStr::as_field_str(&$v) };
    (@bool ()) => { $crate::__private::tracing::field::Empty };
    (@bool ($v:expr)) => {{
        let stream: ::core::primitive::bool = $v;
        stream
    }};
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id};
    use tracing::{Level, Metadata, Subscriber};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    use crate::fields;

    /// What a captured span declared and was created with.
    #[derive(Debug, Default, Clone)]
    struct Created {
        name: &'static str,
        target: String,
        level: Option<Level>,
        declared: Vec<&'static str>,
        values: Vec<(&'static str, String)>,
    }

    impl Visit for Created {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.values.push((field.name(), format!("{value:?}")));
        }

        fn record_str(&mut self, field: &Field, value: &str) {
            self.values.push((field.name(), value.to_owned()));
        }
    }

    impl Created {
        fn value(&self, name: &str) -> Option<&str> {
            self.values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Created>>>);

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
            let metadata: &Metadata<'_> = attrs.metadata();
            let mut created = Created {
                name: metadata.name(),
                target: metadata.target().to_owned(),
                level: Some(*metadata.level()),
                declared: metadata.fields().iter().map(|f| f.name()).collect(),
                values: Vec::new(),
            };
            attrs.record(&mut created);
            self.0.lock().unwrap().push(created);
        }
    }

    fn capture(f: impl FnOnce()) -> Vec<Created> {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        tracing::subscriber::with_default(subscriber, f);
        let spans = capture.0.lock().unwrap().clone();
        spans
    }

    #[test]
    fn declares_exactly_the_declared_fields() {
        let spans = capture(|| {
            let _span = crate::llm_span!(provider = "openai", model = "gpt-4o");
        });
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].declared, fields::DECLARED);
        assert_eq!(spans[0].name, "gen_ai.call");
        assert_eq!(spans[0].level, Some(Level::INFO));
        assert_eq!(spans[0].target, module_path!());
    }

    #[test]
    fn records_given_values_and_leaves_the_rest_empty() {
        let user: Option<String> = None;
        let session = String::from("s-1");
        let spans = capture(|| {
            let _span = crate::llm_span!(
                provider = "anthropic",
                model = String::from("claude-haiku-4-5"),
                user = user,
                session = &session,
                stream = true,
            );
        });
        let span = &spans[0];
        assert_eq!(span.value(fields::OPERATION_NAME), Some("chat"));
        assert_eq!(span.value(fields::PROVIDER_NAME), Some("anthropic"));
        assert_eq!(span.value(fields::REQUEST_MODEL), Some("claude-haiku-4-5"));
        assert_eq!(span.value(fields::SESSION_ID), Some("s-1"));
        assert_eq!(span.value(fields::REQUEST_STREAM), Some("true"));
        assert_eq!(span.value(fields::USER_ID), None);
        assert_eq!(span.values.len(), 5, "{:?}", span.values);
    }

    #[test]
    fn options_set_name_target_and_level() {
        let spans = capture(|| {
            let _span = crate::llm_span!(
                name: "embed",
                target: "my_app::search",
                level: Level::WARN,
                operation = "embeddings",
                model = "text-embedding-3-small",
                provider = "openai"
            );
        });
        let span = &spans[0];
        assert_eq!(
            (span.name, span.target.as_str()),
            ("embed", "my_app::search")
        );
        assert_eq!(span.level, Some(Level::WARN));
        assert_eq!(span.value(fields::OPERATION_NAME), Some("embeddings"));
        assert_eq!(span.declared, fields::DECLARED);
    }
}
