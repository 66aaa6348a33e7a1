//! Fault suite, crash: a writer process is killed with SIGKILL at random moments, 200 times, and
//! restarted each time. Nothing it acknowledged is lost or doubled, every torn tail is repaired
//! (moved to the quarantine file), and `llm-audit verify` passes.
//!
//! **Acknowledged** means: the child's `JsonlSink::write_batch` (chained, `FsyncPolicy::EveryBatch`)
//! returned `Ok` for a batch, and the child then printed `ack <cycle> <n>` on its stdout, `n`
//! being the number of its entries written so far. Under `EveryBatch`, `Ok` means the batch was
//! synced to disk, so an acknowledged entry survives a crash of the process (and, by that
//! policy's contract, of the machine: not tested here). An entry written but killed before its `ack` line may or may not be on disk; either
//! way it must be there at most once, and a cycle's entries on disk are always a prefix of what
//! it wrote (no holes).
//!
//! The kills are spread over the child's life: some at startup (before, during or after the
//! repair of the previous crash), some after a random delay, and some aimed at a write — the
//! parent watches the day file grow and kills at once, which lands inside the `write` system call
//! of a large batch often enough that lines get torn (the kernel checks for a fatal signal
//! between pages). Every assertion holds whatever the timing; only the number of torn lines
//! depends on it, and the test asserts that some lines were torn so that it cannot pass by never
//! hitting a write.
//!
//! The run is seeded: it prints its seed, and `FAULT_SEED=<seed>` replays the same plan.

#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tracing_llm_audit::chain::SigningKey;
use tracing_llm_audit::{AuditEntry, AuditSink, FsyncPolicy, JsonlSink};

#[path = "support/fault.rs"]
mod fault;

/// How many times a writer is killed.
const CYCLES: u64 = 200;
/// Every so many cycles, a writer is started and shut down cleanly (it repairs the last crash),
/// and `llm-audit verify` must pass.
const VERIFY_EVERY: u64 = 100;
/// A child writes at most this many batches, then shuts down cleanly (a kill may come too late).
const MAX_BATCHES: u64 = 4;
/// Entries per batch, at most, each with up to this many bytes of padding.
const MAX_BATCH: u64 = 8;
const MAX_PADDING: usize = 16 * 1024;
/// The batch that a kill is aimed at: this many entries of this much padding.
const BIG_BATCH: u64 = 4;
const BIG_PADDING: usize = 256 * 1024;
/// Checkpoints every few entries, so that kills also land around checkpoint writes.
const CHECKPOINT_EVERY: u64 = 5;

/// The environment of the child: the directory, the cycle, the seed of its batches, its key.
const CHILD_DIR: &str = "LLM_AUDIT_FAULT_CRASH_DIR";
const CHILD_CYCLE: &str = "LLM_AUDIT_FAULT_CRASH_CYCLE";
const CHILD_SEED: &str = "LLM_AUDIT_FAULT_CRASH_SEED";
const CHILD_KEY: &str = "LLM_AUDIT_FAULT_CRASH_KEY";
/// Set when the kill will be aimed at the first write: that batch is made large.
const CHILD_BIG_FIRST: &str = "LLM_AUDIT_FAULT_CRASH_BIG_FIRST";
/// This test's name, which the child is started with.
const TEST_NAME: &str = "killed_writers_lose_no_acknowledged_entry";

/// SplitMix64: enough randomness for a test plan, and replayable from one number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number from `low` to `high`, both included.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

