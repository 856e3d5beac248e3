//! Datagram inputs: UDP and AF_UNIX datagram sockets (what syslog(3) writes to).
//!
//! One datagram is one message. A datagram longer than max-message-size is cut to it, marked
//! truncated and counted. On AF_UNIX the kernel's SCM_CREDENTIALS give the sender's pid/uid/gid.
//! UDP reads up to `UDP_BATCH` datagrams per recvmmsg(2) call: at high rates the syscall, not the
//! parsing, is the cost per message. After each drain `Coalescer` decides whether to let the
//! queue fill for a moment before the next one (only under load; see `coalesce`).
//!
//! A flood is another matter: when the kernel drops datagrams for the socket (its queue was
//! full: SO_MEMINFO's drop count grew since the last look), the input is falling behind, and
//! on a machine with more than one CPU a second reader (`Helper`, a thread of the same input,
//! parked until then) drains the same socket alongside it until it catches up. Under a local
//! flood the scheduler shares the CPUs among runnable threads, and one reader got under half a
//! core against the senders (`benches/compare`, udp-flood-file). While both read, messages of
//! one sender can reach the outputs out of order by a batch; UDP promises no order, and this
//! is the moment the kernel would otherwise drop them. A quiet input, or one keeping up, is
//! read by one thread, in order.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd};
use std::thread::JoinHandle;
use std::time::SystemTime;

use mio::Interest;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, UnixCredentials, getsockopt,
    recvmmsg, recvmsg, sockopt,
};

use super::bind::size_receive_buffer;
use super::{Batch, Ctx, Listener, SOCKET, Tunables};
use crate::coalesce::Coalescer;
use crate::stats::Stats;
use crate::sys::Pages;
use syslog::message::{Credentials, Origin, Transport};
use syslog::parse::parse;

enum Datagram {
    Udp(mio::net::UdpSocket),
    Unix(mio::net::UnixDatagram),
}

pub(super) fn run(ctx: Ctx, poll: mio::Poll, mut listener: Listener) {
    let mut socket = match take_socket(&mut listener) {
        Ok(s) => s,
        Err(e) => {
            log::error!("input {}: {e}", listener.addr());
            return ctx.finish();
        }
    };
    let registered = match &mut socket {
        Datagram::Udp(s) => poll.registry().register(s, SOCKET, Interest::READABLE),
        Datagram::Unix(s) => poll.registry().register(s, SOCKET, Interest::READABLE),
    };
    if let Err(e) = registered {
        log::error!("input {}: cannot poll the socket: {e}", listener.addr());
        return ctx.finish();
    }
    let max = ctx.limits().max_message_size;
    let rcvbuf = match &socket {
        Datagram::Udp(s) => getsockopt(s, sockopt::RcvBuf),
        Datagram::Unix(s) => getsockopt(s, sockopt::RcvBuf),
    };
    let coalescer = Coalescer::new(rcvbuf.unwrap_or(0));
    // Each kind allocates only the buffers it reads into.
    let reader = match socket {
        Datagram::Udp(s) => UdpBatch::new(max + 1).map(|b| Reader::Udp(s, b)),
        Datagram::Unix(s) => Pages::zeroed(max + 1).map(|b| Reader::Unix(s, b)),
    };
    let reader = match reader {
        Ok(r) => r,
        Err(e) => {
            log::error!(
                "input {}: cannot map its receive buffer: {e}",
                listener.addr()
            );
            return ctx.finish();
        }
    };
    let name = listener.addr().to_string();
    let helper = match &reader {
        Reader::Udp(s, _) if several_cpus() => Helper::start(&ctx, s, &name)
            .map_err(|e| log::warn!("input {name}: no second reader for floods: {e}"))
            .ok(),
        _ => None,
    };
    let body = Socket {
        name,
        reader,
        listener,
        max,
        coalescer,
        drained: Drained::default(),
        helper,
    };
    super::reader::run(ctx, poll, body);
}

fn several_cpus() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// The second reader of a UDP socket: a thread of the same input that sleeps (parked) until
/// the input's own thread finds itself falling behind, then drains the socket alongside it
/// until the queue is empty, and sleeps again.
struct Helper {
    thread: JoinHandle<()>,
    /// The socket's drop count when the input last looked.
    drops: u32,
}

