use tracing_llm_audit::llm_call;

const NAME: &str = "chat";

#[llm_call(provider = "openai", model = "gpt-4o", name = NAME)]
fn named() {}

#[llm_call(provider = "openai", model = "gpt-4o", skip_error = true)]
fn flag_with_value() {}

fn main() {
    named();
    flag_with_value();
}
