//! The drop-in for rsyslog on Debian: logger's `traditional` and `rfc3339` lines are the ones
//! a real rsyslogd 8.2302 writes for the same messages, and the box's readers of those files
//! (fail2ban, logrotate) work on logger's as they do on rsyslog's.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    rsyslog_formats_are_what_rsyslogd_writes_byte_for_byte,
    fail2ban_finds_the_sshd_failures_in_loggers_auth_log,
    logrotate_rotates_loggers_files_with_the_shipped_snippet,
];

/// A zone with a half-hour offset and no daylight saving time: a line that used UTC, or the
/// offset of another moment, cannot pass.
const ZONE: &str = "Asia/Kolkata";

/// What both daemons are sent over their local socket: util-linux logger(1) as a program would
/// call it, and what journald's ForwardToSyslog= writes.
fn local_messages(socket: &Path) {
    let s = socket.to_str().unwrap();
    send(&[
        "-u",
        s,
        "-t",
        "sshd",
        "--id=2222",
        "-p",
        "authpriv.info",
        "Failed password for invalid user admin from 192.0.2.5 port 4242 ssh2",
    ]);
    send(&[
        "-u",
        s,
        "-t",
        "app",
        "multi\nline\tand \x1b[31mred\x1b[0m caf\u{e9}",
    ]);
    let journald = UnixDatagram::unbound().unwrap();
    journald
        .send_to(
            b"<38>Dec  7 15:37:20 sshd[2223]: Accepted publickey for ops from 192.0.2.6",
            socket,
        )
        .unwrap();
}

/// What both daemons are sent over UDP, from one socket (the same sender address).
const NETWORK: [&[u8]; 9] = [
    b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    b"<13>Oct 1 01:02:03 host tag[12]: one-digit day",
    b"<38>Jan  5 03:04:05 gw1 sshd[5]: Failed password for root from 198.51.100.2 port 22 ssh2",
    b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] An application event",
    b"<165>1 2020-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    b"<13>hello world",
    b"headerless datagram",
    b"<13>Oct  1 01:02:03 host tag: multi\nline\twith \x1b[2J escape and \x01",
    b"<13>1 - host app - - - no time in the header",
];

/// Which lines of the corpus carry the time they were received (the two daemons received them
/// at different moments): the local ones, and network ones without a usable timestamp.
fn received_time_lines() -> Vec<bool> {
    let mut v = vec![true; 3];
    v.extend([false, false, false, false, false, true, true, false, true]);
    v
}

/// Waits until `path` holds `n` lines that are not probes.
fn wait_for_corpus(path: &Path, n: usize) {
    eventually(&format!("{n} lines in {}", path.display()), WAIT, || {
        std::fs::read(path).is_ok_and(|t| {
            t.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty() && !l.ends_with(b"probe: up"))
                .count()
                >= n
        })
    });
}

