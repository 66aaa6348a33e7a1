//! A progress line on stderr for scans that take longer than a moment.
//!
//! Shown only when stderr is a terminal and the scan has run for [`DELAY`]; never mixed into
//! output that a script reads. `LLM_AUDIT_PROGRESS=always` shows it at once whatever stderr is,
//! `never` turns it off.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a scan runs before the progress line appears.
const DELAY: Duration = Duration::from_millis(400);
const TICK: Duration = Duration::from_millis(100);

struct Shared {
    done: AtomicU64,
    stop: AtomicBool,
}

/// Bytes scanned out of a known total.
pub(crate) struct Progress {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Starts the progress line for a scan of `total` bytes, if it should be shown.
    pub(crate) fn start(total: u64, what: &str) -> Self {
        let shared = Arc::new(Shared {
            done: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let delay = match std::env::var("LLM_AUDIT_PROGRESS").as_deref() {
            Ok("always") => Some(Duration::ZERO),
            Ok("never") => None,
            _ => std::io::stderr().is_terminal().then_some(DELAY),
        };
        let thread = delay.map(|delay| {
            let shared = shared.clone();
            let what = what.to_owned();
            std::thread::spawn(move || draw(&shared, total, &what, delay))
        });
        Self { shared, thread }
    }

    pub(crate) fn advance(&self, bytes: u64) {
        self.shared.done.fetch_add(bytes, Relaxed);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn draw(shared: &Shared, total: u64, what: &str, delay: Duration) {
    let start = Instant::now();
    let mut shown = false;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    loop {
        let stop = shared.stop.load(Relaxed);
        if start.elapsed() >= delay && (!stop || !shown) {
            let done = shared.done.load(Relaxed).min(total);
            let percent = (done * 100).checked_div(total).unwrap_or(100);
            let width = 30;
            let filled = (percent as usize * width) / 100;
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[2K{what} [{}{}] {percent:>3}%  {:.0} of {:.0} MiB  {:.1}s",
                "#".repeat(filled),
                "-".repeat(width - filled),
                mib(done),
                mib(total),
                start.elapsed().as_secs_f64()
            );
            let _ = err.flush();
            shown = true;
        }
        if stop {
            break;
        }
        std::thread::sleep(TICK);
    }
    if shown {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}
