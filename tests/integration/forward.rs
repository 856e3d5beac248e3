//! Forward outputs against real peers: rsyslog's imrelp (Debian's rsyslog-relp) as the
//! collector, killed and restarted under the stream, and logger itself killed with SIGKILL and
//! restarted on its disk queue. Numbered messages and a sequence checker count what is missing
//! and what came twice.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::Test;
use crate::support::{Builder, Daemon, Rsyslog, free_port, have, try_within, within};

const WAIT: Duration = Duration::from_secs(30);
/// Messages in the kill scenario: 3 MB, ten times the memory queue.
const TOTAL: u32 = 40_000;

pub const TESTS: &[Test] = tests![
    a_tcp_remote_reset_loses_nothing_its_kernel_did_not_acknowledge,
    a_relp_remote_that_stops_reading_does_not_stop_the_disk_queue,
    a_reload_moves_a_forward_output_to_another_remote_with_its_queue,
    tcp_and_tls_to_rsyslog_deliver_every_message,
    relp_to_rsyslog_loses_nothing_when_the_collector_or_logger_is_killed,
    a_corrupt_queue_segment_is_skipped_counted_and_the_rest_delivered,
    a_relp_remote_that_stops_answering_is_declared_dead_and_the_next_takes_over,
    a_remote_that_stays_dead_holds_back_neither_other_outputs_nor_local_senders,
    a_tcp_remote_that_takes_nothing_is_declared_dead_and_the_next_takes_over,
    a_relp_answer_longer_than_any_reply_is_refused_at_its_header,
    a_disk_queue_on_a_full_filesystem_delivers_everything_and_says_so_once,
];

pub fn imrelp_installed() -> bool {
    Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so").exists()
        || Path::new("/usr/lib/rsyslog/imrelp.so").exists()
}

/// rsyslog taking RELP on `port` and writing each message's text, one per line, to `out`.
struct Collector {
    rsyslog: Rsyslog,
    port: u16,
}

impl Collector {
    fn new() -> Collector {
        Collector::with_input("", "module(load=\"imrelp\")\ninput(type=\"imrelp\"")
    }

    /// rsyslog with `global` settings and an input (`input(type=... ` without port, address
    /// and the closing parenthesis).
    fn with_input(global: &str, input: &str) -> Collector {
        let port = free_port();
        // The main queue direct: imrelp acknowledges a message once the file action wrote it,
        // not once it sat in rsyslog's memory (which SIGKILL empties), so what the collector
        // loses to its own kill is not counted against us.
        let body = format!(
            "main_queue(queue.type=\"Direct\")\n\
             {input} port=\"{port}\" address=\"127.0.0.1\")\n\
             template(name=\"text\" type=\"string\" string=\"%msg%\\n\")\n\
             *.* action(type=\"omfile\" file=\"{{dir}}/out.log\" template=\"text\")\n"
        );
        let rsyslog = Rsyslog::start_with_global(global, &body, &[]);
        rsyslog.wait_listening(port);
        Collector { rsyslog, port }
    }

    /// Starts it again after `kill`, with what it wrote kept.
    fn start(&mut self) {
        self.rsyslog.run();
        self.rsyslog.wait_listening(self.port);
    }

    fn kill(&mut self) {
        self.rsyslog.kill();
    }

