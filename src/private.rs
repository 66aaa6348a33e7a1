//! Support for the code that [`llm_span!`](crate::llm_span) and `#[llm_call]` generate. Not a
//! public API: anything here may change in any release.
//!
//! Generated code names everything through `::tracing_llm_audit::__private`, so the crates that
//! use the macros need no `tracing` dependency of their own.

use std::borrow::Cow;
use std::fmt;

use crate::LlmSpanExt;

pub use tracing;

/// A value that can fill a string field of an LLM span: provider, model, operation, user or
/// session.
///
/// `None` leaves the field empty.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as a string field of an LLM span",
    label = "expected a string here",
    note = "use a `&str`, `String`, `Cow<str>`, or an `Option` of one (`None` leaves the field empty)"
)]
pub trait AsFieldStr {
    /// The text to record, `None` for nothing.
    fn as_field_str(&self) -> Option<&str>;
}

impl AsFieldStr for str {
    fn as_field_str(&self) -> Option<&str> {
        Some(self)
    }
}

impl AsFieldStr for String {
    fn as_field_str(&self) -> Option<&str> {
        Some(self)
    }
}

impl AsFieldStr for Cow<'_, str> {
    fn as_field_str(&self) -> Option<&str> {
        Some(self)
    }
}

impl<T: AsFieldStr + ?Sized> AsFieldStr for &T {
    fn as_field_str(&self) -> Option<&str> {
        (**self).as_field_str()
    }
}

impl<T: AsFieldStr> AsFieldStr for Option<T> {
    fn as_field_str(&self) -> Option<&str> {
        self.as_ref().and_then(AsFieldStr::as_field_str)
    }
}

/// Runs the body of a function instrumented with `#[llm_call]`, as a closure so that a `return`
/// in it returns from the body only.
///
/// Calling the closure through an `FnOnce` bound, rather than in place, makes it an `FnOnce`
/// closure, which may return borrows of the parameters it captured (`&mut x[0]` for a parameter
/// `x: &mut Vec<u8>`); a closure called in place would be inferred `FnMut` and could not.
pub fn run_body<R>(body: impl FnOnce() -> R) -> R {
    body()
}

/// What an instrumented function returned, borrowed for [`RecordError`] or [`RecordNothing`]:
/// autoref specialization on the value picks the first for a `Result` whose error is `Display`
/// and the second for everything else.
///
/// ```
/// use tracing_llm_audit::__private::{Outcome, RecordError as _, RecordNothing as _};
///
/// let span = tracing_llm_audit::__private::tracing::Span::none();
/// let failed: Result<(), std::fmt::Error> = Err(std::fmt::Error);
/// (&Outcome(&failed)).record_outcome(&span); // `error.type = "Error"` on an enabled span
/// (&Outcome(&42)).record_outcome(&span); // nothing, whatever the span
/// ```
#[derive(Debug)]
pub struct Outcome<'a, T>(pub &'a T);

/// Records an `Err` on the span: chosen for a `Result` whose error is `Display`.
pub trait RecordError {
    /// Calls [`LlmSpanExt::record_error`] with the error's short type name when the outcome is
    /// an `Err`.
    fn record_outcome(&self, span: &tracing::Span);
}

impl<T, E: fmt::Display> RecordError for Outcome<'_, Result<T, E>> {
    fn record_outcome(&self, span: &tracing::Span) {
        if let Err(error) = self.0 {
            span.record_error(short_type_name::<E>(), error);
        }
    }
}

/// Records nothing: the fallback for values that are not a `Result` with a `Display` error.
pub trait RecordNothing {
    /// Does nothing.
    fn record_outcome(&self, _span: &tracing::Span) {}
}

impl<T> RecordNothing for &Outcome<'_, T> {}

/// The name of `T` without its module path or generic arguments: `MyError` for
/// `my_crate::errors::MyError`, `Box` for `Box<dyn Error>`.
#[must_use]
pub fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let path = full.split('<').next().unwrap_or(full);
    path.rsplit("::").next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_type_names_drop_paths_and_generics() {
        assert_eq!(short_type_name::<std::io::Error>(), "Error");
        assert_eq!(
            short_type_name::<std::collections::HashMap<String, u8>>(),
            "HashMap"
        );
        assert_eq!(short_type_name::<Box<dyn std::error::Error>>(), "Box");
        assert_eq!(short_type_name::<String>(), "String");
        assert_eq!(short_type_name::<str>(), "str");
    }

    #[test]
    fn string_like_values_become_field_text() {
        let owned = String::from("gpt-4o");
        assert_eq!("gpt-4o".as_field_str(), Some("gpt-4o"));
        assert_eq!(owned.as_field_str(), Some("gpt-4o"));
        let borrowed: &String = &owned;
        assert_eq!(AsFieldStr::as_field_str(&borrowed), Some("gpt-4o"));
        assert_eq!(Cow::Borrowed("gpt-4o").as_field_str(), Some("gpt-4o"));
        assert_eq!(Some("u1").as_field_str(), Some("u1"));
        assert_eq!(Some(owned).as_field_str(), Some("gpt-4o"));
        assert_eq!(None::<String>.as_field_str(), None);
    }
}
