//! `logger`: a small, hardened syslog daemon.
//!
//! It receives syslog from local programs (AF_UNIX datagram and stream sockets) and from the
//! network (UDP, TCP), parses RFC 5424, RFC 3164 and syslog(3) forms, and writes each message to
//! the systemd journal with structured fields, or as escaped lines to a file or stderr. It runs in
//! the foreground as a systemd `Type=notify` service, or daemonizes the SysV way with `--fork`.
//!
//! # Code map
//!
//! Every module, by what it owns (a test holds this map to the modules that exist).
//!
//! The pure part is a crate of its own, [`syslog`] (`crates/syslog`, no I/O in its dependency
//! graph): the message model, the parsers, framing, escaping, and the codecs of RELP, the Journal
//! Export Format, /dev/kmsg records and the disk queue's records. Its own doc comment maps it.
//!
//! Pure (no I/O, never fail on input):
//! - [`cli`]: the command line. [`config`]: defaults + TOML file + flags → [`config::Config`].
//!   [`listen`]: the listen URL syntax. [`allow`]: allow-lists of networks.
//! - [`timestamp`]: a sender's time read, and the date forms of rsyslog's lines (the zone's
//!   offset is the C library's, through [`sys`]).
//! - [`route`]: syslog.conf selectors and per-output matches. [`template`]: path templates.
//! - [`ratelimit`]: per-source token buckets. [`coalesce`]: the pause that batches wake-ups.
//! - [`report`]: what `--status` and the metrics show, and its JSON and text.
//! - [`outputs::formats`] (file and stderr lines: detailed, rsyslog's, RFC 5424, JSON, the
//!   Journal Export Format) and [`outputs::journal::encode`] (journal entries): the output
//!   encodings.
//!
//! I/O and threads:
//! - [`client`]: which command lines belong to util-linux logger(1), and handing them over (exec).
//! - [`inputs`]: binding/adopting sockets, opening the host's logs, one input thread each;
//!   `inputs::journal_remote`: systemd-journal-upload's HTTP requests, answered once taken.
//! - [`outputs`]: the outputs, each on its own thread behind a byte-bounded queue;
//!   `outputs::forward`: remote collectors (connections, acknowledgements); `outputs::queue`:
//!   the memory and disk queues; `outputs::journal_remote` and `outputs::kafka`: uploads to
//!   systemd-journal-remote and production to Kafka, over `outputs::connect`; [`tls`]: rustls
//!   configs.
//! - [`service`]: the loop that routes to the outputs, owns the timers and the notifications;
//!   [`event`]: what reaches it; [`gate`]: the bytes in flight to it; [`receipt`]: what inputs
//!   that acknowledge learn of what the outputs took.
//! - [`lifecycle`]: sd_notify / notify-fd / fork pipe, signals, `--fork`, the PID file.
//! - [`control`]: the control socket (`logger --status`, `--reload`). [`metrics`]: /metrics.
//! - [`selflog`]: the daemon's own log. [`stats`]: counters. [`error`]: errors and exit codes.
//! - [`sys`]: the only module with `unsafe` (fork, env, adopting descriptors, mapped buffers, the
//!   C library's time zone, libsystemd's sd-journal).
//!
//! Start-up order (see [`run`]): parse → configure → read and clear the manager's environment →
//! bind (or adopt) every listener → open the outputs → fork if asked (still single-threaded) →
//! start threads → READY=1.
#![deny(unsafe_code)]
#![warn(unreachable_pub)]
#![warn(missing_docs)]
// The code map above names every module, the crate-private ones too: it is for the crate's
// developers (`cargo doc --document-private-items`), not an API.
#![allow(rustdoc::private_intra_doc_links)]

pub(crate) mod allow;
pub mod cli;
pub(crate) mod client;
pub(crate) mod coalesce;
pub mod config;
pub(crate) mod control;
pub(crate) mod error;
pub(crate) mod event;
pub(crate) mod gate;
pub(crate) mod inputs;
pub(crate) mod lifecycle;
pub(crate) mod listen;
pub(crate) mod metrics;
pub mod outputs;
pub(crate) mod ratelimit;
pub(crate) mod receipt;
pub(crate) mod report;
pub(crate) mod route;
pub(crate) mod selflog;
pub(crate) mod service;
pub(crate) mod stats;
pub(crate) mod sys;
pub(crate) mod template;
pub mod timestamp;
pub(crate) mod tls;

