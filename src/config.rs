//! The effective configuration: built-in defaults, the TOML file, and the flags, merged in that
//! order (flags win).
//!
//! Pure apart from reading the one file: no sockets, no logging. `Config::load` is called at start
//! and again on every SIGHUP; the result is either a whole valid configuration or an error that
//! names the file, line and key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::Cli;
use crate::error::{Error, Result};
use crate::listen::ListenAddr;
use crate::message::Transport;
use crate::route::Route;

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

/// Where relayed messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Journal if its socket exists, else stderr in the foreground, else the file.
    Auto,
    /// The systemd journal, native protocol.
    Journal,
    /// Readable lines on stderr.
    Stderr,
    /// Readable lines appended to a file.
    File(PathBuf),
}

impl std::str::FromStr for Output {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Output::Auto),
            "journal" => Ok(Output::Journal),
            "stderr" => Ok(Output::Stderr),
            _ => match s.strip_prefix("file:") {
                Some(p) if p.starts_with('/') => {
                    let path = PathBuf::from(p);
                    if crate::template::Template::is_template(&path) {
                        crate::template::Template::parse(&path)
                            .map_err(|e| format!("invalid output '{s}': {e}"))?;
                    }
                    Ok(Output::File(path))
                }
                Some(_) => Err(format!(
                    "invalid output '{s}': the file path must be absolute"
                )),
                None => Err(format!(
                    "invalid output '{s}': expected auto, journal, stderr or file:PATH"
                )),
            },
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Auto => f.write_str("auto"),
            Output::Journal => f.write_str("journal"),
            Output::Stderr => f.write_str("stderr"),
            Output::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

/// How a file or stderr output writes each message (one line each, whatever the format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineFormat {
    /// `TIME HOST TAG[PID] FACILITY.SEVERITY: TEXT`.
    #[default]
    Traditional,
    /// RFC 5424 with MSGID and structured data kept, and our origin as an SD-ELEMENT.
    Rfc5424,
    /// One JSON object per line, Elastic Common Schema names (`log.syslog.*`).
    Json,
}

impl std::str::FromStr for LineFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "traditional" => Ok(LineFormat::Traditional),
            "rfc5424" => Ok(LineFormat::Rfc5424),
            "json" => Ok(LineFormat::Json),
            _ => Err(format!(
                "'{s}' is not a format: traditional, rfc5424 or json"
            )),
        }
    }
}

impl fmt::Display for LineFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LineFormat::Traditional => "traditional",
            LineFormat::Rfc5424 => "rfc5424",
            LineFormat::Json => "json",
        })
    }
}

/// What an output does with a message when its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueuePolicy {
    /// Stop taking messages from the inputs until it has room: nothing is lost, TCP senders
    /// are pushed back and datagrams wait in the kernel.
    #[default]
    Block,
    /// Drop the message for this output (counted); the other outputs and the inputs go on.
    Drop,
}

impl std::str::FromStr for QueuePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "block" => Ok(QueuePolicy::Block),
            "drop" => Ok(QueuePolicy::Drop),
            _ => Err(format!("'{s}' is not a queue policy: block or drop")),
        }
    }
}

impl fmt::Display for QueuePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueuePolicy::Block => "block",
            QueuePolicy::Drop => "drop",
        })
    }
}

/// The default bound of one output's queue, in bytes of messages: four full input batches.
pub const DEFAULT_QUEUE_SIZE: usize = 1 << 20;
/// The range `queue-size` accepts: from one largest message to 1 GiB.
const QUEUE_SIZE_RANGE: std::ops::RangeInclusive<usize> = 64 * 1024..=1 << 30;

/// One output: where messages go, which of them, how they are written, and how much may wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// Where.
    pub target: Output,
    /// Which messages (`match`, `transport`, `program`, `hostname`, `source`).
    pub route: Route,
    /// How, for files and stderr.
    pub format: LineFormat,
    /// What a full queue does (`queue-policy`).
    pub policy: QueuePolicy,
    /// The queue's bound in bytes (`queue-size`).
    pub queue_size: usize,
}

impl OutputSpec {
    /// Every message, in the traditional format: what `--output` and `output = "..."` mean.
    pub fn everything(target: Output) -> OutputSpec {
        OutputSpec {
            target,
            route: Route::all(),
            format: LineFormat::Traditional,
            policy: QueuePolicy::Block,
            queue_size: DEFAULT_QUEUE_SIZE,
        }
    }
}