    fn out(&self) -> PathBuf {
        self.rsyslog.path("out.log")
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How often each number arrived (`seq NNNNNN` anywhere in a line).
pub fn arrivals(out: &Path) -> BTreeMap<u32, u32> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let mut seen = BTreeMap::new();
    for line in text.lines() {
        let number = line.find("seq ").and_then(|at| line.get(at + 4..at + 10));
        if let Some(n) = number.and_then(|n| n.parse().ok()) {
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    seen
}

/// Waits until every number in `range` arrived at least once; panics with the count missing.
pub fn wait_all(out: &Path, range: std::ops::Range<u32>) -> BTreeMap<u32, u32> {
    within(WAIT, || {
        let seen = arrivals(out);
        match range.clone().filter(|n| !seen.contains_key(n)).count() {
            0 => Ok(seen),
            missing => Err(format!(
                "{missing} of {} messages never arrived",
                range.len()
            )),
        }
    })
}

/// Sends `range` as numbered, octet-counted RFC 5424 messages to logger's TCP input.
fn send_numbered(d: &Daemon, range: std::ops::Range<u32>) {
    let mut s = TcpStream::connect(d.addr("tcp")).unwrap();
    let mut buf = Vec::new();
    let pad = "x".repeat(40);
    for i in range {
        let m = format!("<13>1 - host app - - - seq {i:06} {pad}");
        write!(buf, "{} {m}", m.len()).unwrap();
    }
    s.write_all(&buf).unwrap();
}

/// Waits until the disk queue holds every number in `range` (as a record's text).
pub fn wait_queued(queue: &Path, range: std::ops::Range<u32>) {
    wait_queued_within(queue, range, WAIT);
}

/// `wait_queued` with a bound of its own.
pub fn wait_queued_within(queue: &Path, range: std::ops::Range<u32>, limit: Duration) {
    within(limit, || {
        let mut text = Vec::new();
        for e in std::fs::read_dir(queue).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "seg") {
                text.extend(std::fs::read(p).unwrap());
            }
        }
        let held: std::collections::HashSet<u32> = text
            .windows(10)
            .filter(|w| w.starts_with(b"seq "))
            .filter_map(|w| std::str::from_utf8(&w[4..]).ok()?.parse().ok())
            .collect();
        match range.clone().filter(|i| !held.contains(i)).count() {
            0 => Ok(()),
            missing => Err(format!(
                "the disk queue never held {missing} of {}",
                range.len()
            )),
        }
    })
}

fn forwarding_daemon(dir: &Path, port: u16) -> Daemon {
    let b = Builder::new().config(&format!(
        "heartbeat = \"0\"\nrate-limit = 0\nlisten = [\"tcp://127.0.0.1:0\"]\n\
         [[output]]\nto = \"relp://127.0.0.1:{port}\"\nqueue-dir = \"{}\"\n",
        dir.join("queue").display()
    ));
    b.start()
}

fn relp_to_rsyslog_loses_nothing_when_the_collector_or_logger_is_killed() {
    require!(have("rsyslogd"), "rsyslog is not installed");
    require!(imrelp_installed(), "rsyslog-relp is not installed");
    let base = crate::support::tempdir();
    let mut collector = Collector::new();
    let d = forwarding_daemon(base.path(), collector.port);

    // 1. Flowing; then the collector is killed mid-stream. What comes meanwhile goes to the
    //    disk queue as it arrives (far more than memory's queue-size), not at reconnect times.
    send_numbered(&d, 0..5000);
    wait_all(&collector.out(), 0..1000);
    collector.kill();
    send_numbered(&d, 5000..TOTAL);
    wait_queued(&base.path().join("queue"), 5000..TOTAL);

    // 2. logger is killed with the collector still down: the queue is all that holds them.
    nix::sys::signal::kill(d.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    drop(d);
    collector.start();
    let d = forwarding_daemon(base.path(), collector.port);
    let seen = wait_all(&collector.out(), 0..TOTAL);
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    // What a kill can send twice: what was sent and not yet acknowledged, a window per break.
    assert!(
        duplicates <= 2 * 128,
        "{duplicates} duplicates beyond two RELP windows"
    );
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}

fn a_corrupt_queue_segment_is_skipped_counted_and_the_rest_delivered() {
    require!(have("rsyslogd"), "rsyslog is not installed");
    require!(imrelp_installed(), "rsyslog-relp is not installed");
    let base = crate::support::tempdir();
    let mut collector = Collector::new();
    collector.kill();
    let d = forwarding_daemon(base.path(), collector.port);
    send_numbered(&d, 0..2000);
    let queue = base.path().join("queue");
    wait_queued(&queue, 0..2000);
    let (status, _, _) = d.stop();
    assert!(status.success());
    // Damage one record in the middle of the segment that holds them.
    let seg = std::fs::read_dir(&queue)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.windows(10).position(|w| w == b"seq 001000").unwrap();
    bytes[at + 5] = b'X';
    std::fs::write(&seg, bytes).unwrap();

    collector.start();
    let d = forwarding_daemon(base.path(), collector.port);
    let arrived = try_within(WAIT, || {
        let seen = arrivals(&collector.out());
        let all = (0..2000)
            .filter(|n| *n != 1000)
            .all(|n| seen.contains_key(&n));
        all.then_some(seen.clone())
            .ok_or_else(|| format!("{} of 1999 arrived", seen.len()))
    });
    let seen = match arrived {
        Ok(seen) => seen,
        Err(why) => panic!("{why}; logger said: {}", d.stop().2),
    };
    assert!(!seen.contains_key(&1000), "the damaged record was sent");
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("1 corrupt messages skipped"),
        "not logged: {stderr}"
    );
}

fn tcp_and_tls_to_rsyslog_deliver_every_message() {
    require!(have("rsyslogd"), "rsyslog is not installed");
    require!(have("openssl"), "openssl is not installed");
    require!(
        Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so").exists()
            || Path::new("/usr/lib/rsyslog/lmnsd_gtls.so").exists(),
        "rsyslog-gnutls is not installed"
    );
    let base = crate::support::tempdir();
    let pki = crate::tls::Pki::new(base.path());
    // rsyslog's imtcp, plain and with its GnuTLS driver (server certificate for 127.0.0.1).
    let tls_global = format!(
        " DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" \
         DefaultNetstreamDriverKeyFile=\"{}\"",
        pki.path("ca.pem"),
        pki.path("server.pem"),
        pki.path("server.key")
    );
    for (scheme, global, input, extra) in [
        (
            "tcp",
            String::new(),
            "module(load=\"imtcp\")\ninput(type=\"imtcp\"",
            String::new(),
        ),
        (
            "tls",
            tls_global,
            "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" \
             StreamDriver.AuthMode=\"anon\")\ninput(type=\"imtcp\"",
            format!("tls-ca = \"{}\"\n", pki.path("ca.pem")),
        ),
    ] {
        let collector = Collector::with_input(&global, input);
        let d = Builder::new()
            .config(&format!(
                "heartbeat = \"0\"\nrate-limit = 0\nlisten = [\"tcp://127.0.0.1:0\"]\n\
                 [[output]]\nto = \"{scheme}://127.0.0.1:{}\"\n{extra}",
                collector.port
            ))
            .start();
        send_numbered(&d, 0..5000);
        let seen = wait_all(&collector.out(), 0..5000);
        assert_eq!(seen.values().sum::<u32>(), 5000, "{scheme}: duplicates");
        let (status, _, stderr) = d.stop();
        assert!(status.success(), "{stderr}");
    }
}

/// The numbers (`seq NNNNNN`) of the whole octet-counted frames in `stream`, in order.
fn framed_numbers(stream: &[u8]) -> Vec<u32> {
    let mut numbers = Vec::new();
    let mut rest = stream;
    while let Some(space) = rest.iter().position(|&b| b == b' ') {
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("not an octet-counted frame: {:?}", &rest[..space]));
        let Some(frame) = rest.get(space + 1..space + 1 + len) else {
            break;
        };
        let text = String::from_utf8_lossy(frame);
        let number = text.find("seq ").and_then(|at| text.get(at + 4..at + 10));
        numbers.push(
            number
                .and_then(|n| n.parse().ok())
                .expect("a numbered message"),
        );
        rest = &rest[space + 1 + len..];
    }
    numbers
}

