//! The effective configuration: built-in defaults, the TOML file, and the flags, merged in that
//! order (flags win).
//!
//! Pure apart from reading the one file: no sockets, no logging. `Config::load` is called at start
//! and again on every SIGHUP; the result is either a whole valid configuration or an error that
//! names the file, line and key.
//!
//! - [`schema`](self::schema): every key, declared once: name, how it is read, how it is shown.
//! - [`merge`](self::merge): the layers (defaults, file, flags) and the checks across keys.
//! - [`show`](self::show): the effective configuration as a file (`--check-config`).
//! - [`values`](self::values): what keys hold beyond numbers and paths (outputs, formats, ...).
//! - [`forward`](self::forward): a forward output's remotes, wire, TLS and disk queue.
//! - [`input`](self::input): one input: its address, allow-list, TLS and limits.
//! - [`document`](self::document): the TOML text with each key's line, and the value readers.

mod document;
mod forward;
mod input;
mod merge;
mod schema;
mod show;
mod values;

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::Cli;
use crate::error::{Error, Result};
use crate::listen::ListenAddr;
use syslog::message::Transport;

use document::Document;
pub use forward::{ForwardSpec, Framing, Fsync, Remote, Scheme, TlsClientSpec};
pub use input::{Fingerprint, InputSpec, TlsSpec};
pub use values::{
    DEFAULT_QUEUE_SIZE, JournalRemote, Kafka, LineFormat, Output, OutputSpec, QueuePolicy,
    fmt_duration, parse_duration,
};

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/logger/logger.toml";
/// The journal's native-protocol socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// The receive buffer for datagram sockets we bind: what journald gives its own sockets and what
/// logger.socket asks for. A burst of UDP beyond the buffer is lost without a trace on the wire,
/// and the kernel default (208 KiB, about 270 short datagrams) fills in a millisecond at the
/// rates a busy network sends. It is kernel memory used only while datagrams wait.
pub const DEFAULT_RECEIVE_BUFFER: usize = 8 << 20;
/// The longest duration any key takes (`heartbeat`, `idle-timeout`): a week. Bounded so that no
/// deadline computed from one can overflow a clock.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a stop waits for outputs by default: well inside systemd's TimeoutStopSec (90 s),
/// so that the daemon, not SIGKILL, says what was lost.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds that keep memory finite whatever clients send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted whole; longer datagrams are truncated, longer TCP frames dropped.
    pub max_message_size: usize,
    /// Concurrent stream connections per listener; past it a newcomer takes the place of a
    /// connection from the source holding the most, or is closed at once.
    pub max_connections: usize,
    /// Concurrent stream connections per listener from one source (an IPv4 address, an IPv6
    /// /64, a local user).
    pub max_connections_per_source: usize,
    /// A stream connection that starts a frame must finish it within this long.
    pub frame_timeout: Duration,
    /// A stream connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// The receive buffer asked for datagram sockets we bind (adopted ones keep theirs).
    pub receive_buffer: usize,
}

/// Per-source token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained messages per second per source; 0 turns limiting off.
    pub per_second: u32,
    /// Messages a source may send at once above the sustained rate.
    pub burst: u32,
}

