//! The outputs: where accepted messages are written, and the backlog that holds them until the
//! output takes them.
//!
//! Every kind of output is an [`Output`]: it accepts a message by encoding it at once (a
//! journal entry, an escaped line, a wire frame) into its backlog, and `write_out` hands the
//! backlog to where it goes, keeping whatever was refused (journald restarting, a full disk, a
//! remote down) for the next attempt. Nothing accepted is dropped here. The operations only some
//! outputs need (reopen after logrotate, a disk queue's persistence and read positions, a
//! connection's state, a reconfiguration in place, the stop's last words) have defaults. Each
//! output lives on its own thread (`worker`), behind a queue bounded in bytes; `set` routes
//! messages to them and applies each output's queue policy. [`open`] is the one place an
//! output's kind chooses its code.
//!
//! - [`file`], [`stderr`], `templated` (one file per rendered path), [`journal`] (journald's
//!   native protocol), [`journal_remote`] (systemd-journal-remote), [`forward`] (remote
//!   collectors): the kinds.
//! - [`formats`]: the line encodings; `text`: the line backlog files and stderr share;
//!   `records`: the entry backlog of the journal and journal-remote outputs.
//! - `buffered`: a disk queue (`queue-dir`) in front of any output but forward, which keeps its own.
//! - [`queue`]: the memory and disk queues with their send cursor and acknowledged head.

mod buffered;
mod connect;
pub mod file;
pub mod formats;
pub mod forward;
pub mod journal;
pub mod journal_remote;
pub mod kafka;
pub mod queue;
mod records;
mod set;
pub mod stderr;
mod templated;
mod text;
mod worker;

pub use file::{open_log_file, open_log_file_noting_creation};
pub use set::{MAX_BATCH, Opened, OutputSet, Plan};

use std::any::Any;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::{Output as Kind, OutputSpec};
use crate::error::{Error, Result};
use crate::receipt::Mark;
use crate::template::Template;
use syslog::message::Message;

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

/// One output: what every kind does, and defaults for what most do not need.
pub trait Output: Send {
    /// What it is, for STATUS= and logs (`journal`, `file:/var/log/x.log`).
    fn describe(&self) -> String;

    /// Encodes a message into the backlog.
    fn accept(&mut self, msg: &Message);

    /// Bytes the backlog holds in memory, as its thread accounts them: `accept` adds to them,
    /// `write_out` and `persist` only ever take from them.
    fn backlog_bytes(&self) -> usize;

    /// Messages not yet taken by where the output writes.
    fn backlog_messages(&self) -> usize;

    /// Hands the backlog on; keeps what was not taken.
    fn write_out(&mut self) -> WriteOut;

    /// SIGHUP or a reload: files reopened (logrotate moved them), certificates read again.
    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Messages a stop would lose: all it holds, but what a disk queue holds already.
    fn volatile_messages(&self) -> usize {
        self.backlog_messages()
    }

    /// Moves what memory holds to where it survives the process, if the output has such a
    /// place (a disk queue); a failure leaves it in memory for `write_out`.
    fn persist(&mut self) {}

    /// Where a reading input stands once the messages accepted so far are taken: an output
    /// with a disk queue keeps it with them (see `queue::disk`).
    fn mark_position(&mut self, _position: &Mark) {}

    /// The latest position of the reading input `key` that this output holds on disk with
    /// the messages it queued: what it took, whether or not the input saved it.
    fn queued_position(&self, _key: &str) -> Option<String> {
        None
    }

    /// The state of the output's connection, for STATUS=, if it has one.
    fn link_state(&self) -> Option<forward::LinkState> {
        None
    }

    /// Encodes `msg` as the backlog holds it (a line, a journal entry), for a disk queue in
    /// front of the output (`buffered`); the output takes it back with `accept_item`.
    /// Outputs that keep their own queue (forward) never get one.
    fn encode_item(&self, _msg: &Message, _item: &mut Vec<u8>) {
        unreachable!("{} keeps its own queue", self.describe())
    }

