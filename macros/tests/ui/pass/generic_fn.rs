//! Generic functions, `impl Trait` arguments, borrowed return values, and functions that return
//! `impl Future` or `impl Iterator`.

use std::fmt::Display;
use std::future::Future;

use tracing_llm_audit::llm_call;

#[llm_call(provider = provider, model = model.as_ref())]
fn generic<M, E>(provider: &str, model: M, result: Result<u8, E>) -> Result<u8, E>
where
    M: AsRef<str>,
    E: Display,
{
    result
}

#[llm_call(provider = "openai", model = "gpt-4o")]
fn first_word(text: &str) -> &str {
    text.split(' ').next().unwrap_or_default()
}

#[llm_call(provider = "openai", model = "gpt-4o")]
fn first_mut(bytes: &mut [u8]) -> Option<&mut u8> {
    bytes.first_mut()
}

#[llm_call(provider = "openai", model = "gpt-4o")]
fn words<'a>(text: &'a str) -> impl Iterator<Item = &'a str> {
    text.split(' ')
}

#[llm_call(provider = "openai", model = model)]
fn later(
    model: &'static str,
    prompt: impl Display,
) -> impl Future<Output = Result<String, std::fmt::Error>> + Send {
    let prompt = prompt.to_string();
    async move { Ok(prompt) }
}

fn main() {
    let _ = generic::<_, std::fmt::Error>("openai", String::from("gpt-4o"), Ok(1));
    let _ = first_word("hello world");
    let _ = first_mut(&mut [1, 2]);
    let _ = words("a b").count();
    drop(later("gpt-4o", 42));
}
