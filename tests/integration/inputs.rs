//! Every input, fed by the real util-linux `logger` and by hand-made bad input, checked in the
//! file output (exactly) and in the journal's native protocol.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    util_linux_logger_over_every_input_lands_with_identifier_pid_and_priority,
    bad_input_is_escaped_cut_or_dropped_and_counted_never_forged,
    idle_connections_beyond_the_limit_do_not_starve_a_working_client,
    journal_output_speaks_the_native_protocol_with_syslog_and_origin_fields,
    control_characters_from_the_network_never_reach_an_output_raw,
    a_trusted_input_may_keep_raw_bytes,
    a_flood_of_escaped_messages_costs_what_it_weighs,
    a_restarting_journal_loses_nothing_accepted,
    a_journal_that_stops_reading_neither_blocks_the_loop_nor_loses_an_entry,
    a_journal_that_reads_in_bursts_finds_its_queue_refilled_after_each,
    an_entry_too_large_for_a_datagram_goes_through_a_sealed_memfd,
    datagram_sockets_get_the_receive_buffer_asked_and_say_when_the_kernel_caps_it,
    reloaded_limits_reach_running_listeners_and_open_connections,
];

/// A daemon writing to a journal socket the test binds: the real native protocol, read back here.
pub fn with_test_journal(b: Builder, extra_config: &str) -> (Builder, UnixDatagram) {
    let journal = b.dir().join("journal.sock");
    let sink = UnixDatagram::bind(&journal).unwrap();
    let b = b.arg("--output=journal").config(&format!(
        "journal-socket = \"{}\"\n{extra_config}",
        journal.display()
    ));
    (b, sink)
}

fn logger_available() -> bool {
    std::path::Path::new("/usr/bin/logger").exists()
}

fn util_linux_logger_over_every_input_lands_with_identifier_pid_and_priority() {
    require!(logger_available(), "util-linux logger in /usr/bin");
    let d = Builder::new().standard().start();
    let (udp, tcp) = (d.port("udp"), d.port("tcp"));
    let sock = d.path("log").display().to_string();
    let stream = d.path("stream").display().to_string();
    let host = hostname();
    send(&[
        "-u",
        &sock,
        "-t",
        "myapp",
        "--id=4242",
        "-p",
        "local3.warning",
        "unix datagram",
    ]);
    send(&[
        "-u",
        &stream,
        "-T",
        "-t",
        "streamer",
        "-p",
        "daemon.err",
        "unix stream",
    ]);
    send(&[
        "-n",
        "127.0.0.1",
        "-P",
        &udp,
        "-d",
        "--rfc3164",
        "-t",
        "net3",
        "--id=77",
        "udp 3164",
    ]);
    send(&[
        "-n",
        "127.0.0.1",
        "-P",
        &udp,
        "-d",
        "--rfc5424",
        "--msgid",
        "ID47",
        "--sd-id",
        "exampleSDID@32473",
        "--sd-param",
        "iut=\"3\"",
        "-t",
        "net5",
        "-p",
        "auth.info",
        "udp 5424",
    ]);
    send(&[
        "-n",
        "127.0.0.1",
        "-P",
        &tcp,
        "-T",
        "--octet-count",
        "-t",
        "oc",
        "tcp octet",
    ]);
    send(&[
        "-n",
        "127.0.0.1",
        "-P",
        &tcp,
        "-T",
        "-t",
        "nl",
        "-p",
        "local7.debug",
        "tcp newline",
    ]);
    let (status, log, _) = d.stop();
    assert!(status.success());
    let lines = lines_without_time(&log);
    for expected in [
        format!("{host} myapp[4242] local3.warning: unix datagram"),
        format!("{host} streamer[") + "",
        format!("{host} net3[77] user.notice: udp 3164"),
        format!("{host} net5 auth.info: udp 5424"),
        format!("{host} oc user.notice: tcp octet"),
        format!("{host} nl local7.debug: tcp newline"),
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(&expected)),
            "missing {expected:?} in {lines:#?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{host} streamer["))
                && l.ends_with("] daemon.err: unix stream")),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 6, "{lines:#?}");
}