fn rsyslog_formats_are_what_rsyslogd_writes_byte_for_byte() {
    require!(have("rsyslogd"), "rsyslog (rsyslogd), the reference");
    require!(
        Path::new(&format!("/usr/share/zoneinfo/{ZONE}")).exists(),
        "the time zone database (tzdata)"
    );
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut rsyslog = Rsyslog::start(
        &format!(
            "global(net.enableDNS=\"off\")\n\
             module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{{dir}}/log\" RateLimit.Interval=\"0\")\n\
             module(load=\"imudp\")\n\
             input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\")\n\
             *.* {{dir}}/traditional.log;RSYSLOG_TraditionalFileFormat\n\
             *.* {{dir}}/rfc3339.log;RSYSLOG_FileFormat\n"
        ),
        &[("TZ", ZONE)],
    );
    let work = tempdir();
    let ours = work.path();
    let d = Builder::new()
        .config(&format!(
            "[[output]]\nto = \"file:{o}/traditional.log\"\nformat = \"traditional\"\n\
             [[output]]\nto = \"file:{o}/rfc3339.log\"\nformat = \"rfc3339\"\n",
            o = ours.display()
        ))
        .env("TZ", ZONE)
        .arg("--listen=udp://127.0.0.1:0")
        .arg(format!("--listen=unix://{}/log", ours.display()))
        .start();

    // rsyslog's inputs are up once a probe sent over UDP is in its file.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let theirs = rsyslog.path("traditional.log");
    eventually("rsyslogd writes a UDP probe", WAIT, || {
        udp.send_to(b"<13>probe: up", ("127.0.0.1", port)).unwrap();
        std::fs::read(&theirs).is_ok_and(|t| !t.is_empty())
    });
    // Probes still on their way may land later: every probe line is left out below.
    let probes = 1;
    udp.send_to(b"<13>probe: up", d.addr("udp")).unwrap();
    wait_for_lines(&ours.join("traditional.log"), probes);

    // Local messages first, then the network's: each daemon keeps the order of one input.
    local_messages(&rsyslog.path("log"));
    local_messages(&ours.join("log"));
    for file in ["traditional.log", "rfc3339.log"] {
        wait_for_corpus(&rsyslog.path(file), 3);
        wait_for_corpus(&ours.join(file), 3);
    }
    for raw in NETWORK {
        udp.send_to(raw, ("127.0.0.1", port)).unwrap();
        udp.send_to(raw, d.addr("udp")).unwrap();
    }
    let total = 3 + NETWORK.len();
    for file in ["traditional.log", "rfc3339.log"] {
        wait_for_corpus(&rsyslog.path(file), total);
        wait_for_corpus(&ours.join(file), total);
    }
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    rsyslog.stop();

    for file in ["traditional.log", "rfc3339.log"] {
        let read = |dir: &Path| std::fs::read(dir.join(file)).unwrap();
        let (ours, theirs) = (read(ours), read(rsyslog.dir.path()));
        let split = |t: &[u8]| -> Vec<Vec<u8>> {
            t.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty() && !l.ends_with(b"probe: up"))
                .map(<[u8]>::to_vec)
                .collect()
        };
        let (ours, theirs) = (split(&ours), split(&theirs));
        assert_eq!(ours.len(), theirs.len(), "{file}: line counts");
        for ((a, b), received) in ours.iter().zip(&theirs).zip(received_time_lines()) {
            let show = |l: &[u8]| String::from_utf8_lossy(l).into_owned();
            if !received {
                assert_eq!(show(a), show(b), "{file}: logger vs rsyslogd");
                assert_eq!(a, b, "{file}: bytes");
                continue;
            }
            // Stamped on receipt: the same line but for the moment, which must be the same
            // form, in the same zone, within seconds of rsyslog's.
            let time_len = if file == "traditional.log" { 15 } else { 32 };
            assert_eq!(show(&a[time_len..]), show(&b[time_len..]), "{file}");
            let (ta, tb) = (show(&a[..time_len]), show(&b[..time_len]));
            let seconds = |t: &str| -> i64 {
                let clock = if time_len == 15 {
                    &t[7..15]
                } else {
                    &t[11..19]
                };
                clock
                    .split(':')
                    .fold(0, |acc, p| acc * 60 + p.parse::<i64>().unwrap())
            };
            assert!(
                (seconds(&ta) - seconds(&tb)).abs() <= 5,
                "{file}: received at {ta} here, {tb} by rsyslogd"
            );
            if time_len == 32 {
                assert_eq!(&ta[..10], &tb[..10], "{file}: the date");
                assert_eq!(&ta[26..], "+05:30", "{file}: the zone's offset");
                assert_eq!(&ta[26..], &tb[26..], "{file}: the offset");
            } else {
                assert_eq!(&ta[..6], &tb[..6], "{file}: the date");
            }
        }
    }
}