#[test]
fn killed_writers_lose_no_acknowledged_entry() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        write_until_killed(Path::new(&dir));
        return;
    }
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("FAULT_SEED is a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("fault_crash: seed {seed} (replay with FAULT_SEED={seed})");
    let started = Instant::now();
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public = keys.path().join("signing.pub");
    fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let writer = Writer {
        dir: dir.path().to_owned(),
        key: key.to_secret_text().to_string(),
    };

    let mut log = LogState::default();
    let mut phases: BTreeMap<&str, u64> = BTreeMap::new();
    for cycle in 0..CYCLES {
        let plan = KillPlan::pick(&mut rng);
        let run = writer.run(cycle, rng.next(), Some(plan));
        *phases.entry(run.phase()).or_default() += 1;
        log.read_new_lines(dir.path());
        log.check_cycle(cycle, run.acked, run.clean);
        if (cycle + 1) % VERIFY_EVERY == 0 {
            let restart = cycle + 1_000_000;
            let run = writer.run(restart, rng.next(), None);
            assert!(
                run.clean,
                "the clean restart after cycle {cycle} was not clean"
            );
            log.read_new_lines(dir.path());
            log.check_cycle(restart, run.acked, true);
            assert_verifies(dir.path(), &public, cycle);
        }
    }
    log.check_quarantine(dir.path());
    let mut reread = LogState::default();
    reread.read_new_lines(dir.path());
    assert_eq!(
        reread.found, log.found,
        "read again from the start, the files hold other entries than they did cycle by cycle"
    );
    let crashed = unsealed_streams(dir.path());
    eprintln!(
        "fault_crash: {CYCLES} kills in {:.1?}; where they landed: {phases:?}; torn lines: {}; \
         repair entries: {}; crashed streams: {}; entries on disk: {}",
        started.elapsed(),
        log.torn.len(),
        log.repairs,
        crashed.len(),
        log.entries
    );
    for stream in &crashed {
        assert!(
            log.named.contains(stream),
            "the crashed stream {stream} is named by no repair entry"
        );
    }
    assert!(
        !log.torn.is_empty(),
        "no kill landed inside a write in {CYCLES} cycles (seed {seed}): the test did not test \
         torn lines"
    );
}

/// The child: writes batches through a chained `JsonlSink` with `EveryBatch`, and acknowledges
/// each on stdout once `write_batch` returned `Ok`.
fn write_until_killed(dir: &Path) {
    let var = |name| std::env::var(name).unwrap();
    let cycle: u64 = var(CHILD_CYCLE).parse().unwrap();
    let mut rng = Rng(var(CHILD_SEED).parse().unwrap());
    let key = SigningKey::from_env(CHILD_KEY).unwrap();
    let mut sink = JsonlSink::builder(dir)
        .fsync(FsyncPolicy::EveryBatch)
        .chain(key)
        .checkpoint_every(CHECKPOINT_EVERY)
        .build()
        .unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {}", sink.stream_id().unwrap()).unwrap();
    out.flush().unwrap();
    let mut written = 0;
    let mut big = std::env::var_os(CHILD_BIG_FIRST).is_some();
    for _ in 0..MAX_BATCHES {
        let n = if big {
            BIG_BATCH
        } else {
            rng.between(1, MAX_BATCH)
        };
        let batch: Vec<AuditEntry> = (written..written + n)
            .map(|i| {
                let padding = if big {
                    BIG_PADDING
                } else {
                    rng.between(1, MAX_PADDING as u64) as usize
                };
                fault_entry(cycle, i, padding)
            })
            .collect();
        big = false;
        sink.write_batch(&batch).unwrap();
        written += n;
        writeln!(out, "ack {cycle} {written}").unwrap();
        out.flush().unwrap();
    }
    sink.shutdown().unwrap();
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
}

fn fault_entry(cycle: u64, i: u64, padding: usize) -> AuditEntry {
    let mut entry = AuditEntry::new("chat");
    entry.provider = Some("openai".to_owned());
    entry.model = Some("gpt-4o".to_owned());
    entry.input_tokens = Some(100 + i);
    let mut metadata = serde_json::Map::new();
    metadata.insert("fault_cycle".to_owned(), cycle.into());
    metadata.insert("fault_i".to_owned(), i.into());
    metadata.insert("padding".to_owned(), "x".repeat(padding).into());
    entry.metadata = Some(metadata);
    entry
}

/// When the parent kills a child.
#[derive(Debug, Clone, Copy)]
enum KillPlan {
    /// After this long from the start: from the very start, through the repair, to the writes.
    After(Duration),
    /// As soon as today's day file grows after the child said it was ready: its first batch,
    /// a large one, is being written.
    OnWrite,
}

impl KillPlan {
    fn pick(rng: &mut Rng) -> Self {
        match rng.between(0, 9) {
            0..=1 => Self::After(Duration::from_micros(rng.between(0, 5_000))),
            2..=5 => Self::After(Duration::from_micros(rng.between(0, 150_000))),
            _ => Self::OnWrite,
        }
    }
}

/// How to start a child.
struct Writer {
    dir: PathBuf,
    key: String,
}

/// What a child did before it died or finished.
struct Run {
    /// The stream id it said it writes, once its sink was built.
    stream: Option<String>,
    /// Entries it acknowledged.
    acked: u64,
    /// It shut down cleanly before the kill.
    clean: bool,
}

