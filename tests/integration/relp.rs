//! RELP inputs: logger as the collector of a fleet. A message is answered only once the
//! outputs took it (here: journald's stand-in stops reading, and the answers stop); rsyslog's
//! omrelp and logger's own forward output send into it while it is killed with SIGKILL and
//! restarted, and a sequence checker counts what is missing and what came twice.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use syslog::relp::{self, Reader, Reply};

use crate::forward::{arrivals, imrelp_installed, wait_all, wait_queued};
use crate::harness::Test;
use crate::support::{
    Builder, Daemon, Rsyslog, closed_by_peer, eventually, free_port, have, within,
};
use crate::tls::Pki;

const WAIT: Duration = Duration::from_secs(30);

pub const TESTS: &[Test] = tests![
    a_relp_input_answers_only_what_its_output_took,
    garbage_on_a_relp_port_is_closed_and_counted,
    a_huge_relp_frame_is_truncated_counted_and_answered,
    rsyslog_omrelp_into_logger_loses_nothing_when_logger_is_killed,
    logger_to_logger_over_relp_tls_loses_nothing_when_either_is_killed,
];

/// A RELP client speaking over a plain socket: the test's own, for what a real client does not
/// let a test see (which transactions were answered, and when).
struct Client {
    stream: TcpStream,
    reader: Reader,
    next: u32,
}

impl Client {
    fn open(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        let mut c = Client {
            stream,
            reader: Reader::new(relp::MAX_REPLY),
            next: 2,
        };
        let mut open = Vec::new();
        relp::frame(&mut open, 1, "open", relp::offers().as_bytes());
        c.stream.write_all(&open).unwrap();
        let answers = c.answers(Duration::from_secs(10), 1);
        assert!(
            matches!(&answers[..], [Reply::Response { txnr: 1, ok: true, text }]
                if text.contains("commands=syslog")),
            "open answered with {answers:?}"
        );
        c
    }

    /// Sends `messages` as syslog commands; returns their transaction numbers' range.
    fn send(&mut self, messages: impl Iterator<Item = String>) -> std::ops::Range<u32> {
        let first = self.next;
        let mut wire = Vec::new();
        for m in messages {
            relp::frame(&mut wire, self.next, "syslog", m.as_bytes());
            self.next += 1;
        }
        self.stream.write_all(&wire).unwrap();
        first..self.next
    }

    /// Reads answers until `want` came or nothing came for `quiet`.
    fn answers(&mut self, quiet: Duration, want: usize) -> Vec<Reply> {
        let mut got = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        self.stream.set_read_timeout(Some(quiet)).unwrap();
        while got.len() < want {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => relp::replies(&mut self.reader, &buf[..n], &mut got).unwrap(),
                Err(_) => break,
            }
        }
        got
    }
}

fn answered(replies: &[Reply]) -> Vec<u32> {
    replies
        .iter()
        .map(|r| match r {
            Reply::Response { txnr, ok: true, .. } => *txnr,
            other => panic!("not a 200 answer: {other:?}"),
        })
        .collect()
}

/// The MESSAGE of a native-protocol entry a journal stand-in received.
fn message_of(entry: &[u8]) -> Option<String> {
    let entry = String::from_utf8_lossy(entry);
    entry
        .lines()
        .find_map(|l| l.strip_prefix("MESSAGE="))
        .map(str::to_owned)
}

/// The message text of each entry read from a journal stand-in, until it is empty.
fn drain_journal(journal: &UnixDatagram, into: &mut HashSet<String>) {
    journal.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    while let Ok(n) = journal.recv(&mut buf) {
        into.extend(message_of(&buf[..n]));
    }
}

/// A journal stand-in read the way journald reads, continuously, on a thread of its own, until
/// it is dropped.
struct JournalReader {
    /// Each entry's MESSAGE.
    entries: std::sync::mpsc::Receiver<String>,
    stop: Arc<AtomicBool>,
}

impl JournalReader {
    fn start(journal: UnixDatagram) -> JournalReader {
        let (tx, entries) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        journal.set_nonblocking(false).unwrap();
        journal
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let stopped = stop.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok(n) = journal.recv(&mut buf) {
                    let _ = tx.send(message_of(&buf[..n]).unwrap_or_default());
                }
            }
        });
        JournalReader { entries, stop }
    }
}