/// The bytes of the first `frames` octet-counted frames of `stream`.
fn framed_len(stream: &[u8], frames: usize) -> usize {
    let mut at = 0;
    for _ in 0..frames {
        let space = at
            + stream[at..]
                .iter()
                .position(|&b| b == b' ')
                .expect("a frame");
        let len: usize = std::str::from_utf8(&stream[at..space])
            .unwrap()
            .parse()
            .unwrap();
        at = space + 1 + len;
    }
    at
}

/// Waits until nothing more arrives on `conn` (which the test no longer reads) for 500 ms:
/// logger's writes have stalled. Returns what waits unread (peeked: the window stays shut).
fn wait_stalled(conn: &TcpStream) -> Vec<u8> {
    let mut unread = vec![0; 16 << 20];
    let (mut last, mut same_since) = (usize::MAX, Instant::now());
    let deadline = Instant::now() + WAIT;
    loop {
        let n = conn.peek(&mut unread).unwrap();
        if n != last {
            (last, same_since) = (n, Instant::now());
        } else if same_since.elapsed() >= Duration::from_millis(500) {
            unread.truncate(n);
            return unread;
        }
        assert!(Instant::now() < deadline, "logger's writes never stalled");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Accepts one connection within `WAIT`.
fn accept_within(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let conn = within(WAIT, || match listener.accept() {
        Ok((conn, _)) => Ok(conn),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            Err("logger never connected".to_owned())
        }
        Err(e) => panic!("accept: {e}"),
    });
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    conn
}

/// A remote that stops reading, then dies with unread data (its kernel resets the
/// connection): everything logger had written that the remote's TCP had not acknowledged sat
/// in logger's send buffer, which the reset empties. It must come again on the next
/// connection, from the memory queue's copy or from the disk queue. The only messages a TCP
/// sender cannot save, those the remote's kernel acknowledged and its process never read,
/// are what the remote holds unread when it dies: the test reads them (MSG_PEEK, which does
/// not open the window) and counts them as arrived. With a disk queue logger is also killed
/// before the reset, and started again. Also: while the remote takes nothing, a disk queue
/// still takes what comes, at once (the write does not hold the output's thread).
fn a_tcp_remote_reset_loses_nothing_its_kernel_did_not_acknowledge() {
    for disk in [false, true] {
        let base = crate::support::tempdir();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // A small receive window, so that most of what logger writes waits unacknowledged.
        nix::sys::socket::setsockopt(&listener, nix::sys::socket::sockopt::RcvBuf, &16384).unwrap();
        let port = listener.local_addr().unwrap().port();
        let queue = base.path().join("queue");
        let queue_dir = if disk {
            format!("queue-dir = \"{}\"\n", queue.display())
        } else {
            String::new()
        };
        // `block`: what is measured is what a reset loses, not what a stalled memory queue
        // sheds after 2 s (block-bounded, the default).
        let config = format!(
            "heartbeat = \"0\"\nrate-limit = 0\nlisten = [\"tcp://127.0.0.1:0\"]\n\
             [[output]]\nto = \"tcp://127.0.0.1:{port}\"\nqueue-policy = \"block\"\n{queue_dir}"
        );
        let mut d = Builder::new().config(&config).start();
        send_numbered(&d, 0..TOTAL);
        let mut total = TOTAL;

        // 1. The remote reads a little, then stops reading until logger's writes stall.
        let mut first = accept_within(&listener);
        let mut received = Vec::new();
        let mut buf = vec![0; 64 * 1024];
        while framed_numbers(&received).len() < 1000 {
            let n = first.read(&mut buf).expect("reading the first connection");
            assert!(n > 0, "logger closed the first connection");
            received.extend_from_slice(&buf[..n]);
        }
        let unread = wait_stalled(&first);
        let unread_len = unread.len();
        if disk {
            send_numbered(&d, TOTAL..TOTAL + 1000);
            total += 1000;
            // Well inside the 30 s after which a remote that takes nothing is dead.
            wait_queued_within(&queue, TOTAL..TOTAL + 1000, Duration::from_secs(10));
        }

        // 2. The remote dies: its kernel resets the connection (it had unread data). With a
        //    disk queue, logger is killed first: its socket lives on in the kernel until the
        //    reset empties it, and only the queue on disk can send that again.
        if disk {
            nix::sys::signal::kill(d.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
            d.wait_exit(WAIT);
        }
        received.extend_from_slice(&unread);
        let before_reset = framed_numbers(&received);
        drop(first);
        if disk {
            d = Builder::new().config(&config).start();
        }

        // 3. logger connects again and sends what the reset took.
        let mut second = accept_within(&listener);
        let mut again = Vec::new();
        let mut seen: BTreeMap<u32, u32> = BTreeMap::new();
        for n in &before_reset {
            *seen.entry(*n).or_default() += 1;
        }
        let deadline = Instant::now() + WAIT;
        let mut missing: std::collections::BTreeSet<u32> =
            (0..total).filter(|n| !seen.contains_key(n)).collect();
        while !missing.is_empty() {
            if Instant::now() >= deadline {
                let (_, _, stderr) = d.stop();
                panic!(
                    "{} queue: {} of {total} messages lost to the reset ({} had arrived \
                     before it, {unread_len} bytes unread); logger said:\n{stderr}",
                    if disk { "disk" } else { "memory" },
                    missing.len(),
                    before_reset.len(),
                );
            }
            let n = second
                .read(&mut buf)
                .expect("reading the second connection");
            assert!(n > 0, "logger closed the second connection");
            again.extend_from_slice(&buf[..n]);
            // Whole frames only; a cut one stays for the next read.
            let numbers = framed_numbers(&again);
            let used = framed_len(&again, numbers.len());
            again.drain(..used);
            for n in numbers {
                missing.remove(&n);
                *seen.entry(n).or_default() += 1;
            }
        }
        let duplicates: u32 = seen.values().map(|n| n - 1).sum();
        eprintln!(
            "tcp, {} queue, remote reset with {unread_len} bytes unread and logger's writes \
             stalled: 0 missing of {total}, {duplicates} duplicated",
            if disk { "disk" } else { "memory" }
        );
        // Sent again is only what was not acknowledged; a message the reset cut is not a
        // duplicate (it never arrived whole).
        assert!(duplicates <= 16, "{duplicates} duplicates");
        let (status, _, stderr) = d.stop();
        assert!(status.success(), "{stderr}");
    }
}

/// A RELP remote that opens the session and then reads nothing more (stopped, wedged): the
/// window of large messages does not fit in the socket buffers, so logger's write cannot
/// finish. Messages that arrive meanwhile must still reach the disk queue at once, not after
/// the 30 s that declare the remote dead.
fn a_relp_remote_that_stops_reading_does_not_stop_the_disk_queue() {
    let base = crate::support::tempdir();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    nix::sys::socket::setsockopt(&listener, nix::sys::socket::sockopt::RcvBuf, &16384).unwrap();
    let port = listener.local_addr().unwrap().port();
    let queue = base.path().join("queue");
    let d = Builder::new()
        .config(&format!(
            "heartbeat = \"0\"\nrate-limit = 0\nlisten = [\"tcp://127.0.0.1:0\"]\n\
             [[output]]\nto = \"relp://127.0.0.1:{port}\"\nqueue-dir = \"{}\"\n",
            queue.display()
        ))
        .start();
    let send = |range: std::ops::Range<u32>| {
        let mut s = TcpStream::connect(d.addr("tcp")).unwrap();
        let pad = "x".repeat(8000);
        let mut buf = Vec::new();
        for i in range {
            let m = format!("<13>1 - host app - - - seq {i:06} {pad}");
            write!(buf, "{} {m}", m.len()).unwrap();
        }
        s.write_all(&buf).unwrap();
    };
    // The remote answers `open`, then reads nothing more.
    let remote = std::thread::spawn(move || {
        let mut remote = accept_within(&listener);
        let mut open = vec![0; 4096];
        let n = remote.read(&mut open).unwrap();
        assert!(
            String::from_utf8_lossy(&open[..n]).starts_with("1 open "),
            "not a RELP open: {:?}",
            String::from_utf8_lossy(&open[..n])
        );
        let answer = "200 OK\nrelp_version=0\ncommands=syslog";
        writeln!(remote, "1 rsp {} {answer}", answer.len()).unwrap();
        remote
    });
    // 128 messages of 8 KB: a window is 1 MB, more than the buffers between us.
    send(0..1000);
    let remote = remote.join().unwrap();
    // The remote reads nothing; once logger's writes stalled, what comes must still be queued.
    wait_stalled(&remote);
    send(1000..1100);
    wait_queued_within(&queue, 1000..1100, Duration::from_secs(10));
    drop(remote);
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}

/// The collector moves: a reload names another remote for a forward output and keeps its
/// queue-dir. The running output takes the new remote (its thread holds the queue's lock), and
/// what waited on disk for the old one, unreachable, goes to the new one, then what follows.
fn a_reload_moves_a_forward_output_to_another_remote_with_its_queue() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let old_port = closed.local_addr().unwrap().port();
    drop(closed);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let new_port = listener.local_addr().unwrap().port();
    let base = crate::support::tempdir();
    let queue = base.path().join("queue");
    let config = |port: u16| {
        format!(
            "heartbeat = \"0\"\nrate-limit = 0\nlisten = [\"tcp://127.0.0.1:0\"]\n\
             [[output]]\nto = \"tcp://127.0.0.1:{port}\"\nqueue-dir = \"{}\"\n",
            queue.display()
        )
    };
    let b = Builder::new().config(&config(old_port));
    let path = b.dir().join("logger.toml");
    let d = b.start();
    send_numbered(&d, 0..2000);
    wait_queued(&queue, 0..2000);
    std::fs::write(&path, config(new_port)).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.notify.expect("READY=1");
    send_numbered(&d, 2000..3000);
    let mut remote = accept_within(&listener);
    let mut missing: std::collections::BTreeSet<u32> = (0..3000).collect();
    let (mut stream, mut buf) = (Vec::new(), vec![0; 64 * 1024]);
    let deadline = Instant::now() + WAIT;
    while !missing.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} of 3000 never reached the new remote",
            missing.len()
        );
        let n = remote.read(&mut buf).expect("reading the new remote");
        assert!(n > 0, "logger closed the connection");
        stream.extend_from_slice(&buf[..n]);
        let numbers = framed_numbers(&stream);
        stream.drain(..framed_len(&stream, numbers.len()));
        for n in numbers {
            missing.remove(&n);
        }
    }
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("reload failed"), "{stderr}");
    assert!(
        stderr.contains(&format!("now forwards to tcp://127.0.0.1:{new_port}")),
        "{stderr}"
    );
}

