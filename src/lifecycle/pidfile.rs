//! The PID file of `--fork`: created without races, locked for the daemon's life, refused while
//! another live instance holds it, replaced when stale, removed on a clean exit.
//!
//! The lock (flock(2), released by the kernel when the process dies, however it dies) is what
//! says "an instance is running"; the number inside is for init scripts and `start-stop-daemon`.
//! So a stale file is simply one nobody holds a lock on.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

/// A locked PID file; dropping it removes the file.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    file: Flock<File>,
}

impl PidFile {
    /// Creates (or takes over a stale) PID file holding `pid`, locked.
    pub fn create(path: &Path, pid: u32) -> Result<PidFile> {
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
            .open(path)
            .map_err(|e| fail(format!("cannot open: {e}")))?;
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

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
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
