use tracing_llm_audit::{llm_call, llm_span};

#[llm_call(provider = "openai", model = tokens, stream = "yes")]
fn wrong_types(tokens: u64) {}

fn main() {
    wrong_types(1);
    let _span = llm_span!(provider = "openai", model = 4);
}
