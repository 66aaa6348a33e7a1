//! The JSON Lines sink through its public API: owner-only daily files, one line per entry
//! whatever it contains, nothing lost across reopening, every fsync policy, clear setup errors.

#![cfg(all(unix, feature = "jsonl"))]

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use time::macros::{date, datetime};
use time::OffsetDateTime;
use tracing_llm_audit::{AuditEntry, AuditSink, FsyncPolicy, JsonlError, JsonlSink};

/// Every character Python's `str.splitlines()` splits at; `str::lines` splits at two of them.
const PYTHON_LINE_BREAKS: [char; 10] = [
    '\n', '\r', '\u{0b}', '\u{0c}', '\u{1c}', '\u{1d}', '\u{1e}', '\u{85}', '\u{2028}', '\u{2029}',
];

const NOON: OffsetDateTime = datetime!(2025-01-31 12:00 UTC);

fn entry_at(at: OffsetDateTime, action: &str) -> AuditEntry {
    let mut entry = AuditEntry::new(action);
    entry.timestamp = at;
    entry
}

/// An entry with `text` in every string field, map key and list element.
fn entry_with_strings(text: &str) -> AuditEntry {
    let s = || Some(text.to_owned());
    let mut entry = entry_at(NOON, text);
    entry.user_id = s();
    entry.session_id = s();
    entry.provider = s();
    entry.model = s();
    entry.response_model = s();
    entry.response_id = s();
    entry.finish_reasons = Some(vec![text.to_owned()]);
    entry.system_prompt_hash = s();
    entry.input_hash = s();
    entry.output_hash = s();
    entry.hash_key_id = s();
    entry.cost_note = s();
    entry.error_type = s();
    entry.error_message = s();
    entry.sanitization = BTreeMap::from([(text.to_owned(), 2)]);
    entry.trace_id = s();
    entry.span_id = s();
    entry.parent_span_id = s();
    let mut metadata = serde_json::Map::new();
    metadata.insert(text.to_owned(), serde_json::json!([text, { text: text }]));
    entry.metadata = Some(metadata);
    entry
}

/// The file's lines, each checked to be one line for every reader, parsed back into entries.
fn read_entries(path: &Path) -> Vec<AuditEntry> {
    let content = fs::read_to_string(path).unwrap();
    assert!(content.ends_with('\n'), "the last line is complete");
    content
        .split_inclusive('\n')
        .map(|line| {
            let body = &line[..line.len() - 1];
            assert!(!body.contains(PYTHON_LINE_BREAKS), "{body:?}");
            assert!(
                !body
                    .chars()
                    .any(|c| c < ' ' || ('\u{80}'..='\u{9f}').contains(&c)),
                "raw control character in {body:?}"
            );
            serde_json::from_str(body).unwrap()
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn files_are_owner_only_and_a_created_directory_too() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("audit_logs");
    let mut sink = JsonlSink::new(&dir).unwrap();
    sink.write_batch(&[entry_at(NOON, "chat")]).unwrap();
    sink.shutdown().unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("audit_2025-01-31.jsonl")), 0o600);
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["audit_2025-01-31.jsonl"],
        "no probe file is left behind"
    );
}

#[test]
fn an_existing_wider_file_keeps_its_mode_and_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit_2025-01-31.jsonl");
    let earlier = entry_at(NOON, "earlier");
    let mut line = serde_json::to_string(&earlier).unwrap();
    line.push('\n');
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&path)
        .unwrap()
        .write_all(line.as_bytes())
        .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

    let mut sink = JsonlSink::new(dir.path()).unwrap();
    let later = entry_at(NOON, "later");
    sink.write_batch(std::slice::from_ref(&later)).unwrap();
    sink.shutdown().unwrap();
    assert_eq!(mode(&path), 0o644, "not our file to chmod");
    assert_eq!(read_entries(&path), [earlier, later]);
}

