use tracing_llm_audit::llm_call;

#[llm_call(provider = "openai")]
fn no_model() {}

#[llm_call]
fn no_arguments() {}

fn main() {
    no_model();
    no_arguments();
}
