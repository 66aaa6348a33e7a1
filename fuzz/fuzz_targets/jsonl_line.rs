//! One line of a JSONL audit file, as `llm-audit verify` and `query` read it.
//!
//! - `chain::line_digest` (the verifier's hand scanner, with its per-thread cache of key
//!   orders) agrees with the definition on every input: it is `Ok` exactly when the line is an
//!   object whose keys are spelled plainly and none twice (`chain::check_line`), which
//!   `serde_json` reads with a `chain` member, if any, that is a link, and then gives
//!   `chain::entry_digest` of that object and the same link. Asked twice, it answers the same
//!   (the second time from its cache).
//! - A line that reads as an `AuditEntry` is written back by `serde_json` to a line that reads
//!   as the same entry, and whose fast digest is the definition's.
//!
//! The CLI's own row decoder (`cli/src/row.rs`) lives in the binary crate and is a
//! `serde_json::from_slice` of borrowed fields; the library's readers are fuzzed here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tracing_llm_audit::chain::{self, ChainLink};
use tracing_llm_audit::AuditEntry;

type Read = Result<([u8; 32], Option<ChainLink>), ()>;

/// The definition: the line's grammar (an object, keys spelled plainly, none twice), then
/// parse the whole line and digest the object.
fn definition(line: &[u8]) -> Read {
    chain::check_line(line).map_err(drop)?;
    let value: Value = serde_json::from_slice(line).map_err(drop)?;
    let digest = chain::entry_digest(&value).map_err(drop)?;
    let link = value
        .get("chain")
        .map(|c| serde_json::from_value::<ChainLink>(c.clone()))
        .transpose()
        .map_err(drop)?;
    Ok((digest, link))
}

fn fast(line: &[u8]) -> Read {
    chain::line_digest(line).map_err(drop)
}

fuzz_target!(|line: &[u8]| {
    let expected = definition(line);
    let first = fast(line);
    assert_eq!(
        first,
        expected,
        "line_digest disagrees with the definition on {:?}",
        String::from_utf8_lossy(line)
    );
    assert_eq!(
        fast(line),
        first,
        "line_digest's cached key order changed its answer"
    );

    if let Ok(entry) = serde_json::from_slice::<AuditEntry>(line) {
        let written = serde_json::to_vec(&entry).expect("an entry serializes");
        let again: AuditEntry =
            serde_json::from_slice(&written).expect("a written entry reads back");
        assert_eq!(again, entry);
        let value = serde_json::to_value(&entry).expect("an entry serializes");
        let digest = chain::entry_digest(&value).expect("an entry is an object");
        assert_eq!(fast(&written).map(|(d, _)| d), Ok(digest));
    }
});
