//! The daemon's own log, through the `log` facade, to whatever can carry it.
//!
//! In the foreground: the journal's native protocol when stderr is connected to the journal
//! (`systemd-journal-logger`, SYSLOG_IDENTIFIER=logger), readable lines in a terminal, and
//! `<N>`-prefixed lines (the sd-daemon convention) when stderr is any other pipe. A `--fork`ed
//! daemon has no stderr: it logs to the journal if its socket exists, else to a file that SIGHUP
//! reopens.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::error::Error;
use crate::outputs::formats::line::push_rfc3339;

/// The journal field our own log's entries carry (`LOGGER_OWN_LOG=1`): a journal input skips
/// them, as it skips what a journal output relayed (`LOGGER_TRANSPORT`).
pub(crate) const OWN_LOG_FIELD: &str = "LOGGER_OWN_LOG";

/// Where our own log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Backend {
    /// systemd-journal-logger.
    Journal,
    /// Readable lines on a terminal.
    Terminal,
    /// `<N>message` lines on stderr.
    Prefixed,
    /// Timestamped lines appended to a file.
    File(PathBuf),
}

/// The backend for a foreground process.
pub(crate) fn foreground_backend() -> Backend {
    if systemd_journal_logger::connected_to_journal() {
        Backend::Journal
    } else if std::io::stderr().is_terminal() {
        Backend::Terminal
    } else {
        Backend::Prefixed
    }
}

/// The backend for a daemonized process.
pub(crate) fn daemon_backend(journal_socket: &Path, log_file: &Path) -> Backend {
    if journal_socket.exists() {
        Backend::Journal
    } else {
        Backend::File(log_file.to_owned())
    }
}

enum Active {
    Journal(systemd_journal_logger::JournalLog),
    Stderr {
        prefixed: bool,
    },
    File {
        path: PathBuf,
        file: File,
        /// Created by us, not found: it may be given to `--user`.
        created: bool,
    },
}

/// One logger for the life of the process whose backend can be switched (`--fork` starts on the
/// terminal and continues in the journal or a file).
struct Switchable(Mutex<Option<Active>>);

static LOGGER: Switchable = Switchable(Mutex::new(None));

impl Log for Switchable {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let Ok(mut guard) = self.0.lock() else { return };
        match guard.as_mut() {
            Some(Active::Journal(j)) => j.log(r),
            Some(Active::Stderr { prefixed: true }) => {
                let line = format!("<{}>{}\n", syslog_level(r.level()), r.args());
                write_stderr(line.as_bytes());
            }
            Some(Active::Stderr { prefixed: false }) => {
                let level = r.level().as_str().to_lowercase();
                let line = format!("logger: {level}: {}\n", r.args());
                write_stderr(line.as_bytes());
            }
            Some(Active::File { file, .. }) => {
                let mut line = Vec::with_capacity(128);
                push_rfc3339(&mut line, std::time::SystemTime::now());
                let text = format!(
                    " logger[{}] {}: {}",
                    std::process::id(),
                    r.level().as_str().to_lowercase(),
                    r.args()
                );
                syslog::escape::escape_into(&mut line, text.as_bytes(), syslog::escape::LINE);
                line.push(b'\n');
                let _ = file.write_all(&line);
            }
            None => {}
        }
    }

    fn flush(&self) {}
}

/// True while our log goes to the journal, which keeps structured fields.
pub(crate) fn to_journal() -> bool {
    LOGGER
        .0
        .lock()
        .is_ok_and(|g| matches!(*g, Some(Active::Journal(_))))
}

/// Logs `message` at info with `fields` as journal fields of their own (`logger_received`
/// becomes LOGGER_RECEIVED): what `journalctl -o json` can be queried for. Other backends
/// show the message alone; callers give them the long form instead (see [`to_journal`]).
pub(crate) fn info_with_fields(message: std::fmt::Arguments<'_>, fields: &[(&'static str, u64)]) {
    if !log::log_enabled!(Level::Info) {
        return;
    }
    log::logger().log(
        &Record::builder()
            .level(Level::Info)
            .target(module_path!())
            .args(message)
            .key_values(&fields)
            .build(),
    );
}

