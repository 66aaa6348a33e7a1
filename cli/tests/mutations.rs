//! Random mutations of an honest chained log, as someone who can write to the directory but
//! holds no key would make them: flipped bytes, keys spelled with an escape or twice, entries as
//! arrays, members reordered, removed or nulled, lines deleted, duplicated, swapped, moved or
//! cut, checkpoints edited or removed, and ordinary writer restarts in between.
//!
//! The property: whenever `llm-audit verify` exits 0, `query` returns exactly the entries the
//! writers wrote (every member, no more, no fewer), `report cost` adds up exactly their cost,
//! and `show` finds each as written. And `verify` never crashes, and exits 0, 2 or 3.
//!
//! The cases are seeded (`LLM_AUDIT_MUTATION_CASES`, 400 by default; a failure names its seed
//! and its mutations, and `LLM_AUDIT_MUTATION_SEED` replays one).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rust_decimal::Decimal;
use serde_json::Value;
use time::macros::datetime;
use tracing_llm_audit::chain::SigningKey;
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink, Status};

/// xorshift64*: seeded, so that a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn entry(i: u64, at: time::OffsetDateTime) -> AuditEntry {
    let mut e = AuditEntry::new("chat");
    e.timestamp = at + time::Duration::seconds(i as i64);
    e.user_id = Some(format!("user-{}", i % 3));
    e.model = Some(["gpt-4o", "claude-haiku-4-5"][(i % 2) as usize].to_owned());
    e.input_tokens = Some(100 + i);
    e.cost_usd = Some(Decimal::new(1_000 + i as i64, 6));
    e.metadata = Some(serde_json::Map::from_iter([(
        "k".to_owned(),
        Value::from(i),
    )]));
    if i.is_multiple_of(4) {
        e.status = Status::Error;
        e.error_message = Some("slow \"down\"".to_owned());
    }
    e
}

/// The log's directory, the public key, the signing key, and the entries the writers wrote
/// (as JSON, without their `chain` member).
struct Honest {
    root: tempfile::TempDir,
    key: SigningKey,
    written: Vec<Value>,
}

fn without_chain(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("chain");
    }
    v
}

/// Two writers side by side over midnight, then a restart: three streams, two day files.
fn honest() -> Honest {
    let root = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    fs::write(
        root.path().join("signing.pub"),
        key.verifying_key().to_public_text(),
    )
    .unwrap();
    let dir = root.path().join("logs");
    let sink = |every| {
        JsonlSink::builder(&dir)
            .chain(key.clone())
            .checkpoint_every(every)
            .build()
            .unwrap()
    };
    let mut written = Vec::new();
    let start = datetime!(2026-11-23 23:59:50 UTC);
    {
        let (mut a, mut b) = (sink(3), sink(4));
        for batch in 0..4u64 {
            let entries: Vec<AuditEntry> = (0..4).map(|i| entry(batch * 4 + i, start)).collect();
            a.write_batch(&entries).unwrap();
            b.write_batch(&entries[..2]).unwrap();
            written.extend(entries.iter().map(|e| serde_json::to_value(e).unwrap()));
            written.extend(
                entries[..2]
                    .iter()
                    .map(|e| serde_json::to_value(e).unwrap()),
            );
        }
        a.shutdown().unwrap();
        b.shutdown().unwrap();
    }
    {
        let mut c = sink(5);
        let entries: Vec<AuditEntry> = (20..27).map(|i| entry(i, start)).collect();
        c.write_batch(&entries).unwrap();
        written.extend(entries.iter().map(|e| serde_json::to_value(e).unwrap()));
        c.shutdown().unwrap();
    }
    Honest { root, key, written }
}

fn cli(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .env("LLM_AUDIT_PROGRESS", "never")
        .output()
        .unwrap()
}

fn day_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with("audit_2") && n.ends_with(".jsonl")
        })
        .collect();
    files.sort();
    files
}

fn checkpoint_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with("audit_checkpoints_") && n.ends_with(".jsonl")
        })
        .collect();
    files.sort();
    files
}