/// The whole effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file this came from, if any.
    pub file: Option<PathBuf>,
    /// Inputs: `listen` entries first, then `[[input]]` tables that say more than an address.
    pub inputs: Vec<InputSpec>,
    /// True when `inputs` is the built-in default (socket activation then replaces it).
    pub inputs_are_default: bool,
    /// Outputs; a message goes to every one whose route takes it.
    pub outputs: Vec<OutputSpec>,
    /// Daemonize.
    pub fork: bool,
    /// PID file (with `--fork`).
    pub pidfile: Option<PathBuf>,
    /// User to run as.
    pub user: Option<String>,
    /// Group to run as.
    pub group: Option<String>,
    /// umask with `--fork`.
    pub umask: u32,
    /// Readiness descriptor.
    pub notify_fd: Option<i32>,
    /// Own log verbosity.
    pub log_level: log::LevelFilter,
    /// Own log file when forked without a journal.
    pub log_file: PathBuf,
    /// Interval of the heartbeat line; None = off.
    pub heartbeat: Option<Duration>,
    /// Memory and connection bounds.
    pub limits: Limits,
    /// Per-source rate limit.
    pub rate_limit: RateLimit,
    /// Escape control characters in header fields and text as messages are received.
    pub escape_control_characters: bool,
    /// The journal socket to write to.
    pub journal_socket: PathBuf,
    /// How long a stop may take to write out what was accepted before the rest is counted lost.
    pub stop_timeout: Duration,
    /// Where read positions are kept (the kernel log's), `state-dir`.
    pub state_dir: PathBuf,
    /// The control socket (`logger --status`, `--reload`), or None for none.
    pub control_socket: Option<PathBuf>,
    /// Its mode: 0o600 or 0o660.
    pub control_mode: u32,
    /// Where the metrics are served, if anywhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Who may scrape them.
    pub metrics_allow: crate::allow::AllowList,
}

/// The environment variables that choose the default socket directory.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `$RUNTIME_DIRECTORY` (systemd's RuntimeDirectory=).
    pub runtime_directory: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `$STATE_DIRECTORY` (systemd's StateDirectory=).
    pub state_directory: Option<PathBuf>,
}

impl Env {
    /// Reads the process environment. As root, `$XDG_RUNTIME_DIR` is ignored: it belongs to a
    /// login session (often a user's, kept by `sudo`), and root's socket must not live in a
    /// directory a user owns.
    pub fn from_process() -> Env {
        let var = |k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root = nix::unistd::Uid::effective().is_root();
        Env {
            runtime_directory: var("RUNTIME_DIRECTORY"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR").filter(|_| !root),
            state_directory: var("STATE_DIRECTORY"),
        }
    }

    /// The default state directory: `$STATE_DIRECTORY` (its first), else /var/lib/logger.
    pub fn state_dir(&self) -> PathBuf {
        self.state_directory
            .as_ref()
            .and_then(|d| d.to_string_lossy().split(':').next().map(PathBuf::from))
            .filter(|d| d.is_absolute())
            .unwrap_or_else(|| PathBuf::from("/var/lib/logger"))
    }

    /// The directory of the default local socket.
    pub fn socket_dir(&self) -> PathBuf {
        if let Some(dir) = &self.runtime_directory {
            // RuntimeDirectory= may list several, separated by colons; ours is the first.
            let first = dir
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or("")
                .to_owned();
            return PathBuf::from(first);
        }
        match &self.xdg_runtime_dir {
            Some(dir) => dir.join("logger"),
            None => PathBuf::from("/run/logger"),
        }
    }
}

impl Config {
    /// Builds the effective configuration from defaults, the file and the flags.
    pub fn load(cli: &Cli, env: &Env) -> Result<Config> {
        let path = match &cli.config {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
        };
        let Some(path) = path else {
            return merge::merge(None, cli, env);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| Error::ConfigRead {
            path: path.clone(),
            source,
        })?;
        let doc = Document::parse(&text, path.display().to_string())?;
        let mut config = merge::merge(Some(&doc), cli, env)?;
        config.file = Some(path);
        Ok(config)
    }

    /// Parses a configuration from TOML text (used by `load` and by tests).
    pub fn from_toml(text: &str, cli: &Cli, env: &Env) -> Result<Config> {
        let doc = Document::parse(text, "<config>".into())?;
        merge::merge(Some(&doc), cli, env)
    }

