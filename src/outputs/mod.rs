//! The outputs: where accepted messages are written, and the backlog that holds them until the
//! output takes them.
//!
//! A `Sink` accepts a message by encoding it at once (a journal entry or an escaped line) into its
//! backlog; `Sink::write_out` hands the backlog to the output and keeps whatever the output refused
//! (journald restarting, disk full) for the next attempt. Nothing accepted is dropped here. Each
//! sink lives on its own thread (`worker`), behind a queue bounded in bytes; `set` routes
//! messages to them and applies each output's queue policy.

pub mod formats;
pub mod forward;
pub mod journal;
pub mod queue;
mod set;
mod templated;
mod worker;

pub use set::{MAX_BATCH, Opened, OutputSet, Plan};

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{LineFormat, Output, OutputSpec};
use crate::error::{Error, Result};
use crate::message::Message;
use crate::template::Template;
use crate::timestamp::Zone;
use formats::{json, line, rfc5424, rsyslog};
use journal::JournalWriter;

/// A message heavier than this gets its line's room reserved exactly.
const LARGE_LINE: usize = 64 * 1024;
/// Once written out, a line buffer larger than this is shrunk: more than a default queue
/// holds, so only a huge message leaves it that large.
const KEPT_TEXT_CAPACITY: usize = 1 << 20;
/// Once journald's full queue has room again, how long to let it read before sending again.
const JOURNAL_FULL_PAUSE: Duration = Duration::from_millis(1);
/// How long one write-out waits on a full journal queue before handing back to its thread.
const JOURNAL_FULL_WAIT: Duration = Duration::from_millis(100);

enum Target {
    Journal(JournalWriter),
    Stderr,
    File {
        path: PathBuf,
        file: File,
        /// Created by us at start, not found: it may be given to `--user`.
        created: bool,
    },
    /// One file per rendered path template.
    Templated(templated::Templated),
    /// Remote collectors.
    Forward(Box<crate::outputs::forward::Forwarder>),
}

/// What one `write_out` achieved.
#[derive(Debug, Default)]
pub struct WriteOut {
    /// Messages the output took.
    pub written: u64,
    /// Entries the output rejected for good (e.g. journald refused the entry itself).
    pub rejected: u64,
    /// Messages dropped because a full disk queue's policy says so.
    pub dropped: u64,
    /// Why the rest is still in the backlog, if it is.
    pub error: Option<io::Error>,
    /// When to try again, if the output keeps its own schedule (a forward output's backoff).
    pub retry_at: Option<Instant>,
}

/// An open output with its backlog.
pub struct Sink {
    target: Target,
    format: LineFormat,
    zone: Zone,
    local_host: String,
    /// Text outputs: escaped lines not yet written. Each line holds exactly one raw newline (the
    /// escaping guarantees it), so counting newlines in a partial write counts messages.
    text: Vec<u8>,
    /// Messages in `text`.
    text_messages: usize,
    /// Journal output: encoded entries not yet sent.
    entries: VecDeque<Vec<u8>>,
    entry_bytes: usize,
}

