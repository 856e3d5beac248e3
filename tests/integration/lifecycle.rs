//! The foreground (systemd Type=notify) lifecycle: READY, STATUS, watchdog, reload, stop, failed
//! starts, and the command line's exit codes.

use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    ready_comes_once_every_listener_accepts_and_status_names_bound_addresses,
    watchdog_pings_at_half_the_interval_and_stop_when_the_loop_is_frozen,
    sighup_sends_reloading_with_monotonic_usec_in_one_datagram_then_ready,
    reload_applies_a_valid_config_and_keeps_the_old_one_when_invalid,
    sigterm_sends_stopping_and_exits_zero,
    a_busy_port_fails_with_69_a_clear_message_status_and_errno_and_no_ready,
    a_bad_config_file_fails_with_78_naming_file_line_and_key,
    help_documents_exit_codes_and_check_config_prints_the_effective_configuration,
    notify_fd_gets_a_newline_once_ready_and_is_closed,
];

fn ready_comes_once_every_listener_accepts_and_status_names_bound_addresses() {
    let d = Builder::new().standard().start();
    // Straight after READY=1 every listener must already accept.
    TcpStream::connect(d.addr("tcp")).expect("tcp accepts at READY");
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"<13>x: at ready", d.path("log"))
        .expect("unix socket exists at READY");
    let status = d.ready.lines().find(|l| l.starts_with("STATUS=")).unwrap();
    assert!(
        !status.contains(":0,") && !status.contains(":0;"),
        "{status}"
    );
    assert!(
        status.contains(&format!("unix://{}", d.path("log").display())),
        "{status}"
    );
    assert_ne!(d.port("udp"), "0");
    let (status, log, _) = d.stop();
    assert!(status.success());
    assert!(
        log.contains(" x[") && log.contains("] user.notice: at ready"),
        "{log}"
    );
}

fn watchdog_pings_at_half_the_interval_and_stop_when_the_loop_is_frozen() {
    let d = Builder::new()
        .standard()
        .env("WATCHDOG_USEC", "400000")
        .start();
    let ping = || {
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match d.notify.recv(left) {
                Some(m) if m.lines().any(|l| l == "WATCHDOG=1") => return Some(Instant::now()),
                Some(_) => {}
                None => return None,
            }
        }
        None
    };
    let first = ping().expect("first ping");
    let mut last = first;
    for _ in 0..4 {
        let t = ping().expect("a ping");
        let gap = t - last;
        assert!(
            gap > Duration::from_millis(120) && gap < Duration::from_millis(350),
            "ping gap {gap:?}, expected about 200ms"
        );
        last = t;
    }
    d.signal(Signal::SIGSTOP);
    // Drain what was in flight when it stopped, then prove silence for more than two intervals.
    while d.notify.recv(Duration::from_millis(50)).is_some() {}
    assert_eq!(
        d.notify.recv(Duration::from_millis(700)),
        None,
        "a frozen loop must not ping"
    );
    d.signal(Signal::SIGCONT);
    assert!(ping().is_some(), "pings resume after SIGCONT");
}

fn sighup_sends_reloading_with_monotonic_usec_in_one_datagram_then_ready() {
    let d = Builder::new().standard().start();
    d.signal(Signal::SIGHUP);
    let reloading = d.notify.expect("RELOADING=1");
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(usec.parse::<u64>().unwrap() > 0);
    let ready = d.notify.expect("READY=1");
    assert!(ready.contains("STATUS=Listening on"), "{ready:?}");
    assert!(d.stop().0.success());
}

