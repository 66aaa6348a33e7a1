//! Sync functions: `?` conversions, string literal and `String` models, an optional user.

use tracing_llm_audit::llm_call;

#[derive(Debug)]
struct ModelError;

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("model error")
    }
}

impl From<std::num::ParseIntError> for ModelError {
    fn from(_: std::num::ParseIntError) -> Self {
        ModelError
    }
}

#[llm_call(provider = "openai", model = "gpt-4o")]
fn literal_model(tokens: &str) -> Result<u64, ModelError> {
    let tokens: u64 = tokens.parse()?;
    Ok(tokens)
}

#[llm_call(provider = String::from("anthropic"), model = model, user = user, session = &session)]
fn owned_values(model: String, user: Option<String>, session: String) -> usize {
    model.len() + user.map_or(0, |u| u.len()) + session.len()
}

#[llm_call(provider = "openai", model = "gpt-4o", user = None::<&str>, stream = false)]
fn no_return_value() {
    println!("called");
}

fn main() {
    let _ = literal_model("12");
    let _ = owned_values("claude-haiku-4-5".to_owned(), None, "s".to_owned());
    no_return_value();
}
