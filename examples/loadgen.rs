//! A syslog-over-UDP load generator for `benches/compare`, for rates loggen cannot reach.
//!
//! loggen sends one datagram per system call and tops out near 200k msg/s on the machines we
//! measure on, which is below what both daemons receive: the benchmark would then measure
//! loggen. This sends batches of 64 datagrams per sendmmsg(2) call from one thread.
//!
//! ```text
//! cargo run --release --example loadgen -- HOST:PORT SECONDS [RATE] [SIZE] [THREADS]
//! ```
//! RATE is messages per second in all (0 or absent: as fast as possible); SIZE is the datagram
//! size in bytes (default 256); THREADS senders (default 1), each with its own socket and an
//! equal share of RATE. Each message is RFC 3164 with a `seq: NNNNNNNNNN,` counter like loggen's,
//! so the benchmark counts deliveries the same way for both generators. Prints
//! `sent_messages=N` (loggen's spelling) and the achieved rate on stderr.

use std::io::IoSlice;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};

/// Datagrams per sendmmsg(2) call.
const BATCH: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: loadgen HOST:PORT SECONDS [RATE] [SIZE]");
        std::process::exit(64);
    }
    let target = &args[0];
    let secs: f64 = args[1].parse().expect("SECONDS is a number");
    let rate: u64 = args
        .get(2)
        .map_or(0, |r| r.parse().expect("RATE is a number"));
    let size: usize = args
        .get(3)
        .map_or(256, |s| s.parse().expect("SIZE is a number"));
    let threads: u64 = args
        .get(4)
        .map_or(1, |t| t.parse().expect("THREADS is a number"));
    let duration = Duration::from_secs_f64(secs);

    let start = Instant::now();
    let senders: Vec<_> = (0..threads)
        .map(|i| {
            let target = target.clone();
            std::thread::spawn(move || send(&target, duration, rate / threads, size, i))
        })
        .collect();
    let sent: u64 = senders.into_iter().map(|t| t.join().unwrap()).sum();
    let took = start.elapsed().as_secs_f64();
    eprintln!(
        "sent_messages={sent} rate={:.0}/s seconds={took:.2}",
        sent as f64 / took
    );
}

/// One sender: `rate` messages per second (0: unbounded) for `duration`; returns how many.
fn send(target: &str, duration: Duration, rate: u64, size: usize, thread: u64) -> u64 {
    let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
    socket.connect(target).expect("connect to the target");
    let mut messages = Messages::new(size, thread);
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let addrs = [None; BATCH];

    let start = Instant::now();
    let mut sent: u64 = 0;
    while start.elapsed() < duration {
        if rate > 0 {
            // Stay on schedule: never ahead of rate × elapsed by more than one batch.
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            if sent > due {
                std::thread::sleep(Duration::from_secs_f64((sent - due) as f64 / rate as f64));
                continue;
            }
        }
        messages.number_from(sent);
        let slices: Vec<[IoSlice<'_>; 1]> = messages.slices().map(|s| [IoSlice::new(s)]).collect();
        match sendmmsg(
            socket.as_raw_fd(),
            &mut headers,
            &slices,
            addrs,
            [],
            MsgFlags::empty(),
        ) {
            Ok(results) => sent += results.count() as u64,
            // ECONNREFUSED: an earlier datagram found no listener (a daemon not up yet).
            Err(nix::errno::Errno::ECONNREFUSED | nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("sendmmsg: {e}"),
        }
    }
    sent
}

/// BATCH messages of `size` bytes laid out in one buffer, renumbered in place per batch.
struct Messages {
    buffer: Vec<u8>,
    size: usize,
    /// Offset of the ten sequence digits inside each message.
    digits: usize,
}

impl Messages {
    fn new(size: usize, thread: u64) -> Messages {
        let head = format!("<13>Nov 23 22:00:00 bench loadgen[{thread}]: seq: ");
        let digits = head.len();
        let mut one = head.into_bytes();
        one.extend_from_slice(b"0000000000, ");
        assert!(size >= one.len(), "SIZE must be at least {}", one.len());
        one.resize(size, b'x');
        Messages {
            buffer: one.repeat(BATCH),
            size,
            digits,
        }
    }

    /// Numbers the batch's messages `first`, `first + 1`, ...
    fn number_from(&mut self, first: u64) {
        for (i, message) in self.buffer.chunks_exact_mut(self.size).enumerate() {
            let mut n = first + i as u64;
            for d in message[self.digits..self.digits + 10].iter_mut().rev() {
                *d = b'0' + (n % 10) as u8;
                n /= 10;
            }
        }
    }

    fn slices(&self) -> impl Iterator<Item = &[u8]> {
        self.buffer.chunks_exact(self.size)
    }
}