use std::process::ExitCode;

use clap::Parser;

use cli::Cli;
use config::{Config, Env};
use error::{Error, Result, exit};
use lifecycle::notify::Notifier;
use service::{Service, Startup};

/// The whole program: hands a client invocation to util-linux logger(1), else parses the command
/// line, runs, and turns the outcome into an exit status.
pub fn main() -> ExitCode {
    if let Err(e) = client::hand_over_if_client() {
        eprintln!("logger: error: {e}");
        return ExitCode::from(exit::UNAVAILABLE);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::OK
                }
                _ => exit::USAGE,
            };
            let _ = e.print();
            if code == exit::USAGE {
                eprintln!(
                    "note: this is the logger daemon; `logger MESSAGE` without daemon options \
                     sends a message with util-linux logger(1)"
                );
            }
            return ExitCode::from(code);
        }
    };
    let mut notifier = None;
    match run(cli, &mut notifier) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            if let Some(n) = notifier.as_mut() {
                n.failed(&e);
            } else {
                Notifier::default().failed(&e);
            }
            selflog::report_fatal(&e.to_string());
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs the daemon with a parsed command line. `notifier` is filled in as soon as one exists, so
/// the caller can report a failed start to the manager or the fork pipe.
pub fn run(cli: Cli, notifier: &mut Option<Notifier>) -> Result<()> {
    if let Some(word) = cli.stray.first() {
        return Err(Error::Usage(format!(
            "unexpected argument '{word}': the daemon options given make this the logger \
             daemon, which takes no message; to send one, leave the daemon options out \
             (`logger {word:?}` runs util-linux logger(1))"
        )));
    }
    if cli.status || cli.reload {
        return ask_daemon(&cli);
    }
    let env = Env::from_process();
    let config = Config::load(&cli, &env)?;
    if cli.check_config {
        print!("{config}");
        return Ok(());
    }
    if config.fork {
        lifecycle::daemon::prepare(&descriptors_to_keep(&config))?;
    }
    selflog::install(&selflog::foreground_backend(), config.log_level)?;
    let credentials = lifecycle::daemon::resolve_credentials(&config)?;

    let activation = take_manager_environment(&config, notifier)?;
    let activated = inputs::bind::adopt(activation, &config)?;
    let listeners = inputs::bind::bind_all(&config, activated)?;
    let foreground = !config.fork;
    let daemon_uid = credentials
        .as_ref()
        .map_or_else(nix::unistd::Uid::effective, |c| c.ids().0);
    let mut outputs = outputs::Opened::open(
        &config.outputs,
        &config.journal_socket,
        foreground,
        daemon_uid,
    )?;
    let control = bind_control(&config);
    let metrics = bind_metrics(&config)?;

    // Held until the service returns: dropping it removes the PID file.
    let _pidfile = match config.fork {
        true => lifecycle::daemon::daemonize(&config, notifier.as_mut().expect("set above"))?,
        false => None,
    };
    if let Some(credentials) = &credentials {
        // Files we created as root become the user's, so that after the drop a SIGHUP can
        // reopen them, and logrotate's `create` (which copies the old file's owner) makes new
        // ones the user can open.
        let (uid, gid) = credentials.ids();
        outputs.hand_over_files(uid, gid);
        selflog::hand_over_file(uid, gid);
        lifecycle::daemon::drop_privileges(credentials)?;
    }
    let startup = Startup {
        cli,
        env,
        config,
        listeners,
        outputs,
        foreground,
        control,
        metrics,
    };
    let service = Service::new(startup)?;
    service.run(notifier.take().expect("set above"))
}