impl Sink {
    /// Opens the configured output. `foreground` decides what `auto` means without a journal;
    /// `format` is how file and stderr outputs write lines. `daemon_uid` is the user the daemon
    /// runs as once started: a disk queue must belong to it or to us.
    pub fn open(
        spec: &OutputSpec,
        journal_socket: &Path,
        foreground: bool,
        daemon_uid: nix::unistd::Uid,
    ) -> Result<Sink> {
        let (output, format) = (&spec.target, spec.format);
        let fail = |source| Error::Output {
            output: output.to_string(),
            source,
        };
        let target = match resolve(output, journal_socket, foreground) {
            Output::Journal => Target::Journal(JournalWriter::open(journal_socket).map_err(fail)?),
            Output::Stderr => Target::Stderr,
            Output::File(path) if Template::is_template(&path) => {
                let template = Template::parse(&path)
                    .map_err(|e| fail(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
                Target::Templated(templated::Templated::open(template).map_err(fail)?)
            }
            Output::File(path) => {
                let (file, created) = open_log_file_noting_creation(&path).map_err(fail)?;
                Target::File {
                    file,
                    path,
                    created,
                }
            }
            Output::Forward(remotes) => Target::Forward(Box::new(
                crate::outputs::forward::Forwarder::open(spec, &remotes, daemon_uid)
                    .map_err(fail)?,
            )),
            Output::Auto => unreachable!("resolve never returns auto"),
        };
        let local_host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "localhost".into());
        Ok(Sink {
            target,
            format,
            zone: spec.zone,
            local_host,
            text: Vec::with_capacity(64 * 1024),
            text_messages: 0,
            entries: VecDeque::new(),
            entry_bytes: 0,
        })
    }

    /// What this output is, for STATUS= and logs (`journal`, `file:/var/log/x.log`).
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Journal(_) => "journal".into(),
            Target::Stderr => "stderr".into(),
            Target::File { path, .. } => format!("file:{}", path.display()),
            Target::Templated(t) => t.describe(),
            Target::Forward(f) => f.describe(),
        }
    }

    /// Accepts a message into the backlog.
    pub fn accept(&mut self, msg: &Message) {
        match &mut self.target {
            Target::Journal(_) => {
                let mut entry = Vec::with_capacity(128 + msg.text().len());
                journal::encode(&mut entry, msg);
                self.entry_bytes += entry.len();
                self.entries.push_back(entry);
            }
            Target::Templated(t) => {
                let (format, zone, host) = (self.format, self.zone, &self.local_host);
                t.accept(msg, host, |buf| format_line(format, zone, buf, msg, host));
            }
            Target::Forward(f) => f.accept(msg, &self.local_host),
            Target::Stderr | Target::File { .. } => {
                if msg.weight() > LARGE_LINE {
                    // Its line at its size, not the double of what the buffer held.
                    self.text.reserve_exact(msg.weight() + 512);
                }
                format_line(
                    self.format,
                    self.zone,
                    &mut self.text,
                    msg,
                    &self.local_host,
                );
                self.text_messages += 1;
            }
        }
    }

    /// Bytes waiting in the backlog.
    pub fn backlog_bytes(&self) -> usize {
        let templated = match &self.target {
            Target::Templated(t) => t.backlog_bytes(),
            Target::Forward(f) => f.backlog_bytes(),
            _ => 0,
        };
        self.text.len() + self.entry_bytes + templated
    }

    /// Messages waiting in the backlog.
    pub fn backlog_messages(&self) -> usize {
        let templated = match &self.target {
            Target::Templated(t) => t.backlog_messages(),
            Target::Forward(f) => f.backlog_messages(),
            _ => 0,
        };
        self.entries.len() + self.text_messages + templated
    }

    /// Hands the backlog to the output; keeps what it did not take.
    pub fn write_out(&mut self) -> WriteOut {
        let mut out = WriteOut::default();
        match &mut self.target {
            Target::Journal(writer) => {
                let mut full_since = None;
                while let Some(entry) = self.entries.front() {
                    match writer.send(entry) {
                        Ok(()) => {
                            out.written += 1;
                            full_since = None;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            // journald's queue is full: wait until it reads (the kernel wakes
                            // us then, see `wait_writable`), then pause a moment so that one
                            // wake-up sends a run of entries rather than one per entry it read.
                            // A journal that reads nothing for a while hands back to the
                            // thread, which looks at its queue and comes back at once: a full
                            // journal is flow control, not a failure to back off from (a 2 s
                            // backoff let a journal that reads in bursts take a burst per 2 s).
                            let since = *full_since.get_or_insert_with(Instant::now);
                            let left = JOURNAL_FULL_WAIT.saturating_sub(since.elapsed());
                            if !left.is_zero() && writer.wait_writable(left) {
                                std::thread::sleep(JOURNAL_FULL_PAUSE);
                                continue;
                            }
                            out.error = Some(e);
                            out.retry_at = Some(Instant::now());
                            break;
                        }
                        Err(e) if is_transient(&e) => {
                            out.error = Some(e);
                            break;
                        }
                        Err(e) => {
                            // journald refused this entry itself (e.g. malformed or beyond its
                            // size limit): retrying cannot help, and it must not block the rest.
                            log::error!(
                                "journal {} rejected an entry of {} bytes: {e}",
                                writer.path().display(),
                                entry.len()
                            );
                            out.rejected += 1;
                        }
                    }
                    let sent = self.entries.pop_front().map_or(0, |e| e.len());
                    self.entry_bytes -= sent;
                }
            }
            // Through the descriptor, not std's lock: while a pipe nobody reads blocks this
            // thread, our own log (`selflog`) must still be able to try stderr.
            Target::Stderr => write_text(
                &mut FdWriter(io::stderr().as_fd()),
                &mut self.text,
                &mut out,
            ),
            Target::File { file, .. } => write_text(file, &mut self.text, &mut out),
            Target::Templated(t) => {
                t.write_out(&mut out);
                return out;
            }
            Target::Forward(f) => return f.write_out(),
        }
        if self.text.is_empty() {
            out.written += self.text_messages as u64;
            self.text_messages = 0;
            if self.text.capacity() > KEPT_TEXT_CAPACITY {
                // One huge line came through: give its memory back rather than keep it idle.
                self.text.shrink_to(KEPT_TEXT_CAPACITY / 4);
            }
        } else {
            self.text_messages -= out.written as usize;
        }
        out
    }

    /// Reopens an output file (after logrotate moved it). Other outputs need nothing.
    pub fn reopen(&mut self) -> io::Result<()> {
        match &mut self.target {
            Target::File { path, file, .. } => *file = open_log_file(path)?,
            Target::Templated(t) => t.reopen(),
            Target::Forward(f) => f.reload(),
            _ => {}
        }
        Ok(())
    }

    /// A reload's new remotes for a forward output (see `Forwarder::retarget`).
    pub fn retarget(&mut self, r: crate::outputs::forward::Retarget) {
        if let Target::Forward(f) = &mut self.target {
            f.retarget(r);
        }
    }

    /// Messages a stop would lose: all it holds, but for a disk queue, what is not on disk yet.
    pub fn volatile_messages(&self) -> usize {
        match &self.target {
            Target::Forward(f) => f.volatile_messages(),
            _ => self.backlog_messages(),
        }
    }

    /// Where a reading input stands once the messages accepted so far are taken: an output
    /// with a disk queue keeps it with them (see `forward::disk`).
    pub fn mark_position(&mut self, position: &crate::receipt::Mark) {
        if let Target::Forward(f) = &mut self.target {
            f.mark_position(position);
        }
    }

    /// The latest position of the reading input `key` that this output holds on disk with
    /// the messages it queued: what it took, whether or not the input saved it.
    pub fn queued_position(&self, key: &str) -> Option<String> {
        match &self.target {
            Target::Forward(f) => f.queued_position(key),
            _ => None,
        }
    }

    /// Moves what memory holds to where it survives the process, if the output has such a
    /// place (a forward output's disk queue); a failure leaves it in memory for `write_out`.
    pub fn persist(&mut self) {
        if let Target::Forward(f) = &mut self.target {
            f.persist();
        }
    }

    /// The state of the output's connection, for STATUS= (forward outputs).
    pub fn link_state(&self) -> Option<crate::outputs::forward::LinkState> {
        match &self.target {
            Target::Forward(f) => Some(f.state()),
            _ => None,
        }
    }

    /// The thread ends: a forward output writes its disk queue out and closes its session.
    pub fn finish(&mut self) {
        if let Target::Forward(f) = &mut self.target {
            f.finish();
        }
    }

    /// Before a privilege drop: makes an output file we created the user's (through its
    /// descriptor), so that the daemon can reopen it after logrotate, whose `create` copies the
    /// old file's owner. A file that existed keeps its owner. A failure is logged: the daemon
    /// writes through the descriptor it holds.
    pub fn hand_over(&mut self, uid: nix::unistd::Uid, gid: nix::unistd::Gid) {
        if let Target::Templated(t) = &self.target {
            t.hand_over(uid, gid);
        }
        if let Target::Forward(f) = &self.target {
            f.hand_over(uid, gid);
        }
        if let Target::File {
            path,
            file,
            created: true,
        } = &self.target
            && let Err(e) = nix::unistd::fchown(file, Some(uid), Some(gid))
        {
            log::warn!(
                "cannot give {} to uid {uid}: {e}; it cannot be reopened after the drop",
                path.display()
            );
        }
    }
}

