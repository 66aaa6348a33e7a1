//! Code generation for `#[llm_call]`.
//!
//! The span is created first, from the arguments, before the body can move the parameters they
//! refer to. Then:
//! - an `async fn` runs its body as a future instrumented with the span;
//! - a function returning `impl Future` runs its body inside the span and instruments the
//!   future it returns;
//! - any other function runs its body inside the span.
//!
//! The body runs in a closure or an `async` block of its own, so that a `return` or a `?` in it
//! still lets the outcome be recorded: an `Err` goes to `LlmSpanExt::record_error` unless
//! `skip_error` is given.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    AttrStyle, Block, Expr, Ident, ItemFn, LitStr, ReturnType, Signature, Type, TypeParamBound,
};

use crate::attr::LlmCallArgs;

/// The instrumented function.
pub(crate) fn expand(args: &LlmCallArgs, function: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let (inner_attrs, outer_attrs): (Vec<_>, Vec<_>) = attrs
        .into_iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Inner(_)));
    let names = Names::new();
    let span = llm_span(args, &sig);
    let body = if sig.asyncness.is_some() {
        async_body(args, &names, &sig, &block)
    } else if returns_impl_future(&sig) {
        future_body(args, &names, &block)
    } else {
        sync_body(args, &names, &sig, &block)
    };
    let Names { span: span_var, .. } = &names;
    quote! {
        #(#outer_attrs)*
        #vis #sig {
            #(#inner_attrs)*
            let #span_var = #span;
            #body
        }
    }
}

/// The generated locals, hygienic so that the body cannot see them.
struct Names {
    span: Ident,
    outcome_span: Ident,
    guard: Ident,
    future: Ident,
    result: Ident,
}

impl Names {
    fn new() -> Self {
        let name = |name| Ident::new(name, Span::mixed_site());
        Self {
            span: name("__llm_span"),
            outcome_span: name("__llm_outcome_span"),
            guard: name("__llm_guard"),
            future: name("__llm_future"),
            result: name("__llm_result"),
        }
    }
}