#[test]
fn known_hostile_strings_stay_one_line_per_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = JsonlSink::new(dir.path()).unwrap();
    let entries: Vec<_> = [
        "new\nline",
        "cr\r\n",
        "nul\0",
        "\u{1b}[31mred\u{1b}[0m",
        "\u{2028}\u{2029}",
        "nel\u{85}csi\u{9b}2J",
        "👩‍💻 emoji",
        &"long\u{2028}".repeat(50_000),
    ]
    .iter()
    .map(|text| entry_with_strings(text))
    .collect();
    sink.write_batch(&entries).unwrap();
    sink.shutdown().unwrap();
    let path = dir.path().join("audit_2025-01-31.jsonl");
    assert_eq!(read_entries(&path), entries);
}

/// Arbitrary strings, with the characters that break lines or terminals made frequent.
fn hostile_string() -> impl Strategy<Value = String> {
    let hostile = prop_oneof![
        Just('\n'),
        Just('\r'),
        Just('\0'),
        Just('\u{1b}'),
        Just('\u{85}'),
        Just('\u{9b}'),
        Just('\u{2028}'),
        Just('\u{2029}'),
        Just('"'),
        Just('\\'),
    ];
    prop::collection::vec(prop_oneof![any::<char>(), hostile], 0..40)
        .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_strings_stay_one_line_per_entry_and_round_trip(
        texts in prop::collection::vec(hostile_string(), 1..5)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = JsonlSink::builder(dir.path())
            .fsync(FsyncPolicy::Never)
            .build()
            .unwrap();
        let entries: Vec<_> = texts.iter().map(|text| entry_with_strings(text)).collect();
        sink.write_batch(&entries).unwrap();
        sink.shutdown().unwrap();
        let back = read_entries(&dir.path().join("audit_2025-01-31.jsonl"));
        prop_assert_eq!(back, entries);
    }
}

#[test]
fn entries_of_two_utc_days_land_in_two_files_named_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = JsonlSink::new(dir.path()).unwrap();
    let before_midnight = entry_at(datetime!(2025-01-31 23:59:59.999 UTC), "before");
    // 00:30 in Paris is still the 31st in UTC: the UTC date names the file.
    let paris = entry_at(datetime!(2025-02-01 00:30 +01:00), "paris");
    let after_midnight = entry_at(datetime!(2025-02-01 00:00 UTC), "after");
    let entries = [before_midnight, paris, after_midnight];
    sink.write_batch(&entries).unwrap();
    sink.shutdown().unwrap();
    assert_eq!(
        read_entries(&sink.file_for(date!(2025 - 01 - 31))),
        entries[..2]
    );
    assert_eq!(
        read_entries(&dir.path().join("audit_2025-02-01.jsonl")),
        entries[2..]
    );
}

#[test]
fn a_custom_prefix_names_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = JsonlSink::builder(dir.path())
        .file_prefix("billing-")
        .build()
        .unwrap();
    sink.write_batch(&[entry_at(NOON, "chat")]).unwrap();
    sink.shutdown().unwrap();
    assert_eq!(
        read_entries(&dir.path().join("billing-2025-01-31.jsonl")).len(),
        1
    );
}

#[test]
fn reopening_appends_after_the_earlier_lines() {
    let dir = tempfile::tempdir().unwrap();
    let first = [entry_at(NOON, "one"), entry_at(NOON, "two")];
    let second = [entry_at(NOON, "three")];
    for batch in [&first[..], &second[..]] {
        let mut sink = JsonlSink::new(dir.path()).unwrap();
        sink.write_batch(batch).unwrap();
        sink.shutdown().unwrap();
    }
    let all: Vec<_> = first.iter().chain(&second).cloned().collect();
    assert_eq!(
        read_entries(&dir.path().join("audit_2025-01-31.jsonl")),
        all
    );
}

