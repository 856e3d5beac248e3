//! The file output (`to = "file:/var/log/x.log"`): lines appended to one file, opened without
//! following links, reopened after logrotate moved it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::text::{LineStyle, Lines};
use super::{Output, WriteOut};
use syslog::message::Message;

/// Lines into one file.
pub struct FileOutput {
    path: PathBuf,
    file: File,
    /// Created by us at start, not found: it may be given to `--user`.
    created: bool,
    lines: Lines,
}

impl FileOutput {
    /// Opens (creating it if need be) the file at `path`.
    pub fn open(path: PathBuf, style: LineStyle) -> io::Result<FileOutput> {
        let (file, created) = open_log_file_noting_creation(&path)?;
        Ok(FileOutput {
            path,
            file,
            created,
            lines: Lines::new(style),
        })
    }
}

impl Output for FileOutput {
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn accept(&mut self, msg: &Message) {
        self.lines.accept(msg);
    }

    fn encode_item(&self, msg: &Message, item: &mut Vec<u8>) {
        self.lines.encode(msg, item);
    }

    fn accept_item(&mut self, item: &[u8]) {
        self.lines.accept_item(item);
    }

    fn backlog_bytes(&self) -> usize {
        self.lines.bytes()
    }

    fn backlog_messages(&self) -> usize {
        self.lines.messages()
    }

    fn write_out(&mut self) -> WriteOut {
        self.lines.write_to(&mut self.file)
    }

    /// After logrotate moved it: the file at the path, afresh.
    fn reopen(&mut self) -> io::Result<()> {
        self.file = open_log_file(&self.path)?;
        Ok(())
    }

    /// Before a privilege drop: a file we created becomes the user's (through its descriptor),
    /// so that the daemon can reopen it after logrotate, whose `create` copies the old file's
    /// owner. A file that existed keeps its owner. A failure is logged: the daemon writes
    /// through the descriptor it holds.
    fn hand_over(&mut self, uid: nix::unistd::Uid, gid: nix::unistd::Gid) {
        if self.created
            && let Err(e) = nix::unistd::fchown(&self.file, Some(uid), Some(gid))
        {
            log::warn!(
                "cannot give {} to uid {uid}: {e}; it cannot be reopened after the drop",
                self.path.display()
            );
        }
    }
}

/// Opens a log file for appending, mode 0640, as logrotate and operators expect.
///
/// The daemon often runs as root and the path may lie in a directory others can write: a
/// symbolic link there, dangling or not, would make root create or append to a file of the
/// link's choosing, and so would a hard link to a file elsewhere. So a symbolic link is refused
/// (O_NOFOLLOW), and so is anything but a regular file with exactly one link.
pub fn open_log_file(path: &Path) -> io::Result<File> {
    open_log_file_noting_creation(path).map(|(file, _)| file)
}

/// `open_log_file`, and whether this call created the file (so it may be given to the user the
/// daemon runs as; a file that existed keeps its owner).
pub fn open_log_file_noting_creation(path: &Path) -> io::Result<(File, bool)> {
    let open = |create_new: bool| {
        let mut options = OpenOptions::new();
        options
            .append(true)
            .read(true)
            .mode(0o640)
            .custom_flags(nix::libc::O_NOFOLLOW);
        if create_new {
            options.create_new(true);
        } else {
            options.create(true);
        }
        options.open(path).map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) => io::Error::new(
                e.kind(),
                "the path is a symbolic link; logger does not follow links to output files",
            ),
            _ => e,
        })
    };
    let (file, created) = match open(true) {
        Ok(file) => (file, true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => (open(false)?, false),
        Err(e) => return Err(e),
    };
    check_log_file(&file)?;
    Ok((file, created))
}

/// The checks every output file passes once open: a regular file with exactly one link, and a
/// torn last line ended (see `end_torn_line`).
pub(super) fn check_log_file(file: &File) -> io::Result<()> {
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if std::os::unix::fs::MetadataExt::nlink(&meta) != 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the file has other hard links; logger appends only to a file of its own name",
        ));
    }
    end_torn_line(file, meta.len())
}

/// A writer killed mid-line (SIGKILL, power loss) leaves a last line without its newline; the
/// next line appended would continue it. So a file that does not end in a newline gets one
/// before anything else is written, and the torn line stays a line of its own.
fn end_torn_line(mut file: &File, len: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8];
    file.read_exact_at(&mut last, len - 1)?;
    if last[0] != b'\n' {
        file.write_all(b"\n")?;
    }
    Ok(())
}