fn reload_applies_a_valid_config_and_keeps_the_old_one_when_invalid() {
    let b = Builder::new();
    let dir = b.dir().to_owned();
    let out = dir.join("out.log");
    let first = format!(
        "listen = [\"udp://127.0.0.1:0\"]\noutput = \"file:{}\"\n",
        out.display()
    );
    let d = b.config(&first).start();
    let udp = d.addr("udp");
    // A changed configuration: add a unix socket.
    let sock = dir.join("added.sock");
    std::fs::write(
        dir.join("logger.toml"),
        format!(
            "listen = [\"udp://{udp}\", \"unix://{}\"]\noutput = \"file:{}\"\n",
            sock.display(),
            out.display()
        ),
    )
    .unwrap();
    d.signal(Signal::SIGHUP);
    let ready = d.notify.expect("READY=1");
    assert!(
        ready.contains(&format!("unix://{}", sock.display())),
        "{ready}"
    );
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"<13>r: via added socket", &sock)
        .expect("the added socket serves");
    // An invalid one: the old configuration keeps running.
    std::fs::write(dir.join("logger.toml"), "listen = [\"udp://nonsense\"]\n").unwrap();
    d.signal(Signal::SIGHUP);
    let ready = d.notify.expect("READY=1");
    assert!(ready.contains(&format!("udp://{udp}")), "{ready}");
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"<13>r: after failed reload", &udp)
        .unwrap();
    let (status, log, stderr) = d.stop();
    assert!(status.success());
    assert!(log.contains("via added socket"), "{log}");
    assert!(log.contains("after failed reload"), "{log}");
    assert!(stderr.contains("reload failed"), "{stderr}");
}

fn sigterm_sends_stopping_and_exits_zero() {
    let d = Builder::new().standard().start();
    d.signal(Signal::SIGTERM);
    d.notify.expect("STOPPING=1");
    let (status, _, _) = d.stop_after_signal();
    assert_eq!(status.code(), Some(0));
}

fn a_busy_port_fails_with_69_a_clear_message_status_and_errno_and_no_ready() {
    let taken = TcpListenerGuard::new();
    let (out, sent) = Builder::new()
        .arg(format!("--listen=tcp://{}", taken.addr))
        .arg("--output=stderr")
        .fail();
    assert_eq!(out.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on tcp://{}", taken.addr))
            && stderr.contains("in use"),
        "{stderr}"
    );
    assert!(sent.iter().all(|d| !d.contains("READY=1")), "{sent:?}");
    assert!(
        sent.iter()
            .any(|d| d.contains("STATUS=Failed") && d.contains("ERRNO=98")),
        "{sent:?}"
    );
}

fn a_bad_config_file_fails_with_78_naming_file_line_and_key() {
    let (out, sent) = Builder::new()
        .config("output = \"stderr\"\nlisten = 5\n")
        .fail();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("logger.toml:2") && stderr.contains("listen"),
        "{stderr}"
    );
    assert!(sent.iter().all(|d| !d.contains("READY=1")));
    let missing = Command::new(BIN)
        .args(["--config", "/nonexistent/logger.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/logger.toml"));
}

fn help_documents_exit_codes_and_check_config_prints_the_effective_configuration() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "EXIT STATUS",
        "78",
        "unix-stream://",
        "SIGHUP",
        "/usr/bin/logger",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
    let dir = tempdir();
    let out = Command::new(BIN)
        .args(["--check-config", "--listen=tcp://[::1]:6514"])
        .env("XDG_RUNTIME_DIR", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("listen = [\"tcp://[::1]:6514\"]"), "{text}");
    assert!(text.contains("heartbeat = \"300s\""), "{text}");
}

fn notify_fd_gets_a_newline_once_ready_and_is_closed() {
    let dir = tempdir();
    // fd 3 of the daemon is our pipe; stdout goes to /dev/null so only fd 3 holds the pipe.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("exec \"$0\" \"$@\" 3>&1 1>/dev/null")
        .arg(BIN)
        .args([
            "--notify-fd=3",
            "--listen=udp://127.0.0.1:0",
            "--output=stderr",
        ])
        .env_remove("NOTIFY_SOCKET")
        .env("XDG_RUNTIME_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut pipe = child.stdout.take().unwrap();
    let mut got = Vec::new();
    // read_to_end returns at EOF: the daemon wrote its newline and closed the descriptor.
    let reader = std::thread::spawn(move || {
        std::io::Read::read_to_end(&mut pipe, &mut got).unwrap();
        got
    });
    eventually("readiness on --notify-fd", WAIT, || reader.is_finished());
    assert_eq!(reader.join().unwrap(), b"\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    assert!(wait_output(child, WAIT).status.success());
}

struct TcpListenerGuard {
    _l: std::net::TcpListener,
    addr: std::net::SocketAddr,
}

impl TcpListenerGuard {
    fn new() -> TcpListenerGuard {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        TcpListenerGuard { _l: l, addr }
    }
}