/// How long one line of our own log waits for a stderr that nobody reads.
const STDERR_STALL: Duration = Duration::from_secs(1);

/// Writes a line of our own log to stderr unless stderr has stayed full for [`STDERR_STALL`]:
/// a pipe nobody reads (the relay's own stderr output may be the one that filled it) must not
/// stop the service loop, which logs as it stops. Such a line is lost; the journal or a
/// terminal never stalls that long.
fn write_stderr(line: &[u8]) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let stderr = std::io::stderr();
    let mut fds = [PollFd::new(stderr.as_fd(), PollFlags::POLLOUT)];
    let timeout = PollTimeout::try_from(STDERR_STALL).unwrap_or(PollTimeout::MAX);
    if matches!(poll(&mut fds, timeout), Ok(n) if n > 0) {
        let _ = stderr.lock().write_all(line);
    }
}

fn syslog_level(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Switches our log to `backend` (installing the logger on first use). A log that cannot be
/// opened is an unavailable output, as the relay's own output would be.
pub(crate) fn install(backend: &Backend, level: LevelFilter) -> Result<(), Error> {
    let active = match backend {
        Backend::Journal => Active::Journal(
            systemd_journal_logger::JournalLog::new()
                .map_err(|source| Error::Output {
                    output: "journal (our own log)".into(),
                    source,
                })?
                .with_syslog_identifier("logger".into())
                // Marks our own entries, so that a journal input never reads them back.
                .with_extra_fields(vec![(OWN_LOG_FIELD, "1")]),
        ),
        Backend::Terminal => Active::Stderr { prefixed: false },
        Backend::Prefixed => Active::Stderr { prefixed: true },
        Backend::File(path) => {
            let (file, created) =
                crate::outputs::open_log_file_noting_creation(path).map_err(|source| {
                    Error::Output {
                        output: format!("log-file {}", path.display()),
                        source,
                    }
                })?;
            Active::File {
                file,
                path: path.clone(),
                created,
            }
        }
    };
    if let Ok(mut guard) = LOGGER.0.lock() {
        *guard = Some(active);
    }
    // Fails only when already installed, which is what a switch wants.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
    Ok(())
}

/// Before a privilege drop: makes our own log file the user's, as `Sink::hand_over` does.
pub(crate) fn hand_over_file(uid: nix::unistd::Uid, gid: nix::unistd::Gid) {
    let Ok(guard) = LOGGER.0.lock() else { return };
    if let Some(Active::File {
        file,
        created: true,
        ..
    }) = guard.as_ref()
    {
        let _ = nix::unistd::fchown(file, Some(uid), Some(gid));
    }
}

/// Reopens the log file after logrotate moved it (SIGHUP).
pub(crate) fn reopen() {
    let Ok(mut guard) = LOGGER.0.lock() else {
        return;
    };
    if let Some(Active::File { path, file, .. }) = guard.as_mut() {
        match crate::outputs::open_log_file(path) {
            Ok(f) => *file = f,
            Err(e) => {
                let _ = writeln!(file, "cannot reopen log file {}: {e}", path.display());
            }
        }
    }
}

/// Reports the error that ends the process, once, where the operator will see it: the journal
/// (with error priority) under systemd, a plain line on a terminal, a `<3>` line on a pipe.
pub(crate) fn report_fatal(text: &str) {
    match foreground_backend() {
        Backend::Journal if install(&Backend::Journal, LevelFilter::Error).is_ok() => {
            log::error!("{text}");
        }
        Backend::Terminal => eprintln!("logger: error: {text}"),
        _ => eprintln!("<3>logger: error: {text}"),
    }
}