impl Helper {
    fn start(ctx: &Ctx, socket: &mio::net::UdpSocket, name: &str) -> io::Result<Helper> {
        // The same open socket (O_NONBLOCK included): datagrams go to whichever reads first.
        let socket = std::net::UdpSocket::from(socket.as_fd().try_clone_to_owned()?);
        let ctx = ctx.helper(name.to_owned());
        let thread = std::thread::Builder::new()
            .name(format!("input-{}-2", ctx.id))
            .spawn(move || help(ctx, socket))?;
        Ok(Helper { thread, drops: 0 })
    }

    /// Wakes the helper if the kernel dropped datagrams for `socket` since the last look: its
    /// queue was full, the input is falling behind. (A wake-up while it reads is kept for
    /// after.)
    fn wake_if_dropping(&mut self, socket: &mio::net::UdpSocket) {
        let Ok(drops) = crate::sys::socket_drops(socket.as_fd()) else {
            return;
        };
        if std::mem::replace(&mut self.drops, drops) != drops {
            self.thread.thread().unpark();
        }
    }

    /// The input stops (its stop flag is set): the helper reads what it still finds and ends.
    fn end(self) {
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

/// The helper's life: parked until woken, then one drain of the socket, its batch handed on.
fn help(mut ctx: Ctx, socket: std::net::UdpSocket) {
    let mut batch = ctx.batch();
    let mut max = ctx.limits().max_message_size;
    // Mapped at the first flood, not before: an idle input pays nothing for it.
    let mut buffers: Option<UdpBatch> = None;
    loop {
        std::thread::park();
        if ctx.refresh().is_some() {
            batch.escape = ctx.tunables.escape_controls;
            if ctx.limits().max_message_size != max {
                max = ctx.limits().max_message_size;
                buffers = None;
            }
        }
        let udp = match &mut buffers {
            Some(udp) => udp,
            None => match UdpBatch::new(max + 1) {
                Ok(udp) => buffers.insert(udp),
                Err(e) => {
                    log::warn!("udp input: no second reader: cannot map its buffer: {e}");
                    return;
                }
            },
        };
        let drained = &mut Drained::default();
        let alive = udp.drain(&socket, &mut ctx, max, &mut batch, drained, || {});
        if !alive || !batch.flush() || ctx.stopping() {
            return;
        }
    }
}

/// A datagram socket as a body of the input loop.
struct Socket {
    name: String,
    reader: Reader,
    /// Kept for its address and, for a socket file we bound, its removal when we stop.
    listener: Listener,
    max: usize,
    coalescer: Coalescer,
    /// What the last drain read, for the coalescing pause.
    drained: Drained,
    /// The second reader, for floods (UDP, more than one CPU).
    helper: Option<Helper>,
}

impl super::reader::Body for Socket {
    fn name(&self) -> &str {
        &self.name
    }

    /// Reads until the kernel queue is empty (mio is edge-triggered).
    fn drain(&mut self, ctx: &mut Ctx, batch: &mut Batch) -> bool {
        self.drained = Drained::default();
        let (max, drained) = (self.max, &mut self.drained);
        match &mut self.reader {
            Reader::Udp(s, udp) => {
                let helper = &mut self.helper;
                udp.drain(s, ctx, max, batch, drained, || {
                    if let Some(helper) = helper {
                        helper.wake_if_dropping(s);
                    }
                })
            }
            Reader::Unix(s, buf) => drain_unix(s, buf, ctx, max, batch, drained),
        }
    }

    fn retune(&mut self, ctx: &Ctx, old: &Tunables) {
        if let Err(e) = apply(ctx, old, &mut self.reader, &self.listener) {
            log::error!("input {}: cannot apply the new limits: {e}", self.name);
        }
        self.max = ctx.limits().max_message_size;
    }

    fn after_drain(&mut self) {
        if let (Some(helper), Reader::Udp(s, _)) = (&mut self.helper, &self.reader) {
            helper.wake_if_dropping(s);
        }
        self.coalescer
            .wait(self.drained.datagrams, self.drained.bytes);
    }

    fn end(&mut self) {
        if let Some(helper) = self.helper.take() {
            helper.end();
        }
    }
}

/// Applies reloaded limits: receive buffers for a new max-message-size, and the socket's
/// receive buffer for a new receive-buffer (sockets we bound; the manager's keep theirs).
fn apply(ctx: &Ctx, old: &Tunables, reader: &mut Reader, listener: &Listener) -> io::Result<()> {
    let (new, old) = (ctx.limits(), &old.limits);
    if new.max_message_size != old.max_message_size {
        match reader {
            Reader::Udp(_, buf) => *buf = UdpBatch::new(new.max_message_size + 1)?,
            Reader::Unix(_, buf) => *buf = Pages::zeroed(new.max_message_size + 1)?,
        }
    }
    if new.receive_buffer != old.receive_buffer && !listener.activated {
        match reader {
            Reader::Udp(s, _) => size_receive_buffer(s, listener.addr(), new.receive_buffer)?,
            Reader::Unix(s, _) => size_receive_buffer(s, listener.addr(), new.receive_buffer)?,
        }
    }
    Ok(())
}

fn take_socket(listener: &mut Listener) -> io::Result<Datagram> {
    let fd = listener.take_socket()?;
    match listener.addr().transport {
        Transport::Udp => {
            let s = std::net::UdpSocket::from(fd);
            s.set_nonblocking(true)?;
            Ok(Datagram::Udp(mio::net::UdpSocket::from_std(s)))
        }
        Transport::UnixDatagram => {
            let s = std::os::unix::net::UnixDatagram::from(fd);
            s.set_nonblocking(true)?;
            Ok(Datagram::Unix(mio::net::UnixDatagram::from_std(s)))
        }
        other => Err(io::Error::other(format!(
            "a {} socket is not a datagram socket",
            other.name()
        ))),
    }
}

/// A datagram socket with the buffers it reads into.
enum Reader {
    Udp(mio::net::UdpSocket, UdpBatch),
    Unix(mio::net::UnixDatagram, Pages),
}

/// Reads the AF_UNIX socket until it is empty; false if the service loop is gone.
fn drain_unix(
    s: &mio::net::UnixDatagram,
    buf: &mut [u8],
    ctx: &Ctx,
    max: usize,
    batch: &mut Batch,
    drained: &mut Drained,
) -> bool {
    loop {
        match recv_unix(s, buf) {
            Ok((0, _)) => {}
            Ok((n, origin)) => {
                let truncated = n > max;
                drained.add(n);
                let stats = &ctx.shared.stats;
                Stats::add(&stats.received, 1);
                if truncated {
                    Stats::add(&stats.truncated, 1);
                }
                batch.push(parse(
                    &buf[..n.min(max)],
                    origin,
                    SystemTime::now(),
                    truncated,
                ));
                if !batch.loop_alive() {
                    return false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                Stats::add(&ctx.shared.stats.read_errors, 1);
                log::warn!("unix datagram input: receive failed: {e}");
                return true;
            }
        }
    }
}

/// Receives one datagram with the sender's credentials. Returns the datagram's full length, which
/// exceeds the buffer when the kernel cut it.
fn recv_unix(s: &mio::net::UnixDatagram, buf: &mut [u8]) -> io::Result<(usize, Origin)> {
    let mut cmsg = nix::cmsg_space!(UnixCredentials);
    let buf_len = buf.len();
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        s.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let mut credentials = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmCredentials(cred) = c {
                credentials = Some(Credentials {
                    pid: cred.pid(),
                    uid: cred.uid(),
                    gid: cred.gid(),
                });
            }
        }
    }
    let len = if msg.flags.contains(MsgFlags::MSG_TRUNC) {
        buf_len.max(msg.bytes) + 1
    } else {
        msg.bytes
    };
    Ok((
        len,
        Origin {
            transport: Transport::UnixDatagram,
            peer: None,
            credentials,
            tls_peer: None,
        },
    ))
}

/// What one drain of the socket read.
#[derive(Default)]
struct Drained {
    datagrams: usize,
    bytes: usize,
}

impl Drained {
    fn add(&mut self, len: usize) {
        self.datagrams += 1;
        self.bytes += len;
    }
}

/// Datagrams read per recvmmsg(2) call.
const UDP_BATCH: usize = 32;
/// recvmmsg(2) calls between two looks at the socket's drop count, during one drain.
const LOOK_EVERY: usize = 16;

/// The first bytes of each slot, packed together: most datagrams fit, so most batches touch
/// only these pages (32 KiB) and not a page per slot.
const HEAD: usize = 1024;

/// Buffers and headers for recvmmsg, allocated once per input. Each slot is two iovecs: a head in
/// one packed array and a tail in another, together max-message-size + 1 bytes. Pages are only
/// touched as far as datagrams fill them, so the tails cost address space, not memory, until a
/// long datagram arrives.
struct UdpBatch {
    headers: MultiHeaders<SockaddrStorage>,
    heads: Pages,
    tails: Pages,
    head: usize,
    tail: usize,
    /// A datagram longer than its head, made contiguous for the parser.
    joined: Vec<u8>,
    received: Vec<(usize, Option<std::net::SocketAddr>, bool)>,
}

impl UdpBatch {
    fn new(slot: usize) -> io::Result<UdpBatch> {
        let head = slot.min(HEAD);
        let tail = (slot - head).max(1);
        Ok(UdpBatch {
            headers: MultiHeaders::preallocate(UDP_BATCH, None),
            heads: Pages::zeroed(head * UDP_BATCH)?,
            tails: Pages::zeroed(tail * UDP_BATCH)?,
            head,
            tail,
            joined: Vec::new(),
            received: Vec::with_capacity(UDP_BATCH),
        })
    }