fn bad_input_is_escaped_cut_or_dropped_and_counted_never_forged() {
    let d = Builder::new()
        .standard()
        .config("max-message-size = 8192\n")
        .start();
    let udp_addr = d.addr("udp");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Newline injection, ANSI escapes, NUL, invalid UTF-8: one line each, escaped.
    udp.send_to(
        b"<13>inj: first\nJan  1 00:00:00 host forged: line",
        &udp_addr,
    )
    .unwrap();
    udp.send_to(
        b"<13>esc: \x1b[2J\x1b[31mred\x07 nul\x00 bad\xff\xfe",
        &udp_addr,
    )
    .unwrap();
    // Longer than the 1 KiB a receive slot's first part holds: joined whole from both parts.
    let mut mid = b"<13>mid: ".to_vec();
    mid.resize(3000, b'm');
    udp.send_to(&mid, &udp_addr).unwrap();
    // Oversized datagram: cut to the limit and delivered, not lost.
    let mut big = b"<13>big: ".to_vec();
    big.resize(9000, b'x');
    udp.send_to(&big, &udp_addr).unwrap();
    // TCP: an oversized frame is skipped whole; the next frame still arrives intact.
    let mut tcp = TcpStream::connect(d.addr("tcp")).unwrap();
    let mut frame = b"<13>huge: ".to_vec();
    frame.resize(20_000, b'y');
    frame.extend_from_slice(b"\n<13>after: intact\n");
    frame.extend_from_slice(b"100 <13>short: count larger than the data");
    tcp.write_all(&frame).unwrap();
    drop(tcp);
    // No header at all.
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"no header at all", d.path("log"))
        .unwrap();
    // The operator sees the same counts while it runs.
    let json = d.wait_for_status_count("\"totals\"", "oversized", 1);
    assert_eq!(
        json_number(&json, "\"totals\"", "truncated"),
        Some(2),
        "{json}"
    );
    let (status, log, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 7, "{log}");
    assert!(
        log.contains("inj user.notice: first\\nJan  1 00:00:00 host forged: line"),
        "{log}"
    );
    assert!(
        log.contains("esc user.notice: \\x1b[2J\\x1b[31mred\\x07 nul\\x00 bad\\xff\\xfe"),
        "{log}"
    );
    assert!(!log.contains('\x1b') && !log.contains('\0'));
    let big_line = lines
        .iter()
        .find(|l| l.contains(" big "))
        .expect("cut datagram");
    assert_eq!(big_line.matches('x').count(), 8192 - b"<13>big: ".len());
    let mid_line = lines
        .iter()
        .find(|l| l.contains(" mid "))
        .expect("the 3000-byte datagram");
    assert!(
        mid_line.ends_with(&format!(": {}", "m".repeat(3000 - b"<13>mid: ".len()))),
        "{mid_line}"
    );
    assert!(log.contains("after user.notice: intact"), "{log}");
    assert!(
        !log.contains("yyyy"),
        "no piece of the oversized frame may appear"
    );
    assert!(
        log.contains("short user.notice: count larger than the data"),
        "{log}"
    );
    assert!(log.contains("user.notice: no header at all"), "{log}");
    assert!(
        stderr.contains("oversized 1") && stderr.contains("truncated 2"),
        "counters in the final line: {stderr}"
    );
}

