//! Faults survived with nothing lost: a storm of reloads under load, and a full disk.
//! (journald restarts and SIGKILL under socket activation are in `systemd`.)

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    a_torn_last_line_from_a_killed_writer_is_ended_before_new_lines,
    a_hundred_reloads_under_tcp_load_lose_nothing_and_leave_no_listener_gap,
    a_full_disk_is_counted_reported_survived_and_recovered_without_loss,
];

fn a_hundred_reloads_under_tcp_load_lose_nothing_and_leave_no_listener_gap() {
    let d = Builder::new().standard().start();
    let tcp = d.addr("tcp");
    const TCP_MESSAGES: usize = 20_000;
    let sender = std::thread::spawn(move || {
        let mut s = TcpStream::connect(tcp).unwrap();
        for i in 0..TCP_MESSAGES {
            s.write_all(format!("<13>storm: t{i}\n").as_bytes())
                .unwrap();
        }
    });
    let local = UnixDatagram::unbound().unwrap();
    for i in 0..100 {
        d.signal(Signal::SIGHUP);
        d.notify.expect("RELOADING=1");
        // The local socket must accept at every moment of a reload.
        local
            .send_to(format!("<13>storm: u{i}").as_bytes(), d.path("log"))
            .unwrap_or_else(|e| panic!("local socket gap during reload {i}: {e}"));
        d.notify.expect("READY=1");
    }
    sender.join().unwrap();
    let (status, log, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    let tcp_lines = log.matches("storm user.notice: t").count();
    let unix_lines = log.matches("] user.notice: u").count();
    eprintln!(
        "fault: 100 reloads | load: {TCP_MESSAGES} tcp + 100 unix | sent {} | written {} | lost {}",
        TCP_MESSAGES + 100,
        tcp_lines + unix_lines,
        TCP_MESSAGES + 100 - tcp_lines - unix_lines
    );
    assert_eq!(tcp_lines, TCP_MESSAGES);
    assert_eq!(unix_lines, 100);
}

fn a_full_disk_is_counted_reported_survived_and_recovered_without_loss() {
    require!(
        is_root(),
        "root, to mount a small tmpfs in a private namespace"
    );
    let dir = tempdir();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let notify = NotifySocket::new(dir.path());
    // The daemon runs in a private mount namespace in which `small` is a 64 KiB tmpfs.
    let script = format!(
        "mount -t tmpfs -o size=64k tmpfs {m} && head -c 60000 /dev/zero > {m}/filler && exec \"$0\" \"$@\"",
        m = mnt.display()
    );
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .arg(BIN)
        .arg(format!("--listen=unix://{}/log", dir.path().display()))
        .arg(format!("--output=file:{}/out.log", mnt.display()))
        .env("NOTIFY_SOCKET", &notify.path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    notify.expect("READY=1");
    let pid = child.id().to_string();
    let sock = UnixDatagram::unbound().unwrap();
    const N: usize = 200;
    for i in 0..N {
        sock.send_to(
            format!("<13>full: message {i:04} {}", "x".repeat(40)).as_bytes(),
            dir.path().join("log"),
        )
        .unwrap();
    }
    // The disk is full: the daemon stays up, counts the errors and reports the backlog.
    let full = within(WAIT, || {
        let d = notify.recv(Duration::from_millis(500)).unwrap_or_default();
        let backlog = d.contains("STATUS=") && !d.contains("queued 0");
        backlog
            .then_some(d)
            .ok_or("no STATUS with a backlog".to_owned())
    });
    eprintln!("while full: {full}");
    assert!(
        Command::new("kill")
            .args(["-0", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Space returns: the backlog is written within the retry backoff.
    let rm = Command::new("nsenter")
        .args(["-t", &pid, "-m", "rm", &format!("{}/filler", mnt.display())])
        .status()
        .unwrap();
    assert!(rm.success());
    within(WAIT, || {
        let d = notify.recv(Duration::from_millis(500)).unwrap_or_default();
        let written = d.contains(&format!("written {N}")) && d.contains("queued 0");
        written
            .then_some(())
            .ok_or("backlog not written after space returned".to_owned())
    });
    let log = Command::new("nsenter")
        .args([
            "-t",
            &pid,
            "-m",
            "cat",
            &format!("{}/out.log", mnt.display()),
        ])
        .output()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    let out = wait_output(child, WAIT);
    let log = String::from_utf8_lossy(&log.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    for i in 0..N {
        assert_eq!(
            log.matches(&format!("message {i:04} ")).count(),
            1,
            "message {i} missing or doubled"
        );
    }
    eprintln!("fault: disk full (64 KiB tmpfs) | load: {N} unix | sent {N} | written {N} | lost 0");
}

fn a_torn_last_line_from_a_killed_writer_is_ended_before_new_lines() {
    // What SIGKILL mid-write (or a crash) leaves: a last line without its newline.
    let b = Builder::new();
    let out = b.dir().join("out.log");
    std::fs::write(
        &out,
        "2026-11-24T00:00:00.000000Z host app: complete\n2026-11-24T00:00",
    )
    .unwrap();
    let d = b
        .arg("--listen=udp://127.0.0.1:0")
        .arg(format!("--output=file:{}", out.display()))
        .start();
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"<13>after: restart", d.addr("udp"))
        .unwrap();
    let (status, log, _) = d.stop();
    assert!(status.success());
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert_eq!(lines[1], "2026-11-24T00:00");
    assert!(lines[2].ends_with(" after user.notice: restart"), "{log}");
}