    /// The first `len` bytes of the datagram in slot `i`.
    fn datagram(&mut self, i: usize, len: usize) -> &[u8] {
        let head = &self.heads[i * self.head..][..self.head];
        if len <= self.head {
            return &head[..len];
        }
        self.joined.clear();
        self.joined.extend_from_slice(head);
        self.joined
            .extend_from_slice(&self.tails[i * self.tail..][..len - self.head]);
        &self.joined
    }

    /// Reads until the socket is empty; false if the service loop is gone. Every
    /// `LOOK_EVERY` receives it calls `look` (the input's own reader looks whether the kernel
    /// drops datagrams: under a flood one drain lasts as long as the flood).
    fn drain(
        &mut self,
        socket: &impl AsRawFd,
        ctx: &mut Ctx,
        max: usize,
        batch: &mut Batch,
        drained: &mut Drained,
        mut look: impl FnMut(),
    ) -> bool {
        let mut receives = 0usize;
        loop {
            receives += 1;
            if receives.is_multiple_of(LOOK_EVERY) {
                look();
            }
            match self.receive(socket) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    Stats::add(&ctx.shared.stats.read_errors, 1);
                    log::warn!("udp input: receive failed: {e}");
                    return true;
                }
            }
            let now = SystemTime::now();
            let mut admitted = 0;
            for i in 0..self.received.len() {
                let (len, peer, cut) = self.received[i];
                drained.add(len);
                if let Some(peer) = peer
                    && !ctx.admits(peer, "datagram")
                {
                    continue;
                }
                admitted += 1;
                let stats = &ctx.shared.stats;
                let truncated = cut || len > max;
                if truncated {
                    Stats::add(&stats.truncated, 1);
                }
                let data = self.datagram(i, len.min(max));
                batch.push(parse(data, origin_udp_opt(peer), now, truncated));
            }
            Stats::add(&ctx.shared.stats.received, admitted);
            if !batch.loop_alive() {
                return false;
            }
            if self.received.len() < UDP_BATCH {
                return true;
            }
        }
    }

    fn receive(&mut self, socket: &impl AsRawFd) -> io::Result<()> {
        self.received.clear();
        let mut slices: Vec<[IoSliceMut<'_>; 2]> = self
            .heads
            .chunks_mut(self.head)
            .zip(self.tails.chunks_mut(self.tail))
            .map(|(head, tail)| [IoSliceMut::new(head), IoSliceMut::new(tail)])
            .collect();
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        for r in results {
            let peer = r.address.and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| std::net::SocketAddr::V4((*v4).into()))
                    .or_else(|| {
                        a.as_sockaddr_in6()
                            .map(|v6| std::net::SocketAddr::V6((*v6).into()))
                    })
            });
            self.received
                .push((r.bytes, peer, r.flags.contains(MsgFlags::MSG_TRUNC)));
        }
        Ok(())
    }
}

fn origin_udp_opt(peer: Option<std::net::SocketAddr>) -> Origin {
    Origin {
        transport: Transport::Udp,
        peer,
        credentials: None,
        tls_peer: None,
    }
}