impl Run {
    fn phase(&self) -> &'static str {
        match (self.stream.is_some(), self.acked, self.clean) {
            (_, _, true) => "after the writes",
            (false, _, _) => "at startup",
            (true, 0, _) => "before the first ack",
            (true, _, _) => "between writes",
        }
    }
}

impl Writer {
    /// Runs one child; kills it as `plan` says (never, with `None`).
    fn run(&self, cycle: u64, seed: u64, plan: Option<KillPlan>) -> Run {
        let mut command = fault::child(TEST_NAME);
        if let Some(KillPlan::OnWrite) = plan {
            command.env(CHILD_BIG_FIRST, "1");
        }
        let mut child = command
            .env(CHILD_DIR, &self.dir)
            .env(CHILD_CYCLE, cycle.to_string())
            .env(CHILD_SEED, seed.to_string())
            .env(CHILD_KEY, &self.key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = read_lines(&mut child);
        let mut seen = Vec::new();
        match plan {
            None => {}
            Some(KillPlan::After(delay)) => {
                std::thread::sleep(delay);
                let _ = child.kill();
            }
            Some(KillPlan::OnWrite) => kill_on_write(&mut child, &self.dir, &lines, &mut seen),
        }
        let status = wait_at_most(&mut child, Duration::from_secs(60));
        seen.extend(lines.iter());
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        let clean = seen.iter().any(|l| l == "done");
        let killed = std::os::unix::process::ExitStatusExt::signal(&status) == Some(9);
        assert!(
            killed || status.success(),
            "cycle {cycle}: the writer failed on its own ({status}):\n{}\n{stderr}",
            seen.join("\n")
        );
        Run {
            stream: seen
                .iter()
                .find_map(|l| l.strip_prefix("ready "))
                .map(str::to_owned),
            acked: seen
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("ack {cycle} ")))
                .map(|n| n.parse::<u64>().unwrap())
                .max()
                .unwrap_or(0),
            clean,
        }
    }
}

/// The child's stdout, line by line, as it comes (a line cut by the kill is left out).
fn read_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            if let Some(complete) = line.strip_suffix('\n') {
                if tx.send(complete.to_owned()).is_err() {
                    return;
                }
            }
            line.clear();
        }
    });
    rx
}