/// Reads what the service manager passed (sockets to adopt, a `--notify-fd`), fills in
/// `notifier`, then clears the variables so nothing we start inherits them. NOTIFY_SOCKET stays:
/// sd-notify reads it at every call (and `--fork` removes it itself).
fn take_manager_environment(
    config: &Config,
    notifier: &mut Option<Notifier>,
) -> Result<Vec<(std::os::fd::RawFd, String)>> {
    let activation = sd_notify::listen_fds_with_names()
        .map(|fds| fds.collect::<Vec<_>>())
        .map_err(|source| Error::Os {
            step: "reading LISTEN_FDS",
            source,
        })?;
    let notify_fd = config
        .notify_fd
        .map(|fd| {
            sys::adopt_fd(fd)
                .map_err(|e| Error::Usage(format!("--notify-fd {fd}: descriptor not open: {e}")))
        })
        .transpose()?;
    *notifier = Some(Notifier::new(notify_fd));
    sys::unset_env(&[
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
        "WATCHDOG_PID",
        "WATCHDOG_USEC",
    ])
    .map_err(|source| Error::Os {
        step: "clearing the service manager's variables",
        source,
    })?;
    Ok(activation)
}

/// The `/metrics` listener, if `metrics-listen` asks for one.
fn bind_metrics(config: &Config) -> Result<Option<std::net::TcpListener>> {
    config
        .metrics_listen
        .map(|addr| {
            std::net::TcpListener::bind(addr).map_err(|source| Error::Listen {
                address: format!("metrics-listen {addr}"),
                source,
            })
        })
        .transpose()
}

/// `logger --status` and `logger --reload`: asks the running daemon over the control socket the
/// same configuration places (the defaults' if the file cannot be read: a reload is how a
/// broken file is found) and prints its answer.
fn ask_daemon(cli: &Cli) -> Result<()> {
    let env = Env::from_process();
    let socket = match Config::load(cli, &env) {
        Ok(config) => config.control_socket,
        Err(_) => Config::defaults(&env).control_socket,
    };
    let Some(socket) = socket else {
        return Err(Error::Usage(
            "control-socket is \"\" in the configuration: the daemon has no control socket".into(),
        ));
    };
    let ask = match cli.reload {
        true => control::Ask::Reload,
        false => control::Ask::Status { json: cli.json },
    };
    let answer = control::ask(&socket, ask)?;
    print!("{answer}");
    Ok(())
}

/// Binds the control socket. A daemon without one still serves: its failure is logged (another
/// live daemon holds that path, or the directory cannot be written), and `logger --status`
/// then says it finds nobody there.
fn bind_control(config: &Config) -> Option<control::ControlSocket> {
    let path = config.control_socket.as_ref()?;
    match control::ControlSocket::bind(path, config.control_mode) {
        Ok(socket) => Some(socket),
        Err(e) => {
            log::warn!(
                "control socket {}: {e}; logger --status and --reload cannot reach this daemon",
                path.display()
            );
            None
        }
    }
}

/// With `--fork`, the inherited descriptors we were told to use: socket activation's and
/// `--notify-fd`. Every other one above stderr is closed.
fn descriptors_to_keep(config: &Config) -> Vec<i32> {
    let mut keep: Vec<i32> = config.notify_fd.into_iter().collect();
    let ours = std::env::var("LISTEN_PID").ok() == Some(std::process::id().to_string());
    if ours
        && let Some(n) = std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|n| n.parse::<i32>().ok())
    {
        keep.extend(3..3 + n.clamp(0, 1024));
    }
    keep
}

#[cfg(test)]
mod tests {
    /// The code map in this file's documentation names every module the crate has.
    #[test]
    fn every_module_is_on_the_map() {
        let source = include_str!("lib.rs");
        let map: String = source
            .lines()
            .filter_map(|l| l.strip_prefix("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        let modules = source
            .lines()
            .filter_map(|l| {
                l.strip_prefix("pub mod ")
                    .or_else(|| l.strip_prefix("pub(crate) mod "))
            })
            .map(|l| l.trim_end_matches(';'));
        for module in modules {
            assert!(
                map.contains(&format!("[`{module}`]")),
                "the code map in src/lib.rs does not name `{module}`"
            );
        }
    }
}
