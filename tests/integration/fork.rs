//! `--fork` and the other supervisors: the daemon checked through /proc, the PID file, the
//! readiness pipe, Debian's start-stop-daemon both ways, and --user.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    the_forked_daemon_is_detached_clean_and_holds_its_locked_pid_file,
    a_busy_port_fails_fast_with_the_error_and_leaves_nothing_behind,
    a_second_instance_on_the_same_pid_file_is_refused_by_the_daemon_with_its_pid,
    sighup_reopens_the_output_file_after_logrotate_renamed_it,
    start_stop_daemon_drives_fork_and_notify_await,
    fork_with_notify_fd_reports_readiness_on_the_descriptor_too,
    user_nobody_drops_root_after_binding,
    user_nobody_reopens_the_files_logrotate_creates,
];

fn proc_field(pid: i32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no {key} for {pid}"))
}

fn wait_gone(pid: i32) {
    eventually(&format!("pid {pid} gone"), WAIT, || {
        // A zombie counts as gone: the daemon has exited; its parent reaps it.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        !Path::new(&format!("/proc/{pid}")).exists() || state.split(' ').nth(2) == Some("Z")
    });
}

fn read_pid(pidfile: &Path) -> i32 {
    std::fs::read_to_string(pidfile)
        .unwrap_or_else(|e| panic!("pid file {}: {e}", pidfile.display()))
        .trim()
        .parse()
        .unwrap()
}