/// Waits for `ready`, then kills the child as soon as today's file grows (or when it exits).
fn kill_on_write(
    child: &mut Child,
    dir: &Path,
    lines: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let day = today_file(dir);
    let size = || fs::metadata(&day).map_or(0, |m| m.len());
    loop {
        match lines.recv_timeout(Duration::from_millis(10)) {
            Ok(line) => {
                let ready = line.starts_with("ready ");
                seen.push(line);
                if ready {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
            Err(_) => return,
        }
    }
    let before = size();
    while size() == before && Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::hint::spin_loop();
    }
    let _ = child.kill();
}

fn wait_at_most(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("a writer ran for more than {limit:?}");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn today_file(dir: &Path) -> PathBuf {
    let today = time::OffsetDateTime::now_utc().date();
    dir.join(format!(
        "audit_{:04}-{:02}-{:02}.jsonl",
        today.year(),
        u8::from(today.month()),
        today.day()
    ))
}

/// What the parent knows of the directory, read incrementally: only complete lines are read,
/// and a crash can only ever change what follows the last complete line.
#[derive(Default)]
struct LogState {
    /// Per day file: how far its complete lines were read.
    read_up_to: BTreeMap<PathBuf, u64>,
    /// Per cycle: the entries found on disk, by index.
    found: BTreeMap<u64, BTreeSet<u64>>,
    /// Torn tails seen after a kill: (file name, offset, bytes).
    torn: BTreeSet<(String, u64, Vec<u8>)>,
    repairs: u64,
    /// The crashed streams that repair entries name.
    named: BTreeSet<String>,
    entries: u64,
}

impl LogState {
    /// Reads the lines completed since the last call: each must be an entry (no torn fragment
    /// was left inside a file), and each entry must be new. Remembers a torn tail.
    fn read_new_lines(&mut self, dir: &Path) {
        for path in day_files(dir) {
            let from = self.read_up_to.get(&path).copied().unwrap_or(0);
            let mut file = fs::File::open(&path).unwrap();
            assert!(
                file.metadata().unwrap().len() >= from,
                "{} shrank below its complete lines",
                path.display()
            );
            file.seek(SeekFrom::Start(from)).unwrap();
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).unwrap();
            let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            for line in bytes[..end]
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
            {
                self.entry(&path, line);
            }
            self.read_up_to.insert(path.clone(), from + end as u64);
            if end < bytes.len() {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                self.torn
                    .insert((name, from + end as u64, bytes[end..].to_vec()));
            }
        }
    }

    /// After a child is gone: its entries on disk are a prefix of what it wrote, and everything
    /// it acknowledged is among them.
    fn check_cycle(&self, cycle: u64, acked: u64, clean: bool) {
        let found = self.found.get(&cycle).cloned().unwrap_or_default();
        let count = found.len() as u64;
        assert!(
            found.iter().copied().eq(0..count),
            "cycle {cycle}: its entries on disk are not a prefix of what it wrote: {found:?}"
        );
        assert!(
            count >= acked,
            "cycle {cycle}: {acked} entries acknowledged, only {count} on disk"
        );
        if clean {
            assert_eq!(count, acked, "cycle {cycle} shut down cleanly");
        }
    }

    fn entry(&mut self, path: &Path, line: &[u8]) {
        let entry: Value = serde_json::from_slice(line).unwrap_or_else(|e| {
            panic!(
                "{}: a line that is not an entry ({e}), {} bytes: {}",
                path.display(),
                line.len(),
                String::from_utf8_lossy(&line[..line.len().min(120)])
            )
        });
        if entry["action"] == "llm_audit.repair" {
            self.repairs += 1;
            for crashed in entry["metadata"]["crashed_streams"].as_array().unwrap() {
                self.named
                    .insert(crashed["stream"].as_str().unwrap().to_owned());
            }
            return;
        }
        let cycle = entry["metadata"]["fault_cycle"].as_u64().unwrap();
        let i = entry["metadata"]["fault_i"].as_u64().unwrap();
        self.entries += 1;
        assert!(
            self.found.entry(cycle).or_default().insert(i),
            "entry {i} of cycle {cycle} is on disk twice"
        );
    }

    /// Every torn tail seen after a kill went to the quarantine file, byte for byte. (A record
    /// cut short by a kill is skipped: that writer had not cut the fragment from its file yet,
    /// so a later one quarantined it again.)
    fn check_quarantine(&self, dir: &Path) {
        let text = fs::read_to_string(dir.join("audit_quarantine.jsonl")).unwrap_or_default();
        let quarantined: BTreeSet<(String, u64, String)> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|record| {
                (
                    record["file"].as_str().unwrap().to_owned(),
                    record["offset"].as_u64().unwrap(),
                    record["fragment_hex"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        for (file, offset, bytes) in &self.torn {
            let record = (file.clone(), *offset, hex::encode(bytes));
            assert!(
                quarantined.contains(&record),
                "the torn tail of {file} at {offset} ({} bytes) is not in the quarantine file",
                bytes.len()
            );
        }
    }
}

fn day_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("audit_"))
                .and_then(|n| n.strip_suffix(".jsonl"))
                .is_some_and(|d| d.len() == 10 && d.as_bytes()[4] == b'-')
        })
        .collect();
    files.sort();
    files
}

/// The streams whose checkpoint file does not end with a final checkpoint: their writer was
/// killed.
fn unsealed_streams(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            let stream = name
                .strip_prefix("audit_checkpoints_")?
                .strip_suffix(".jsonl")?
                .to_owned();
            let text = fs::read_to_string(&path).unwrap();
            let last = text
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<Value>(l).ok());
            let sealed = last.is_some_and(|c| c["final"] == true);
            (!sealed).then_some(stream)
        })
        .collect()
}

fn assert_verifies(dir: &Path, public: &Path, cycle: u64) {
    let (code, kinds, output) = fault::verify(dir, public);
    // A writer killed after its last checkpoint leaves entries only the unkeyed chain covers:
    // exit 3, never 0, and never a problem.
    let unsigned = kinds.iter().any(|k| k == "unsigned");
    assert_eq!(
        code,
        Some(if unsigned { 3 } else { 0 }),
        "verify after cycle {cycle}:\n{output}"
    );
    assert!(
        kinds.iter().all(|k| k == "fragment" || k == "unsigned"),
        "verify after cycle {cycle} passed with other findings: {output}"
    );
}
