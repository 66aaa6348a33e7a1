//! Nothing to use: this crate holds the tests in `tests/` that drive rig-core and genai
//! themselves against the project's local wire-format server, from inside a request span, and
//! check the audit entries (issue 22). It is a member of the workspace, not a dev-dependency of
//! the library, so that the library's own builds do not compile those crates.

/// The guide `docs/genai-crates.md`: its code blocks compile against the pinned rig-core and
/// genai (`cargo test -p llm-audit-ecosystem --doc`).
#[cfg(doctest)]
#[doc = include_str!("../../docs/genai-crates.md")]
pub struct GenaiCratesGuide;
