//! Compile-time behaviour of `#[llm_call]` and `llm_span!`: what compiles, and the errors for
//! what does not. Regenerate the `.stderr` snapshots with `TRYBUILD=overwrite` and read them.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