fn idle_connections_beyond_the_limit_do_not_starve_a_working_client() {
    let d = Builder::new()
        .standard()
        .config("max-connections = 64\n")
        .start();
    let tcp = d.addr("tcp");
    let idle: Vec<TcpStream> = (0..1000)
        .filter_map(|_| TcpStream::connect(&tcp).ok())
        .collect();
    assert!(idle.len() >= 64);
    // A slow client that starts a frame and never finishes it.
    let mut slow = TcpStream::connect(&tcp).unwrap();
    slow.write_all(b"500 <13>slow: never finished").unwrap();
    // Idle slots are reclaimed once they have been silent for a second: a working client that
    // keeps trying gets through (each attempt is a new connection; one must be served).
    let out = d.path("out.log");
    let mut attempt = 0;
    eventually("a working client served", WAIT, || {
        attempt += 1;
        if let Ok(mut good) = TcpStream::connect(&tcp) {
            let _ = good.write_all(format!("<13>good: served {attempt}\n").as_bytes());
        }
        let written = std::fs::read_to_string(&out).unwrap_or_default();
        written.contains("good user.notice: served")
    });
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<13>udp: still served", d.addr("udp"))
        .unwrap();
    let rss = std::fs::read_to_string(format!("/proc/{}/status", d.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().to_owned()))
        .unwrap();
    let (status, log, _) = d.stop();
    drop(idle);
    assert!(status.success());
    assert!(log.contains("good user.notice: served"), "{log}");
    assert!(log.contains("udp user.notice: still served"), "{log}");
    let kb: u64 = rss.trim_end_matches(" kB").parse().unwrap();
    assert!(kb < 64 * 1024, "RSS {kb} kB with 1000 connections");
}

fn journal_output_speaks_the_native_protocol_with_syslog_and_origin_fields() {
    let (b, sink) = with_test_journal(Builder::new(), "");
    let d = b.arg("--listen=udp://127.0.0.1:0").start();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<165>1 2026-11-23T20:21:46Z web1 nginx 42 ID7 [x@1 a=\"b\"] two\nlines \xff",
        d.addr("udp"),
    )
    .unwrap();
    let mut buf = vec![0u8; 65536];
    let n = recv_within(&sink, &mut buf, WAIT).expect("an entry within the wait");
    let fields = logger::outputs::journal::decode(&buf[..n]).expect("valid native entry");
    let get = |k: &str| {
        fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    // Escaped on receive, reversibly: the newline and the byte that is not UTF-8 are visible.
    assert_eq!(get("MESSAGE").as_deref(), Some("two\\nlines \\xff"));
    assert_eq!(get("LOGGER_ESCAPED").as_deref(), Some("1"));
    assert_eq!(get("PRIORITY").as_deref(), Some("5"));
    assert_eq!(get("SYSLOG_FACILITY").as_deref(), Some("20"));
    assert_eq!(get("SYSLOG_IDENTIFIER").as_deref(), Some("nginx"));
    assert_eq!(get("SYSLOG_PID").as_deref(), Some("42"));
    assert_eq!(
        get("SYSLOG_TIMESTAMP").as_deref(),
        Some("2026-11-23T20:21:46Z")
    );
    assert_eq!(get("LOGGER_HOSTNAME").as_deref(), Some("web1"));
    assert_eq!(get("LOGGER_MSGID").as_deref(), Some("ID7"));
    assert_eq!(
        get("LOGGER_STRUCTURED_DATA").as_deref(),
        Some("[x@1 a=\"b\"]")
    );
    assert_eq!(get("LOGGER_TRANSPORT").as_deref(), Some("udp"));
    assert_eq!(get("LOGGER_INVALID_UTF8").as_deref(), Some("1"));
    assert!(get("LOGGER_PEER").unwrap().starts_with("127.0.0.1:"));
    assert!(d.stop().0.success());
}

/// One journal entry from `sink` as (field, value) pairs.
fn journal_entry(sink: &UnixDatagram) -> Vec<(String, Vec<u8>)> {
    let mut buf = vec![0u8; 65536];
    let n = recv_within(sink, &mut buf, WAIT).expect("an entry within the wait");
    logger::outputs::journal::decode(&buf[..n]).expect("valid native entry")
}

fn field<'a>(entry: &'a [(String, Vec<u8>)], key: &str) -> Option<&'a [u8]> {
    entry
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_slice())
}

/// What a LAN host sends at `<0>` (emergency: journald walls it to every terminal): terminal
/// escapes in the hostname and tag (RFC 5424 fields end only at a space) and in the text: clear
/// screen, set the window title, an 8-bit CSI, a forged second line, a bidi override.
const HOSTILE_HEADER: &[u8] = b"<0>1 2026-11-23T20:21:46Z evil\x1b[8m \x1b]0;owned\x07sshd 1 - - ";
const HOSTILE_TEXT: &[u8] = b"\x1b[2J\x1b[Hfake login: \xc2\x9b31m red\r\nline2 \xe2\x80\xae";