impl Drop for JournalReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn a_relp_input_answers_only_what_its_output_took() {
    let b = Builder::new();
    let journal_path = b.dir().join("journal.sock");
    let journal = UnixDatagram::bind(&journal_path).unwrap();
    // A queue large enough for every message: what holds the answers back is the journal, not
    // backpressure on the input.
    let d = b
        .config(&format!(
            "heartbeat = \"0\"\njournal-socket = \"{}\"\nlisten = [\"relp://127.0.0.1:0\"]\n\
             [[output]]\nto = \"journal\"\nqueue-size = \"16M\"\n",
            journal_path.display()
        ))
        .start();
    const N: u32 = 3000;
    let mut client = Client::open(&d.addr("relp"));
    let sent = client.send((0..N).map(|i| format!("<13>1 - host app - - - m{i}")));
    // The stand-in reads nothing: it holds what its queue takes (net.unix.max_dgram_qlen: 10
    // entries on a bare kernel, 512 once systemd-sysctl ran), the rest wait in logger.
    d.wait_queued_status("the journal never filled up");
    let early = answered(&client.answers(Duration::from_secs(1), N as usize));
    assert!(
        (early.len() as u32) < N,
        "all {N} answered while the journal held only some of them"
    );
    // Every message answered was in the journal before its answer.
    let mut in_journal = HashSet::new();
    drain_journal(&journal, &mut in_journal);
    for txnr in &early {
        let m = format!("m{}", txnr - sent.start);
        assert!(in_journal.contains(&m), "{m} was answered, not written");
    }
    // The journal reads again, as journald does: the rest is answered. (A stand-in that read
    // ten entries every 100 ms, against a journal output that backed off for up to 2 s once
    // the queue stayed full, was what made this test fail on a bare kernel.)
    let reader = JournalReader::start(journal);
    let mut all = early;
    within(WAIT, || {
        in_journal.extend(reader.entries.try_iter());
        all.extend(answered(
            &client.answers(Duration::from_millis(100), N as usize),
        ));
        match all.len() >= N as usize {
            true => Ok(()),
            false => Err(format!(
                "{} of {N} answered after the journal read again ({} in the journal)",
                all.len(),
                in_journal.len()
            )),
        }
    });
    all.sort_unstable();
    all.dedup();
    assert_eq!(all, sent.collect::<Vec<_>>(), "each answered once");
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    // Answered means sent to the journal: the reader finds every one of them.
    within(WAIT, || {
        in_journal.extend(reader.entries.recv_timeout(Duration::from_millis(100)));
        in_journal.extend(reader.entries.try_iter());
        match in_journal.len() >= N as usize {
            true => Ok(()),
            false => Err(format!("{} of {N} in the journal", in_journal.len())),
        }
    });
    assert_eq!(
        in_journal.len(),
        N as usize,
        "every message in the journal, once"
    );
}

fn garbage_on_a_relp_port_is_closed_and_counted() {
    let d = Builder::new()
        .config(
            "heartbeat = \"0\"\nlisten = [\"relp://127.0.0.1:0\"]\n[[output]]\nto = \"stderr\"\n",
        )
        .start();
    let mut s = TcpStream::connect(d.addr("relp")).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(
        closed_by_peer(&mut s, Duration::from_secs(10)),
        "garbage kept its connection"
    );
    // A message before open is refused the same way.
    let mut s = TcpStream::connect(d.addr("relp")).unwrap();
    s.write_all(b"1 syslog 5 hello\n").unwrap();
    assert!(closed_by_peer(&mut s, Duration::from_secs(10)));
    // A transaction number used again (a replayed capture, a broken client) is refused as
    // librelp refuses it: the first message is taken, the session ends, nothing is doubled.
    let mut s = TcpStream::connect(d.addr("relp")).unwrap();
    let mut wire = Vec::new();
    relp::frame(&mut wire, 1, "open", relp::offers().as_bytes());
    for _ in 0..3 {
        relp::frame(&mut wire, 2, "syslog", b"<13>1 - host app - - - replayed");
    }
    s.write_all(&wire).unwrap();
    assert!(
        closed_by_peer(&mut s, Duration::from_secs(10)),
        "a repeated transaction number kept its connection"
    );
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("RELP sessions broken 3"), "{stderr}");
    assert!(!stderr.contains("hello"), "a message before open was taken");
    assert_eq!(stderr.matches("replayed").count(), 1, "{stderr}");
}