    /// Takes into the backlog what `encode_item` made.
    fn accept_item(&mut self, _item: &[u8]) {
        unreachable!("{} keeps its own queue", self.describe())
    }

    /// Takes a change a reload prepared for it (`Reconfigure`), keeping what it holds.
    fn reconfigure(&mut self, _change: Reconfigure) {}

    /// The thread ends: last words (a disk queue written out, a session closed).
    fn finish(&mut self) {}

    /// Before a privilege drop: what it created becomes the user's.
    fn hand_over(&mut self, _uid: nix::unistd::Uid, _gid: nix::unistd::Gid) {}
}

/// An open output, on its way to its thread.
pub type Sink = Box<dyn Output>;

/// A change of a running output that a reload prepared (files read, nothing applied): given to
/// the output on its own thread, which takes it as the kind it prepared it as.
pub struct Reconfigure(Box<dyn Any + Send>);

impl Reconfigure {
    /// Wraps an output's own prepared change.
    pub fn new<T: Any + Send>(change: T) -> Reconfigure {
        Reconfigure(Box::new(change))
    }

    /// The change, as the kind that prepared it; itself back if it is another.
    pub fn take<T: Any>(self) -> std::result::Result<T, Reconfigure> {
        match self.0.downcast::<T>() {
            Ok(change) => Ok(*change),
            Err(other) => Err(Reconfigure(other)),
        }
    }
}

/// Opens the configured output. `foreground` decides what `auto` means without a journal;
/// `daemon_uid` is the user the daemon runs as once started: a disk queue must belong to it
/// or to us.
pub fn open(
    spec: &OutputSpec,
    journal_socket: &Path,
    foreground: bool,
    daemon_uid: nix::unistd::Uid,
) -> Result<Sink> {
    let fail = |source| Error::Output {
        output: spec.target.to_string(),
        source,
    };
    let style = || text::LineStyle::new(spec.format, spec.zone);
    let sink: Sink = match resolve(&spec.target, journal_socket, foreground) {
        Kind::Journal => Box::new(journal::JournalOutput::open(journal_socket).map_err(fail)?),
        Kind::Stderr => Box::new(stderr::StderrOutput::new(style())),
        Kind::File(path) if Template::is_template(&path) => {
            let template = Template::parse(&path)
                .map_err(|e| fail(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
            Box::new(templated::TemplatedOutput::open(template, style()).map_err(fail)?)
        }
        Kind::File(path) => Box::new(file::FileOutput::open(path, style()).map_err(fail)?),
        Kind::Forward(remotes) => {
            // Its queue, in memory or in queue-dir, is its own.
            return Ok(Box::new(
                forward::Forwarder::open(spec, &remotes, daemon_uid).map_err(fail)?,
            ));
        }
        Kind::JournalRemote(target) => {
            Box::new(journal_remote::JournalRemoteOutput::open(target, spec).map_err(fail)?)
        }
        Kind::Kafka(target) => Box::new(kafka::KafkaOutput::open(target, spec).map_err(fail)?),
        Kind::Auto => unreachable!("resolve never returns auto"),
    };
    match &spec.forward.queue_dir {
        None => Ok(sink),
        Some(dir) => {
            let queue = queue::disk::open_logged(dir, spec, daemon_uid).map_err(fail)?;
            Ok(Box::new(buffered::DiskBuffered::new(sink, queue, dir)))
        }
    }
}

/// Turns `auto` into the concrete output for this host and lifecycle. An interactive run (stderr
/// is a terminal) shows the messages where the operator is looking; a service writes to the
/// journal when there is one.
pub fn resolve(output: &Kind, journal_socket: &Path, foreground: bool) -> Kind {
    use std::io::IsTerminal;
    match output {
        Kind::Auto if foreground && io::stderr().is_terminal() => Kind::Stderr,
        Kind::Auto if journal_socket.exists() => Kind::Journal,
        Kind::Auto if foreground => Kind::Stderr,
        Kind::Auto => Kind::File(PathBuf::from("/var/log/logger.log")),
        other => other.clone(),
    }
}
