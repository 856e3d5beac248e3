//! The PID file of `--fork`: created without races, locked for the daemon's life, refused while
//! another live instance holds it, replaced when stale, removed on a clean exit.
//!
//! The lock (flock(2), released by the kernel when the process dies, however it dies) is what
//! says "an instance is running"; the number inside is for init scripts and `start-stop-daemon`.
//! So a stale file is simply one nobody holds a lock on.
//!
//! The daemon usually writes it as root into a directory others may be able to write, so the
//! path is never trusted: it is opened without following a symbolic link, and what was opened
//! must be a regular file of our own with no other hard link. Its mode is set through the open
//! descriptor, never by path.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

/// A locked PID file; dropping it removes the file.
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
    file: Flock<File>,
}

impl PidFile {
    /// Creates (or takes over a stale) PID file holding `pid`, locked.
    pub(crate) fn create(path: &Path, pid: u32) -> Result<PidFile> {
        let fail = |reason: String| Error::PidFile {
            path: path.to_owned(),
            reason,
        };
        // O_CLOEXEC comes with std; no O_TRUNC: a live instance's file must stay intact until we
        // know we hold the lock.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(nix::libc::ELOOP) => fail("is a symbolic link; refusing to follow it".into()),
                _ => fail(format!("cannot open: {e}")),
            })?;
        let meta = file
            .metadata()
            .map_err(|e| fail(format!("cannot inspect: {e}")))?;
        let euid = nix::unistd::Uid::effective().as_raw();
        if !meta.file_type().is_file() {
            return Err(fail("is not a regular file".into()));
        }
        if meta.uid() != euid {
            return Err(fail(format!(
                "is owned by uid {}, not by us (uid {euid}); remove it",
                meta.uid()
            )));
        }
        if meta.nlink() != 1 {
            return Err(fail("has other hard links; remove it".into()));
        }
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = text.trim();
                return Err(fail(if holder.is_empty() {
                    "another instance holds the lock".into()
                } else {
                    format!("another instance is running as pid {holder}")
                }));
            }
            Err((_, e)) => return Err(fail(format!("cannot lock: {e}"))),
        };
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            writeln!(f, "{pid}")?;
            // The umask may have narrowed the mode; readers (init scripts, monitoring) need 0644.
            f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
            f.sync_all()
        };
        write(&mut file).map_err(|e| fail(format!("cannot write: {e}")))?;
        Ok(PidFile {
            path: path.to_owned(),
            file,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if std::fs::remove_file(&self.path).is_err() {
            // After dropping privileges the directory may not be ours: empty the file instead, so
            // nothing reads a pid that is about to be gone (the lock goes with the process).
            let _ = self.file.set_len(0);
        }
    }
}