fn a_huge_relp_frame_is_truncated_counted_and_answered() {
    let d = Builder::new()
        .config(
            "heartbeat = \"0\"\nmax-message-size = \"8K\"\nlisten = [\"relp://127.0.0.1:0\"]\n\
             [[output]]\nto = \"stderr\"\n",
        )
        .start();
    let mut client = Client::open(&d.addr("relp"));
    // 8 MiB of data in one frame, a thousand times the limit, then a normal message.
    let huge = format!("<13>1 - host app - - - big{}", "a".repeat(8 << 20));
    let sent = client.send([huge, "<13>1 - host app - - - after".to_owned()].into_iter());
    let mut got = answered(&client.answers(Duration::from_secs(10), 2));
    got.sort_unstable();
    assert_eq!(got, sent.collect::<Vec<_>>(), "both answered");
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("truncated 1,"),
        "{}",
        &stderr[stderr.len().saturating_sub(600)..]
    );
    let big = stderr
        .lines()
        .find(|l| l.contains("big"))
        .expect("the huge message, cut");
    assert!(big.len() < 16 * 1024, "kept {} bytes of it", big.len());
    assert!(stderr.contains("after"), "the session went on");
}

/// logger as a collector: RELP (or `listen` as given) on a fixed port, writing lines to `out`.
fn collector(input: &str, out: &Path) -> Daemon {
    Builder::new()
        .config(&format!(
            "heartbeat = \"0\"\n{input}\n[[output]]\nto = \"file:{}\"\n",
            out.display()
        ))
        .start()
}

/// rsyslog taking plain TCP on `port` and sending everything with omrelp to `relp_port`,
/// retrying for ever: the sender side of a fleet.
struct Relay {
    port: u16,
    _rsyslog: Rsyslog,
}

impl Relay {
    fn start(relp_port: u16) -> Relay {
        let port = free_port();
        let rsyslog = Rsyslog::start(
            &format!(
                "module(load=\"imtcp\")\nmodule(load=\"omrelp\")\n\
                 input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\")\n\
                 *.* action(type=\"omrelp\" target=\"127.0.0.1\" port=\"{relp_port}\" \
                    template=\"RSYSLOG_SyslogProtocol23Format\" \
                    action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\" \
                    queue.type=\"LinkedList\" queue.size=\"200000\")\n"
            ),
            &[],
        );
        rsyslog.wait_listening(port);
        Relay {
            port,
            _rsyslog: rsyslog,
        }
    }

    /// Sends `range` as numbered RFC 5424 lines to its TCP input.
    fn send(&self, range: std::ops::Range<u32>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut buf = Vec::new();
        for i in range {
            writeln!(buf, "<13>1 - host app - - - seq {i:06} {}", "x".repeat(40)).unwrap();
        }
        s.write_all(&buf).unwrap();
    }
}

