//! `async fn`s stay `Send` and work with `Result` aliases and boxed errors.

use tracing_llm_audit::llm_call;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type CallResult<T> = Result<T, BoxError>;

#[llm_call(provider = "openai", model = model, user = user_id, stream = true)]
async fn ask(user_id: &str, model: &str, prompt: String) -> CallResult<String> {
    tokio::task::yield_now().await;
    if prompt.is_empty() {
        return Err("empty prompt".into());
    }
    let n: u32 = prompt.len().try_into()?;
    Ok(format!("{n}"))
}

#[llm_call(
    provider = "anthropic",
    model = "claude-haiku-4-5",
    name = "summarize",
    skip_error
)]
async fn summarize(text: &str) -> Result<String, std::io::Error> {
    Ok(text.to_owned())
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let handle = tokio::spawn(assert_send(ask("u1", "gpt-4o", "hi".to_owned())));
        let _ = handle.await.unwrap();
        let _ = summarize("text").await;
    });
}
