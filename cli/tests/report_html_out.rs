//! `llm-audit report html` writes the page to stdout (`report html > f`), or with `--out FILE`
//! to that file, replaced whole and private to the user (mode 0600, as the logs are).

use std::process::Command;

#[path = "support/pg.rs"]
mod pg;
#[path = "support/cli.rs"]
mod support;
use support::{call, ok, stderr, write_jsonl, AS_OF_ARG};

fn html(cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(["report", "html", "--as-of", AS_OF_ARG])
        .args(args)
        .current_dir(cwd)
        .env_remove("LLM_AUDIT_DATABASE_URL")
        .env("LLM_AUDIT_PROGRESS", "never")
        .output()
        .unwrap()
}

#[test]
fn the_page_goes_to_stdout_unless_out_names_a_file() {
    let logs = tempfile::tempdir().unwrap();
    write_jsonl(logs.path(), &[call("alice", 1, None)]);
    let cwd = tempfile::tempdir().unwrap();
    let d = logs.path().to_str().unwrap();

    let out = html(cwd.path(), &["--dir", d]);
    let page = ok(&out);
    assert!(
        page.starts_with("<!DOCTYPE html>"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(page.trim_end().ends_with("</html>"));
    let left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().collect();
    assert!(left.is_empty(), "no file is written: {left:?}");
    assert!(!stderr(&out).contains("wrote"), "{}", stderr(&out));
}

#[cfg(unix)]
#[test]
fn out_writes_a_private_file_replacing_what_was_there() {
    use std::os::unix::fs::PermissionsExt;
    let logs = tempfile::tempdir().unwrap();
    write_jsonl(logs.path(), &[call("alice", 1, None)]);
    let cwd = tempfile::tempdir().unwrap();
    let d = logs.path().to_str().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    let path = cwd.path().join("page.html");
    let out = html(cwd.path(), &["--dir", d, "--out", "page.html"]);
    assert!(ok(&out).is_empty(), "nothing on stdout");
    assert!(stderr(&out).contains("wrote page.html"), "{}", stderr(&out));
    let page = std::fs::read_to_string(&path).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(mode(&path), 0o600);

    // A file that was there, readable by all, is replaced by a private one.
    let old = cwd.path().join("old.html");
    std::fs::write(&old, "old").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    for flag in ["--out", "-o", "--output"] {
        ok(&html(
            cwd.path(),
            &["--dir", d, flag, old.to_str().unwrap()],
        ));
        let written = std::fs::read_to_string(&old).unwrap();
        assert!(written.starts_with("<!DOCTYPE html>"), "{flag}");
        assert_eq!(mode(&old), 0o600, "{flag}");
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(cwd.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["old.html", "page.html"], "no temporary file left");
}
