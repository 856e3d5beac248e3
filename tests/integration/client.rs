//! Installed ahead of util-linux in PATH, `logger` must not break the logger(1) client that
//! scripts everywhere rely on: every client-style command line behaves exactly as
//! `/usr/bin/logger` alone does, and daemon command lines still start the daemon.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    util_linux_invocations_behave_as_util_linux_logger_alone,
    daemon_command_lines_still_run_the_daemon_from_path,
    a_piped_line_is_the_clients_whatever_the_environment,
];

/// Debian's default PATH for root, with the directory the daemon is installed in first (as
/// /usr/local/sbin and /usr/sbin come before /usr/bin).
fn installed_path(sbin: &Path) -> String {
    format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        sbin.display()
    )
}

struct Peers {
    unix: UnixDatagram,
    udp: UdpSocket,
    tcp: TcpListener,
}

impl Peers {
    /// Everything the last client sent, digits masked (times, pids and ports differ between
    /// two runs; the text, the header layout and the priorities must not).
    fn take(&self) -> Vec<String> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        for sock in [&self.unix] {
            sock.set_nonblocking(true).unwrap();
            while let Ok(n) = sock.recv(&mut buf) {
                got.push(mask(&buf[..n]));
            }
        }
        self.udp.set_nonblocking(true).unwrap();
        while let Ok(n) = self.udp.recv(&mut buf) {
            got.push(mask(&buf[..n]));
        }
        // The client has exited: a connection it made is complete in the accept queue.
        self.tcp.set_nonblocking(true).unwrap();
        while let Ok((mut conn, _)) = self.tcp.accept() {
            conn.set_nonblocking(false).unwrap();
            let mut all = Vec::new();
            conn.read_to_end(&mut all).unwrap();
            got.push(mask(&all));
        }
        got
    }
}

fn mask(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect()
}

fn run(program: &str, args: &[String], path: &str, stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .env("PATH", path)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    if let Some(input) = stdin {
        // A command line that is the daemon's (`--check-config`) may exit without reading it.
        match child.stdin.take().unwrap().write_all(input) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.unwrap(),
        }
    }
    wait_output(child, WAIT)
}

fn util_linux_invocations_behave_as_util_linux_logger_alone() {
    require!(
        Path::new("/usr/bin/logger").exists(),
        "util-linux logger in /usr/bin"
    );
    // The reference run must reach util-linux: no other `logger` may stand before it.
    let shadow = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin"]
        .iter()
        .map(|d| Path::new(d).join("logger"))
        .find(|p| p.exists());
    require!(
        shadow.is_none(),
        format!("no logger installed before /usr/bin ({shadow:?} is)")
    );
    let dir = tempdir();
    let sbin = dir.path().join("sbin");
    std::fs::create_dir(&sbin).unwrap();
    install_daemon(&sbin.join("logger"));
    let path = installed_path(&sbin);
    let debian_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let sock = dir.path().join("log");
    let peers = Peers {
        unix: UnixDatagram::bind(&sock).unwrap(),
        udp: UdpSocket::bind("127.0.0.1:0").unwrap(),
        tcp: TcpListener::bind("127.0.0.1:0").unwrap(),
    };
    let file = dir.path().join("lines.txt");
    std::fs::write(&file, "from a file\nsecond line\n").unwrap();
    let s = sock.display().to_string();
    let udp = peers.udp.local_addr().unwrap().port().to_string();
    let tcp = peers.tcp.local_addr().unwrap().port().to_string();
    let f = file.display().to_string();
    let cases: Vec<(Vec<&str>, Option<&[u8]>)> = vec![
        (vec!["-u", &s, "hello"], None),
        (vec!["-u", &s, "-t", "backup", "done"], None),
        (
            vec!["-u", &s, "-p", "local3.warning", "-t", "x", "prio"],
            None,
        ),
        (vec!["-u", &s, "-i", "-t", "x", "with pid"], None),
        (vec!["-u", &s, "--id=4242", "-t", "x", "explicit id"], None),
        (
            vec!["-n", "127.0.0.1", "-P", &udp, "-d", "-t", "x", "udp"],
            None,
        ),
        (
            vec!["-n", "127.0.0.1", "-P", &tcp, "-T", "-t", "x", "tcp"],
            None,
        ),
        (
            vec!["-u", &s, "--rfc5424", "-t", "x", "five four two four"],
            None,
        ),
        (
            vec!["-u", &s, "--rfc3164", "-t", "x", "three one six four"],
            None,
        ),
        (vec!["-u", &s, "-f", &f, "-t", "x"], None),
        (vec!["-u", &s, "-t", "piped"], Some(b"line one\nline two\n")),
        (vec!["-u", &s, "-t", "x", "--", "--fork"], None),
        (
            vec![
                "-u",
                &s,
                "-t",
                "--listen",
                "a tag named like a daemon option",
            ],
            None,
        ),
        (vec!["-p", "nonsense.level", "-u", &s, "x"], None),
        // No argument but piped input, no service manager: the client (which then writes to
        // /dev/log, or says why it cannot, exactly as util-linux does alone).
        (vec![], Some(b"to /dev/log\n")),
    ];
    for (args, stdin) in cases {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let ours = run("logger", &args, &path, stdin);
        let ours_sent = peers.take();
        // The reference: the same command line on the same PATH without the daemon installed.
        let theirs = run("logger", &args, debian_path, stdin);
        let theirs_sent = peers.take();
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}: exit");
        assert_eq!(
            String::from_utf8_lossy(&ours.stderr),
            String::from_utf8_lossy(&theirs.stderr),
            "{args:?}: stderr"
        );
        assert_eq!(ours_sent, theirs_sent, "{args:?}: what was sent");
        if args.iter().any(|a| a == &s) && theirs.status.success() {
            assert!(!ours_sent.is_empty(), "{args:?}: nothing was sent");
        }
    }
}