/// Turns `auto` into the concrete output for this host and lifecycle. An interactive run (stderr
/// is a terminal) shows the messages where the operator is looking; a service writes to the
/// journal when there is one.
pub fn resolve(output: &Output, journal_socket: &Path, foreground: bool) -> Output {
    use std::io::IsTerminal;
    match output {
        Output::Auto if foreground && io::stderr().is_terminal() => Output::Stderr,
        Output::Auto if journal_socket.exists() => Output::Journal,
        Output::Auto if foreground => Output::Stderr,
        Output::Auto => Output::File(PathBuf::from("/var/log/logger.log")),
        other => other.clone(),
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
fn check_log_file(file: &File) -> io::Result<()> {
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

/// Errors after which the same entry may succeed later: the journal is restarting or busy, or
/// a large entry's memfd could not be made for now (descriptors or memory short).
fn is_transient(e: &io::Error) -> bool {
    use nix::errno::Errno;
    let transient = [
        Errno::ENOENT,
        Errno::ECONNREFUSED,
        Errno::EAGAIN,
        Errno::ENOBUFS,
        Errno::ENOMEM,
        Errno::EINTR,
        Errno::EMFILE,
        Errno::ENFILE,
        Errno::ENOSPC,
    ];
    e.raw_os_error()
        .is_some_and(|code| transient.iter().any(|t| *t as i32 == code))
}

/// Writes straight to a descriptor.
struct FdWriter<'a>(std::os::fd::BorrowedFd<'a>);

impl Write for FdWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        nix::unistd::write(self.0, buf).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One message as a line in `format`.
fn format_line(format: LineFormat, zone: Zone, buf: &mut Vec<u8>, msg: &Message, local_host: &str) {
    use rsyslog::Stamp;
    match format {
        LineFormat::Detailed => line::format_line(buf, msg, local_host),
        LineFormat::Traditional => rsyslog::format(buf, msg, local_host, zone, Stamp::Traditional),
        LineFormat::Rfc3339 => rsyslog::format(buf, msg, local_host, zone, Stamp::Rfc3339),
        LineFormat::Rfc5424 => rfc5424::format(buf, msg, local_host, zone),
        LineFormat::Json => json::format(buf, msg, local_host, zone),
    }
}

fn count_lines(text: &[u8]) -> usize {
    text.iter().filter(|&&b| b == b'\n').count()
}

fn write_text(w: &mut impl Write, text: &mut Vec<u8>, out: &mut WriteOut) {
    let mut done = 0;
    while done < text.len() {
        match w.write(&text[done..]) {
            Ok(0) => {
                out.error = Some(io::ErrorKind::WriteZero.into());
                break;
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    // After a whole write the caller knows how many lines it held; only a partial one is counted.
    if done < text.len() {
        out.written += count_lines(&text[..done]) as u64;
    }
    text.drain(..done);
}

#[cfg(test)]
mod tests {
    use super::is_transient;
    use std::io;

    #[test]
    fn a_memfd_that_cannot_be_made_for_now_is_retried_not_rejected() {
        for errno in [
            nix::libc::EMFILE,
            nix::libc::ENFILE,
            nix::libc::ENOSPC,
            nix::libc::ENOMEM,
        ] {
            assert!(
                is_transient(&io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
        // journald refusing the entry itself is final.
        assert!(!is_transient(&io::Error::from_raw_os_error(
            nix::libc::EINVAL
        )));
    }
}