/// Bounds that keep memory finite whatever clients send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted whole; longer datagrams are truncated, longer TCP frames dropped.
    pub max_message_size: usize,
    /// Concurrent stream connections per listener; more are accepted and closed at once.
    pub max_connections: usize,
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
    /// Inputs.
    pub listen: Vec<ListenAddr>,
    /// True when `listen` is the built-in default (socket activation then replaces it).
    pub listen_is_default: bool,
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
}

/// What the TOML file may say; every key mirrors a flag or names a limit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<Vec<String>>,
    /// `output = "journal"` (one output, everything) or `[[output]]` tables.
    output: Option<toml::Value>,
    pidfile: Option<PathBuf>,
    user: Option<String>,
    group: Option<String>,
    umask: Option<String>,
    log_level: Option<String>,
    log_file: Option<PathBuf>,
    heartbeat: Option<String>,
    max_message_size: Option<usize>,
    max_connections: Option<usize>,
    idle_timeout: Option<String>,
    receive_buffer: Option<usize>,
    rate_limit: Option<u32>,
    rate_limit_burst: Option<u32>,
    escape_control_characters: Option<bool>,
    journal_socket: Option<PathBuf>,
    stop_timeout: Option<String>,
}

/// The environment variables that choose the default socket directory.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `$RUNTIME_DIRECTORY` (systemd's RuntimeDirectory=).
    pub runtime_directory: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`.
    pub xdg_runtime_dir: Option<PathBuf>,
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
        }
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
        let (file, parsed) = match &cli.config {
            Some(path) => (Some(path.clone()), read_file(path)?),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                let path = PathBuf::from(DEFAULT_CONFIG_PATH);
                let parsed = read_file(&path)?;
                (Some(path), parsed)
            }
            None => (None, FileConfig::default()),
        };
        Config::merge(file, parsed, cli, env)
    }

    /// Parses a configuration from TOML text (used by `load` and by tests).
    pub fn from_toml(text: &str, cli: &Cli, env: &Env) -> Result<Config> {
        let parsed = parse_toml(text, Path::new("<config>"))?;
        Config::merge(None, parsed, cli, env)
    }

    fn merge(file: Option<PathBuf>, f: FileConfig, cli: &Cli, env: &Env) -> Result<Config> {
        let origin = file
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the command line".into());
        let bad = |key: &str, msg: String| Error::Config(format!("{origin}: key '{key}': {msg}"));

        let (listen, listen_is_default) = if !cli.listen.is_empty() {
            (cli.listen.clone(), false)
        } else if let Some(urls) = &f.listen {
            let parsed = urls
                .iter()
                .map(|u| u.parse::<ListenAddr>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("listen", e))?;
            (parsed, false)
        } else {
            (default_listen(env), true)
        };
        // An empty list serves only what the service manager passes (socket activation);
        // `sources::bind::bind_all` refuses to start with nothing at all.
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = listen.iter().find(|a| !seen.insert(*a)) {
            return Err(bad("listen", format!("{dup} is listed twice")));
        }

        let outputs = if !cli.output.is_empty() {
            cli.output
                .iter()
                .map(|s| s.parse().map(OutputSpec::everything))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("output", e))?
        } else {
            match &f.output {
                Some(value) => outputs_from(value).map_err(|e| bad("output", e))?,
                None => vec![OutputSpec::everything(Output::Auto)],
            }
        };
        if outputs.is_empty() {
            return Err(bad("output", "no output: give at least one".into()));
        }
        let umask = match cli.umask.as_deref().or(f.umask.as_deref()) {
            Some(s) => {
                (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| matches!(b, b'0'..=b'7')))
                    .then(|| u32::from_str_radix(s, 8).ok())
                    .flatten()
                    .filter(|m| *m <= 0o777)
                    .ok_or_else(|| bad("umask", format!("'{s}' is not an octal mask like 027")))?
            }
            // 027 rather than daemon(7)'s 0: files we create (PID file aside, which is chmod'ed
            // to 0644 explicitly) must not become world-writable or world-readable logs.
            None => 0o027,
        };
        let log_level = match cli.log_level.as_deref().or(f.log_level.as_deref()) {
            Some(s) => s.parse().map_err(|_| {
                bad(
                    "log-level",
                    format!("'{s}' is not one of error, warn, info, debug, trace"),
                )
            })?,
            None => log::LevelFilter::Info,
        };
        let heartbeat = match &f.heartbeat {
            Some(s) => parse_duration(s).map_err(|e| bad("heartbeat", e))?,
            None => Some(Duration::from_secs(300)),
        };
        let idle_timeout = match &f.idle_timeout {
            Some(s) => parse_duration(s)
                .map_err(|e| bad("idle-timeout", e))?
                .ok_or_else(|| bad("idle-timeout", "must be greater than 0".into()))?,
            None => Duration::from_secs(300),
        };
        let stop_timeout = match &f.stop_timeout {
            Some(s) => parse_duration(s)
                .map_err(|e| bad("stop-timeout", e))?
                .ok_or_else(|| bad("stop-timeout", "must be greater than 0".into()))?,
            None => DEFAULT_STOP_TIMEOUT,
        };
        for (key, d) in [
            ("heartbeat", heartbeat),
            ("idle-timeout", Some(idle_timeout)),
            ("stop-timeout", Some(stop_timeout)),
        ] {
            if d.is_some_and(|d| d > MAX_DURATION) {
                return Err(bad(key, "is longer than 7 days".into()));
            }
        }
        let receive_buffer = f.receive_buffer.unwrap_or(DEFAULT_RECEIVE_BUFFER);
        if !(4096..=1 << 30).contains(&receive_buffer) {
            return Err(bad(
                "receive-buffer",
                format!("{receive_buffer} is outside 4096..=1073741824 bytes"),
            ));
        }
        let max_message_size = f.max_message_size.unwrap_or(64 * 1024);
        // RFC 5424 requires receivers to take 2048 bytes; RFC 5426 says UDP receivers should take
        // 8 KiB. Below that we would truncate conforming senders.
        if !(8192..=16 * 1024 * 1024).contains(&max_message_size) {
            return Err(bad(
                "max-message-size",
                format!("{max_message_size} is outside 8192..=16777216 bytes"),
            ));
        }
        let max_connections = f.max_connections.unwrap_or(256);
        if !(1..=65536).contains(&max_connections) {
            return Err(bad(
                "max-connections",
                format!("{max_connections} is outside 1..=65536"),
            ));
        }
        if let Some(fd) = cli.notify_fd
            && fd < 3
        {
            return Err(Error::Usage(format!(
                "--notify-fd {fd}: the descriptor must be 3 or above (0-2 are stdio)"
            )));
        }
        let user = cli.user.clone().or(f.user);
        let group = cli.group.clone().or(f.group);
        if group.is_some() && user.is_none() {
            return Err(bad(
                "group",
                "needs a user too: a group alone would keep uid 0 and every capability".into(),
            ));
        }
        let log_file = f
            .log_file
            .unwrap_or_else(|| PathBuf::from("/var/log/logger.log"));
        if !log_file.is_absolute() {
            return Err(bad(
                "log-file",
                format!("{} must be an absolute path", log_file.display()),
            ));
        }
        let pidfile = cli.pidfile.clone().or(f.pidfile);
        if let Some(p) = &pidfile
            && !p.is_absolute()
        {
            return Err(bad(
                "pidfile",
                format!("{} must be an absolute path", p.display()),
            ));
        }

        Ok(Config {
            file,
            listen,
            listen_is_default,
            outputs,
            fork: cli.fork,
            pidfile,
            user,
            group,
            umask,
            notify_fd: cli.notify_fd,
            log_level,
            log_file,
            heartbeat,
            limits: Limits {
                max_message_size,
                max_connections,
                idle_timeout,
                receive_buffer,
            },
            rate_limit: RateLimit {
                per_second: f.rate_limit.unwrap_or(10_000),
                burst: f.rate_limit_burst.unwrap_or(50_000),
            },
            escape_control_characters: f.escape_control_characters.unwrap_or(true),
            journal_socket: f
                .journal_socket
                .unwrap_or_else(|| PathBuf::from(JOURNAL_SOCKET)),
            stop_timeout,
        })
    }
}

/// Reads `output = "..."` (one output taking everything) or `[[output]]` tables.
fn outputs_from(value: &toml::Value) -> Result<Vec<OutputSpec>, String> {
    match value {
        toml::Value::String(s) => Ok(vec![OutputSpec::everything(s.parse()?)]),
        toml::Value::Array(tables) => tables
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let table = t
                    .as_table()
                    .ok_or_else(|| format!("output #{}: expected a [[output]] table", i + 1))?;
                output_from(table).map_err(|e| format!("output #{}: {e}", i + 1))
            })
            .collect(),
        _ => Err("expected a string (\"journal\") or [[output]] tables".into()),
    }
}

/// One `[[output]]` table: `to`, and optionally `match`, `format`, `transport`, `program`,
/// `hostname`, `source`.
fn output_from(table: &toml::Table) -> Result<OutputSpec, String> {
    let string = |key: &str| -> Result<Option<&str>, String> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("'{key}' must be a string")),
        }
    };
    let list = |key: &str| -> Result<Vec<String>, String> {
        match table.get(key) {
            None => Ok(Vec::new()),
            Some(toml::Value::String(s)) => Ok(vec![s.clone()]),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("'{key}' must be a list of strings"))
                })
                .collect(),
            Some(_) => Err(format!("'{key}' must be a list of strings")),
        }
    };
    const KEYS: [&str; 9] = [
        "to",
        "match",
        "format",
        "transport",
        "program",
        "hostname",
        "source",
        "queue-policy",
        "queue-size",
    ];
    if let Some(unknown) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown key '{unknown}' (expected one of {})",
            KEYS.join(", ")
        ));
    }
    let target: Output = string("to")?
        .ok_or("'to' is missing: journal, stderr or file:PATH")?
        .parse()?;
    let format = match string("format")? {
        Some(f) => f.parse()?,
        None => LineFormat::Traditional,
    };
    if format != LineFormat::Traditional && matches!(target, Output::Journal | Output::Auto) {
        return Err(format!(
            "'format' applies to file and stderr outputs, not {target}"
        ));
    }
    let mut route = Route::all();
    if let Some(selector) = string("match")? {
        route.selector = selector.parse()?;
    }
    route.transports = list("transport")?
        .iter()
        .map(|t| {
            Transport::from_name(t)
                .ok_or_else(|| format!("'{t}' is not a transport: unix, unix-stream, udp or tcp"))
        })
        .collect::<Result<_, _>>()?;
    route.programs = list("program")?;
    route.hostnames = list("hostname")?;
    route.sources = list("source")?
        .iter()
        .map(|n| n.parse())
        .collect::<Result<_, _>>()?;
    let policy = match string("queue-policy")? {
        Some(p) => p.parse()?,
        None => QueuePolicy::Block,
    };
    let queue_size = match table.get("queue-size") {
        None => DEFAULT_QUEUE_SIZE,
        Some(toml::Value::Integer(n)) => usize::try_from(*n)
            .ok()
            .filter(|n| QUEUE_SIZE_RANGE.contains(n))
            .ok_or_else(|| {
                format!(
                    "'queue-size' {n} is outside {}..={} bytes",
                    QUEUE_SIZE_RANGE.start(),
                    QUEUE_SIZE_RANGE.end()
                )
            })?,
        Some(_) => return Err("'queue-size' must be a number of bytes".into()),
    };
    Ok(OutputSpec {
        target,
        route,
        format,
        policy,
        queue_size,
    })
}

/// The built-in inputs of a newcomer's `cargo run --release`.
fn default_listen(env: &Env) -> Vec<ListenAddr> {
    vec![
        ListenAddr::Udp("127.0.0.1:5514".parse().expect("literal address")),
        ListenAddr::Tcp("127.0.0.1:5514".parse().expect("literal address")),
        ListenAddr::UnixDatagram(env.socket_dir().join("log")),
    ]
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
        path: path.to_owned(),
        source,
    })?;
    parse_toml(&text, path)
}

fn parse_toml(text: &str, path: &Path) -> Result<FileConfig> {
    toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end();
        let Some(span) = e.span() else {
            return Error::Config(format!("{}: {message}", path.display()));
        };
        let start = span.start.min(text.len());
        let line = text[..start].matches('\n').count() + 1;
        let source = text.lines().nth(line - 1).unwrap_or("").trim();
        Error::Config(format!(
            "{}:{line}: {message} (in `{source}`)",
            path.display()
        ))
    })
}

/// Parses `"0"` (off), `"250ms"`, `"30s"`, `"5m"`, `"1h"` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 250ms, 30s, 5m or 1h"))?;
    // Minutes and hours saturate; each key's range (MAX_DURATION) then bounds the result, so
    // no deadline computed from it can overflow the clock.
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("'{s}' has an unknown unit (use ms, s, m or h)")),
    };
    Ok((!d.is_zero()).then_some(d))
}

fn fmt_duration(d: Option<Duration>) -> String {
    match d {
        None => "0".into(),
        Some(d) if d.subsec_millis() != 0 => format!("{}ms", d.as_millis()),
        Some(d) => format!("{}s", d.as_secs()),
    }
}

impl fmt::Display for Config {
    /// The effective configuration as TOML that `--config` would accept back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = |s: &str| format!("{s:?}");
        match &self.file {
            Some(p) => writeln!(f, "# effective configuration (file {})", p.display())?,
            None => writeln!(f, "# effective configuration (built-in defaults)")?,
        }
        let listen: Vec<String> = self.listen.iter().map(|a| q(&a.to_string())).collect();
        writeln!(f, "listen = [{}]", listen.join(", "))?;
        if let Some(p) = &self.pidfile {
            writeln!(f, "pidfile = {}", q(&p.display().to_string()))?;
        }
        if let Some(u) = &self.user {
            writeln!(f, "user = {}", q(u))?;
        }
        if let Some(g) = &self.group {
            writeln!(f, "group = {}", q(g))?;
        }
        writeln!(f, "umask = \"{:03o}\"", self.umask)?;
        writeln!(
            f,
            "log-level = {}",
            q(&self.log_level.to_string().to_lowercase())
        )?;
        writeln!(f, "log-file = {}", q(&self.log_file.display().to_string()))?;
        writeln!(f, "heartbeat = {}", q(&fmt_duration(self.heartbeat)))?;
        writeln!(f, "max-message-size = {}", self.limits.max_message_size)?;
        writeln!(f, "max-connections = {}", self.limits.max_connections)?;
        writeln!(
            f,
            "idle-timeout = {}",
            q(&fmt_duration(Some(self.limits.idle_timeout)))
        )?;
        writeln!(f, "receive-buffer = {}", self.limits.receive_buffer)?;
        writeln!(f, "rate-limit = {}", self.rate_limit.per_second)?;
        writeln!(f, "rate-limit-burst = {}", self.rate_limit.burst)?;
        writeln!(
            f,
            "escape-control-characters = {}",
            self.escape_control_characters
        )?;
        writeln!(
            f,
            "journal-socket = {}",
            q(&self.journal_socket.display().to_string())
        )?;
        writeln!(
            f,
            "stop-timeout = {}",
            q(&fmt_duration(Some(self.stop_timeout)))
        )?;
        // Tables last: TOML puts every key after a table header into that table.
        for out in &self.outputs {
            let list = |items: Vec<String>| {
                let quoted: Vec<String> = items.iter().map(|i| q(i)).collect();
                format!("[{}]", quoted.join(", "))
            };
            writeln!(f, "\n[[output]]\nto = {}", q(&out.target.to_string()))?;
            writeln!(f, "match = {}", q(&out.route.selector.to_string()))?;
            writeln!(f, "format = {}", q(&out.format.to_string()))?;
            writeln!(f, "queue-policy = {}", q(&out.policy.to_string()))?;
            writeln!(f, "queue-size = {}", out.queue_size)?;
            let r = &out.route;
            if !r.transports.is_empty() {
                let names = r.transports.iter().map(|t| t.name().to_owned()).collect();
                writeln!(f, "transport = {}", list(names))?;
            }
            if !r.programs.is_empty() {
                writeln!(f, "program = {}", list(r.programs.clone()))?;
            }
            if !r.hostnames.is_empty() {
                writeln!(f, "hostname = {}", list(r.hostnames.clone()))?;
            }
            if !r.sources.is_empty() {
                let nets = r.sources.iter().map(|n| n.to_string()).collect();
                writeln!(f, "source = {}", list(nets))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env {
            runtime_directory: None,
            xdg_runtime_dir: Some("/run/user/1000".into()),
        }
    }

    #[test]
    fn defaults_listen_on_loopback_and_the_runtime_socket() {
        let c = Config::from_toml("", &Cli::default(), &env()).unwrap();
        let listen: Vec<String> = c.listen.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            listen,
            [
                "udp://127.0.0.1:5514",
                "tcp://127.0.0.1:5514",
                "unix:///run/user/1000/logger/log"
            ]
        );
        assert!(c.listen_is_default);
        assert_eq!(c.outputs, vec![OutputSpec::everything(Output::Auto)]);
        assert_eq!(c.umask, 0o027);
        assert_eq!(c.heartbeat, Some(Duration::from_secs(300)));
    }

    #[test]
    fn runtime_directory_wins_over_xdg() {
        let e = Env {
            runtime_directory: Some("/run/logger:/run/other".into()),
            ..env()
        };
        assert_eq!(e.socket_dir(), PathBuf::from("/run/logger"));
        assert_eq!(Env::default().socket_dir(), PathBuf::from("/run/logger"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let cli = Cli {
            listen: vec!["tcp://127.0.0.1:1".parse().unwrap()],
            output: vec!["stderr".into()],
            ..Cli::default()
        };
        let c = Config::from_toml(
            "listen = [\"udp://127.0.0.1:9\"]\noutput = \"journal\"\nheartbeat = \"0\"\n",
            &cli,
            &env(),
        )
        .unwrap();
        assert_eq!(c.listen, cli.listen);
        assert_eq!(c.outputs, vec![OutputSpec::everything(Output::Stderr)]);
        assert_eq!(c.heartbeat, None);
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let err = Config::from_toml("output = \"stderr\"\nlisen = []\n", &Cli::default(), &env())
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2:") && err.contains("lisen"), "{err}");
        let err = Config::from_toml("listen = [\"udp://x\"]", &Cli::default(), &env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("key 'listen'"), "{err}");
        let err = Config::from_toml("max-message-size = 100", &Cli::default(), &env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("max-message-size"), "{err}");
        let err = Config::from_toml("receive-buffer = 100", &Cli::default(), &env())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("receive-buffer") && err.contains("4096"),
            "{err}"
        );
    }

    #[test]
    fn printed_configuration_reads_back_identically() {
        let c = Config::from_toml(
            "listen = [\"tcp://[::1]:0\"]\noutput = \"file:/var/log/x.log\"\nheartbeat = \"250ms\"\n\
             rate-limit = 0\numask = \"077\"\n",
            &Cli::default(),
            &env(),
        )
        .unwrap();
        let again = Config::from_toml(&c.to_string(), &Cli::default(), &env()).unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn the_shipped_file_is_the_defaults_commented_out() {
        let shipped = include_str!("../packaging/logger.toml");
        assert_eq!(
            Config::from_toml(shipped, &Cli::default(), &Env::default()).unwrap(),
            Config::from_toml("", &Cli::default(), &Env::default()).unwrap()
        );
        // Uncommented, every key but the examples (user, pidfile, the [[output]] table at the
        // end) gives the defaults again.
        let defaults_part = shipped.split("#[[output]]").next().unwrap();
        let uncommented: String = defaults_part
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| l.contains(" = ") && !l.starts_with("user") && !l.starts_with("pidfile"))
            .map(|l| format!("{}\n", l.split("  #").next().unwrap()))
            .collect();
        let mut defaults = Config::from_toml("", &Cli::default(), &Env::default()).unwrap();
        let mut parsed = Config::from_toml(&uncommented, &Cli::default(), &Env::default())
            .unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        // The listen list as written is the default, but written: socket activation replaces
        // only the built-in one.
        assert!(!parsed.listen_is_default);
        parsed.listen_is_default = true;
        defaults.file = None;
        assert_eq!(parsed, defaults);
    }

    #[test]
    fn queues_and_the_stop_deadline_are_configured_checked_and_printed_back() {
        let text = "stop-timeout = \"3s\"\n[[output]]\nto = \"stderr\"\nqueue-policy = \"drop\"\n\
                    queue-size = 65536\n[[output]]\nto = \"file:/var/log/r/{hostname}.log\"\n";
        let c = Config::from_toml(text, &Cli::default(), &env()).unwrap();
        assert_eq!(c.stop_timeout, Duration::from_secs(3));
        assert_eq!(c.outputs[0].policy, QueuePolicy::Drop);
        assert_eq!(c.outputs[0].queue_size, 65536);
        assert_eq!(c.outputs[1].policy, QueuePolicy::Block);
        assert_eq!(c.outputs[1].queue_size, DEFAULT_QUEUE_SIZE);
        let again = Config::from_toml(&c.to_string(), &Cli::default(), &env()).unwrap();
        assert_eq!(again.outputs, c.outputs);
        for (bad, key) in [
            ("stop-timeout = \"0\"", "stop-timeout"),
            ("stop-timeout = \"8d\"", "stop-timeout"),
            (
                "[[output]]\nto = \"stderr\"\nqueue-policy = \"maybe\"",
                "queue policy",
            ),
            (
                "[[output]]\nto = \"stderr\"\nqueue-size = 100",
                "queue-size",
            ),
            (
                "[[output]]\nto = \"file:/l/{host}.log\"",
                "unknown placeholder",
            ),
        ] {
            let err = Config::from_toml(bad, &Cli::default(), &env())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
    }

    #[test]
    fn output_tables_choose_with_rules_and_print_back() {
        let text = "[[output]]\nto = \"journal\"\nmatch = \"*.*;auth,authpriv.none\"\n\
                    [[output]]\nto = \"file:/var/log/auth.log\"\nmatch = \"auth,authpriv.*\"\n\
                    format = \"json\"\n\
                    [[output]]\nto = \"file:/var/log/remote.log\"\ntransport = [\"udp\", \"tcp\"]\n\
                    program = \"sshd\"\nhostname = [\"gw1\"]\nsource = [\"10.0.0.0/8\"]\n";
        let c = Config::from_toml(text, &Cli::default(), &env()).unwrap();
        assert_eq!(c.outputs.len(), 3);
        assert_eq!(c.outputs[1].format, LineFormat::Json);
        assert_eq!(
            c.outputs[2].route.transports,
            [Transport::Udp, Transport::Tcp]
        );
        assert_eq!(c.outputs[2].route.programs, ["sshd"]);
        let again = Config::from_toml(&c.to_string(), &Cli::default(), &env()).unwrap();
        assert_eq!(c.outputs, again.outputs);
        // --output replaces the file's outputs; each takes everything.
        let cli = Cli {
            output: vec!["stderr".into(), "file:/tmp/x.log".into()],
            ..Cli::default()
        };
        let c = Config::from_toml(text, &cli, &env()).unwrap();
        assert_eq!(
            c.outputs,
            [
                OutputSpec::everything(Output::Stderr),
                OutputSpec::everything(Output::File("/tmp/x.log".into()))
            ]
        );
    }

    #[test]
    fn bad_output_tables_say_which_and_why() {
        for (text, needle) in [
            ("[[output]]\nmatch = \"*.*\"\n", "'to' is missing"),
            (
                "[[output]]\nto = \"journal\"\nfromat = \"json\"\n",
                "unknown key 'fromat'",
            ),
            (
                "[[output]]\nto = \"journal\"\nformat = \"json\"\n",
                "applies to file",
            ),
            (
                "[[output]]\nto = \"stderr\"\nmatch = \"mial.*\"\n",
                "'mial'",
            ),
            (
                "[[output]]\nto = \"stderr\"\ntransport = [\"smtp\"]\n",
                "not a transport",
            ),
            (
                "[[output]]\nto = \"stderr\"\nsource = [\"10.0.0.0/40\"]\n",
                "not a network",
            ),
            (
                "[[output]]\nto = \"stderr\"\n[[output]]\nto = \"relative.log\"\n",
                "output #2",
            ),
            ("output = []\n", "no output"),
        ] {
            let err = Config::from_toml(text, &Cli::default(), &env())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(None));
        assert_eq!(parse_duration("5m"), Ok(Some(Duration::from_secs(300))));
        assert_eq!(
            parse_duration("250ms"),
            Ok(Some(Duration::from_millis(250)))
        );
        assert_eq!(parse_duration("7"), Ok(Some(Duration::from_secs(7))));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