    /// The built-in defaults: what an empty file and no flags give.
    pub fn defaults(env: &Env) -> Config {
        let mut config = Config {
            file: None,
            inputs: Vec::new(),
            inputs_are_default: true,
            outputs: vec![OutputSpec::everything(Output::Auto)],
            fork: false,
            pidfile: None,
            user: None,
            group: None,
            // 027 rather than daemon(7)'s 0: files we create (PID file aside, which is chmod'ed
            // to 0644 explicitly) must not become world-writable or world-readable logs.
            umask: 0o027,
            notify_fd: None,
            log_level: log::LevelFilter::Info,
            log_file: PathBuf::from("/var/log/logger.log"),
            heartbeat: Some(Duration::from_secs(300)),
            limits: Limits {
                max_message_size: 64 * 1024,
                max_connections: 256,
                max_connections_per_source: 32,
                frame_timeout: Duration::from_secs(30),
                idle_timeout: Duration::from_secs(300),
                receive_buffer: DEFAULT_RECEIVE_BUFFER,
            },
            rate_limit: RateLimit {
                per_second: 10_000,
                burst: 50_000,
            },
            escape_control_characters: true,
            journal_socket: PathBuf::from(JOURNAL_SOCKET),
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            state_dir: env.state_dir(),
            control_socket: Some(env.socket_dir().join("control")),
            control_mode: 0o600,
            metrics_listen: None,
            metrics_allow: crate::allow::AllowList::default(),
        };
        config.inputs = default_inputs(env, &config.limits);
        config
    }

    /// The first `listen` or `[[input]]` replaces the built-in inputs; later ones add to it.
    fn take_over_inputs(&mut self) {
        if self.inputs_are_default {
            self.inputs.clear();
            self.inputs_are_default = false;
        }
    }

    /// The listen addresses of every input.
    pub fn listen(&self) -> impl Iterator<Item = &ListenAddr> {
        self.inputs.iter().map(|i| &i.listen)
    }
}

/// One key of the configuration file, for logger.toml(5).
#[derive(Debug, Clone)]
pub struct KeyReference {
    /// The table it belongs in: "" (top level), "[[input]]" or "[[output]]".
    pub table: &'static str,
    /// Its name.
    pub name: &'static str,
    /// What it means.
    pub doc: &'static str,
    /// Its default as `--check-config` prints it, where it has one.
    pub default: Option<String>,
}

/// Every key of the file in `--check-config`'s order, each with its meaning and default, from
/// the one schema that reads them: the manual cannot drift from what is read.
pub fn reference() -> Vec<KeyReference> {
    let env = Env {
        runtime_directory: Some(PathBuf::from("/run/logger")),
        xdg_runtime_dir: None,
        state_directory: None,
    };
    let config = Config::defaults(&env);
    let input = config.inputs[0].clone();
    let output = OutputSpec::everything(Output::Journal);
    let mut keys = Vec::new();
    for k in schema::KEYS {
        let limit_after = k.name == "stop-timeout";
        keys.push(KeyReference {
            table: "",
            name: k.name,
            doc: k.doc,
            default: (k.show)(&config).filter(|_| !matches!(k.name, "input" | "output")),
        });
        if limit_after {
            keys.extend(schema::LIMIT_KEYS.iter().map(|k| KeyReference {
                table: "",
                name: k.name,
                doc: k.doc,
                default: (k.show)(&config.limits),
            }));
        }
    }
    keys.extend(schema::INPUT_KEYS.iter().map(|k| KeyReference {
        table: "[[input]]",
        name: k.name,
        doc: k.doc,
        default: (k.show)(&input).filter(|_| k.name != "listen"),
    }));
    keys.extend(schema::OUTPUT_KEYS.iter().map(|k| KeyReference {
        table: "[[output]]",
        name: k.name,
        doc: k.doc,
        default: (k.show)(&output).filter(|_| k.name != "to"),
    }));
    keys
}

/// The built-in inputs of a newcomer's `cargo run --release`.
fn default_inputs(env: &Env, limits: &Limits) -> Vec<InputSpec> {
    let loopback = "127.0.0.1:5514".parse().expect("literal address");
    [
        ListenAddr::inet(Transport::Udp, loopback),
        ListenAddr::inet(Transport::Tcp, loopback),
        ListenAddr::path(Transport::UnixDatagram, env.socket_dir().join("log")),
    ]
    .into_iter()
    .map(|a| InputSpec::plain(a, limits))
    .collect()
}

#[cfg(test)]
mod tests;