/// The file's lines, each with its `\n` (the last may lack it).
fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Rewrites one line of a random file among `files` with `change`.
fn change_line(rng: &mut Rng, files: &[PathBuf], change: impl FnOnce(&mut Rng, &mut Vec<u8>)) {
    let Some(path) = files.get(rng.below(files.len())) else {
        return;
    };
    let mut lines = split(&fs::read(path).unwrap());
    if lines.is_empty() {
        return;
    }
    let at = rng.below(lines.len());
    change(rng, &mut lines[at]);
    fs::write(path, lines.concat()).unwrap();
}

/// Changes the JSON of a line, keeping the line as one line.
fn change_json(rng: &mut Rng, line: &mut Vec<u8>, change: impl FnOnce(&mut Rng, &mut Value)) {
    let Ok(mut v) = serde_json::from_slice::<Value>(line) else {
        return;
    };
    change(rng, &mut v);
    *line = serde_json::to_vec(&v).unwrap();
    line.push(b'\n');
}

fn random_key(rng: &mut Rng, v: &Value) -> Option<String> {
    let o = v.as_object()?;
    o.keys().nth(rng.below(o.len())).cloned()
}

/// Replaces the first `"key"` of the line with `spelling`.
fn respell(line: &mut Vec<u8>, key: &str, spelling: &str) {
    let text = String::from_utf8_lossy(line).into_owned();
    *line = text
        .replacen(&format!("\"{key}\""), spelling, 1)
        .into_bytes();
}

const MUTATIONS: &[&str] = &[
    "flip a byte",
    "escape a key",
    "a key twice",
    "entry as an array",
    "members reordered",
    "a member removed",
    "a member nulled",
    "a value changed",
    "a line deleted",
    "a line duplicated",
    "two lines swapped",
    "a line moved to another day",
    "a file cut",
    "a checkpoint edited",
    "a checkpoint removed",
    "a checkpoint file emptied",
    "a checkpoint file removed",
    "a stream rewritten and re-chained",
    "a forged line added",
    "a writer restarts",
    "a writer crashes",
];

