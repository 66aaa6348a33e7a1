use tracing_llm_audit::llm_call;

#[llm_call(provider = "openai", model = "gpt-4o")]
struct Client;

trait Completion {
    #[llm_call(provider = "openai", model = "gpt-4o")]
    fn complete(&self) -> String;
}

fn main() {
    let _ = Client;
}
