//! A UDP receiver that discards what it reads, for `benches/compare`: the generator's ceiling.
//!
//! On a two-core machine the load generator and the daemon share the CPUs, so a daemon can never
//! deliver more than the generator can send when the receiving side costs next to nothing. This
//! is that receiving side: recvmmsg(2), 64 datagrams per call, into one buffer that is never
//! read, with the same 8 MiB receive buffer the daemons are given. It plays the role for UDP
//! that a native-protocol writer plays for journald.
//!
//! ```text
//! cargo run --release --example sink -- HOST:PORT [PAUSE_US [FILE]]
//! ```
//! PAUSE_US (default 0): after a call that found fewer than a full batch, sleep this long before
//! the next, so the sender pays for fewer wake-ups (`benches/compare` uses 1000).
//! FILE: also append each datagram and a newline to FILE, gathered into one buffer written with
//! one write(2) once it holds 64 KiB (and at the end): the floor of UDP into a file, the same
//! copy into the page cache a daemon's file output pays, with no parsing, escaping or
//! formatting.
//! Receives until nothing has arrived for one second after the first datagram, then prints
//! `received=N` and `cpu_ticks=N` (its own user and system time, in clock ticks: what a
//! receiver that does nothing else costs per message) on stdout.

use std::io::{IoSliceMut, Write};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, setsockopt, sockopt};

/// Datagrams per recvmmsg(2) call.
const BATCH: usize = 64;
/// With FILE: what the line buffer holds before it is written.
const WRITE_AT: usize = 64 * 1024;
/// Bytes kept of each datagram: the benchmark's are 256.
const SLOT: usize = 2048;

fn main() {
    let Some(address) = std::env::args().nth(1) else {
        eprintln!("usage: sink HOST:PORT [PAUSE_US]");
        std::process::exit(64);
    };
    let pause = Duration::from_micros(
        std::env::args()
            .nth(2)
            .map_or(0, |p| p.parse().expect("PAUSE_US is a number")),
    );
    let mut file = std::env::args().nth(3).map(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("FILE")
    });
    let socket = UdpSocket::bind(&address).expect("bind");
    // As much as the daemons get; above net.core.rmem_max only with CAP_NET_ADMIN.
    let size = 8 << 20;
    if setsockopt(&socket, sockopt::RcvBufForce, &size).is_err() {
        setsockopt(&socket, sockopt::RcvBuf, &size).expect("SO_RCVBUF");
    }
    // Waits for the first datagram without a limit, then for at most a second between batches.
    let mut buffer = vec![0u8; BATCH * SLOT];
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut received: u64 = 0;
    let mut lines = Vec::with_capacity(2 * WRITE_AT);
    loop {
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = buffer
            .chunks_exact_mut(SLOT)
            .map(|slot| [IoSliceMut::new(slot)])
            .collect();
        match recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        ) {
            Ok(results) => {
                let lens: Vec<usize> = results.map(|r| r.bytes.min(SLOT)).collect();
                let n = lens.len();
                received += n as u64;
                if let Some(file) = &mut file {
                    for (slot, &len) in buffer.chunks_exact(SLOT).zip(&lens) {
                        lines.extend_from_slice(&slot[..len]);
                        lines.push(b'\n');
                    }
                    if lines.len() >= WRITE_AT {
                        file.write_all(&lines).expect("write");
                        lines.clear();
                    }
                }
                if n < BATCH && !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => break,
            Err(e) => panic!("recvmmsg: {e}"),
        }
        if received > 0 {
            socket
                .set_read_timeout(Some(Duration::from_secs(1)))
                .expect("SO_RCVTIMEO");
        }
    }
    if let Some(file) = &mut file {
        file.write_all(&lines).expect("write");
    }
    println!("received={received}");
    // Its own CPU time, as /proc shows the daemons' (utime + stime, in clock ticks).
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(stat.as_str(), |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    println!("cpu_ticks={ticks}");
}