/// Applies mutation `which`; the entries a restarted writer wrote are added to `written`.
fn mutate(rng: &mut Rng, which: usize, dir: &Path, key: &SigningKey, written: &mut Vec<Value>) {
    let days = day_files(dir);
    let cps = checkpoint_files(dir);
    match MUTATIONS[which] {
        "flip a byte" => change_line(rng, &days, |rng, line| {
            let at = rng.below(line.len().saturating_sub(1));
            line[at] ^= 1 << rng.below(7);
            if line[at] == b'\n' {
                line[at] = b' ';
            }
        }),
        "escape a key" => change_line(rng, &days, |rng, line| {
            let Some(k) = serde_json::from_slice(line)
                .ok()
                .and_then(|v| random_key(rng, &v))
            else {
                return;
            };
            let escaped: String = k
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 {
                        format!("\\u{:04x}", c as u32)
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            respell(line, &k, &format!("\"{escaped}\""));
        }),
        "a key twice" => change_line(rng, &days, |rng, line| {
            let Some(k) = serde_json::from_slice(line)
                .ok()
                .and_then(|v| random_key(rng, &v))
            else {
                return;
            };
            respell(line, &k, &format!("\"{k}\":\"999.99\",\"{k}\""));
        }),
        "entry as an array" => change_line(rng, &days, |rng, line| {
            change_json(rng, line, |_, v| {
                let values: Vec<Value> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(_, x)| x.clone())
                    .collect();
                *v = Value::Array(values);
            });
        }),
        "members reordered" => change_line(rng, &days, |rng, line| {
            // serde_json's map is sorted: a writer's order is not.
            change_json(rng, line, |_, _| {});
        }),
        "a member removed" => change_line(rng, &days, |rng, line| {
            change_json(rng, line, |rng, v| {
                if let Some(k) = random_key(rng, v) {
                    v.as_object_mut().unwrap().remove(&k);
                }
            });
        }),
        "a member nulled" => change_line(rng, &days, |rng, line| {
            change_json(rng, line, |rng, v| {
                if let Some(k) = random_key(rng, v) {
                    v[k.as_str()] = Value::Null;
                }
            });
        }),
        "a value changed" => change_line(rng, &days, |rng, line| {
            change_json(rng, line, |rng, v| {
                let k = ["cost_usd", "user_id", "model", "input_tokens", "status"][rng.below(5)];
                v[k] = match k {
                    "input_tokens" => Value::from(1),
                    "status" => Value::from("success"),
                    _ => Value::from("999.99"),
                };
            });
        }),
        "a line deleted" | "a line duplicated" => {
            let duplicate = MUTATIONS[which] == "a line duplicated";
            let Some(path) = days.get(rng.below(days.len())) else {
                return;
            };
            let mut lines = split(&fs::read(path).unwrap());
            if lines.is_empty() {
                return;
            }
            let at = rng.below(lines.len());
            if duplicate {
                let copy = lines[at].clone();
                lines.insert(rng.below(lines.len() + 1), copy);
            } else {
                lines.remove(at);
            }
            fs::write(path, lines.concat()).unwrap();
        }
        "two lines swapped" => {
            let Some(path) = days.get(rng.below(days.len())) else {
                return;
            };
            let mut lines = split(&fs::read(path).unwrap());
            if lines.len() < 2 {
                return;
            }
            let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
            lines.swap(a, b);
            fs::write(path, lines.concat()).unwrap();
        }
        "a line moved to another day" => {
            if days.len() < 2 {
                return;
            }
            let from = rng.below(days.len());
            let to = (from + 1) % days.len();
            let mut lines = split(&fs::read(&days[from]).unwrap());
            if lines.is_empty() {
                return;
            }
            let line = lines.remove(rng.below(lines.len()));
            fs::write(&days[from], lines.concat()).unwrap();
            let mut other = split(&fs::read(&days[to]).unwrap());
            other.insert(rng.below(other.len() + 1), line);
            fs::write(&days[to], other.concat()).unwrap();
        }
        "a file cut" => {
            let files: Vec<&PathBuf> = days.iter().chain(&cps).collect();
            let path = files[rng.below(files.len())];
            let bytes = fs::read(path).unwrap();
            fs::write(path, &bytes[..rng.below(bytes.len() + 1)]).unwrap();
        }
        "a checkpoint edited" => change_line(rng, &cps, |rng, line| {
            change_json(rng, line, |rng, v| {
                let k = ["seq", "index", "head", "final", "witness"][rng.below(5)];
                v[k] = match k {
                    "seq" | "index" => Value::from(v[k].as_u64().unwrap_or(0) + 1),
                    "final" => Value::from(!v[k].as_bool().unwrap_or(false)),
                    "witness" => Value::Array(Vec::new()),
                    _ => Value::from("ab".repeat(32)),
                };
            });
        }),
        "a checkpoint removed" => {
            let Some(path) = cps.get(rng.below(cps.len())) else {
                return;
            };
            let mut lines = split(&fs::read(path).unwrap());
            if !lines.is_empty() {
                lines.remove(rng.below(lines.len()));
            }
            fs::write(path, lines.concat()).unwrap();
        }
        "a checkpoint file emptied" => {
            if let Some(path) = cps.get(rng.below(cps.len())) {
                fs::write(path, "").unwrap();
            }
        }
        "a checkpoint file removed" => {
            if let Some(path) = cps.get(rng.below(cps.len())) {
                fs::remove_file(path).unwrap();
            }
        }
        "a stream rewritten and re-chained" => {
            // The attacker's strongest move without the key: change an entry, then recompute
            // its stream's chain from there (the chain is unkeyed).
            let streams: Vec<String> = cps
                .iter()
                .map(|p| {
                    let n = p.file_name().unwrap().to_str().unwrap();
                    n["audit_checkpoints_".len()..n.len() - ".jsonl".len()].to_owned()
                })
                .collect();
            let Some(stream) = streams.get(rng.below(streams.len())) else {
                return;
            };
            let target = rng.below(8) as u64;
            let mut prev = tracing_llm_audit::chain::GENESIS.to_owned();
            for path in &days {
                let mut lines = split(&fs::read(path).unwrap());
                for line in &mut lines {
                    let Ok(mut v) = serde_json::from_slice::<Value>(line) else {
                        continue;
                    };
                    if v["chain"]["stream"] != stream.as_str() {
                        continue;
                    }
                    let seq = v["chain"]["seq"].as_u64().unwrap_or(0);
                    if seq == target {
                        v["cost_usd"] = Value::from("999.99");
                    }
                    let digest = tracing_llm_audit::chain::entry_digest(&v).unwrap();
                    let hash = tracing_llm_audit::chain::link_hash(stream, seq, &prev, &digest);
                    v["chain"] = serde_json::json!({
                        "stream": stream, "seq": seq, "prev": prev, "hash": hash,
                    });
                    prev = hash;
                    *line = serde_json::to_vec(&v).unwrap();
                    line.push(b'\n');
                }
                fs::write(path, lines.concat()).unwrap();
            }
        }
        "a forged line added" => {
            // A copy of an entry as a new call, in a spelling a writer never uses.
            let Some(path) = days.get(rng.below(days.len())) else {
                return;
            };
            let mut lines = split(&fs::read(path).unwrap());
            let Some(Ok(mut v)) = lines
                .get(rng.below(lines.len()))
                .map(|l| serde_json::from_slice::<Value>(l))
            else {
                return;
            };
            if !v.is_object() {
                return;
            }
            v["request_id"] = Value::from("01a20000-0000-7000-8000-00000000f0f0");
            v["cost_usd"] = Value::from("999.99");
            let mut line = match rng.below(5) {
                0 => {
                    v.as_object_mut().unwrap().remove("chain");
                    serde_json::to_vec(&v).unwrap()
                }
                1 => {
                    v["chain"] = Value::Null;
                    serde_json::to_vec(&v).unwrap()
                }
                2 => serde_json::to_vec(&Value::Array(
                    v.as_object().unwrap().values().cloned().collect(),
                ))
                .unwrap(),
                3 => {
                    let mut l = serde_json::to_vec(&v).unwrap();
                    respell(&mut l, "chain", "\"\\u0063hain\"");
                    l
                }
                _ => {
                    let mut l = serde_json::to_vec(&v).unwrap();
                    respell(&mut l, "cost_usd", "\"cost_usd\":\"0.01\",\"cost_usd\"");
                    l
                }
            };
            line.push(b'\n');
            lines.insert(rng.below(lines.len() + 1), line);
            fs::write(path, lines.concat()).unwrap();
        }
        "a writer restarts" | "a writer crashes" => {
            let crash = MUTATIONS[which] == "a writer crashes";
            let before: Vec<Vec<u8>> = day_files(dir)
                .iter()
                .flat_map(|p| split(&fs::read(p).unwrap()))
                .collect();
            let Ok(mut sink) = JsonlSink::builder(dir)
                .chain(key.clone())
                .checkpoint_every(2)
                .build()
            else {
                // A start that refuses (a file it cannot repair) writes nothing.
                return;
            };
            let at = datetime!(2026-11-24 00:00:30 UTC);
            let entries: Vec<AuditEntry> = (0..4).map(|i| entry(40 + i, at)).collect();
            sink.write_batch(&entries).unwrap();
            if crash {
                // After its checkpoint (every 2): one entry that no checkpoint covers.
                sink.write_batch(&[entry(44, at)]).unwrap();
            } else {
                sink.shutdown().unwrap();
            }
            drop(sink);
            // What the writer wrote: its entries and its repair entry, the lines that are new.
            for path in day_files(dir) {
                for line in split(&fs::read(path).unwrap()) {
                    if !before.contains(&line) {
                        written.push(without_chain(serde_json::from_slice(&line).unwrap()));
                    }
                }
            }
        }
        other => unreachable!("{other}"),
    }
}

