//! Staying out of util-linux's way: an invocation meant for the logger(1) *client* is handed,
//! argv unchanged, to util-linux's `logger`.
//!
//! Installed as `/usr/sbin/logger` (or `/usr/local/sbin/logger`), this daemon comes before
//! util-linux's `/usr/bin/logger` in root's PATH and in every service's. Scripts everywhere run
//! `logger -t backup done` or `echo x | logger`; without this, they would get a usage error or
//! start a daemon. So, before anything else:
//!
//! - any daemon option before `--` (`--listen`, `--fork`, `--config`, ...) → the daemon;
//! - an option neither program knows (`--lisen`, `-x`) → the daemon, whose usage error names
//!   it and suggests the option meant (exit 64), rather than util-linux's "unrecognized option";
//! - only `-h`/`--help` or `--version` → the daemon's (its help says how to reach the client);
//!   `-V` stays util-linux's, which scripts ask for the client's version;
//! - anything else on the command line (a message, util-linux options, `--`) → the client;
//! - no argument at all: the client if standard input is a pipe, a socket or a file
//!   (`echo x | logger`, whatever the environment: a script inside a notify service has
//!   `NOTIFY_SOCKET` set too); otherwise (a terminal, `/dev/null` from a service manager) the
//!   daemon.
//!
//! util-linux's options are read as its getopt_long reads them: short options clustered
//! (`-is`), a value attached or in the next argument (`-tbackup`, `-t backup`), long options
//! abbreviated to any unambiguous prefix (`--ta`).
//!
//! The client is the first `logger` in PATH that is not this executable, else
//! `/usr/bin/logger`. It replaces this process with argv unchanged, argv\[0\] included (same
//! pid, descriptors and environment), so it behaves exactly as if it had been run directly.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// The daemon's long options (`cli::Cli`). util-linux logger has none of these names.
const DAEMON_OPTIONS: &[&str] = &[
    "--config",
    "--listen",
    "--output",
    "--fork",
    "--pidfile",
    "--user",
    "--group",
    "--umask",
    "--notify-fd",
    "--log-level",
    "--check-config",
    "--status",
    "--json",
    "--reload",
];

/// Options the daemon answers when they are all there is.
const SHARED_OPTIONS: &[&str] = &["-h", "--help", "--version"];

/// Whether an option of util-linux logger takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    No,
    Required,
    /// Only attached with `=` (`--id=42`).
    Optional,
}

/// util-linux logger 2.38's long options (logger --help).
const CLIENT_LONG: &[(&str, Value)] = &[
    ("id", Value::Optional),
    ("file", Value::Required),
    ("skip-empty", Value::No),
    ("no-act", Value::No),
    ("priority", Value::Required),
    ("octet-count", Value::No),
    ("prio-prefix", Value::No),
    ("stderr", Value::No),
    ("size", Value::Required),
    ("tag", Value::Required),
    ("server", Value::Required),
    ("port", Value::Required),
    ("tcp", Value::No),
    ("udp", Value::No),
    ("rfc3164", Value::No),
    ("rfc5424", Value::Optional),
    ("sd-id", Value::Required),
    ("sd-param", Value::Required),
    ("msgid", Value::Required),
    ("socket", Value::Required),
    ("socket-errors", Value::Optional),
    ("journald", Value::Optional),
    ("help", Value::No),
    ("version", Value::No),
];

/// util-linux logger's short options without a value, and with one.
const CLIENT_SHORT: &[u8] = b"iesTdhV";
const CLIENT_SHORT_WITH_VALUE: &[u8] = b"fpStnPu";

/// Where util-linux installs the client on Debian and every other distribution.
const UTIL_LINUX_LOGGER: &str = "/usr/bin/logger";

/// What a command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invocation {
    /// Run the daemon.
    Daemon,
    /// Hand the command line to util-linux logger(1).
    Client,
}

/// How standard input looks, for an invocation without arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Surroundings {
    /// Standard input is a pipe, a socket or a regular file: something to read lines from.
    pub stdin_has_input: bool,
}

