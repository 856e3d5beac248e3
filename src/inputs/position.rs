//! Read positions on disk: the small files under `state-dir` where the kernel log input keeps
//! its boot ID and sequence number and the journal input its cursor. Written whole to a new file
//! (created without following links) and renamed over the old: a crash leaves the one or the
//! other, never a torn position.
//!
//! At start an input may also stand further on than its file says: the outputs with a disk
//! queue keep its position with the records they took ([`queued_past`]).

use std::cmp::Ordering;
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

/// Where to resume instead of `own` (the input's file), if anywhere: the earliest of the
/// positions the disk-queued outputs hold (`Tunables::queued`, one per output that takes the
/// input's messages), when it is past `own`. Those outputs took everything up to their
/// position, so reading from `own` would queue it twice. `order` compares two positions, None
/// when they cannot be (another boot, another journal): then `own` it is.
pub(super) fn queued_past(
    own: Option<&str>,
    queued: &[String],
    order: impl Fn(&str, &str) -> Option<Ordering>,
) -> Option<String> {
    let (first, rest) = queued.split_first()?;
    let mut earliest = first;
    for q in rest {
        if order(q, earliest)? == Ordering::Less {
            earliest = q;
        }
    }
    match own {
        None => Some(earliest.clone()),
        Some(own) => (order(earliest, own)? == Ordering::Greater).then(|| earliest.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    fn order(a: &str, b: &str) -> Option<Ordering> {
        let (a, b) = (a.split_once(':')?, b.split_once(':')?);
        (a.0 == b.0).then(|| a.1.cmp(b.1))
    }

    #[test]
    fn an_input_resumes_after_the_earliest_queued_position_past_its_own() {
        let q = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let past = super::queued_past;
        assert_eq!(
            past(Some("b:3"), &q(&["b:7", "b:5"]), order).as_deref(),
            Some("b:5")
        );
        assert_eq!(
            past(Some("b:5"), &q(&["b:5"]), order),
            None,
            "not past its own"
        );
        assert_eq!(
            past(Some("b:6"), &q(&["b:5"]), order),
            None,
            "behind its own"
        );
        assert_eq!(past(Some("b:3"), &q(&[]), order), None, "no queue vouches");
        assert_eq!(past(Some("a:3"), &q(&["b:7"]), order), None, "another boot");
        assert_eq!(
            past(Some("b:3"), &q(&["b:7", "c:9"]), order),
            None,
            "incomparable"
        );
        assert_eq!(past(None, &q(&["b:7"]), order).as_deref(), Some("b:7"));
    }

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