/// A RELP remote that answers `open` and then never answers a message (wedged, but its TCP
/// still takes bytes): it reads what it is sent until logger hangs up, and says how many bytes.
fn silent_relp_remote() -> (u16, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let remote = std::thread::spawn(move || {
        let mut remote = accept_within(&listener);
        let mut buf = vec![0; 64 * 1024];
        let n = remote.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"1 open "), "not a RELP open");
        let answer = "200 OK\nrelp_version=0\ncommands=syslog";
        writeln!(remote, "1 rsp {} {answer}", answer.len()).unwrap();
        let mut taken = 0;
        remote.set_read_timeout(Some(WAIT * 2)).unwrap();
        while let Ok(n) = remote.read(&mut buf) {
            if n == 0 {
                break;
            }
            taken += n;
        }
        taken
    });
    (port, remote)
}

/// How long one local send may block: a stuck forward output holds the inputs back for
/// `outputs::set::STUCK_AFTER` (2 s) at most; the rest is room for a busy machine.
const SEND_BOUND: Duration = Duration::from_secs(10);

/// Sends `range` as numbered RFC 3164 datagrams to logger's local socket the way syslog(3)
/// does (a blocking send), each allowed to block for `limit` at most.
fn send_local(socket: &Path, range: std::ops::Range<u32>, limit: Duration) {
    let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
    s.set_write_timeout(Some(limit)).unwrap();
    for i in range {
        let m = format!("<13>Dec  7 10:00:00 app[1]: seq {i:06} {}", "x".repeat(40));
        let started = Instant::now();
        s.send_to(m.as_bytes(), socket).unwrap_or_else(|e| {
            panic!(
                "a local sender blocked {:?} on message {i}: {e}",
                started.elapsed()
            )
        });
    }
}

