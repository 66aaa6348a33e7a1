use tracing_llm_audit::llm_call;

#[llm_call(provider = "openai", model = "gpt-4o", model = "gpt-4o-mini")]
fn twice() {}

#[llm_call(provider = "openai", model = "gpt-4o", skip_error, skip_error)]
fn flag_twice() {}

fn main() {
    twice();
    flag_twice();
}