#[test]
fn every_fsync_policy_has_written_everything_by_shutdown() {
    let policies = [
        FsyncPolicy::Never,
        FsyncPolicy::EveryN(0),
        FsyncPolicy::EveryN(1),
        FsyncPolicy::EveryN(1000),
        FsyncPolicy::Interval(Duration::ZERO),
        FsyncPolicy::Interval(Duration::from_secs(3600)),
        FsyncPolicy::EveryBatch,
    ];
    for policy in policies {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = JsonlSink::builder(dir.path())
            .fsync(policy)
            .build()
            .unwrap();
        let entries: Vec<_> = (0..7)
            .map(|i| entry_at(NOON, &format!("call {i}")))
            .collect();
        for batch in entries.chunks(3) {
            sink.write_batch(batch).unwrap();
        }
        sink.flush().unwrap();
        sink.shutdown().unwrap();
        assert_eq!(
            read_entries(&dir.path().join("audit_2025-01-31.jsonl")),
            entries,
            "{policy:?}"
        );
    }
}

#[test]
fn a_line_torn_by_an_earlier_process_never_glues_onto_an_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit_2025-01-31.jsonl");
    let fragment = r#"{"schema_version":1,"request_id":"0190"#;
    fs::write(&path, fragment).unwrap();

    let mut sink = JsonlSink::new(dir.path()).unwrap();
    let entries = [entry_at(NOON, "after the crash"), entry_at(NOON, "and on")];
    sink.write_batch(&entries).unwrap();
    sink.shutdown().unwrap();

    let content = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = content.lines().collect();
    assert_eq!(lines.len(), 3, "{content}");
    assert_eq!(lines[0], fragment, "the fragment is a line of its own");
    let back: Vec<AuditEntry> = lines[1..]
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(back, entries);
}

#[test]
fn a_path_that_cannot_be_a_directory_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("plain_file");
    fs::write(&file, b"").unwrap();

    let error = JsonlSink::new(&file).unwrap_err();
    assert!(
        matches!(error, JsonlError::NotADirectory { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&file.display().to_string()),
        "{error}"
    );

    let below_a_file = file.join("audit_logs");
    let error = JsonlSink::new(&below_a_file).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&below_a_file.display().to_string()),
        "{message}"
    );
    let os_error = std::error::Error::source(&error).expect("the OS error is the source");
    assert!(
        !message.contains(&os_error.to_string()),
        "source printed twice: {message}"
    );
}

#[test]
fn an_unwritable_directory_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("read_only");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o500)).unwrap();
    if fs::write(dir.join("probe"), b"").is_ok() {
        // Running as root (or with CAP_DAC_OVERRIDE): permissions cannot stop us, so there is
        // nothing to refuse. The path-based errors are tested above.
        return;
    }
    let error = JsonlSink::new(&dir).unwrap_err();
    assert!(matches!(error, JsonlError::NotWritable { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&dir.display().to_string()),
        "{error}"
    );
    assert!(std::error::Error::source(&error).is_some());
}

#[test]
fn a_prefix_with_a_path_separator_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = JsonlSink::builder(dir.path())
        .file_prefix("../outside_")
        .build()
        .unwrap_err();
    assert!(
        matches!(error, JsonlError::InvalidPrefix { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("../outside_"), "{error}");
}

#[test]
fn name_and_debug_say_what_the_sink_is() {
    let dir = tempfile::tempdir().unwrap();
    let sink = JsonlSink::builder(dir.path())
        .fsync(FsyncPolicy::EveryN(10))
        .build()
        .unwrap();
    assert_eq!(sink.name(), "jsonl");
    let debug = format!("{sink:?}");
    assert!(debug.contains(&format!("{:?}", dir.path())), "{debug}");
    assert!(debug.contains("EveryN(10)"), "{debug}");
}

#[test]
fn the_sink_works_as_a_trait_object() {
    let dir = tempfile::tempdir().unwrap();
    let mut sinks: Vec<Box<dyn AuditSink>> = vec![Box::new(JsonlSink::new(dir.path()).unwrap())];
    for sink in &mut sinks {
        sink.write_batch(&[entry_at(NOON, "chat")]).unwrap();
        sink.shutdown().unwrap();
    }
    assert_eq!(
        read_entries(&dir.path().join("audit_2025-01-31.jsonl")).len(),
        1
    );
}