/// Lines of `path` that carry a sequence number, by number.
fn numbered_lines(path: &Path, range: std::ops::Range<u32>) -> usize {
    let seen = arrivals(path);
    range.filter(|n| seen.contains_key(n)).count()
}

/// The hung collector: A opens the RELP session and never answers. After
/// `remote-timeout` logger declares it dead, says so once, and sends everything A did not
/// answer, and all that follows, to B; a file output beside it never stops.
fn a_relp_remote_that_stops_answering_is_declared_dead_and_the_next_takes_over() {
    require!(have("rsyslogd"), "rsyslog is not installed");
    require!(imrelp_installed(), "rsyslog-relp is not installed");
    let b_side = Collector::new();
    let (a_port, a_side) = silent_relp_remote();
    let builder = Builder::new();
    let dir = builder.dir().to_owned();
    let d = builder
        .config(&format!(
            "heartbeat = \"0\"\nrate-limit = 0\nlisten = [\"unix://{dir}/log\"]\n\
             [[output]]\nto = [\"relp://127.0.0.1:{a_port}\", \"relp://127.0.0.1:{b_port}\"]\n\
             remote-timeout = \"2s\"\nqueue-size = \"8M\"\n\
             [[output]]\nto = \"file:{dir}/all.log\"\n",
            dir = dir.display(),
            b_port = b_side.port
        ))
        .start();
    const N: u32 = 3000;
    send_local(&dir.join("log"), 0..N, SEND_BOUND);
    let seen = wait_all(&b_side.out(), 0..N);
    let twice = seen.values().filter(|&&c| c > 1).count();
    assert_eq!(twice, 0, "A acknowledged nothing, so B got nothing twice");
    assert_eq!(numbered_lines(&dir.join("all.log"), 0..N), N as usize);
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert!(a_side.join().unwrap() > 0, "A was sent nothing");
    let dead = stderr
        .lines()
        .filter(|l| l.contains("connection lost") && l.contains("no RELP answer for 2s"))
        .collect::<Vec<_>>();
    assert_eq!(dead.len(), 1, "declared dead once: {stderr}");
    assert!(
        dead[0].contains(&format!("to relp://127.0.0.1:{} next", b_side.port)),
        "{}",
        dead[0]
    );
}

