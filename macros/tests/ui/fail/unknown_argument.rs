use tracing_llm_audit::llm_call;

#[llm_call(provider = "openai", modle = "gpt-4o")]
fn typo() {}

fn main() {
    typo();
}