fn kill(d: Daemon) {
    nix::sys::signal::kill(d.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    drop(d);
}

/// Waits until at least `n` numbers arrived in `out`.
fn wait_some(out: &Path, n: usize) {
    eventually(&format!("{n} arrived"), WAIT, || arrivals(out).len() >= n);
}

fn duplicates(seen: &std::collections::BTreeMap<u32, u32>) -> u32 {
    seen.values().map(|n| n - 1).sum()
}

fn rsyslog_omrelp_into_logger_loses_nothing_when_logger_is_killed() {
    require!(have("rsyslogd"), "rsyslog is not installed");
    require!(imrelp_installed(), "rsyslog-relp is not installed");
    let base = crate::support::tempdir();
    let out = base.path().join("collected.log");
    let port = free_port();
    let input = format!("listen = [\"relp://127.0.0.1:{port}\"]");
    let d = collector(&input, &out);
    let rsyslog = Relay::start(port);
    const TOTAL: u32 = 30_000;
    rsyslog.send(0..TOTAL);
    wait_some(&out, 2000);
    // Killed mid-stream: what it read and had not written was never answered.
    kill(d);
    let at_kill = arrivals(&out).len();
    let d = collector(&input, &out);
    let seen = wait_all(&out, 0..TOTAL);
    let dups = duplicates(&seen);
    eprintln!(
        "omrelp -> logger, logger SIGKILLed after {at_kill} of {TOTAL}: 0 missing, \
         {dups} duplicated"
    );
    // What a kill can send twice: what was written and not yet answered, one window.
    assert!(
        dups <= 128,
        "{dups} duplicates beyond omrelp's window of 128"
    );
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}

/// A logger forwarding what its TCP input takes over relp+tls with mutual TLS and a disk
/// queue.
fn sender(base: &Path, pki: &Pki, port: u16) -> Daemon {
    Builder::new()
        .config(&format!(
            "heartbeat = \"0\"\nrate-limit = 0\nlisten = [\"tcp://127.0.0.1:0\"]\n\
             [[output]]\nto = \"relp+tls://127.0.0.1:{port}\"\nqueue-dir = \"{queue}\"\n\
             tls-ca = \"{ca}\"\ntls-cert = \"{cert}\"\ntls-key = \"{key}\"\n",
            queue = base.join("queue").display(),
            ca = pki.path("ca.pem"),
            cert = pki.path("client1.pem"),
            key = pki.path("client1.key"),
        ))
        .start()
}

fn send_numbered(d: &Daemon, range: std::ops::Range<u32>) {
    let mut s = TcpStream::connect(d.addr("tcp")).unwrap();
    let mut buf = Vec::new();
    for i in range {
        let m = format!("<13>1 - host app - - - seq {i:06} {}", "x".repeat(40));
        write!(buf, "{} {m}", m.len()).unwrap();
    }
    s.write_all(&buf).unwrap();
}

fn logger_to_logger_over_relp_tls_loses_nothing_when_either_is_killed() {
    require!(have("openssl"), "openssl is not installed");
    let base = crate::support::tempdir();
    let pki = Pki::new(base.path());
    let out = base.path().join("collected.log");
    let port = free_port();
    let input = format!(
        "[[input]]\nlisten = \"relp+tls://127.0.0.1:{port}\"\ntls-cert = \"{}\"\n\
         tls-key = \"{}\"\ntls-client-ca = \"{}\"\n",
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem")
    );
    let c = collector(&input, &out);
    let s = sender(base.path(), &pki, port);

    // 1. The collector is killed mid-stream and restarted.
    send_numbered(&s, 0..20_000);
    wait_some(&out, 2000);
    kill(c);
    send_numbered(&s, 20_000..30_000);
    let c = collector(&input, &out);
    wait_some(&out, 25_000);

    // 2. With the collector down, the sender's disk queue holds what comes; the sender is
    //    killed, then both restart.
    kill(c);
    send_numbered(&s, 30_000..50_000);
    wait_queued(&base.path().join("queue"), 30_000..50_000);
    kill(s);
    let c = collector(&input, &out);
    let s = sender(base.path(), &pki, port);

    // 3. The sender is killed again while it sends its queue.
    wait_some(&out, 35_000);
    kill(s);
    let s = sender(base.path(), &pki, port);
    send_numbered(&s, 50_000..60_000);

    let seen = wait_all(&out, 0..60_000);
    let dups = duplicates(&seen);
    eprintln!(
        "logger -> logger over relp+tls, collector SIGKILLed twice, sender twice: \
         0 missing, {dups} duplicated"
    );
    assert!(
        dups <= 3 * 128,
        "{dups} duplicates beyond a window per kill"
    );
    let peer = std::fs::read_to_string(&out).unwrap();
    assert!(
        peer.lines().next().is_some_and(|l| l.contains("seq ")),
        "{peer:.200}"
    );
    for d in [s, c] {
        let (status, _, stderr) = d.stop();
        assert!(status.success(), "{stderr}");
    }
}