impl Surroundings {
    /// Reads them from this process.
    pub(crate) fn of_process() -> Surroundings {
        // fstat(2) on descriptor 0 itself: /dev/stdin may be missing (a chroot, a private
        // /dev), and a missing one must not turn `echo x | logger` into a daemon.
        use nix::sys::stat::{SFlag, fstat};
        let stdin_has_input = fstat(std::io::stdin()).is_ok_and(|st| {
            let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            [SFlag::S_IFIFO, SFlag::S_IFSOCK, SFlag::S_IFREG].contains(&kind)
        });
        Surroundings { stdin_has_input }
    }
}

/// What one argument is to util-linux's getopt_long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientArg {
    /// An option of its; `true` if the next argument is its value.
    Option(bool),
    /// Not an option: a word of the message.
    Word,
    /// An option it does not know (or an ambiguous abbreviation).
    Unknown,
}

fn client_arg(arg: &[u8]) -> ClientArg {
    if let Some(long) = arg.strip_prefix(b"--") {
        let (name, attached) = match long.iter().position(|&b| b == b'=') {
            Some(i) => (&long[..i], true),
            None => (long, false),
        };
        let exact = CLIENT_LONG.iter().find(|(n, _)| n.as_bytes() == name);
        let mut prefixed = CLIENT_LONG
            .iter()
            .filter(|(n, _)| !name.is_empty() && n.as_bytes().starts_with(name));
        let found = exact.or_else(|| match (prefixed.next(), prefixed.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        });
        return match found {
            Some((_, Value::Required)) => ClientArg::Option(!attached),
            Some(_) => ClientArg::Option(false),
            None => ClientArg::Unknown,
        };
    }
    let Some(cluster) = arg.strip_prefix(b"-").filter(|c| !c.is_empty()) else {
        return ClientArg::Word;
    };
    for (i, c) in cluster.iter().enumerate() {
        if CLIENT_SHORT_WITH_VALUE.contains(c) {
            return ClientArg::Option(i + 1 == cluster.len());
        }
        if !CLIENT_SHORT.contains(c) {
            return ClientArg::Unknown;
        }
    }
    ClientArg::Option(false)
}

/// Decides what `args` (without argv\[0\]) ask for. Pure.
pub(crate) fn classify(args: &[OsString], around: Surroundings) -> Invocation {
    if args.is_empty() {
        return match around.stdin_has_input {
            true => Invocation::Client,
            false => Invocation::Daemon,
        };
    }
    let mut only_shared = true;
    let mut iter = args.iter().map(|a| a.as_bytes());
    while let Some(arg) = iter.next() {
        if arg == b"--" {
            return Invocation::Client;
        }
        let name = arg.split(|&b| b == b'=').next().unwrap_or(arg);
        if DAEMON_OPTIONS.iter().any(|o| o.as_bytes() == name) {
            return Invocation::Daemon;
        }
        if SHARED_OPTIONS.iter().any(|o| o.as_bytes() == arg) {
            continue;
        }
        only_shared = false;
        match client_arg(arg) {
            // The daemon's usage error names it, with the option it resembles.
            ClientArg::Unknown => return Invocation::Daemon,
            ClientArg::Option(true) => {
                iter.next();
            }
            ClientArg::Option(false) | ClientArg::Word => {}
        }
    }
    match only_shared {
        true => Invocation::Daemon,
        false => Invocation::Client,
    }
}

/// The util-linux client: the first `logger` in `path` that is not `ourselves` (compared by
/// device and inode, so a symlink to us is skipped too), else /usr/bin/logger if it is not us.
pub(crate) fn find_client(path: Option<&OsStr>, ourselves: Option<&Path>) -> Option<PathBuf> {
    let identity = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let us = ourselves.and_then(identity);
    let usable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
            && (us.is_none() || identity(p) != us)
    };
    path.into_iter()
        .flat_map(std::env::split_paths)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join("logger"))
        .chain(std::iter::once(PathBuf::from(UTIL_LINUX_LOGGER)))
        .find(|p| usable(p))
}

