use tracing_llm_audit::llm_span;

fn main() {
    let _missing = llm_span!(model = "gpt-4o");
    let _unknown = llm_span!(provider = "openai", model = "gpt-4o", temperature = 0.2);
    let _twice = llm_span!(
        provider = "openai",
        model = "gpt-4o",
        provider = "anthropic"
    );
}
