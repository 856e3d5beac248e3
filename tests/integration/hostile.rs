//! What a local user must not be able to make the daemon do when it runs as root, and
//! configurations that must be refused before they can hurt: each case here was a way in.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use nix::sys::signal::Signal;

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    a_symlinked_pid_file_is_refused_and_its_target_untouched,
    an_output_path_that_is_a_link_is_refused_not_followed,
    the_local_socket_is_created_0666_without_a_chmod_by_path,
    group_alone_is_refused,
    durations_that_would_overflow_are_refused_at_start_and_on_reload,
    configurations_that_would_misbehave_are_refused_with_their_exit_status,
    without_proc_the_daemon_says_so_instead_of_aborting,
    as_root_the_default_socket_never_goes_under_a_users_runtime_dir,
];

/// `logger ARGS` to completion (bounded), with no service manager around it.
fn run(args: &[&str]) -> std::process::Output {
    let child = Command::new(BIN)
        .args(args)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, WAIT)
}

fn code_and_stderr(out: &std::process::Output) -> (i32, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn a_symlinked_pid_file_is_refused_and_its_target_untouched() {
    require!(is_root(), "root, whose PID file a symlink could redirect");
    let d = tempdir();
    let target = d.path().join("secret");
    std::fs::write(&target, "root only\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = d.path().join("logger.pid");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let pidfile = format!("--pidfile={}", link.display());
    let listen = format!("--listen=unix://{}/log", d.path().display());
    let output = format!("--output=file:{}/out.log", d.path().display());
    let (code, stderr) = code_and_stderr(&run(&["--fork", &pidfile, &listen, &output]));
    assert_eq!(code, 69, "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "root only\n");
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the target's mode was changed");

    // A PID file another user created stays theirs: refused, not written.
    std::fs::remove_file(&link).unwrap();
    std::fs::write(&link, "").unwrap();
    nix::unistd::chown(&link, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let (code, stderr) = code_and_stderr(&run(&["--fork", &pidfile, &listen, &output]));
    assert_eq!(code, 69, "{stderr}");
    assert!(stderr.contains("owned by uid 65534"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&link).unwrap(), "");
}

/// Starts the daemon with `path` as its output, expects the refusal (69); returns its stderr.
fn refused_output(path: &Path) -> String {
    let out = Builder::new()
        .arg("--listen=udp://127.0.0.1:0")
        .arg(format!("--output=file:{}", path.display()))
        .fail()
        .0;
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, 69, "{stderr}");
    stderr
}

fn an_output_path_that_is_a_link_is_refused_not_followed() {
    let d = tempdir();
    let target = d.path().join("created-by-root");
    let link = d.path().join("out.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let stderr = refused_output(&link);
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert!(!target.exists(), "the link's target was created");

    // A hard link to a file elsewhere (as a user could make to a root-owned file where
    // fs.protected_hardlinks is off) is refused too, and the file is left as it was.
    std::fs::remove_file(&link).unwrap();
    let secret = d.path().join("secret");
    std::fs::write(&secret, "root only\n").unwrap();
    std::fs::hard_link(&secret, &link).unwrap();
    let stderr = refused_output(&link);
    assert!(stderr.contains("hard links"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "root only\n");
}

fn the_local_socket_is_created_0666_without_a_chmod_by_path() {
    // Binding then chmod'ing by path let a symlink swapped in between make a root-only file
    // world-writable. The mode must come with bind(2): traced, start-up makes no chmod call.
    require!(have("strace"), "strace, to see the daemon's system calls");
    let b = Builder::new();
    let dir = b.dir().to_owned();
    // Outside the daemon's directory, which goes with it.
    let traces = tempdir();
    let trace = traces.path().join("trace").display().to_string();
    let d = b
        .arg(format!("--listen=unix://{}/log", dir.display()))
        .arg(format!("--listen=unix-stream://{}/stream", dir.display()))
        .arg(format!("--output=file:{}/out.log", dir.display()))
        .wrapped_in(&[
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=chmod,fchmodat,umask",
            "-o",
            &trace,
        ])
        .start();
    for name in ["log", "stream"] {
        let mode = std::fs::symlink_metadata(dir.join(name)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o666, "{name}");
    }
    // The daemon is strace's child: stop it, then strace ends with it.
    let strace = d.pid().as_raw();
    let children =
        std::fs::read_to_string(format!("/proc/{strace}/task/{strace}/children")).unwrap();
    let daemon: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon), Signal::SIGTERM).unwrap();
    let (status, _, stderr) = d.stop_after_signal();
    assert!(status.success(), "{stderr}");
    let calls = std::fs::read_to_string(&trace).unwrap();
    assert!(calls.contains("umask(0111)"), "{calls}");
    assert!(!calls.contains("chmod"), "a chmod by path: {calls}");
}

fn group_alone_is_refused() {
    // It would keep uid 0 and every capability (the drop itself is `fork::user_nobody_*`).
    let (code, stderr) = code_and_stderr(&run(&["--group=nogroup", "--check-config"]));
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("needs a user"), "{stderr}");
}

fn durations_that_would_overflow_are_refused_at_start_and_on_reload() {
    for (key, value) in [
        ("heartbeat", "18446744073709551615s"),
        ("idle-timeout", "18446744073709551615ms"),
        ("heartbeat", "8d"),
    ] {
        let d = tempdir();
        let file = d.path().join("logger.toml");
        std::fs::write(&file, format!("{key} = \"{value}\"\n")).unwrap();
        let config = format!("--config={}", file.display());
        let (code, stderr) = code_and_stderr(&run(&[&config, "--check-config"]));
        assert_eq!(code, 78, "{key} = {value}: {stderr}");
        assert!(stderr.contains(key), "{stderr}");
    }
    // On SIGHUP the running configuration is kept and the daemon stays up.
    let b = Builder::new().standard().config("heartbeat = \"1h\"\n");
    let file = b.dir().join("logger.toml");
    let d = b.start();
    std::fs::write(&file, "heartbeat = \"18446744073709551615s\"\n").unwrap();
    d.signal(Signal::SIGHUP);
    d.notify.expect("READY=1");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<13>t: after the refused reload", d.addr("udp"))
        .unwrap();
    let (status, log, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("reload failed"), "{stderr}");
    assert!(log.contains("after the refused reload"), "{log}");
}

fn configurations_that_would_misbehave_are_refused_with_their_exit_status() {
    let d = tempdir();
    let write = |text: &str| {
        let file = d.path().join("logger.toml");
        std::fs::write(&file, text).unwrap();
        format!("--config={}", file.display())
    };
    // listen = [] with no socket passed: nothing to serve is an error, not a silent daemon.
    let config = write("listen = []\n");
    let (code, stderr) = code_and_stderr(&run(&[&config, "--output=stderr"]));
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("nothing to listen on"), "{stderr}");
    for umask in ["+77", "-1", "0o77", "", "12345", "8"] {
        let config = write(&format!("umask = \"{umask}\"\n"));
        let (code, stderr) = code_and_stderr(&run(&[&config, "--check-config"]));
        assert_eq!(code, 78, "umask {umask:?}: {stderr}");
    }
    // A log file that cannot be opened with --fork: unavailable (69), not a runtime failure.
    // (Without a journal socket, the forked daemon logs to log-file.)
    let config = write(&format!(
        "log-file = \"{}/missing-dir/own.log\"\njournal-socket = \"{}/no-journal\"\n",
        d.path().display(),
        d.path().display()
    ));
    let listen = format!("--listen=unix://{}/log", d.path().display());
    let output = format!("--output=file:{}/out.log", d.path().display());
    let pidfile = format!("--pidfile={}/logger.pid", d.path().display());
    let (code, stderr) = code_and_stderr(&run(&["--fork", &config, &listen, &output, &pidfile]));
    assert_eq!(code, 69, "{stderr}");
    assert!(stderr.contains("log-file"), "{stderr}");
}

fn without_proc_the_daemon_says_so_instead_of_aborting() {
    require!(is_root(), "root, to hide /proc in a mount namespace");
    require!(have("unshare"), "unshare");
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs none /proc && exec \"$0\" --listen=udp://127.0.0.1:0 --output=stderr")
        .arg(BIN)
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, 71, "{stderr}");
    assert!(stderr.contains("/proc"), "{stderr}");
}

fn as_root_the_default_socket_never_goes_under_a_users_runtime_dir() {
    require!(is_root(), "root");
    let out = Command::new(BIN)
        .arg("--check-config")
        .env("XDG_RUNTIME_DIR", "/run/user/1000")
        .env_remove("RUNTIME_DIRECTORY")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("unix:///run/logger/log"), "{text}");
    assert!(!text.contains("/run/user/1000"), "{text}");
}
