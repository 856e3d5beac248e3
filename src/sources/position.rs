//! Read positions on disk: the small files under `state-dir` where the kernel log input keeps
//! its boot ID and sequence number and the journal input its cursor. Written whole to a new file
//! (created without following links) and renamed over the old: a crash leaves the one or the
//! other, never a torn position.

use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Replaces the file at `path` with `text`, creating its directory (0750) if need be.
pub(super) fn save(path: &Path, text: &str) -> io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)?;
    }
    let mut temp = path.as_os_str().to_owned();
    temp.push(".new");
    let temp = std::path::PathBuf::from(temp);
    let _ = std::fs::remove_file(&temp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&temp)?;
    file.write_all(text.as_bytes())?;
    drop(file);
    std::fs::rename(&temp, path)
}

/// The file's text, if there is one to read.
pub(super) fn load(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_position_is_replaced_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("x.position");
        super::save(&path, "one\n").unwrap();
        super::save(&path, "two\n").unwrap();
        assert_eq!(super::load(&path).as_deref(), Some("two\n"));
        assert!(!dir.path().join("state").join("x.position.new").exists());
    }
}
