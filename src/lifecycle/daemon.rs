//! `--fork`: the SysV daemonization of daemon(7), with a readiness pipe so the launching command
//! exits 0 only once the daemon serves, and non-zero with the daemon's own error text otherwise.
//!
//! The order matters and each step says why. Everything that can fail early (configuration,
//! binding, opening the output) has already happened in `run` before `prepare` and `daemonize`
//! are called, so those errors still reach the terminal directly. The process is single-threaded
//! until `daemonize` returns: `sys::fork` checks it, and the service starts its threads only after.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::unistd::{Gid, Group, Uid, User};

use crate::config::Config;
use crate::error::{Error, Result, exit};
use crate::lifecycle::notify::{Notifier, READY_BYTE};
use crate::lifecycle::pidfile::PidFile;
use crate::selflog;
use crate::sys::{self, Forked};

/// How long the launching process waits for the daemon to report.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Resets what a process inherits and a daemon must not keep: every descriptor above 2 except the
/// ones we were explicitly given (socket activation, --notify-fd), signal dispositions and the
/// signal mask, and manager variables meant for another process. Called first thing with
/// `--fork`, before we open anything of our own, so nothing we own can be closed by mistake.
pub(crate) fn prepare(keep: &[i32]) -> Result<()> {
    // daemon(7) step 1: close all open descriptors except stdin, stdout, stderr.
    sys::close_descriptors_above_stderr(keep);
    // Steps 2 and 3: reset signal handlers (an ignored SIGTERM or SIGHUP from the launcher would
    // make us unstoppable or unreloadable) and unblock all signals.
    sys::reset_signal_handlers();
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|e| Error::os("unblocking signals", e))?;
    // Step 4: sanitize the environment. LISTEN_* meant for another pid is not ours.
    let ours = std::env::var("LISTEN_PID").ok() == Some(std::process::id().to_string());
    if !ours {
        sys::unset_env(&["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]).map_err(|source| {
            Error::Os {
                step: "clearing another process's LISTEN_* variables",
                source,
            }
        })?;
    }
    Ok(())
}

/// The user and group to switch to, resolved before forking so a typo fails on the terminal.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    uid: Uid,
    gid: Gid,
    name: String,
}

impl Credentials {
    /// The user and group switched to.
    pub(crate) fn ids(&self) -> (Uid, Gid) {
        (self.uid, self.gid)
    }
}

/// Resolves `--user`/`--group`; None when neither is given.
pub(crate) fn resolve_credentials(config: &Config) -> Result<Option<Credentials>> {
    let user = match &config.user {
        Some(name) => Some(
            User::from_name(name)
                .map_err(|e| Error::Config(format!("user {name}: {e}")))?
                .ok_or_else(|| Error::Config(format!("user {name} does not exist")))?,
        ),
        None => None,
    };
    let gid = match &config.group {
        Some(name) => Some(
            Group::from_name(name)
                .map_err(|e| Error::Config(format!("group {name}: {e}")))?
                .ok_or_else(|| Error::Config(format!("group {name} does not exist")))?
                .gid,
        ),
        None => None,
    };
    // `config` refuses a group without a user: it would keep uid 0 and every capability.
    Ok(user.map(|u| Credentials {
        uid: u.uid,
        gid: gid.unwrap_or(u.gid),
        name: u.name,
    }))
}

/// daemon(7) step 13: drop privileges, after everything that needs them (privileged ports, the
/// PID file, log files) is open. Supplementary groups first, then the group, then the user: in
/// any other order the later calls are no longer permitted. Refuses to continue as root if the
/// drop did not take.
pub(crate) fn drop_privileges(creds: &Credentials) -> Result<()> {
    nix::unistd::setgroups(&[creds.gid]).map_err(|e| Error::os("setgroups", e))?;
    nix::unistd::setgid(creds.gid).map_err(|e| Error::os("setgid", e))?;
    nix::unistd::setuid(creds.uid).map_err(|e| Error::os("setuid", e))?;
    if !creds.uid.is_root() && (Uid::current().is_root() || Uid::effective().is_root()) {
        return Err(Error::Runtime(format!(
            "still root after switching to {}; refusing to run",
            creds.name
        )));
    }
    // Nothing we exec or are tricked into exec'ing may gain privileges back (setuid binaries,
    // file capabilities).
    nix::sys::prctl::set_no_new_privs().map_err(|e| Error::os("setting no_new_privs", e))?;
    log::info!(
        "running as {} (uid {}, gid {})",
        creds.name,
        creds.uid,
        creds.gid
    );
    Ok(())
}

