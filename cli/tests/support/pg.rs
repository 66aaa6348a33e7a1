//! The PostgreSQL of the CLI tests: the local server at 127.0.0.1:5432 (trust auth), one schema
//! per test.

#![allow(dead_code)]

use std::process::Command;

pub(crate) const BASE: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// Runs `sql` with psql; whether it succeeded.
pub(crate) fn psql(sql: &str) -> bool {
    Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-qAtc",
            sql,
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A schema of the test's own, dropped when the test ends.
pub(crate) struct Schema {
    pub(crate) name: String,
}

impl Schema {
    /// A new schema named `<prefix>_<uuid>`; `None` (skipped, with the reason printed) when
    /// PostgreSQL is not there, which fails the test under CI=true.
    pub(crate) fn create(prefix: &str) -> Option<Self> {
        let name = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
        if !psql(&format!("CREATE SCHEMA {name}")) {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL is not reachable at 127.0.0.1:5432; under CI=true it must be"
            );
            eprintln!("skipped: PostgreSQL (or psql) is not available at 127.0.0.1:5432");
            return None;
        }
        Some(Self { name })
    }

    /// A connection string whose search path is the schema.
    pub(crate) fn url(&self) -> String {
        format!("{BASE} options='-c search_path={}'", self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        psql(&format!("DROP SCHEMA {} CASCADE", self.name));
    }
}