/// The frozen host: the only remote hangs, its memory queue fills, and then? A forward
/// output drops for itself alone (counted, said once), so the file output takes everything and
/// a local syslog(3) caller never blocks; it used to hold the whole daemon back.
fn a_remote_that_stays_dead_holds_back_neither_other_outputs_nor_local_senders() {
    let (a_port, a_side) = silent_relp_remote();
    let builder = Builder::new();
    let dir = builder.dir().to_owned();
    let d = builder
        .config(&format!(
            "heartbeat = \"0\"\nrate-limit = 0\nstop-timeout = \"2s\"\n\
             listen = [\"unix://{dir}/log\"]\n\
             [[output]]\nto = \"relp://127.0.0.1:{a_port}\"\n\
             [[output]]\nto = \"file:{dir}/all.log\"\n",
            dir = dir.display()
        ))
        .start();
    // Ten times what the forward output's queue (256 KiB) holds.
    const N: u32 = 10_000;
    send_local(&dir.join("log"), 0..N, SEND_BOUND);
    within(WAIT, || match numbered_lines(&dir.join("all.log"), 0..N) {
        n if n >= N as usize => Ok(()),
        n => Err(format!("the file output stopped at {n} of {N}")),
    });
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    drop(a_side);
    assert_eq!(
        stderr.matches("is full").count(),
        1,
        "dropping said once: {stderr}"
    );
    assert!(
        stderr.contains("dropping its messages until it has room"),
        "{stderr}"
    );
    // What it still held when the stop gave up on the remote is counted, not hidden.
    assert!(!stderr.contains("lost at stop 0,"), "{stderr}");
}