fn kill(pid: i32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

/// Runs `logger --fork ARGS` from a shell that leaves fd 7 open and SIGHUP ignored.
fn launch(args: &[String]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg("exec 7</dev/zero; trap '' HUP; exec \"$0\" --fork \"$@\"")
        .arg(BIN)
        .args(args)
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    (out, started.elapsed())
}

struct Forked {
    dir: tempfile::TempDir,
    pid: i32,
}

impl Forked {
    fn start(extra: &[&str]) -> Forked {
        let dir = tempdir();
        let d = dir.path();
        let mut args = vec![
            format!("--pidfile={}/logger.pid", d.display()),
            format!("--listen=unix://{}/log", d.display()),
            format!("--output=file:{}/out.log", d.display()),
            format!("--config={}/logger.toml", d.display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        std::fs::write(
            d.join("logger.toml"),
            format!("log-file = \"{}/own.log\"\n", d.display()),
        )
        .unwrap();
        let (out, took) = launch(&args);
        assert!(
            out.status.success(),
            "--fork failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(took < Duration::from_secs(5));
        let pid = read_pid(&d.join("logger.pid"));
        Forked { dir, pid }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn send(&self, text: &str) {
        std::os::unix::net::UnixDatagram::unbound()
            .unwrap()
            .send_to(text.as_bytes(), self.path("log"))
            .unwrap();
    }

    fn stop(&self) {
        kill(self.pid, nix::sys::signal::Signal::SIGTERM);
        wait_gone(self.pid);
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn the_forked_daemon_is_detached_clean_and_holds_its_locked_pid_file() {
    let f = Forked::start(&[]);
    let pid = f.pid;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let (ppid, pgrp, session, tty) = (fields[1], fields[2], fields[3], fields[4]);
    assert_ne!(
        ppid,
        std::process::id().to_string(),
        "parent is not the launcher"
    );
    assert_ne!(session, pid.to_string(), "not a session leader");
    assert_ne!(pgrp, pid.to_string(), "not a process-group leader");
    assert_eq!(tty, "0", "no controlling terminal");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        Path::new("/")
    );
    for fd in 0..3 {
        assert_eq!(
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap(),
            Path::new("/dev/null"),
            "fd {fd}"
        );
    }
    let fd7 = std::fs::read_link(format!("/proc/{pid}/fd/7"));
    assert!(
        fd7.as_ref().map_or(true, |p| p != Path::new("/dev/zero")),
        "the launcher's fd 7 leaked: {fd7:?}"
    );
    assert_eq!(proc_field(pid, "Umask:"), "0027");
    assert_eq!(proc_field(pid, "SigBlk:"), "0000000000000000");
    let ignored = u64::from_str_radix(&proc_field(pid, "SigIgn:"), 16).unwrap();
    let sighup = 1u64 << (nix::sys::signal::Signal::SIGHUP as u32 - 1);
    let sigpipe = 1u64 << (nix::sys::signal::Signal::SIGPIPE as u32 - 1);
    // Standard signals only: glibc keeps signals 32 and 33 for itself and refuses to reset them.
    assert_eq!(
        ignored & 0x7fff_ffff & !sigpipe,
        0,
        "only SIGPIPE may stay ignored"
    );
    assert_eq!(ignored & sighup, 0);
    let pidfile = std::fs::File::open(f.path("logger.pid")).unwrap();
    assert!(
        Flock::lock(pidfile, FlockArg::LockSharedNonblock).is_err(),
        "the PID file is locked"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(f.path("logger.pid"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o644);
    // It serves, and SIGTERM removes the PID file.
    f.send("<13>forked: hello");
    f.stop();
    assert!(!f.path("logger.pid").exists(), "PID file removed on exit");
    let log = std::fs::read_to_string(f.path("out.log")).unwrap();
    assert!(log.contains("] user.notice: hello"), "{log}");
}

fn a_busy_port_fails_fast_with_the_error_and_leaves_nothing_behind() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = tempdir();
    let pidfile = dir.path().join("logger.pid");
    let (out, took) = launch(&[
        format!("--pidfile={}", pidfile.display()),
        format!("--listen=udp://{}", taken.local_addr().unwrap()),
        "--output=stderr".into(),
    ]);
    assert_eq!(out.status.code(), Some(69));
    assert!(took < Duration::from_secs(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Address already in use"));
    assert!(!pidfile.exists());
}

fn a_second_instance_on_the_same_pid_file_is_refused_by_the_daemon_with_its_pid() {
    let f = Forked::start(&[]);
    let (out, _) = launch(&[
        format!("--pidfile={}", f.path("logger.pid").display()),
        format!("--listen=unix://{}/other", f.dir.path().display()),
        "--output=stderr".into(),
    ]);
    assert_eq!(out.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("running as pid {}", f.pid)),
        "{stderr}"
    );
    assert_eq!(read_pid(&f.path("logger.pid")), f.pid, "untouched");
    f.stop();
}

fn sighup_reopens_the_output_file_after_logrotate_renamed_it() {
    let f = Forked::start(&[]);
    f.send("<13>rot: before");
    std::fs::rename(f.path("out.log"), f.path("out.log.1")).unwrap();
    kill(f.pid, nix::sys::signal::Signal::SIGHUP);
    eventually("out.log reopened", WAIT, || f.path("out.log").exists());
    f.send("<13>rot: after");
    f.stop();
    // "before" may have been written before or after the reopen; it must be in one of them once.
    let old = std::fs::read_to_string(f.path("out.log.1")).unwrap();
    let new = std::fs::read_to_string(f.path("out.log")).unwrap();
    assert_eq!(
        (old.clone() + &new)
            .matches("] user.notice: before")
            .count(),
        1
    );
    assert!(!old.contains("after"), "{old}");
    assert!(new.contains("] user.notice: after"), "{new}");
}

fn start_stop_daemon_drives_fork_and_notify_await() {
    require!(have("start-stop-daemon"), "Debian's start-stop-daemon");
    let dir = tempdir();
    let d = dir.path();
    // SysV style: --start runs `logger --fork`, --stop reads the PID file.
    let pidfile = d.join("ssd.pid");
    let status = Command::new("start-stop-daemon")
        .args(["--start", "--quiet", "--pidfile"])
        .arg(&pidfile)
        .arg("--exec")
        .arg(BIN)
        .arg("--")
        .arg("--fork")
        .arg(format!("--pidfile={}", pidfile.display()))
        .arg(format!("--listen=unix://{}/a", d.display()))
        .arg(format!("--output=file:{}/a.log", d.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let pid = read_pid(&pidfile);
    let status = Command::new("start-stop-daemon")
        .args(["--stop", "--retry=TERM/5", "--pidfile"])
        .arg(&pidfile)
        .status()
        .unwrap();
    assert!(status.success());
    wait_gone(pid);
    assert!(!pidfile.exists());
    // Foreground style: start-stop-daemon backgrounds it and waits for READY=1 on its own
    // NOTIFY_SOCKET.
    let made = d.join("made.pid");
    let status = Command::new("start-stop-daemon")
        .args([
            "--start",
            "--background",
            "--notify-await",
            "--notify-timeout=10",
            "--make-pidfile",
            "--pidfile",
        ])
        .arg(&made)
        .arg("--exec")
        .arg(BIN)
        .arg("--")
        .arg(format!("--listen=unix://{}/b", d.display()))
        .arg(format!("--output=file:{}/b.log", d.display()))
        .env_remove("NOTIFY_SOCKET")
        .status()
        .unwrap();
    assert!(status.success(), "start-stop-daemon --notify-await");
    // READY arrived, so the socket serves now.
    std::os::unix::net::UnixDatagram::unbound()
        .unwrap()
        .send_to(b"<13>ssd: awaited", d.join("b"))
        .expect("serving at READY");
    let pid = read_pid(&made);
    let status = Command::new("start-stop-daemon")
        .args(["--stop", "--retry=TERM/5", "--remove-pidfile", "--pidfile"])
        .arg(&made)
        .status()
        .unwrap();
    assert!(status.success());
    wait_gone(pid);
    let log = std::fs::read_to_string(d.join("b.log")).unwrap();
    assert!(
        log.contains(" ssd[") && log.contains("] user.notice: awaited"),
        "{log}"
    );
}

fn fork_with_notify_fd_reports_readiness_on_the_descriptor_too() {
    let dir = tempdir();
    let d = dir.path();
    let out = Command::new("sh")
        .arg("-c")
        .arg("exec \"$0\" \"$@\" 3>\"$NOTIFY_OUT\"")
        .arg(BIN)
        .args([
            "--fork",
            "--notify-fd=3",
            &format!("--pidfile={}/n.pid", d.display()),
            &format!("--listen=unix://{}/n", d.display()),
            &format!("--output=file:{}/n.log", d.display()),
        ])
        .env("NOTIFY_OUT", d.join("notified"))
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = read_pid(&d.join("n.pid"));
    assert_eq!(std::fs::read(d.join("notified")).unwrap(), b"\n");
    kill(pid, nix::sys::signal::Signal::SIGTERM);
    wait_gone(pid);
}

fn user_nobody_drops_root_after_binding() {
    require!(is_root(), "root, to switch to user nobody");
    let f = Forked::start(&["--user=nobody"]);
    let uids = proc_field(f.pid, "Uid:");
    assert!(uids.split_whitespace().all(|u| u == "65534"), "uids {uids}");
    assert_eq!(proc_field(f.pid, "Groups:"), "65534");
    // For good: no capability left, and nothing it could exec may gain privileges back.
    assert_eq!(proc_field(f.pid, "CapEff:"), "0000000000000000");
    assert_eq!(proc_field(f.pid, "CapPrm:"), "0000000000000000");
    assert_eq!(proc_field(f.pid, "NoNewPrivs:"), "1");
    f.send("<13>nobody: still serving");
    f.stop();
    let log = std::fs::read_to_string(f.path("out.log")).unwrap();
    assert!(log.contains("still serving"), "{log}");
}

fn user_nobody_reopens_the_files_logrotate_creates() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    require!(is_root(), "root, to switch to user nobody");
    let f = Forked::start(&["--user=nobody"]);
    // The daemon created out.log as root before the drop; it must be nobody's to reopen.
    let meta = std::fs::metadata(f.path("out.log")).unwrap();
    assert_eq!(meta.uid(), 65534, "out.log belongs to uid {}", meta.uid());
    std::fs::set_permissions(f.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    f.send("<13>rot: before");
    // logrotate with `create`: rename, then a new file with the old one's owner and mode.
    std::fs::rename(f.path("out.log"), f.path("out.log.1")).unwrap();
    std::fs::write(f.path("out.log"), "").unwrap();
    std::fs::set_permissions(
        f.path("out.log"),
        std::fs::Permissions::from_mode(meta.mode()),
    )
    .unwrap();
    nix::unistd::chown(
        &f.path("out.log"),
        Some(nix::unistd::Uid::from_raw(meta.uid())),
        Some(nix::unistd::Gid::from_raw(meta.gid())),
    )
    .unwrap();
    kill(f.pid, nix::sys::signal::Signal::SIGHUP);
    // Reloaded once its own log says so; then a new message must land in the new file.
    wait_for_text(&f.path("own.log"), "reloaded");
    f.send("<13>rot: after");
    f.stop();
    let own = std::fs::read_to_string(f.path("own.log")).unwrap();
    assert!(!own.contains("cannot reopen"), "{own}");
    let new = std::fs::read_to_string(f.path("out.log")).unwrap();
    let old = std::fs::read_to_string(f.path("out.log.1")).unwrap();
    assert!(
        new.contains("] user.notice: after"),
        "new: {new}; old: {old}"
    );
    assert!(!old.contains("after"), "{old}");
}
