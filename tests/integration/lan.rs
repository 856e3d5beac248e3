//! What a host on the LAN can do to the stream inputs, each case an attack that worked: one
//! connection flooding, connections that dribble a byte at a time, one host holding every slot,
//! and a connection burst that exhausts the daemon's descriptors.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    a_flooding_connection_starves_neither_a_quiet_one_nor_the_stop,
    a_host_holding_every_slot_gives_one_up_to_another_host,
    a_connection_that_never_finishes_its_frame_is_closed,
    one_host_gets_at_most_its_share_of_connections,
    connections_queued_while_descriptors_ran_out_are_served_once_they_free_up,
    a_heavy_stream_sender_is_held_back_not_rate_limited_while_a_datagram_flood_is,
    large_messages_queue_what_they_weigh_not_eight_batches_of_them,
    an_allow_list_refuses_other_networks_before_reading_a_byte,
    a_udp_flood_is_read_by_a_second_thread_and_loses_nothing_taken,
];

/// A TCP connection to `to` from the local address `from` (any 127.0.0.0/8 address is this
/// host: a second "host" for tests).
fn connect_from(from: &str, to: &str) -> TcpStream {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let from: SocketAddr = format!("{from}:0").parse().unwrap();
    let to: SocketAddr = to.parse().unwrap();
    let (SocketAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
        panic!("IPv4 only");
    };
    let fd: OwnedFd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(from),
    )
    .unwrap();
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(to)).unwrap();
    TcpStream::from(fd)
}

/// Waits (bounded) until `out.log` holds every one of `lines`; panics naming the missing ones.
fn wait_for_lines(d: &Daemon, lines: &[String], limit: Duration) {
    within(limit, || {
        let log = std::fs::read_to_string(d.path("out.log")).unwrap_or_default();
        let missing: Vec<&String> = lines.iter().filter(|l| !log.contains(*l)).collect();
        match missing.first() {
            None => Ok(()),
            Some(first) => Err(format!(
                "{} of {} lines missing, e.g. {first:?}",
                missing.len(),
                lines.len()
            )),
        }
    })
}

/// The descriptors `d` has open.
fn open_fds(d: &Daemon) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .count()
}

/// Connections to the local TCP `port` that a process has accepted: established sockets with
/// an inode (one still in the accept queue has none yet).
fn accepted(port: &str) -> usize {
    let port = format!(":{:04X}", port.parse::<u16>().unwrap());
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 9 && f[1].ends_with(&port) && f[3] == "01" && f[9] != "0"
        })
        .count()
}

/// Waits (bounded) until the daemon has accepted `n` connections on its TCP port. Counting its
/// descriptors instead is fooled by any it opens for a moment.
fn wait_for_accepted(d: &Daemon, n: usize) {
    let port = d.port("tcp");
    within(WAIT, || match accepted(&port) {
        got if got >= n => Ok(()),
        got => Err(format!("the daemon accepted {got} connections, not {n}")),
    });
}

fn a_flooding_connection_starves_neither_a_quiet_one_nor_the_stop() {
    // Only the quiet client's messages are written: the flood is counted unrouted, so the
    // test measures reading, not the disk.
    let b = Builder::new().arg("--listen=tcp://127.0.0.1:0");
    let out = b.dir().join("out.log");
    let mut d = b
        .config(&format!(
            "rate-limit = 0\n[[output]]\nto = \"file:{}\"\nprogram = \"quiet\"\n",
            out.display()
        ))
        .start();
    let tcp = d.addr("tcp");
    let stop = Arc::new(AtomicBool::new(false));
    let flooded = Arc::new(AtomicU64::new(0));
    let flooder = {
        let (stop, flooded, tcp) = (stop.clone(), flooded.clone(), tcp.clone());
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(&tcp).unwrap();
            let chunk =
                b"<13>flood: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
                    .repeat(512);
            let started = Instant::now();
            // Until told, or the daemon closes the connection, or 60 s (a daemon that never
            // stops under the flood fails the test below well before).
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                if s.write_all(&chunk).is_err() {
                    break;
                }
                flooded.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        })
    };
    eventually("the flood getting going", WAIT, || {
        flooded.load(Ordering::Relaxed) >= 16 << 20
    });
    let mut quiet = TcpStream::connect(&tcp).unwrap();
    let lines: Vec<String> = (0..20).map(|i| format!("quiet user.notice: {i}")).collect();
    for i in 0..20 {
        quiet
            .write_all(format!("<13>quiet: {i}\n").as_bytes())
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every one while the flood goes on.
    wait_for_lines(&d, &lines, WAIT);
    assert!(
        !flooder.is_finished(),
        "the flood ended before the quiet client was served"
    );
    // A stop under the flood ends without waiting for the flood to.
    d.signal(nix::sys::signal::Signal::SIGTERM);
    let out = d.wait_exit(WAIT);
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn a_host_holding_every_slot_gives_one_up_to_another_host() {
    // 16 connections from one host, each dribbling a frame it never finishes: never idle, and
    // inside frame-timeout. Another host's connection still gets a slot.
    let d = Builder::new()
        .standard()
        .config("max-connections = 16\nframe-timeout = \"60s\"\n")
        .start();
    let tcp = d.addr("tcp");
    let stop = Arc::new(AtomicBool::new(false));
    let mut hogs: Vec<TcpStream> = (0..16).map(|_| connect_from("127.0.0.1", &tcp)).collect();
    for h in &mut hogs {
        h.write_all(b"<13>hog: ").unwrap();
    }
    let dribbler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for h in &mut hogs {
                    let _ = h.write_all(b"x");
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            hogs
        })
    };
    // The hogs hold every slot once the daemon has taken them; then another host connects.
    wait_for_accepted(&d, 16);
    let mut good = connect_from("127.0.0.2", &tcp);
    good.write_all(b"<13>good: from another host\n").unwrap();
    wait_for_lines(&d, &["good user.notice: from another host".into()], WAIT);
    stop.store(true, Ordering::Relaxed);
    let hogs = dribbler.join().unwrap();
    let (status, _, stderr) = d.stop();
    drop(hogs);
    assert!(status.success());
    assert!(stderr.contains("connections evicted 1"), "{stderr}");
}

