//! `llm_span!` with every kind of value, without importing `tracing`.

use std::borrow::Cow;

use tracing_llm_audit::{llm_span, LlmSpanExt, Usage};

fn main() {
    let model = String::from("gpt-4o");
    let user: Option<String> = Some("u1".to_owned());
    let session: Option<&str> = None;
    let provider: Cow<'static, str> = Cow::Borrowed("openai");

    let span = llm_span!(
        provider = provider,
        model = &model,
        user = user,
        session = session
    );
    span.record_usage(&Usage::default());

    let span = llm_span!(
        name: "embed",
        target: "app::search",
        level: tracing::Level::DEBUG,
        model = model.as_str(),
        provider = "openai",
        operation = String::from("embeddings"),
        stream = false,
    );
    let _entered = span.enter();
}
