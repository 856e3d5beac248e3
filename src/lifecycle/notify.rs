//! Readiness and status notifications: systemd's sd_notify protocol (through the `sd-notify`
//! crate), s6/OpenRC's notification descriptor (`--notify-fd`), and the readiness pipe of
//! `--fork`.
//!
//! The service loop calls `ready` once it serves, `reloading`/`ready` around a reload, `stopping`,
//! `status` and `watchdog`. Notification failures are logged at debug level and never fatal: a
//! manager that stopped listening must not stop the daemon.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::error::Error;

/// The first byte the daemon writes to the `--fork` readiness pipe on success, followed by its
/// pid. On failure the first byte is the exit status (never 0) and the rest the error text.
pub(crate) const READY_BYTE: u8 = 0;

/// Everything that wants to hear about readiness.
#[derive(Debug, Default)]
pub struct Notifier {
    watchdog: Option<Duration>,
    notify_fd: Option<OwnedFd>,
    ready_pipe: Option<OwnedFd>,
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        log::debug!("sd_notify failed: {e}");
    }
}

impl Notifier {
    /// Reads the watchdog request (WATCHDOG_USEC, WATCHDOG_PID) from the environment.
    pub fn new(notify_fd: Option<OwnedFd>) -> Notifier {
        Notifier {
            watchdog: sd_notify::watchdog_enabled(),
            notify_fd,
            ready_pipe: None,
        }
    }

    /// With `--fork`: the pipe the launching process waits on.
    pub fn set_ready_pipe(&mut self, pipe: OwnedFd) {
        self.ready_pipe = Some(pipe);
    }

    /// How often the manager wants WATCHDOG=1 (we ping at half of it).
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// READY=1 with a status line; the first call also releases `--notify-fd` and the fork pipe.
    pub fn ready(&mut self, status: &str) {
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
        if let Some(fd) = self.notify_fd.take() {
            let mut f = std::fs::File::from(fd);
            if let Err(e) = f.write_all(b"\n") {
                log::warn!("cannot write the readiness notification to --notify-fd: {e}");
            }
        }
        if let Some(fd) = self.ready_pipe.take() {
            let report = format!("{}{}", char::from(READY_BYTE), std::process::id());
            let _ = std::fs::File::from(fd).write_all(report.as_bytes());
        }
    }

    /// RELOADING=1 and MONOTONIC_USEC in one datagram, as Type=notify-reload requires.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => send(&[NotifyState::Reloading, now]),
            Err(_) => send(&[NotifyState::Reloading]),
        }
    }

    /// STOPPING=1.
    pub fn stopping(&self, status: &str) {
        send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    /// STATUS=.
    pub fn status(&self, status: &str) {
        send(&[NotifyState::Status(status)]);
    }

    /// WATCHDOG=1.
    pub fn watchdog(&self) {
        send(&[NotifyState::Watchdog]);
    }

    /// A failed start: STATUS= with the reason, ERRNO= where there is one, and the error text on
    /// the fork pipe.
    pub fn failed(&mut self, err: &Error) {
        let status = format!("Failed: {err}");
        match err.errno() {
            Some(errno) => send(&[
                NotifyState::Status(&status),
                NotifyState::Errno(errno as u32),
            ]),
            None => send(&[NotifyState::Status(&status)]),
        }
        if let Some(fd) = self.ready_pipe.take() {
            let mut report = vec![err.exit_code()];
            report.extend_from_slice(err.to_string().as_bytes());
            let _ = std::fs::File::from(fd).write_all(&report);
        }
    }
}
