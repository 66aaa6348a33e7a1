//! Methods taking `&self`, `&mut self` and `self`, sync and async, with `Self` in the signature
//! and inner attributes in the body.

use tracing_llm_audit::llm_call;

struct Client {
    model: String,
    calls: u32,
}

impl Client {
    #[llm_call(provider = "openai", model = self.model)]
    fn complete(&self, prompt: &str) -> Result<String, std::fmt::Error> {
        Ok(prompt.to_owned())
    }

    #[llm_call(provider = "openai", model = self.model, operation = "text_completion")]
    fn count(&mut self) -> u32 {
        #![allow(clippy::needless_return)]
        self.calls += 1;
        return self.calls;
    }

    #[llm_call(provider = "openai", model = self.model)]
    async fn complete_async(&self, prompt: &str) -> Result<String, std::fmt::Error> {
        Ok(format!("{}: {prompt}", self.model))
    }

    #[llm_call(provider = "openai", model = "gpt-4o")]
    fn renamed(self, model: &str) -> Self {
        Self {
            model: model.to_owned(),
            ..self
        }
    }
}

trait Completion {
    fn complete(&self) -> Option<String>;
}

impl Completion for Client {
    #[llm_call(provider = "openai", model = self.model)]
    fn complete(&self) -> Option<String> {
        Some(self.model.clone())
    }
}

fn main() {
    let mut client = Client {
        model: "gpt-4o".to_owned(),
        calls: 0,
    };
    let _ = client.complete("hi");
    let _ = client.count();
    let _ = Completion::complete(&client);
    drop(client.complete_async("hi"));
    let _ = client.renamed("gpt-4o-mini");
}