fn hostile() -> Vec<u8> {
    [HOSTILE_HEADER, HOSTILE_TEXT].concat()
}

fn control_characters_from_the_network_never_reach_an_output_raw() {
    let (b, sink) = with_test_journal(Builder::new(), "");
    let d = b.arg("--listen=udp://127.0.0.1:0").start();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(&hostile(), d.addr("udp")).unwrap();
    let entry = journal_entry(&sink);
    for (key, value) in &entry {
        assert!(
            !value.iter().any(|&b| b < 0x20 || b == 0x7f),
            "{key} carries a raw control byte: {value:?}"
        );
        assert!(std::str::from_utf8(value).is_ok(), "{key} is not text");
    }
    let message = field(&entry, "MESSAGE").unwrap();
    assert_eq!(
        String::from_utf8_lossy(message),
        "\\x1b[2J\\x1b[Hfake login: \\u{9b}31m red\\r\\nline2 \u{202e}"
    );
    assert_eq!(
        field(&entry, "SYSLOG_IDENTIFIER"),
        Some(&b"\\x1b]0;owned\\x07sshd"[..])
    );
    assert_eq!(field(&entry, "LOGGER_HOSTNAME"), Some(&b"evil\\x1b[8m"[..]));
    assert_eq!(field(&entry, "LOGGER_ESCAPED"), Some(&b"1"[..]));
    // Reversible: unescaping gives back exactly what was sent.
    assert_eq!(syslog::escape::unescape(message).unwrap(), HOSTILE_TEXT);
    assert!(d.stop().0.success());

    // In a file the same message is one line, with the bidi override escaped too, and it
    // unescapes to what was sent.
    let d = Builder::new().standard().start();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(&hostile(), d.addr("udp")).unwrap();
    let (status, log, _) = d.stop();
    assert!(status.success());
    assert_eq!(log.lines().count(), 1, "{log}");
    let line = log.lines().next().unwrap();
    assert!(!line.bytes().any(|b| b < 0x20 || b == 0x7f), "{line:?}");
    assert!(line.ends_with("\\u{202e}"), "{line}");
    let text = line.split_once(": ").unwrap().1;
    assert_eq!(
        syslog::escape::unescape(text.as_bytes()).unwrap(),
        HOSTILE_TEXT
    );
}

