//! Procedural macros for [`tracing-llm-audit`](https://docs.rs/tracing-llm-audit): the
//! [`#[llm_call]`](macro@llm_call) attribute.
//!
//! Use them through `tracing_llm_audit`, which re-exports them with its `macros` feature (on by
//! default); the generated code names that crate.

mod attr;
mod expand;

use proc_macro::TokenStream;
use syn::Item;

use crate::attr::LlmCallArgs;

/// Instruments a function as one LLM call.
///
/// Each call runs inside a span created with `tracing_llm_audit::llm_span!`, so the span
/// declares every field the audit layer reads and is audited as an LLM call. Inside the
/// function, the span is `tracing::Span::current()`: record usage, the response model and
/// content on it with `tracing_llm_audit::LlmSpanExt`. When the function returns `Err(e)`, the
/// span gets `error.type` (the short type name of the error, such as `ModelError`) and the
/// error's message, through `LlmSpanExt::record_error`.
///
/// # Arguments
///
/// | argument | span field | |
/// |---|---|---|
/// | `provider = <str-like>` | `gen_ai.provider.name` | required |
/// | `model = <str-like>` | `gen_ai.request.model` | required |
/// | `operation = <str-like>` | `gen_ai.operation.name` | default `"chat"` |
/// | `user = <str-like>` | `user.id` | |
/// | `session = <str-like>` | `session.id` | |
/// | `stream = <bool>` | `gen_ai.request.stream` | |
/// | `name = "..."` | the span's name | default: the function's name |
/// | `skip_error` | | do not record `Err` results |
///
/// A *str-like* value is a `&str`, `String`, `&String`, `Cow<str>`, or an `Option` of one
/// (`None` leaves the field empty). Values are expressions that may use the function's
/// parameters, such as `model = req.model`: they are evaluated (and borrowed, never moved)
/// before the body runs.
///
/// # What it works on
///
/// Functions and methods, sync or `async`, generic or not, including functions returning
/// `impl Future` (the span is entered while the body builds the future, and the future is
/// instrumented with it). An `async fn` creates its span when first polled, like
/// `#[tracing::instrument]`.
///
/// The error is found on the returned *value*, so a `Result` alias such as `anyhow::Result<T>`
/// works as well as `Result<T, E>`, for any error type that implements `Display`. A function
/// that returns a generic `T` records nothing even when `T` turns out to be a `Result`.
///
/// # Examples
///
/// ```
/// use std::fmt;
///
/// use tracing::Span;
/// use tracing_llm_audit::{llm_call, LlmSpanExt, Usage};
///
/// #[derive(Debug)]
/// struct ModelError;
///
/// impl fmt::Display for ModelError {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         f.write_str("529 overloaded")
///     }
/// }
///
/// struct Request {
///     model: String,
///     prompt: String,
/// }
///
/// #[llm_call(provider = "anthropic", model = req.model, user = user_id)]
/// async fn ask(user_id: &str, req: Request) -> Result<String, ModelError> {
///     let span = Span::current();
///     span.record_usage(&Usage {
///         input_tokens: Some(120),
///         output_tokens: Some(40),
///         ..Usage::default()
///     });
///     Ok(format!("answer to {}", req.prompt))
/// }
///
/// struct Client {
///     model: &'static str,
/// }
///
/// impl Client {
///     #[llm_call(provider = "openai", model = self.model, operation = "embeddings", skip_error)]
///     fn embed(&self, text: &str) -> Result<Vec<f32>, ModelError> {
///         if text.is_empty() {
///             return Err(ModelError);
///         }
///         Ok(vec![0.5; 4])
///     }
/// }
///
/// let client = Client { model: "text-embedding-3-small" };
/// assert_eq!(client.embed("hello").unwrap().len(), 4);
/// # drop(ask("u1", Request { model: "claude-haiku-4-5".into(), prompt: "hi".into() }));
/// ```
///
/// # Errors
///
/// Compile errors name the offending argument: an unknown or repeated argument, a missing
/// `provider` or `model`, a `name` that is not a string literal, or an item that is not a
/// function with a body.
#[proc_macro_attribute]
pub fn llm_call(args: TokenStream, item: TokenStream) -> TokenStream {
    let original = proc_macro2::TokenStream::from(item.clone());
    match instrument(args, item) {
        Ok(tokens) => tokens.into(),
        // Keeping the item as written means the only errors are about the attribute.
        Err(error) => {
            let mut tokens = error.to_compile_error();
            tokens.extend(original);
            tokens.into()
        }
    }
}

fn instrument(args: TokenStream, item: TokenStream) -> syn::Result<proc_macro2::TokenStream> {
    let Ok(Item::Fn(function)) = syn::parse::<Item>(item) else {
        return Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "`#[llm_call]` can only be applied to a function or method with a body",
        ));
    };
    let args = syn::parse::<LlmCallArgs>(args)?;
    Ok(expand::expand(&args, function))
}