/// The default PID file: /run/logger.pid as root, none otherwise.
pub(crate) fn pidfile_path(config: &Config) -> Option<PathBuf> {
    config.pidfile.clone().or_else(|| {
        Uid::effective()
            .is_root()
            .then(|| PathBuf::from("/run/logger.pid"))
    })
}

/// Forks twice and returns in the daemon, with the readiness pipe handed to `notifier` and the
/// locked PID file. The launching process never returns: it waits on the pipe and exits.
pub(crate) fn daemonize(config: &Config, notifier: &mut Notifier) -> Result<Option<PidFile>> {
    // Step 6: the readiness pipe the launcher waits on (daemon(7) step 14 and 15).
    let (read_end, write_end) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::os("creating a pipe", e))?;
    match sys::fork().map_err(|source| Error::Os {
        step: "fork",
        source,
    })? {
        Forked::Parent(child) => {
            drop(write_end);
            launcher(read_end, child)
        }
        Forked::Child => {}
    }
    drop(read_end);
    // Step 7: a new session, so we are no longer attached to the launcher's terminal.
    nix::unistd::setsid().map_err(|e| Error::os("setsid", e))?;
    // Step 8: fork again and let the session leader exit, so the daemon can never reacquire a
    // controlling terminal.
    if let Forked::Parent(_) = sys::fork().map_err(|source| Error::Os {
        step: "second fork",
        source,
    })? {
        sys::exit_now(0);
    }
    // From here on errors travel through the pipe.
    notifier.set_ready_pipe(write_end);
    // Step 9: stdin, stdout and stderr to /dev/null: the terminal is not ours any more, and a
    // write to a closed terminal must not kill or block us.
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|source| Error::Os {
            step: "opening /dev/null",
            source,
        })?;
    for redirect in [
        nix::unistd::dup2_stdin,
        nix::unistd::dup2_stdout,
        nix::unistd::dup2_stderr,
    ] {
        redirect(null.as_fd()).map_err(|e| Error::os("redirecting stdio to /dev/null", e))?;
    }
    // Step 10: umask 027, not daemon(7)'s 0: files we create must not be world-writable, and logs
    // are not for everyone (the PID file is set to 0644 explicitly).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(config.umask));
    // Step 11: do not keep any mount point busy.
    nix::unistd::chdir("/").map_err(|e| Error::os("chdir /", e))?;
    // The manager's notify socket belongs to the launcher, which reports MAINPID= for us.
    sys::unset_env(&["NOTIFY_SOCKET"]).map_err(|source| Error::Os {
        step: "clearing NOTIFY_SOCKET",
        source,
    })?;
    // Our own log: no stderr any more. The journal if there is one, else a file.
    selflog::install(
        &selflog::daemon_backend(&config.journal_socket, &config.log_file),
        config.log_level,
    )?;
    // Step 12: the PID file, written before the launcher exits (it exits on our ready byte).
    let pidfile = match pidfile_path(config) {
        Some(path) => Some(PidFile::create(&path, std::process::id())?),
        None => None,
    };
    Ok(pidfile)
}

/// The launching process: waits for the daemon's word, reports it, exits.
fn launcher(pipe: OwnedFd, middle: nix::unistd::Pid) -> ! {
    // The session leader exits at once; reap it so it does not linger as a zombie.
    let _ = nix::sys::wait::waitpid(middle, None);
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut report = Vec::new();
    let mut file = std::fs::File::from(pipe);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(0) => {
                eprintln!(
                    "logger: error: the daemon did not report readiness within {}s",
                    READY_TIMEOUT.as_secs()
                );
                sys::exit_now(i32::from(exit::RUNTIME));
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("logger: error: waiting for the daemon: {e}");
                sys::exit_now(i32::from(exit::OS));
            }
        }
        let mut chunk = [0u8; 4096];
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => report.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("logger: error: reading the daemon's report: {e}");
                sys::exit_now(i32::from(exit::OS));
            }
        }
    }
    match report.split_first() {
        Some((&READY_BYTE, pid)) => {
            let pid = String::from_utf8_lossy(pid).trim().to_owned();
            // Under a service manager (Type=notify with --fork) tell it which process is the
            // service; the launcher is the main process until it exits.
            if let Ok(pid) = pid.parse::<u32>() {
                let _ = sd_notify::notify(&[
                    sd_notify::NotifyState::MainPid(pid),
                    sd_notify::NotifyState::Ready,
                ]);
            }
            sys::exit_now(i32::from(exit::OK))
        }
        Some((&code, text)) => {
            eprintln!("logger: error: {}", String::from_utf8_lossy(text).trim());
            sys::exit_now(i32::from(code))
        }
        None => {
            eprintln!("logger: error: the daemon exited before it was ready (see its log)");
            sys::exit_now(i32::from(exit::RUNTIME))
        }
    }
}