fn a_flood_of_escaped_messages_costs_what_it_weighs() {
    // Escaping makes a message of control characters up to four times longer. With queues
    // bounded in message counts, 64 such messages (16 MB) made a batch and 8 batches waited
    // for a stuck output: peak RSS 190 MB in a 4 s flood. Batches are bounded in bytes too.
    // The output here is a journal that never reads, so everything queues.
    let (b, _journal) = with_test_journal(Builder::new(), "");
    let d = b.arg("--listen=udp://127.0.0.1:0").start();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut hostile = b"<13>app: ".to_vec();
    hostile.resize(65_000, 0x01);
    for _ in 0..3000 {
        let _ = udp.send_to(&hostile, d.addr("udp"));
    }
    // Queued as far as it goes once two STATUS= in a row report the same number received.
    let received = |status: &str| {
        status
            .split("received ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .map(str::to_owned)
    };
    let mut last = None;
    within(WAIT * 3, || {
        let status = d
            .notify
            .recv(WAIT)
            .expect("STATUS= while the output is stuck");
        let now = received(&status);
        let settled = now.is_some() && now == last;
        last = now;
        settled
            .then_some(())
            .ok_or_else(|| format!("never settled: {status}"))
    });
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let peak: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    assert!(
        peak < 32 * 1024,
        "peak RSS {peak} kB with {last:?} received"
    );
    // The journal never drains: end the daemon without a stop that would wait on it.
    let mut d = d;
    d.child.kill().unwrap();
    d.child.wait().unwrap();
}

fn a_trusted_input_may_keep_raw_bytes() {
    let (b, sink) = with_test_journal(Builder::new(), "escape-control-characters = false\n");
    let d = b.arg("--listen=udp://127.0.0.1:0").start();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<13>app: multi\nline \x1b[1m", d.addr("udp"))
        .unwrap();
    let entry = journal_entry(&sink);
    assert_eq!(field(&entry, "MESSAGE"), Some(&b"multi\nline \x1b[1m"[..]));
    assert_eq!(field(&entry, "LOGGER_ESCAPED"), None);
    assert!(d.stop().0.success());
}

fn a_restarting_journal_loses_nothing_accepted() {
    let b = Builder::new();
    let journal = b.dir().join("journal.sock");
    let d = b
        .arg("--listen=udp://127.0.0.1:0")
        .arg("--output=journal")
        .config(&format!("journal-socket = \"{}\"\n", journal.display()))
        .start();
    // The journal socket does not exist yet: messages wait in the backlog.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..50 {
        udp.send_to(format!("<13>t: m{i}").as_bytes(), d.addr("udp"))
            .unwrap();
    }
    let sink = UnixDatagram::bind(&journal).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    while got.len() < 50 {
        let n = recv_within(&sink, &mut buf, WAIT).expect("every backlogged entry arrives");
        let fields = logger::outputs::journal::decode(&buf[..n]).unwrap();
        got.push(fields.into_iter().find(|(k, _)| k == "MESSAGE").unwrap().1);
    }
    let expected: Vec<Vec<u8>> = (0..50).map(|i| format!("m{i}").into_bytes()).collect();
    assert_eq!(got, expected, "in order, none missing");
    let (status, _, stderr) = d.stop();
    assert!(status.success());
    assert!(stderr.contains("output errors"), "{stderr}");
}

fn a_journal_that_stops_reading_neither_blocks_the_loop_nor_loses_an_entry() {
    let (b, sink) = with_test_journal(Builder::new(), "");
    let d = b.arg("--listen=tcp://127.0.0.1:0").start();
    // The test reads nothing yet: journald's stand-in fills its queue and sends get EAGAIN.
    const N: usize = 2000;
    let mut tcp = TcpStream::connect(d.addr("tcp")).unwrap();
    for i in 0..N {
        writeln!(tcp, "<13>t: m{i}").unwrap();
    }
    tcp.flush().unwrap();
    d.wait_queued_status("no STATUS with entries queued for a full journal");
    // The loop still serves control events: a reload completes while the journal is full.
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.notify.expect("RELOADING=1");
    d.notify.expect("READY=1");
    // The journal reads again: every entry arrives, in order.
    let mut buf = vec![0u8; 65536];
    for i in 0..N {
        let n = recv_within(&sink, &mut buf, WAIT).expect("every held entry arrives");
        let fields = logger::outputs::journal::decode(&buf[..n]).unwrap();
        let message = fields.into_iter().find(|(k, _)| k == "MESSAGE").unwrap().1;
        assert_eq!(
            message,
            format!("m{i}").into_bytes(),
            "in order, none missing"
        );
    }
    drop(tcp);
    assert!(d.stop().0.success());
}

/// journald busy (a slow disk, a rotation) reads its socket in bursts. The journal output
/// waits for its queue to have room and refills it after every burst. It used to treat a queue
/// full for 100 ms as a failure and back off up to 2 s, so that a journal reading every 250 ms
/// got one burst's worth every 2 s, and a backlog took eight times as long to clear.
fn a_journal_that_reads_in_bursts_finds_its_queue_refilled_after_each() {
    let (b, sink) = with_test_journal(Builder::new(), "heartbeat = \"0\"\n");
    let d = b.arg("--listen=tcp://127.0.0.1:0").start();
    // More than a dozen bursts take: the kernel queues 11 entries (max_dgram_qlen 10) or 513.
    const N: usize = 20_000;
    let mut tcp = TcpStream::connect(d.addr("tcp")).unwrap();
    for i in 0..N {
        writeln!(tcp, "<13>t: m{i}").unwrap();
    }
    tcp.flush().unwrap();
    d.wait_queued_status("no STATUS with entries queued for a full journal");
    sink.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut burst = || {
        let mut n = 0;
        while sink.recv(&mut buf).is_ok() {
            n += 1;
        }
        n
    };
    let mut received = burst();
    const BURSTS: usize = 12;
    let mut empty = 0;
    for _ in 0..BURSTS {
        std::thread::sleep(Duration::from_millis(250));
        let n = burst();
        received += n;
        if n == 0 {
            empty += 1;
        }
    }
    assert!(received < N, "the whole backlog fit in {BURSTS} bursts");
    assert!(
        empty <= BURSTS / 4,
        "{empty} of {BURSTS} bursts 250 ms apart found the journal's queue empty while \
         logger held {} entries",
        N - received
    );
    // The rest arrives too.
    sink.set_nonblocking(false).unwrap();
    while received < N {
        recv_within(&sink, &mut buf, WAIT).expect("every held entry arrives");
        received += 1;
    }
    drop(tcp);
    assert!(d.stop().0.success());
}

fn an_entry_too_large_for_a_datagram_goes_through_a_sealed_memfd() {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::AsRawFd;
    let (b, sink) = with_test_journal(Builder::new(), "max-message-size = 16777216\n");
    let d = b.arg("--listen=tcp://127.0.0.1:0").start();
    // Above the largest datagram this kernel accepts (the send buffer is at most twice
    // wmem_max), so the daemon must use a memfd.
    let wmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let size = (2 * wmem_max + 1024 * 1024).min(15 * 1024 * 1024);
    assert!(
        size > 2 * wmem_max,
        "wmem_max too large to force the memfd path"
    );
    let text = "z".repeat(size);
    let mut tcp = TcpStream::connect(d.addr("tcp")).unwrap();
    tcp.write_all(format!("<13>big: {text}\n").as_bytes())
        .unwrap();
    drop(tcp);
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut buf = [0u8; 16];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let passed = retry_within(WAIT, |left| {
        sink.set_read_timeout(Some(left))?;
        let msg = recvmsg::<()>(
            sink.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )?;
        Ok(msg.cmsgs().unwrap().find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        }))
    })
    .expect("an entry within the wait");
    let fd = passed.expect("the entry came as a descriptor");
    // Opened again through /proc (same memfd inode, so the same seals), then our copy closed.
    let path = format!("/proc/self/fd/{fd}");
    let memfd = std::fs::File::open(&path).unwrap();
    let seals = nix::fcntl::fcntl(&memfd, nix::fcntl::FcntlArg::F_GET_SEALS).unwrap();
    let seals = nix::fcntl::SealFlag::from_bits_truncate(seals);
    assert!(
        seals.contains(nix::fcntl::SealFlag::F_SEAL_WRITE | nix::fcntl::SealFlag::F_SEAL_SHRINK),
        "journald only accepts sealed memfds: {seals:?}"
    );
    let entry = std::fs::read(&path).unwrap();
    nix::unistd::close(fd).unwrap();
    let fields = logger::outputs::journal::decode(&entry).expect("a valid entry");
    let message = fields.iter().find(|(k, _)| k == "MESSAGE").unwrap();
    assert_eq!(message.1.len(), text.len());
    assert!(d.stop().0.success());
}

