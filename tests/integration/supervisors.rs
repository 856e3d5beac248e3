//! The foreground mode under real supervisors other than systemd: s6 (readiness through
//! `notification-fd` and `--notify-fd`) and runit (plain foreground, stopped with SIGTERM).
//! start-stop-daemon is in `fork`.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    s6_waits_for_readiness_on_the_notification_fd,
    runit_runs_it_in_the_foreground_and_stops_it_cleanly,
];

fn service_dir(dir: &Path, run_args: &str) -> std::path::PathBuf {
    let svc = dir.join("svc");
    std::fs::create_dir(&svc).unwrap();
    let run = svc.join("run");
    std::fs::write(
        &run,
        format!(
            "#!/bin/sh\nexec {BIN} {run_args} --listen=unix://{d}/log --output=file:{d}/out.log 2>&1\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    svc
}

fn ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s6_waits_for_readiness_on_the_notification_fd() {
    require!(
        have("s6-supervise") && have("s6-svwait") && have("s6-svc"),
        "s6 (s6-supervise, s6-svwait, s6-svc)"
    );
    let dir = tempdir();
    let svc = service_dir(dir.path(), "--notify-fd=3");
    std::fs::write(svc.join("notification-fd"), "3\n").unwrap();
    let supervise = Command::new("s6-supervise")
        .arg(&svc)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // -U: up *and ready*, which s6 learns from the newline on fd 3.
    ok(Command::new("s6-svwait")
        .args(["-U", "-t", "10000"])
        .arg(&svc));
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"<13>s6: ready means serving", dir.path().join("log"))
        .expect("serving once s6 says ready");
    ok(Command::new("s6-svc").arg("-d").arg(&svc));
    ok(Command::new("s6-svwait")
        .args(["-D", "-t", "10000"])
        .arg(&svc));
    ok(Command::new("s6-svc").arg("-x").arg(&svc));
    wait_output(supervise, WAIT);
    let log = std::fs::read_to_string(dir.path().join("out.log")).unwrap();
    assert!(log.contains("] user.notice: ready means serving"), "{log}");
}

fn runit_runs_it_in_the_foreground_and_stops_it_cleanly() {
    require!(have("runsv") && have("sv"), "runit (runsv, sv)");
    let dir = tempdir();
    let svc = service_dir(dir.path(), "");
    let runsv = Command::new("runsv")
        .arg(&svc)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // runit has no readiness protocol: the socket file appearing is the only sign.
    let sock = dir.path().join("log");
    eventually("started under runsv", WAIT, || sock.exists());
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"<13>runit: under runsv", &sock)
        .unwrap();
    // `sv down` sends SIGTERM and waits: the daemon drains and exits.
    ok(Command::new("sv").args(["-w", "10", "down"]).arg(&svc));
    let status = Command::new("sv").arg("status").arg(&svc).output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.starts_with("down:"), "{status}");
    ok(Command::new("sv").arg("exit").arg(&svc));
    wait_output(runsv, WAIT);
    let log = std::fs::read_to_string(dir.path().join("out.log")).unwrap();
    assert!(log.contains("] user.notice: under runsv"), "{log}");
    assert!(!sock.exists(), "the socket file is removed on a clean stop");
}
