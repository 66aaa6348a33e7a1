//! Parsing of the `#[llm_call(...)]` arguments.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

/// Every argument, in the order the error messages list them.
const ARGUMENTS: &str = "provider, model, operation, user, session, stream, name, skip_error";

/// The arguments of one `#[llm_call(...)]`.
pub(crate) struct LlmCallArgs {
    pub(crate) provider: Expr,
    pub(crate) model: Expr,
    pub(crate) operation: Option<Expr>,
    pub(crate) user: Option<Expr>,
    pub(crate) session: Option<Expr>,
    pub(crate) stream: Option<Expr>,
    pub(crate) name: Option<LitStr>,
    pub(crate) skip_error: bool,
}

impl LlmCallArgs {
    /// The `llm_span!` fields that were given, with their keys.
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&'static str, &Expr)> {
        [
            ("provider", Some(&self.provider)),
            ("model", Some(&self.model)),
            ("operation", self.operation.as_ref()),
            ("user", self.user.as_ref()),
            ("session", self.session.as_ref()),
            ("stream", self.stream.as_ref()),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?)))
    }
}

impl Parse for LlmCallArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut given = GivenArgs::default();
        while !input.is_empty() {
            if !input.peek(Ident::peek_any) {
                return Err(input.error(format!(
                    "expected an argument such as `provider = \"openai\"`; the arguments are: \
                     {ARGUMENTS}"
                )));
            }
            let key = input.call(Ident::parse_any)?;
            given.parse_argument(&key, input)?;
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        given.finish()
    }
}

/// The arguments seen so far; the keys keep their spans for duplicate errors.
#[derive(Default)]
struct GivenArgs {
    provider: Option<Expr>,
    model: Option<Expr>,
    operation: Option<Expr>,
    user: Option<Expr>,
    session: Option<Expr>,
    stream: Option<Expr>,
    name: Option<LitStr>,
    skip_error: Option<()>,
}

impl GivenArgs {
    fn parse_argument(&mut self, key: &Ident, input: ParseStream<'_>) -> syn::Result<()> {
        match key.to_string().as_str() {
            "provider" => set_once(&mut self.provider, key, value(key, input)?),
            "model" => set_once(&mut self.model, key, value(key, input)?),
            "operation" => set_once(&mut self.operation, key, value(key, input)?),
            "user" => set_once(&mut self.user, key, value(key, input)?),
            "session" => set_once(&mut self.session, key, value(key, input)?),
            "stream" => set_once(&mut self.stream, key, value(key, input)?),
            "name" => set_once(
                &mut self.name,
                key,
                string_literal(key, value(key, input)?)?,
            ),
            "skip_error" => {
                if input.peek(Token![=]) {
                    return Err(input.error("`skip_error` is a flag and takes no value"));
                }
                set_once(&mut self.skip_error, key, ())
            }
            _ => Err(syn::Error::new(
                key.span(),
                format!("unknown argument `{key}`; expected one of: {ARGUMENTS}"),
            )),
        }
    }

    fn finish(self) -> syn::Result<LlmCallArgs> {
        match (self.provider, self.model) {
            (Some(provider), Some(model)) => Ok(LlmCallArgs {
                provider,
                model,
                operation: self.operation,
                user: self.user,
                session: self.session,
                stream: self.stream,
                name: self.name,
                skip_error: self.skip_error.is_some(),
            }),
            (None, Some(_)) => Err(missing("provider")),
            (Some(_), None) => Err(missing("model")),
            (None, None) => Err(missing("provider` and `model")),
        }
    }
}

/// Parses `= <expr>` after `key`.
fn value(key: &Ident, input: ParseStream<'_>) -> syn::Result<Expr> {
    if !input.peek(Token![=]) {
        return Err(syn::Error::new(
            key.span(),
            format!("expected `{key} = <value>`"),
        ));
    }
    input.parse::<Token![=]>()?;
    input.parse()
}

fn set_once<T>(slot: &mut Option<T>, key: &Ident, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            key.span(),
            format!("duplicate argument `{key}`"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn string_literal(key: &Ident, value: Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(name),
            ..
        }) => Ok(name),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` must be a string literal, for example `{key} = \"summarize\"`"),
        )),
    }
}

fn missing(what: &str) -> syn::Error {
    syn::Error::new(
        Span::call_site(),
        format!(
            "missing `{what}` in `#[llm_call]`; for example \
             `#[llm_call(provider = \"openai\", model = \"gpt-4o\")]`"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(tokens: &str) -> syn::Result<LlmCallArgs> {
        syn::parse_str(tokens)
    }

    fn error(tokens: &str) -> String {
        match parse(tokens) {
            Ok(_) => panic!("`{tokens}` parsed"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn parses_every_argument() {
        let args = parse(
            r#"provider = "openai", model = req.model, operation = "embeddings", user = user_id,
               session = Some(s), stream = true, name = "embed", skip_error,"#,
        )
        .unwrap();
        let keys: Vec<_> = args.fields().map(|(key, _)| key).collect();
        assert_eq!(
            keys,
            [
                "provider",
                "model",
                "operation",
                "user",
                "session",
                "stream"
            ]
        );
        assert_eq!(args.name.unwrap().value(), "embed");
        assert!(args.skip_error);
    }

    #[test]
    fn reports_bad_arguments_readably() {
        assert_eq!(
            error(r#"provider = "a", modle = "b""#),
            "unknown argument `modle`; expected one of: provider, model, operation, user, \
             session, stream, name, skip_error"
        );
        assert_eq!(
            error(r#"provider = "a", model = "b", model = "c""#),
            "duplicate argument `model`"
        );
        assert!(error(r#"model = "b""#).starts_with("missing `provider` in `#[llm_call]`"));
        assert!(error("").starts_with("missing `provider` and `model`"));
        assert_eq!(
            error(r#"provider = "a", model = "b", name = some_name"#),
            "`name` must be a string literal, for example `name = \"summarize\"`"
        );
        assert_eq!(
            error(r#"provider = "a", model = "b", skip_error = true"#),
            "`skip_error` is a flag and takes no value"
        );
        assert_eq!(error(r#"provider "a""#), "expected `provider = <value>`");
    }
}