/// A TCP remote A that accepts and never reads: once its buffers are full, logger's writes
/// stall, and after `remote-timeout` the connection is declared dead and B takes over. What
/// A's kernel acknowledged and its process never read is all that B may miss; the test reads it
/// from A's socket (peeked) and counts it as arrived.
fn a_tcp_remote_that_takes_nothing_is_declared_dead_and_the_next_takes_over() {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    nix::sys::socket::setsockopt(&a, nix::sys::socket::sockopt::RcvBuf, &16384).unwrap();
    let a_port = a.local_addr().unwrap().port();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    let b_port = b.local_addr().unwrap().port();
    let builder = Builder::new();
    let dir = builder.dir().to_owned();
    let d = builder
        .config(&format!(
            "heartbeat = \"0\"\nrate-limit = 0\nlisten = [\"tcp://127.0.0.1:0\"]\n\
             [[output]]\nto = [\"tcp://127.0.0.1:{a_port}\", \"tcp://127.0.0.1:{b_port}\"]\n\
             remote-timeout = \"2s\"\nqueue-size = \"16M\"\n\
             [[output]]\nto = \"file:{dir}/all.log\"\n",
            dir = dir.display()
        ))
        .start();
    // 2 MB: far more than A's buffers and logger's send buffer hold.
    const N: u32 = 20_000;
    let sender = {
        let addr = d.addr("tcp");
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let mut buf = Vec::new();
            for i in 0..N {
                let m = format!("<13>1 - host app - - - seq {i:06} {}", "x".repeat(60));
                write!(buf, "{} {m}", m.len()).unwrap();
            }
            s.write_all(&buf).unwrap();
        })
    };
    let a_conn = accept_within(&a);
    let unread_at_a = wait_stalled(&a_conn);
    let mut seen: std::collections::BTreeSet<u32> =
        framed_numbers(&unread_at_a).into_iter().collect();
    // B takes over once A is declared dead, and gets everything A did not.
    let mut b_conn = accept_within(&b);
    let mut at_b = Vec::new();
    let mut buf = vec![0; 1 << 20];
    let deadline = Instant::now() + WAIT;
    while seen.len() < N as usize {
        assert!(
            Instant::now() < deadline,
            "{} of {N} reached A or B",
            seen.len()
        );
        if let Ok(n) = b_conn.read(&mut buf) {
            at_b.extend_from_slice(&buf[..n]);
            seen.extend(framed_numbers(&at_b));
        }
    }
    sender.join().unwrap();
    within(WAIT, || match numbered_lines(&dir.join("all.log"), 0..N) {
        n if n >= N as usize => Ok(()),
        n => Err(format!("the file output stopped at {n} of {N}")),
    });
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the remote took nothing for 2s; sending what it did not acknowledge to \
             tcp://127.0.0.1:{b_port} next"
        )),
        "{stderr}"
    );
}