/// The entries, sorted, as canonical text (members sorted, as `Value` keeps them).
fn sorted(values: impl IntoIterator<Item = Value>) -> Vec<String> {
    let mut all: Vec<String> = values
        .into_iter()
        .map(|v| without_chain(v).to_string())
        .collect();
    all.sort();
    all
}

/// requests and cost per model, from entries.
fn cost_by_model(entries: &[String]) -> BTreeMap<String, (u64, Decimal)> {
    let mut by = BTreeMap::new();
    for e in entries {
        let v: Value = serde_json::from_str(e).unwrap();
        let model = v["model"].as_str().unwrap_or("").to_owned();
        let slot = by.entry(model).or_insert((0u64, Decimal::ZERO));
        slot.0 += 1;
        if let Some(c) = v["cost_usd"].as_str() {
            slot.1 += c.parse::<Decimal>().unwrap();
        }
    }
    by
}

/// What `report cost --by model` says, the same way.
fn reported_cost(out: &Output) -> BTreeMap<String, (u64, Decimal)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let model = v["model"].as_str().unwrap_or("").to_owned();
            let total = v["total_cost"]
                .as_str()
                .map_or(Decimal::ZERO, |c| c.parse().unwrap());
            (model, (v["requests"].as_u64().unwrap(), total))
        })
        .collect()
}

