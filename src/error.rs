//! The one error type of the daemon and the one place that turns an error into an exit code.
//!
//! Every failure that can end the process is a variant here, carrying the context an operator needs
//! (which file, which address, which step). `Error::exit_code` is the only mapping from failures to
//! exit statuses; `--help` and the README document the same table.

use std::io;
use std::path::PathBuf;

/// Exit statuses, following sysexits(3) where one fits.
pub(crate) mod exit {
    /// Clean exit.
    pub(crate) const OK: u8 = 0;
    /// A failure while running (after READY).
    pub(crate) const RUNTIME: u8 = 1;
    /// The command line was wrong (EX_USAGE).
    pub(crate) const USAGE: u8 = 64;
    /// A resource the daemon needs is unavailable: an address in use, an output that cannot be
    /// opened, a PID file held by another instance (EX_UNAVAILABLE).
    pub(crate) const UNAVAILABLE: u8 = 69;
    /// The operating system refused a step of start-up: fork, setsid, signals (EX_OSERR).
    pub(crate) const OS: u8 = 71;
    /// The configuration is invalid (EX_CONFIG).
    pub(crate) const CONFIG: u8 = 78;
}

/// Everything that can stop the daemon from starting or keep it from running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line could not be used.
    #[error("{0}")]
    Usage(String),

    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The configuration is invalid (file or flags).
    #[error("{0}")]
    Config(String),

    /// A listener could not be bound or taken over.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The listen URL as configured.
        address: String,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The output could not be opened.
    #[error("cannot open output {output}: {source}")]
    Output {
        /// The output as configured.
        output: String,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The PID file could not be created or is held by a live instance.
    #[error("pid file {path}: {reason}")]
    PidFile {
        /// The file.
        path: PathBuf,
        /// Why, in words.
        reason: String,
    },

    /// A step of the operating-system set-up failed (fork, setsid, privileges, signals).
    #[error("{step}: {source}")]
    Os {
        /// What we were doing.
        step: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// A failure while running.
    #[error("{0}")]
    Runtime(String),

    /// The running daemon could not be asked (`logger --status`, `--reload`): not running,
    /// not allowed, or no answer in time.
    #[error("{0}")]
    Unavailable(String),
}

impl Error {
    /// The process exit status for this error; the only place that decides one.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::ConfigRead { .. } | Error::Config(_) => exit::CONFIG,
            Error::Listen { .. }
            | Error::Output { .. }
            | Error::PidFile { .. }
            | Error::Unavailable(_) => exit::UNAVAILABLE,
            Error::Os { .. } => exit::OS,
            Error::Runtime(_) => exit::RUNTIME,
        }
    }

    /// The errno behind this error, for the `ERRNO=` notification.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::ConfigRead { source, .. }
            | Error::Listen { source, .. }
            | Error::Output { source, .. }
            | Error::Os { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Shorthand for an OS step failure from a `nix` errno.
    pub fn os(step: &'static str, errno: nix::errno::Errno) -> Error {
        Error::Os {
            step,
            source: io::Error::from(errno),
        }
    }
}

/// The crate's result type.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