/// If this process was invoked as the client, replaces it with util-linux logger; returns only
/// for a daemon invocation, or with the reason the client could not be run.
pub(crate) fn hand_over_if_client() -> Result<(), String> {
    let mut argv = std::env::args_os();
    let arg0 = argv.next().unwrap_or_else(|| "logger".into());
    let args: Vec<OsString> = argv.collect();
    if classify(&args, Surroundings::of_process()) == Invocation::Daemon {
        return Ok(());
    }
    let ourselves = std::env::current_exe().ok();
    let Some(client) = find_client(std::env::var_os("PATH").as_deref(), ourselves.as_deref())
    else {
        return Err(format!(
            "this is the logger daemon, and util-linux logger(1) is not installed to send \
             the message (it is in {UTIL_LINUX_LOGGER}, Debian package bsdutils); run \
             `logger --help` for the daemon"
        ));
    };
    let error = std::process::Command::new(&client)
        .arg0(arg0)
        .args(&args)
        .exec();
    Err(format!("cannot run {}: {error}", client.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    const TERMINAL: Surroundings = Surroundings {
        stdin_has_input: false,
    };
    const PIPE: Surroundings = Surroundings {
        stdin_has_input: true,
    };

    #[test]
    fn util_linux_invocations_are_the_clients() {
        for a in [
            &["hello"][..],
            &["-t", "backup", "done"],
            &["-p", "local3.warning", "-i", "x"],
            &["--id=42", "x"],
            &["-n", "127.0.0.1", "-P", "514", "-T", "x"],
            &["-d", "-n", "h", "x"],
            &["-u", "/dev/log", "x"],
            &["--rfc5424", "x"],
            &["-f", "/etc/hostname"],
            &["-s", "-t", "x"],
            &["--", "--fork"],
            &["-t", "--fork", "tagged with a daemon option's name"],
            &["-i"],
            &["-h", "hello"],
            // Scripts ask util-linux for its version.
            &["-V"],
            &["-is", "clustered"],
            &["-tbackup", "attached value"],
            &["-ip", "user.info", "x"],
            &["--ta", "abbreviated", "x"],
            &["--rfc5424=notime", "x"],
            &["--id", "x"],
            &["--socket-errors=off", "x"],
            &["x", "-d"],
            &["-", "x"],
        ] {
            assert_eq!(classify(&args(a), TERMINAL), Invocation::Client, "{a:?}");
        }
    }

    #[test]
    fn daemon_invocations_stay_the_daemons() {
        for a in [
            &["--fork"][..],
            &["--notify-fd", "3"],
            &["--config=/etc/logger/logger.toml"],
            &["--listen", "udp://0.0.0.0:514", "--output=journal"],
            &["--check-config"],
            &["--help"],
            &["-h"],
            &["--version"],
            // Options neither program knows: the daemon's usage error, with a suggestion.
            &["--lisen", "udp://0.0.0.0:514"],
            &["-x", "hello"],
            &["-ix"],
            &["--s", "ambiguous"],
            &["hello", "--chek-config"],
            // A daemon option with a stray word is the daemon's usage error, not a message.
            &["--fork", "hello"],
        ] {
            assert_eq!(classify(&args(a), TERMINAL), Invocation::Daemon, "{a:?}");
        }
    }

    #[test]
    fn without_arguments_stdin_alone_decides() {
        assert_eq!(classify(&[], TERMINAL), Invocation::Daemon);
        assert_eq!(classify(&[], PIPE), Invocation::Client);
    }

    #[test]
    fn the_client_is_found_later_in_path_never_ourselves() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("sbin");
        let theirs = dir.path().join("bin");
        for d in [&ours, &theirs] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("logger"), "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(
                d.join("logger"),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
        }
        let path = std::env::join_paths([&ours, &theirs]).unwrap();
        let found = find_client(Some(&path), Some(&ours.join("logger")));
        assert_eq!(found, Some(theirs.join("logger")));
        // A symlink to ourselves is ourselves.
        std::fs::remove_file(theirs.join("logger")).unwrap();
        std::os::unix::fs::symlink(ours.join("logger"), theirs.join("logger")).unwrap();
        let found = find_client(Some(&path), Some(&ours.join("logger")));
        assert_ne!(found, Some(theirs.join("logger")));
        assert_ne!(found, Some(ours.join("logger")));
    }
}