fn check_case(seed: u64, honest: &Honest, steps: usize) -> Result<Option<i32>, String> {
    let mut rng = Rng::new(seed);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("logs");
    fs::create_dir(&dir).unwrap();
    for e in fs::read_dir(honest.root.path().join("logs")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let mut written = honest.written.clone();
    let mut applied = Vec::new();
    let count = if steps == 0 { 0 } else { 1 + rng.below(steps) };
    for _ in 0..count {
        let which = rng.below(MUTATIONS.len());
        applied.push(MUTATIONS[which]);
        mutate(&mut rng, which, &dir, &honest.key, &mut written);
    }
    let public = honest.root.path().join("signing.pub");
    let out = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(["verify", "--format", "jsonl", "--public-key"])
        .arg(&public)
        .arg("--dir")
        .arg(&dir)
        .env("LLM_AUDIT_PROGRESS", "never")
        .output()
        .unwrap();
    let fail = |what: String| {
        Err(format!(
            "seed {seed}, mutations {applied:?}: {what}\nverify said:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    };
    let code = out.status.code();
    if !matches!(code, Some(0 | 2 | 3)) {
        return fail(format!("verify exited with {code:?}"));
    }
    if code != Some(0) {
        return Ok(code);
    }
    let expected = sorted(written);
    let query = cli(
        &["query", "--format", "jsonl", "--from", "2020-01-01"],
        &dir,
    );
    let got = sorted(
        String::from_utf8_lossy(&query.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()),
    );
    if got != expected {
        let missing: Vec<&String> = expected.iter().filter(|e| !got.contains(e)).collect();
        let extra: Vec<&String> = got.iter().filter(|e| !expected.contains(e)).collect();
        return fail(format!(
            "verify said intact, but query differs from what was written:\nmissing {missing:#?}\nextra {extra:#?}"
        ));
    }
    let report = cli(
        &[
            "report",
            "cost",
            "--by",
            "model",
            "--format",
            "jsonl",
            "--from",
            "2020-01-01",
        ],
        &dir,
    );
    if reported_cost(&report) != cost_by_model(&expected) {
        return fail(format!(
            "verify said intact, but report cost says {:?}, not {:?}",
            reported_cost(&report),
            cost_by_model(&expected)
        ));
    }
    let pick: Value = serde_json::from_str(&expected[rng.below(expected.len())]).unwrap();
    let show = cli(&["show", pick["request_id"].as_str().unwrap()], &dir);
    let shown: Value = serde_json::from_slice(&show.stdout).unwrap_or(Value::Null);
    if without_chain(shown.clone()) != pick {
        return fail(format!(
            "verify said intact, but show gives {shown} for {pick}"
        ));
    }
    Ok(code)
}

#[test]
fn whenever_verify_says_intact_the_readers_see_exactly_what_was_written() {
    let honest = honest();
    // The honest log itself: intact, and every reader agrees.
    assert_eq!(check_case(u64::MAX, &honest, 0), Ok(Some(0)));
    let cases: u64 = std::env::var("LLM_AUDIT_MUTATION_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    let seeds: Vec<u64> = match std::env::var("LLM_AUDIT_MUTATION_SEED") {
        Ok(seed) => vec![seed.parse().unwrap()],
        Err(_) => (0..cases).collect(),
    };
    let mut codes = BTreeMap::new();
    let mut failures = Vec::new();
    for seed in seeds {
        match check_case(seed, &honest, 3) {
            Ok(code) => *codes.entry(code).or_insert(0) += 1,
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!("verify's exit codes over the cases: {codes:?}");
}