fn fail2ban_finds_the_sshd_failures_in_loggers_auth_log() {
    require!(have("fail2ban-regex"), "fail2ban (fail2ban-regex)");
    let work = tempdir();
    let auth = work.path().join("auth.log");
    let d = Builder::new()
        .config(&format!(
            "[[output]]\nto = \"file:{}\"\nmatch = \"auth,authpriv.*\"\nformat = \"traditional\"\n",
            auth.display()
        ))
        .arg(format!("--listen=unix://{}/log", work.path().display()))
        .arg("--listen=udp://127.0.0.1:0")
        .start();
    let socket = work.path().join("log");
    let s = socket.to_str().unwrap();
    for (i, user) in ["root", "admin", "oracle"].iter().enumerate() {
        send(&[
            "-u",
            s,
            "-t",
            "sshd",
            &format!("--id={}", 3000 + i),
            "-p",
            "authpriv.info",
            &format!(
                "Failed password for {user} from 203.0.113.{} port 4242 ssh2",
                i + 1
            ),
        ]);
    }
    // A relayed failure from another host, with its own time.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<38>Dec  7 15:37:24 web1 sshd[2222]: Failed password for invalid user bob from 203.0.113.9 port 5555 ssh2",
        d.addr("udp"),
    )
    .unwrap();
    wait_for_lines(&auth, 4);
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    let out = Command::new("fail2ban-regex")
        .arg(&auth)
        .arg("/etc/fail2ban/filter.d/sshd.conf")
        .output()
        .expect("run fail2ban-regex");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "fail2ban-regex: {report}");
    let matched = report
        .lines()
        .find_map(|l| l.strip_prefix("Lines: "))
        .unwrap_or_else(|| panic!("no summary in {report}"));
    assert!(
        matched.contains("4 lines, 0 ignored, 4 matched, 0 missed"),
        "the stock sshd filter must match every failure: {matched}\n{report}"
    );
}

fn logrotate_rotates_loggers_files_with_the_shipped_snippet() {
    require!(have("logrotate"), "logrotate");
    let work = tempdir();
    let dir = work.path();
    let log = dir.join("syslog");
    let d = Builder::new()
        .config(&format!(
            "[[output]]\nto = \"file:{}\"\nformat = \"traditional\"\n",
            log.display()
        ))
        .arg(format!("--listen=unix://{}/log", dir.display()))
        .start();
    let socket = dir.join("log");
    send(&[
        "-u",
        socket.to_str().unwrap(),
        "-t",
        "app",
        "before rotation",
    ]);
    wait_for_lines(&log, 1);
    // The shipped snippet, its paths moved here and its postrotate aimed at this daemon.
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/debian/logger.logrotate"),
    )
    .unwrap();
    let postrotate = shipped
        .lines()
        .skip_while(|l| !l.trim().starts_with("postrotate"))
        .nth(1)
        .expect("a postrotate command")
        .trim()
        .to_owned();
    assert!(
        postrotate.contains("logger") && postrotate.contains("HUP"),
        "postrotate must make logger reopen its files: {postrotate}"
    );
    let conf = shipped
        .replace("/var/log/", &format!("{}/", dir.display()))
        .replace(&postrotate, &format!("kill -HUP {}", d.pid()));
    let conf_path = dir.join("logrotate.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let out = Command::new("logrotate")
        .arg("--force")
        .arg("--state")
        .arg(dir.join("logrotate.state"))
        .arg(&conf_path)
        .output()
        .expect("run logrotate");
    assert!(
        out.status.success(),
        "logrotate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("syslog.") && !n.ends_with(".gz"))
        .unwrap_or_else(|| panic!("no rotated file in {}", dir.display()));
    // The snippet creates no file (as Debian's rsyslog snippet): logger's reopen on the
    // signal does, and the next line lands there, not in the rotated file.
    eventually("logger reopens syslog after the rotation", WAIT, || {
        log.exists()
    });
    send(&[
        "-u",
        socket.to_str().unwrap(),
        "-t",
        "app",
        "after rotation",
    ]);
    wait_for_lines(&log, 1);
    let old = std::fs::read_to_string(dir.join(&rotated)).unwrap();
    assert!(old.contains("before rotation"), "{old}");
    assert!(
        !old.contains("after rotation"),
        "written to the rotated file: {old}"
    );
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}