fn a_connection_that_never_finishes_its_frame_is_closed() {
    let d = Builder::new()
        .standard()
        .config("frame-timeout = \"1s\"\n")
        .start();
    let mut slow = TcpStream::connect(d.addr("tcp")).unwrap();
    slow.write_all(b"<13>slow: ").unwrap();
    let writer = {
        let mut w = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            // One byte every 200 ms: never idle for idle-timeout.
            for _ in 0..100 {
                if w.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    assert!(
        closed_by_peer(&mut slow, WAIT),
        "a dribbling connection was not closed after frame-timeout"
    );
    // A connection that finishes its frames in time is not.
    let mut ok = TcpStream::connect(d.addr("tcp")).unwrap();
    for i in 0..8 {
        ok.write_all(format!("<13>ok: {i}\n").as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!closed_by_peer(&mut ok, Duration::from_millis(300)));
    writer.join().unwrap();
    let (status, log, stderr) = d.stop();
    assert!(status.success());
    assert!(log.contains("ok user.notice: 7"), "{log}");
    assert!(stderr.contains("slow connections closed 1"), "{stderr}");
}

fn one_host_gets_at_most_its_share_of_connections() {
    let d = Builder::new()
        .standard()
        .config("max-connections-per-source = 4\n")
        .start();
    let tcp = d.addr("tcp");
    // Four busy connections: never idle, so none may be replaced.
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<TcpStream> = (0..4).map(|_| connect_from("127.0.0.1", &tcp)).collect();
    let keeper = {
        let stop = stop.clone();
        let mut busy = busy;
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                for b in &mut busy {
                    let _ = b.write_all(format!("<13>busy: {n}\n").as_bytes());
                    n += 1;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    wait_for_accepted(&d, 4);
    let mut fifth = connect_from("127.0.0.1", &tcp);
    assert!(
        closed_by_peer(&mut fifth, WAIT),
        "a fifth connection from one host was kept"
    );
    // Another host is not affected.
    let mut other = connect_from("127.0.0.2", &tcp);
    other.write_all(b"<13>other: served\n").unwrap();
    wait_for_lines(&d, &["other user.notice: served".into()], WAIT);
    stop.store(true, Ordering::Relaxed);
    keeper.join().unwrap();
    let (status, _, stderr) = d.stop();
    assert!(status.success());
    assert!(stderr.contains("refused connections 1"), "{stderr}");
}

fn connections_queued_while_descriptors_ran_out_are_served_once_they_free_up() {
    require!(have("prlimit"), "needs util-linux prlimit");
    // Few descriptors: the daemon's own (sockets, output, epoll, ...) and a handful more.
    let d = Builder::new()
        .standard()
        .wrapped_in(&["prlimit", "--nofile=40:40", "--"])
        .start();
    let tcp = d.addr("tcp");
    let used = open_fds(&d);
    assert!(used < 36, "the daemon already uses {used} descriptors");
    // More clients than it has descriptors for; each sends one message and keeps its
    // connection open, so those accepted hold their descriptors.
    let mut clients: Vec<TcpStream> = (0..30)
        .map(|i| {
            let mut c = TcpStream::connect(&tcp).unwrap();
            c.write_all(format!("<13>queued: client {i}\n").as_bytes())
                .unwrap();
            c
        })
        .collect();
    let lines: Vec<String> = (0..30)
        .map(|i| format!("queued user.notice: client {i}"))
        .collect();
    // Not all of them fit: accept(2) has failed with EMFILE.
    let deadline = Instant::now() + WAIT;
    let served = loop {
        let log = std::fs::read_to_string(d.path("out.log")).unwrap_or_default();
        let served = lines.iter().filter(|l| log.contains(*l)).count();
        if served >= 40 - used - 2 || Instant::now() > deadline {
            break served;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        served < 30,
        "all 30 served with {used} of 40 descriptors in use"
    );
    // The clients hang up; the daemon frees their descriptors and, with no new connection
    // arriving to wake the listener, still takes the ones left in the backlog.
    clients.clear();
    wait_for_lines(&d, &lines, WAIT);
    let (status, _, stderr) = d.stop();
    assert!(status.success());
    assert!(stderr.contains("accept failed"), "{stderr}");
}

fn a_heavy_stream_sender_is_held_back_not_rate_limited_while_a_datagram_flood_is() {
    let d = Builder::new()
        .standard()
        .config("rate-limit = 100\nrate-limit-burst = 100\n")
        .start();
    // A relay handing over 5,000 messages at once over TCP: every one is written.
    let mut relay = TcpStream::connect(d.addr("tcp")).unwrap();
    let batch: String = (0..5000).map(|i| format!("<13>tcp: {i}\n")).collect();
    relay.write_all(batch.as_bytes()).unwrap();
    let tcp_lines: Vec<String> = (0..5000).map(|i| format!("tcp user.notice: {i}")).collect();
    wait_for_lines(&d, &tcp_lines, WAIT);
    // The same from one UDP sender: the burst, then 100 a second.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    for i in 0..5000 {
        udp.send_to(format!("<13>udp: {i}").as_bytes(), d.addr("udp"))
            .unwrap();
    }
    let allowed = 100 + 100 * (started.elapsed().as_secs() as usize + 1);
    // The daemon has seen them all once its counters say so; then stop and count.
    let (status, log, stderr) = d.stop();
    assert!(status.success());
    let udp_written = log
        .lines()
        .filter(|l| l.contains(" udp user.notice: "))
        .count();
    assert!(
        udp_written <= allowed,
        "{udp_written} UDP messages written; the limit allows {allowed}"
    );
    let limited: usize = stderr
        .split("rate-limited ")
        .last()
        .and_then(|rest| rest.split([',', ')']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rate-limited count: {stderr}"));
    // Every datagram the kernel kept is written or counted (none of the TCP ones).
    assert!(
        limited > 0 && limited + udp_written <= 5000,
        "{udp_written} UDP written, {limited} rate-limited: {stderr}"
    );
}

/// Anonymous memory (heap, stacks) of a process in kB: what its queues cost, without the
/// binary's pages (a debug build maps far more of them).
fn rss_anon(pid: nix::unistd::Pid) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

fn large_messages_queue_what_they_weigh_not_eight_batches_of_them() {
    // 2 MiB messages, each a batch of its own, into an output that never takes any (a journal
    // socket nobody reads): everything queues as far as the bounds allow. A queue of eight
    // batches held 16 MiB of them (22 MB of heap here, 8.4 MB now); batches in flight are now bounded in
    // bytes, and the output's queue by its queue-size.
    let b = Builder::new().arg("--listen=tcp://127.0.0.1:0");
    let journal = b.dir().join("journal.sock");
    let _stuck = std::os::unix::net::UnixDatagram::bind(&journal).unwrap();
    let mut d = b
        .arg("--output=journal")
        .config(&format!(
            "max-message-size = \"2M\"\njournal-socket = \"{}\"\n",
            journal.display()
        ))
        .start();
    let mut body = b"<13>big: ".to_vec();
    body.resize(2_000_000, b'x');
    let mut frame = format!("{} ", body.len()).into_bytes();
    frame.extend_from_slice(&body);
    let tcp = d.addr("tcp");
    // The sender blocks once the daemon stops reading; it ends when the daemon is killed.
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(tcp).unwrap();
        for _ in 0..40 {
            if s.write_all(&frame).is_err() {
                return;
            }
        }
    });
    // Sample the heap until it has not grown for a second (everything queued that can be).
    let (mut peak, mut grew) = (0, Instant::now());
    let deadline = Instant::now() + WAIT;
    while grew.elapsed() < Duration::from_secs(1) && Instant::now() < deadline {
        let now = rss_anon(d.pid());
        if now > peak {
            (peak, grew) = (now, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    assert!(peak < 14 * 1024, "heap peaked at {peak} kB");
    assert!(peak > 4 * 1024, "only {peak} kB: the flood did not get in");
}

fn an_allow_list_refuses_other_networks_before_reading_a_byte() {
    // 127.0.0.2 is a second host on this machine; only it is allowed.
    let b = Builder::new();
    let out = b.dir().join("out.log");
    let d = b
        .config(&format!(
            "output = \"file:{}\"\n\
             [[input]]\nlisten = \"udp://127.0.0.1:0\"\nallow = [\"127.0.0.2/32\", \"2001:db8::/32\"]\n\
             [[input]]\nlisten = \"tcp://127.0.0.1:0\"\nallow = [\"127.0.0.2\"]\n",
            out.display()
        ))
        .start();
    let (udp, tcp) = (d.addr("udp"), d.addr("tcp"));
    let from = |ip: &str| std::net::UdpSocket::bind(format!("{ip}:0")).unwrap();
    for i in 0..5 {
        from("127.0.0.1")
            .send_to(format!("<13>refused datagram {i}").as_bytes(), &udp)
            .unwrap();
    }
    from("127.0.0.2")
        .send_to(b"<13>allowed datagram", &udp)
        .unwrap();
    // A refused connection is closed at once, before anything it sends is read.
    let mut refused = connect_from("127.0.0.1", &tcp);
    let _ = refused.write_all(b"<13>refused over tcp\n");
    assert!(
        closed_by_peer(&mut refused, WAIT),
        "a connection from outside the allow-list was kept"
    );
    let mut allowed = connect_from("127.0.0.2", &tcp);
    allowed.write_all(b"<13>allowed over tcp\n").unwrap();
    drop(allowed);
    wait_for_lines(
        &d,
        &["allowed datagram".into(), "allowed over tcp".into()],
        WAIT,
    );
    // What the operator sees while it runs: each input's refusals, by reason.
    d.wait_for_status_count("\"listen\":\"udp://127.0.0.1:0\"", "not_allowed", 5);
    let json = d.wait_for_status_count("\"listen\":\"tcp://127.0.0.1:0\"", "not_allowed", 1);
    assert_eq!(
        json_number(&json, "\"totals\"", "received"),
        Some(2),
        "{json}"
    );
    let (status, log, stderr) = d.stop();
    assert!(status.success());
    assert!(!log.contains("refused"), "{log}");
    assert!(stderr.contains("refused as not allowed 6,"), "{stderr}");
    assert!(
        stderr.contains("received 2,"),
        "refused datagrams were counted received: {stderr}"
    );
    // Said once, with the sender and the reason; the rest counted, not logged one by one.
    let said = stderr.matches("not in its allow-list").count();
    assert!((1..=2).contains(&said), "said {said} times: {stderr}");
    assert!(stderr.contains("from 127.0.0.1:"), "{stderr}");
}

/// The voluntary context switches of the input's second reader (`input-N-2`): one for each time
/// it parked, so more than one once a flood woke it.
fn second_reader_switches(d: &Daemon) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", d.pid())).ok()?;
    tasks.filter_map(Result::ok).find_map(|task| {
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        // `input-N-2`, not `input-2`.
        let parts: Vec<&str> = comm.trim_end().split('-').collect();
        if parts.len() != 3 || parts[0] != "input" || parts[2] != "2" {
            return None;
        }
        let status = std::fs::read_to_string(task.path().join("status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse().ok())
    })
}

fn a_udp_flood_is_read_by_a_second_thread_and_loses_nothing_taken() {
    require!(
        std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
        "more than one CPU (the second reader exists only then)"
    );
    // A small receive buffer: a burst overflows it at once, and the kernel drops.
    let d = Builder::new()
        .standard()
        .config("rate-limit = 0\nreceive-buffer = \"16K\"\n")
        .start();
    // Parked and quiet: a switch or two at its start, then none while nothing arrives.
    let quiet = within(WAIT, || {
        second_reader_switches(&d).ok_or_else(|| "no second reader thread".to_owned())
    });
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rounds = 0;
    within(WAIT, || {
        rounds += 1;
        for i in 0..20_000 {
            let _ = udp.send_to(format!("<13>flood: {rounds} {i}").as_bytes(), d.addr("udp"));
        }
        // Each time it wakes, reads and parks again is a switch: a flood makes hundreds.
        match second_reader_switches(&d) {
            Some(n) if n > quiet + 10 => Ok(()),
            n => Err(format!(
                "the second reader did not wake ({n:?} switches, {quiet} before) in {rounds} \
                 bursts"
            )),
        }
    });
    // Whatever either thread took is written: the lines equal what the input counted.
    let (status, log, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    let written = log
        .lines()
        .filter(|l| l.contains(" flood user.notice: "))
        .count();
    let received: usize = stderr
        .split("received ")
        .last()
        .and_then(|rest| rest.split([',', ' ', ')']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no received count: {stderr}"));
    assert!(written > 0, "{stderr}");
    assert_eq!(written, received, "taken and not written: {stderr}");
}