fn daemon_command_lines_still_run_the_daemon_from_path() {
    let dir = tempdir();
    let sbin = dir.path().join("sbin");
    std::fs::create_dir(&sbin).unwrap();
    install_daemon(&sbin.join("logger"));
    let path = installed_path(&sbin);
    // --help and --version are the daemon's, and the help says how to reach the client.
    let help = run("logger", &["--help".into()], &path, None);
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("SENDING A MESSAGE") && help.contains("/usr/bin/logger"),
        "{help}"
    );
    let version = run("logger", &["--version".into()], &path, None);
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("logger 0."));
    let check = run("logger", &["--check-config".into()], &path, Some(b"piped"));
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("# effective configuration"),
        "a daemon option wins over piped input"
    );
    // An option neither program knows is the daemon's usage error, with the one meant.
    let typo = run(
        "logger",
        &["--lisen".into(), "udp://0.0.0.0:514".into()],
        &path,
        None,
    );
    assert_eq!(typo.status.code(), Some(64), "{typo:?}");
    let said = String::from_utf8_lossy(&typo.stderr);
    assert!(
        said.contains("'--lisen'") && said.contains("--listen"),
        "{said}"
    );
    // -V is the client's version, for scripts; --version the daemon's.
    let client_version = run("logger", &["-V".into()], &path, None);
    assert!(
        String::from_utf8_lossy(&client_version.stdout).contains("util-linux"),
        "{client_version:?}"
    );
    // A word after daemon options is the daemon's usage error, pointing at the client.
    let stray = run("logger", &["--fork".into(), "hello".into()], &path, None);
    assert_eq!(stray.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&stray.stderr).contains("util-linux"));
    // And the README's foreground invocation with a service manager's NOTIFY_SOCKET: the
    // Builder passes daemon options; the systemd scenario runs the unit's bare ExecStart.
    let d = Builder::new().standard().start();
    assert!(d.stop().0.success());
}

/// `echo x | logger` inside a notify service (NOTIFY_SOCKET and LISTEN_FDS set, as every
/// script a service runs sees them) sends the line to /dev/log as util-linux does, instead of
/// starting a daemon. /dev/log is our socket in a mount namespace of the test's own.
fn a_piped_line_is_the_clients_whatever_the_environment() {
    require!(is_root(), "root (a private mount namespace for /dev/log)");
    require!(have("unshare"), "unshare (util-linux)");
    require!(
        Path::new("/usr/bin/logger").exists(),
        "util-linux logger in /usr/bin"
    );
    let dir = tempdir();
    let sbin = dir.path().join("sbin");
    std::fs::create_dir(&sbin).unwrap();
    install_daemon(&sbin.join("logger"));
    let sock = dir.path().join("dev-log");
    let receiver = UnixDatagram::bind(&sock).unwrap();
    // A tmpfs on /dev in the namespace: /dev/log can be made there whatever the host has.
    let script = format!(
        "mount -t tmpfs none /dev && touch /dev/log && mount --bind {sock} /dev/log && \
         exec logger",
        sock = sock.display()
    );
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("PATH", installed_path(&sbin))
        .env("NOTIFY_SOCKET", dir.path().join("notify"))
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped inside a service\n")
        .unwrap();
    let out = wait_output(child, WAIT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut buf = [0u8; 4096];
    let n = recv_within(&receiver, &mut buf, WAIT).expect("the line at /dev/log");
    let got = String::from_utf8_lossy(&buf[..n]);
    assert!(got.ends_with("piped inside a service"), "{got}");
}