/// `llm_span!(...)` with the arguments; the span is named after the function unless `name` says
/// otherwise.
fn llm_span(args: &LlmCallArgs, sig: &Signature) -> TokenStream {
    let name = args.name.clone().unwrap_or_else(|| {
        let ident = sig.ident.unraw();
        LitStr::new(&ident.to_string(), ident.span())
    });
    let fields = args.fields().map(|(key, value)| {
        let key = Ident::new(key, Span::call_site());
        let value = checked_value(key == "stream", value);
        quote!(#key = #value,)
    });
    quote! {
        ::tracing_llm_audit::llm_span!(name: #name, #(#fields)*)
    }
}

/// `value` converted the way `llm_span!` will convert it, but with the span of the argument, so
/// that a value of the wrong type is reported at the argument rather than at the attribute.
/// `llm_span!` accepts the converted value as it is.
fn checked_value(is_flag: bool, value: &Expr) -> TokenStream {
    if is_flag {
        quote_spanned!(value.span()=> { let stream: ::core::primitive::bool = #value; stream })
    } else {
        quote_spanned! {value.span()=>
            ::tracing_llm_audit::__private::AsFieldStr::as_field_str(&(#value))
        }
    }
}

fn sync_body(args: &LlmCallArgs, names: &Names, sig: &Signature, block: &Block) -> TokenStream {
    let Names {
        span,
        guard,
        result,
        ..
    } = names;
    if args.skip_error {
        return quote! {
            let #guard = #span.enter();
            #block
        };
    }
    let block = with_return_type(sig, block);
    let record = record_outcome(result, span);
    quote! {
        let #guard = #span.enter();
        #[allow(clippy::let_unit_value)]
        let #result = ::tracing_llm_audit::__private::run_body(move || #block);
        #record
        #result
    }
}

fn async_body(args: &LlmCallArgs, names: &Names, sig: &Signature, block: &Block) -> TokenStream {
    let Names {
        span,
        outcome_span,
        future,
        result,
        ..
    } = names;
    let block = with_return_type(sig, block);
    let instrumented = if args.skip_error {
        quote!(async move #block)
    } else {
        let record = record_outcome(result, outcome_span);
        quote! {
            async move {
                #[allow(clippy::let_unit_value)]
                let #result = async move #block.await;
                #record
                #result
            }
        }
    };
    let clone_span = (!args.skip_error).then(|| quote!(let #outcome_span = #span.clone();));
    quote! {
        #clone_span
        let #future = #instrumented;
        ::tracing_llm_audit::__private::tracing::Instrument::instrument(#future, #span).await
    }
}

fn future_body(args: &LlmCallArgs, names: &Names, block: &Block) -> TokenStream {
    let Names {
        span,
        outcome_span,
        guard,
        future,
        result,
    } = names;
    let make_future = quote! {
        let #future = {
            let #guard = #span.enter();
            ::tracing_llm_audit::__private::run_body(move || #block)
        };
    };
    let instrumented = if args.skip_error {
        quote!(#future)
    } else {
        let record = record_outcome(result, outcome_span);
        quote! {
            {
                let #outcome_span = #span.clone();
                async move {
                    let #result = #future.await;
                    #record
                    #result
                }
            }
        }
    };
    quote! {
        #make_future
        ::tracing_llm_audit::__private::tracing::Instrument::instrument(#instrumented, #span)
    }
}

/// Records the outcome held in `result` on `span` (see `__private::Outcome`).
fn record_outcome(result: &Ident, span: &Ident) -> TokenStream {
    quote! {
        {
            use ::tracing_llm_audit::__private::{RecordError as _, RecordNothing as _};
            (&::tracing_llm_audit::__private::Outcome(&#result)).record_outcome(&#span);
        }
    }
}

/// `block` preceded by a `return` that is never taken but tells type inference what the closure
/// or `async` block returns: the function's return type. Without it, a `?` in the body could not
/// pick its error conversion. Skipped for `impl Trait` return types, which cannot be named there.
fn with_return_type(sig: &Signature, block: &Block) -> TokenStream {
    let return_type = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) if mentions_impl(ty.to_token_stream()) => {
            return block.to_token_stream();
        }
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    quote! {
        {
            #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::unreachable)]
            if false {
                let __llm_return_type: #return_type =
                    ::core::unreachable!("only here for type inference");
                return __llm_return_type;
            }
            #block
        }
    }
}

fn mentions_impl(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "impl",
        TokenTree::Group(group) => mentions_impl(group.stream()),
        _ => false,
    })
}

/// Whether the function returns `impl Future<...>` (with any other bounds).
fn returns_impl_future(sig: &Signature) -> bool {
    let ReturnType::Type(_, ty) = &sig.output else {
        return false;
    };
    let Type::ImplTrait(impl_trait) = &**ty else {
        return false;
    };
    impl_trait.bounds.iter().any(|bound| match bound {
        TypeParamBound::Trait(bound) => bound
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Future"),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(tokens: &str) -> Signature {
        syn::parse_str(tokens).unwrap()
    }

    #[test]
    fn recognizes_impl_future_returns() {
        assert!(returns_impl_future(&sig(
            "fn f() -> impl Future<Output = u8>"
        )));
        assert!(returns_impl_future(&sig(
            "fn f(&self) -> impl std::future::Future<Output = ()> + Send + '_"
        )));
        assert!(!returns_impl_future(&sig(
            "fn f() -> impl Iterator<Item = u8>"
        )));
        assert!(!returns_impl_future(&sig(
            "fn f() -> Box<dyn Future<Output = u8>>"
        )));
        assert!(!returns_impl_future(&sig("async fn f() -> u8")));
    }

    #[test]
    fn finds_impl_trait_anywhere_in_a_type() {
        let ty = |tokens: &str| syn::parse_str::<Type>(tokens).unwrap().to_token_stream();
        assert!(mentions_impl(ty("Result<impl Iterator<Item = u8>, E>")));
        assert!(!mentions_impl(ty("Result<Vec<u8>, Box<dyn Error>>")));
    }
}