/// The receive buffer the kernel gave a listening socket, as `ss -m` reports it (`rb`: the
/// kernel's doubled figure, so twice what was asked).
fn kernel_receive_buffer(ss_filter: &[&str]) -> usize {
    let out = std::process::Command::new("ss")
        .args(["-H", "-l", "-n", "-m"])
        .args(ss_filter)
        .output()
        .expect("run ss (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let rb = text
        .split(['(', ','])
        .find_map(|f| f.strip_prefix("rb"))
        .unwrap_or_else(|| panic!("no skmem rb in `ss {ss_filter:?}`: {text:?}"));
    rb.trim_end_matches(')').parse().expect("rb is a number")
}

/// True if this process holds CAP_NET_ADMIN (bit 12 of CapEff).
fn has_net_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
            u64::from_str_radix(hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 12) != 0)
}

fn datagram_sockets_get_the_receive_buffer_asked_and_say_when_the_kernel_caps_it() {
    require!(
        has_net_admin(),
        "CAP_NET_ADMIN, for receive buffers past net.core.rmem_max"
    );
    require!(have("ss"), "ss from iproute2");
    // The default: 8 MiB, beyond net.core.rmem_max, as journald's own sockets have.
    let d = Builder::new().standard().start();
    let port = d.port("udp");
    let log = d.path("log").display().to_string();
    assert_eq!(
        kernel_receive_buffer(&["-u", &format!("sport = :{port}")]),
        2 * (8 << 20)
    );
    assert_eq!(kernel_receive_buffer(&["-x", "src", &log]), 2 * (8 << 20));
    d.stop();

    // Configured.
    let d = Builder::new()
        .standard()
        .config("receive-buffer = 1048576\n")
        .start();
    assert_eq!(
        kernel_receive_buffer(&["-u", &format!("sport = :{}", d.port("udp"))]),
        2 << 20
    );
    d.stop();

    // Without CAP_NET_ADMIN the kernel caps it at net.core.rmem_max, and the daemon says so.
    let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (status, _, stderr) = {
        let d = Builder::new()
            .standard()
            .wrapped_in(&[
                "setpriv",
                "--bounding-set=-net_admin",
                "--inh-caps=-net_admin",
                "--",
            ])
            .config(&format!("receive-buffer = {}\n", 2 * rmem_max))
            .start();
        assert_eq!(
            kernel_receive_buffer(&["-u", &format!("sport = :{}", d.port("udp"))]),
            2 * rmem_max
        );
        d.stop()
    };
    assert!(status.success(), "{stderr}");
    let warning = format!(
        "receive buffer is {} KiB, not the {} KiB asked",
        rmem_max / 1024,
        2 * rmem_max / 1024
    );
    assert!(
        stderr.lines().filter(|l| l.contains(&warning)).count() == 2,
        "one warning per datagram socket with {warning:?} in {stderr}"
    );
}

