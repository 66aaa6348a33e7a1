//! `llm-audit migrate` against the real PostgreSQL: applies the schema once, then finds it up to
//! date; a bad connection is one clear line that never shows the password.

use std::process::Command;

#[path = "support/pg.rs"]
mod pg;

fn llm_audit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(args)
        .env_remove("LLM_AUDIT_DATABASE_URL")
        .output()
        .unwrap()
}

#[test]
fn migrate_applies_once_then_is_up_to_date() {
    let Some(schema) = pg::Schema::create("llm_audit_cli") else {
        return;
    };
    let url = schema.url();
    let first = llm_audit(&["migrate", "--postgres", &url]);
    let second = llm_audit(&["migrate", "--postgres", &url]);
    drop(schema);
    assert!(first.status.success(), "{first:?}");
    // Every migration the library has, whatever their number.
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        format!(
            "applied {} migration(s)\n",
            tracing_llm_audit::sink::postgres::MIGRATIONS.len()
        )
    );
    assert!(second.status.success(), "{second:?}");
    assert_eq!(
        String::from_utf8_lossy(&second.stdout),
        "the schema is up to date\n"
    );
}

#[test]
fn a_bad_connection_is_one_line_without_the_password() {
    let out = llm_audit(&[
        "migrate",
        "--postgres",
        "postgres://u:hunter2-SECRET@127.0.0.1:1/db?connect_timeout=1",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("llm-audit migrate: PostgreSQL at 127.0.0.1:1/db as u"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn roles_prints_the_sql() {
    let out = llm_audit(&["roles"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("CREATE ROLE llm_audit_writer"));
}
