//! `llm-audit migrate` and `llm-audit roles`: the PostgreSQL schema, and the roles of the
//! append-only table.

use crate::output::say;

/// `llm-audit migrate`: applies the migrations as `postgres` (a role that may create tables).
pub(crate) fn migrate(postgres: &str) -> Result<(), String> {
    match tracing_llm_audit::sink::postgres::migrate(postgres).map_err(|e| e.to_string())? {
        0 => say("the schema is up to date"),
        n => say(&format!("applied {n} migration(s)")),
    }
}

/// `llm-audit roles`: the SQL that creates the owner, writer and reader roles.
pub(crate) fn roles() -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out
        .write_all(tracing_llm_audit::sink::postgres::ROLES_SQL.as_bytes())
        .and_then(|()| out.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("cannot write: {e}")),
        _ => Ok(()),
    }
}
