//! Opening the files of a log directory, refusing what an attacker could plant there.
//!
//! Whoever can write to a log directory can put a symbolic link where a day file, a checkpoint
//! file or the quarantine file will be opened, and make the writer's start-up append to,
//! truncate or copy from any file the writer can reach (a `.env`, another log). So every file
//! the library or the CLI opens in a log directory goes through [`open`]:
//!
//! - the last component is never followed if it is a symbolic link (`O_NOFOLLOW`);
//! - what was opened must be a regular file (not a FIFO, whose open would block, nor a device);
//! - a file appended to must belong to the user running the process;
//! - a file whose bytes are cut or replaced must also have one name only: a hard link to a file
//!   elsewhere is refused before anything is read from it or cut.
//!
//! Anything else is refused with an [`io::Error`] whose message names the file and the reason;
//! nothing is read from it, written to it or truncated. Two things are allowed on purpose:
//! reading another user's files (an auditor's account verifies a service's log), and appending
//! to a file with several names (backups made with hard links, `cp -al` or rsnapshot, give every
//! log file a second name).
//!
//! Never open with `truncate(true)`: the kernel truncates before the checks run. [`write`]
//! truncates after them.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// What a file is opened for, which decides what is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading only: no link, a regular file.
    Read,
    /// Appending (or locking), reading too perhaps: also the running user's file.
    Append,
    /// Cutting or replacing bytes: also a file with a single name.
    Rewrite,
}

/// Opens `path` with `options`, refusing links, non-regular files and files of other users.
///
/// New files are created readable and writable by their owner only.
///
/// # Errors
/// The open fails, or the file is refused: the message names the file and why.
pub fn open(path: &Path, options: &OpenOptions, access: Access) -> io::Result<File> {
    let mut options = options.clone();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
        // O_NONBLOCK: opening a FIFO planted in the directory must not hang; it is refused
        // below, and on a regular file the flag changes nothing.
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    #[cfg(not(unix))]
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(refused(path, "is a symbolic link"));
    }
    let file = options.open(path).map_err(|error| {
        // O_NOFOLLOW on a link fails with ELOOP; say what that means here.
        #[cfg(unix)]
        if error.raw_os_error() == Some(libc::ELOOP)
            && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
        {
            return refused(path, "is a symbolic link");
        }
        error
    })?;
    check(path, &file, access)?;
    Ok(file)
}

/// Opens an existing file for reading, as [`open`] does.
///
/// # Errors
/// As [`open`].
pub fn open_read(path: &Path) -> io::Result<File> {
    open(path, OpenOptions::new().read(true), Access::Read)
}

/// Reads a whole file, as [`open`] opens it.
///
/// # Errors
/// As [`open`], or the read fails.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open_read(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads a whole UTF-8 file, as [`open`] opens it.
///
/// # Errors
/// As [`read`], or the file is not UTF-8.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not UTF-8 text", path.display()),
        )
    })
}

/// Writes `bytes` as the whole content of `path` (created, or cut to nothing once it passed
/// the checks of [`Access::Rewrite`]).
///
/// # Errors
/// As [`open`], or the write fails.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = open(
        path,
        OpenOptions::new().write(true).create(true),
        Access::Rewrite,
    )?;
    file.set_len(0)?;
    file.write_all(bytes)
}

/// Refuses a file with more than one name before its bytes are cut: for a file opened with
/// [`Access::Append`] that turns out to need it (a torn last line to cut).
///
/// # Errors
/// The file has several names, or its metadata cannot be read.
pub fn check_single_name(path: &Path, file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let names = file.metadata()?.nlink();
        if names > 1 {
            return Err(refused(path, &format!("has {names} names (a hard link)")));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, file);
    Ok(())
}

/// Refused files are `InvalidInput`, not `PermissionDenied`: callers that skip a file they may
/// not write (an archived, read-only day file) must not skip these silently.
fn refused(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} {why}: refused (files in a log directory are opened only if they are regular \
             files of this user, never through a link)",
            path.display()
        ),
    )
}

fn check(path: &Path, file: &File, access: Access) -> io::Result<()> {
    let metadata = file.metadata()?;
    if !metadata.file_type().is_file() {
        return Err(refused(path, "is not a regular file"));
    }
    if access == Access::Read {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let user = unsafe { libc::geteuid() };
        if metadata.uid() != user {
            return Err(refused(
                path,
                &format!(
                    "belongs to user {}, not to this user ({user})",
                    metadata.uid()
                ),
            ));
        }
    }
    if access == Access::Rewrite {
        check_single_name(path, file)?;
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_of_ours_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit_2026-01-01.jsonl");
        write(&path, b"line\n").unwrap();
        assert_eq!(read(&path).unwrap(), b"line\n");
        open(&path, OpenOptions::new().append(true), Access::Append).unwrap();
        write(&path, b"new\n").unwrap();
        assert_eq!(read(&path).unwrap(), b"new\n");
    }

    #[test]
    fn a_symbolic_link_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret.env");
        std::fs::write(&target, b"API_KEY=sk-live\n").unwrap();
        let link = dir.path().join("audit_2026-01-01.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for (options, access) in [
            (OpenOptions::new().read(true).clone(), Access::Read),
            (
                OpenOptions::new().append(true).create(true).clone(),
                Access::Append,
            ),
            (OpenOptions::new().write(true).clone(), Access::Rewrite),
        ] {
            let error = open(&link, &options, access).unwrap_err();
            assert!(
                error.to_string().contains("is a symbolic link: refused"),
                "{error}"
            );
            assert!(error.to_string().contains("audit_2026-01-01.jsonl"));
        }
        assert!(write(&link, b"x").is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"API_KEY=sk-live\n");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit_quarantine.jsonl");
        let name = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid, NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let error = open_read(&path).unwrap_err();
        assert!(
            error.to_string().contains("is not a regular file"),
            "{error}"
        );
    }

    #[test]
    fn a_hard_link_is_refused_before_it_is_cut_and_appended_to_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("other.log");
        std::fs::write(&target, b"keep me\n").unwrap();
        let link = dir.path().join("audit_2026-01-01.jsonl");
        std::fs::hard_link(&target, &link).unwrap();
        let error = open(&link, OpenOptions::new().write(true), Access::Rewrite).unwrap_err();
        assert!(error.to_string().contains("has 2 names"), "{error}");
        // Not even emptied first: `write` cuts only after the checks.
        let error = write(&link, b"").unwrap_err();
        assert!(error.to_string().contains("has 2 names"), "{error}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me\n");
        // A backup's second name does not stop appends.
        open(&link, OpenOptions::new().append(true), Access::Append).unwrap();
    }

    #[test]
    fn another_users_file_is_read_but_not_appended_to() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: changing a file's owner needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit_2026-01-01.jsonl");
        std::fs::write(&path, b"line\n").unwrap();
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        assert_eq!(read(&path).unwrap(), b"line\n");
        let error = open(&path, OpenOptions::new().append(true), Access::Append).unwrap_err();
        assert!(
            error.to_string().contains("belongs to user 65534"),
            "{error}"
        );
    }
}