/// A hostile collector answers `open` with a reply announcing 999,999,999 bytes and streams
/// junk: logger used to read it all at line speed (a gigabyte per connection). The header is
/// enough to refuse it; what the collector manages to write before the connection closes is
/// what the kernel buffers hold, nowhere near the announced size.
fn a_relp_answer_longer_than_any_reply_is_refused_at_its_header() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let collector = std::thread::spawn(move || {
        let mut conn = accept_within(&listener);
        let mut open = vec![0; 4096];
        let _ = conn.read(&mut open);
        conn.set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = conn.write_all(b"1 rsp 999999999 ");
        let junk = vec![b'x'; 1 << 20];
        let mut written = 0usize;
        // Until logger hangs up, or 256 MB, or the socket stays full for 5 s.
        while written < 256 << 20 {
            match conn.write(&junk) {
                Ok(n) => written += n,
                Err(_) => break,
            }
        }
        written
    });
    let d = Builder::new()
        .config(&format!(
            "heartbeat = \"0\"\nstop-timeout = \"1s\"\nlisten = [\"tcp://127.0.0.1:0\"]\n\
             [[output]]\nto = \"relp://127.0.0.1:{port}\"\n"
        ))
        .start();
    // It connects when it has something to send.
    let mut s = TcpStream::connect(d.addr("tcp")).unwrap();
    s.write_all(b"<13>1 - host app - - - to a hostile collector\n")
        .unwrap();
    let written = collector.join().unwrap();
    assert!(
        written < 64 << 20,
        "logger read {} MB of a reply it should have refused at its header",
        written >> 20
    );
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("999999999 bytes announced"), "{stderr}");
}

/// The filesystem under `queue-dir` has 124 KiB free for 500 KB of messages. The queue writes
/// what fits, goes on delivering from disk, frees what was delivered (a full tail segment is
/// closed so that it can be deleted), and says so once. Before, the tail segment kept every
/// record until it reached 64 MiB, so a full disk stayed full: the rest never left memory.
fn a_disk_queue_on_a_full_filesystem_delivers_everything_and_says_so_once() {
    require!(
        crate::support::is_root(),
        "root, to mount a small tmpfs in a private namespace"
    );
    require!(have("rsyslogd"), "rsyslog is not installed");
    require!(imrelp_installed(), "rsyslog-relp is not installed");
    let collector = Collector::new();
    let builder = Builder::new();
    let small = builder.dir().join("small");
    std::fs::create_dir(&small).unwrap();
    // logger runs in a private mount namespace in which `small` is a 1 MiB tmpfs with 900 KiB
    // taken.
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs {m} && head -c 921600 /dev/zero > {m}/filler && \
         exec \"$0\" \"$@\"",
        m = small.display()
    );
    let d = builder
        .wrapped_in(&[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .config(&format!(
            "heartbeat = \"0\"\nrate-limit = 0\nlisten = [\"tcp://127.0.0.1:0\"]\n\
             [[output]]\nto = \"relp://127.0.0.1:{port}\"\nqueue-dir = \"{q}\"\n\
             queue-policy = \"block\"\n",
            port = collector.port,
            q = small.join("queue").display()
        ))
        .start();
    const N: u32 = 5000;
    send_numbered(&d, 0..N);
    let seen = wait_all(&collector.out(), 0..N);
    let twice = seen.values().filter(|&&c| c > 1).count();
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert_eq!(twice, 0, "{stderr}");
    assert!(
        stderr.contains("cannot write its disk queue: No space left on device"),
        "the disk never filled, or nothing said so: {stderr}"
    );
    let said = stderr.matches("cannot write its disk queue").count();
    let resumed = stderr
        .matches("its disk queue takes messages again")
        .count();
    assert!(
        said == resumed || said == resumed + 1,
        "each episode said once, and its end: {stderr}"
    );
}
