//! Files written whole or not at all: the new content is written and synced beside the file
//! under a temporary name, private to the user (mode 0600, as the sinks make their files), then
//! renamed over it.

use std::io::Write;
use std::path::Path;

/// Writes `text` beside `path`, syncs it and renames it over `path`: a crash leaves the old file
/// or the new one, never half of one.
pub(crate) fn replace_file(path: &Path, text: impl AsRef<[u8]>) -> Result<(), String> {
    stage_file(path, text)?.commit()
}

/// The new content of a file, written and synced beside it under a temporary name, not yet in
/// its place: a run that rewrites several files stages them all first, so that one that fails
/// changes none (dropping a staged file removes it).
pub(crate) struct Staged {
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
    done: bool,
}

impl Staged {
    /// Puts the new content in place.
    pub(crate) fn commit(mut self) -> Result<(), String> {
        self.done = true;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&self.tmp);
            format!("cannot rewrite {}: {e}", self.path.display())
        })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `text` beside `path` under a temporary name; see [`Staged`].
pub(crate) fn stage_file(path: &Path, text: impl AsRef<[u8]>) -> Result<Staged, String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("audit");
    let tmp = path.with_file_name(format!(".{name}.{}.rewrite", uuid::Uuid::now_v7().simple()));
    let mut options = std::fs::OpenOptions::new();
    // A new file of its own (never one planted there), as private as the sinks make theirs.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let staged = Staged {
        tmp,
        path: path.to_owned(),
        done: false,
    };
    options
        .open(&staged.tmp)
        .and_then(|mut f| {
            f.write_all(text.as_ref())?;
            f.sync_all()
        })
        .map_err(|e| format!("cannot rewrite {}: {e}", path.display()))?;
    Ok(staged)
}

pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