/// A reload that raises max-message-size reaches the listeners that keep running and the
/// connections already open on them, not only listeners bound afterwards.
fn reloaded_limits_reach_running_listeners_and_open_connections() {
    let b = Builder::new();
    let dir = b.dir().display().to_string();
    let config = |size: usize| {
        format!(
            "listen = [\"unix://{dir}/log\", \"tcp://127.0.0.1:0\"]\nheartbeat = \"0\"\n\
             max-message-size = {size}\noutput = \"file:{dir}/out.log\"\n"
        )
    };
    let d = b.config(&config(8192)).start();
    let out = d.path("out.log");
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    let wait_for = |text: &str| {
        within(WAIT, || {
            let held = read();
            match held.contains(text) {
                true => Ok(()),
                false => Err(format!(
                    "{text} never reached the file ({} lines)",
                    held.lines().count()
                )),
            }
        })
    };
    let big = |tag: &str| format!("<13>app: {tag} {}", "x".repeat(10_000));
    let unix = UnixDatagram::unbound().unwrap();
    let mut tcp = TcpStream::connect(d.addr("tcp")).unwrap();
    // At 8192: the datagram is cut, the TCP frame dropped (a small one after it proves it was read).
    unix.send_to(big("dgram-before").as_bytes(), d.path("log"))
        .unwrap();
    let frame = big("tcp-before");
    write!(tcp, "{} {frame}", frame.len()).unwrap();
    tcp.write_all(b"17 <13>app: small-ok").unwrap();
    wait_for("dgram-before");
    wait_for("small-ok");
    assert!(!read().contains(&"x".repeat(10_000)), "cut at 8192");
    assert!(!read().contains("tcp-before"), "dropped at 8192");
    // Raised by a reload: the same listener and the same connection take it whole.
    std::fs::write(d.path("logger.toml"), config(65536)).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.notify.expect("READY=1");
    unix.send_to(big("dgram-after").as_bytes(), d.path("log"))
        .unwrap();
    let frame = big("tcp-after");
    write!(tcp, "{} {frame}", frame.len()).unwrap();
    wait_for("dgram-after");
    wait_for("tcp-after");
    let log = read();
    for tag in ["dgram-after", "tcp-after"] {
        let line = log.lines().find(|l| l.contains(tag)).unwrap();
        assert!(
            line.contains(&"x".repeat(10_000)),
            "{tag} was cut: {} bytes",
            line.len()
        );
    }
}
