//! Stream inputs: TCP and AF_UNIX stream sockets, framed per RFC 6587 by `framing::Framer`.
//!
//! One thread serves the listener and all its connections through one epoll set. At
//! max-connections a new connection takes the place of the one idle longest (if idle for a
//! second); otherwise it is closed at once (the client sees a reset, not a hang in the backlog)
//! and counted. A connection silent for idle-timeout is closed. Per connection the memory
//! is the framer's buffer, bounded by max-message-size plus one read.

use std::collections::HashMap;
use std::io::{self, Read};
use std::time::{Instant, SystemTime};

use mio::{Events, Interest, Token};

use super::{Batch, Ctx, Listener, SOCKET, Socket};
use crate::framing::{Frame, Framer};
use crate::message::{Credentials, Origin, Transport};
use crate::parse::parse;
use crate::stats::Stats;
use crate::sys::Pages;

const FIRST_CONNECTION: usize = 2;
const READ_CHUNK: usize = 64 * 1024;
/// A connection idle this long may be closed to make room for a new one at max-connections.
const EVICT_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

enum StreamListener {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
}

enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl mio::event::Source for Stream {
    fn register(&mut self, r: &mio::Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &mio::Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &mio::Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}

/// The connections of one listener, by poll token.
struct Table {
    map: HashMap<usize, Connection>,
    next_token: usize,
}

struct Connection {
    stream: Stream,
    framer: Framer,
    origin: Origin,
    last_active: Instant,
}

enum ReadState {
    Open,
    Closed,
}

impl Connection {
    /// Reads until the socket would block or closes, feeding frames into `batch`.
    fn read_available(&mut self, ctx: &Ctx, chunk: &mut [u8], batch: &mut Batch) -> ReadState {
        loop {
            match self.stream.read(chunk) {
                Ok(0) => {
                    self.emit_finish(ctx, batch);
                    return ReadState::Closed;
                }
                Ok(n) => {
                    self.last_active = Instant::now();
                    let origin = &self.origin;
                    let stats = &ctx.shared.stats;
                    let now = SystemTime::now();
                    self.framer.feed(&chunk[..n], |frame| {
                        push_frame(frame, origin, stats, now, batch)
                    });
                    if !batch.loop_alive() {
                        return ReadState::Closed;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadState::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if e.kind() != io::ErrorKind::ConnectionReset {
                        Stats::add(&ctx.shared.stats.read_errors, 1);
                    }
                    self.emit_finish(ctx, batch);
                    return ReadState::Closed;
                }
            }
        }
    }

    fn emit_finish(&mut self, ctx: &Ctx, batch: &mut Batch) {
        let origin = &self.origin;
        let stats = &ctx.shared.stats;
        self.framer
            .finish(|frame| push_frame(frame, origin, stats, SystemTime::now(), batch));
    }
}

fn push_frame(
    frame: Frame<'_>,
    origin: &Origin,
    stats: &Stats,
    now: SystemTime,
    batch: &mut Batch,
) {
    match frame {
        Frame::Message(m) => {
            Stats::add(&stats.received, 1);
            batch.push(parse(m, origin.clone(), now, false));
        }
        Frame::Truncated(m) => {
            Stats::add(&stats.received, 1);
            Stats::add(&stats.truncated, 1);
            batch.push(parse(m, origin.clone(), now, true));
        }
        Frame::Oversized => {
            Stats::add(&stats.received, 1);
            Stats::add(&stats.oversized, 1);
        }
    }
}

pub(super) fn run(mut ctx: Ctx, mut poll: mio::Poll, mut listener: Listener) {
    let mut server = match take_listener(&mut listener) {
        Ok(s) => s,
        Err(e) => {
            log::error!("input {}: {e}", listener.addr);
            return ctx.finish();
        }
    };
    let registered = match &mut server {
        StreamListener::Tcp(l) => poll.registry().register(l, SOCKET, Interest::READABLE),
        StreamListener::Unix(l) => poll.registry().register(l, SOCKET, Interest::READABLE),
    };
    if let Err(e) = registered {
        log::error!("input {}: cannot poll the socket: {e}", listener.addr);
        return ctx.finish();
    }
    let mut table = Table {
        map: HashMap::new(),
        next_token: FIRST_CONNECTION,
    };
    let mut chunk = match Pages::zeroed(READ_CHUNK) {
        Ok(c) => c,
        Err(e) => {
            log::error!("input {}: cannot map its read buffer: {e}", listener.addr);
            return ctx.finish();
        }
    };
    let mut batch = ctx.batch();
    let mut events = Events::with_capacity(256);
    loop {
        // Only connections need a timer (idle timeout); an idle listener sleeps until woken.
        let idle_timeout = ctx.limits().idle_timeout;
        let timeout = table
            .map
            .values()
            .map(|c| (c.last_active + idle_timeout).saturating_duration_since(Instant::now()))
            .min();
        if let Err(e) = poll.poll(&mut events, timeout)
            && e.kind() != io::ErrorKind::Interrupted
        {
            log::error!("input {}: poll failed: {e}", listener.addr);
            break;
        }
        if ctx.refresh().is_some() {
            batch.escape = ctx.tunables.escape_controls;
            for conn in table.map.values_mut() {
                conn.framer.set_max(ctx.limits().max_message_size);
            }
        }
        let idle_timeout = ctx.limits().idle_timeout;
        let stopping = ctx.stopping();
        // A socket the service manager holds outlives us: connections still in its accept queue
        // at a stop are left there for the next instance instead of being taken and closed.
        let accepting = !(stopping && listener.activated);
        for event in events.iter() {
            match event.token() {
                SOCKET if !accepting => {}
                SOCKET => accept_pending(
                    &ctx, &poll, &server, &mut table, &listener, &mut chunk, &mut batch,
                ),
                Token(t) => {
                    let Some(conn) = table.map.get_mut(&t) else {
                        continue;
                    };
                    if let ReadState::Closed = conn.read_available(&ctx, &mut chunk, &mut batch)
                        && let Some(mut conn) = table.map.remove(&t)
                    {
                        let _ = poll.registry().deregister(&mut conn.stream);
                    }
                }
            }
        }
        let now = Instant::now();
        table.map.retain(|_, c| {
            let idle = now.saturating_duration_since(c.last_active) >= idle_timeout;
            if idle {
                Stats::add(&ctx.shared.stats.idle_closed, 1);
                let origin = &c.origin;
                let stats = &ctx.shared.stats;
                c.framer
                    .finish(|f| push_frame(f, origin, stats, SystemTime::now(), &mut batch));
                let _ = poll.registry().deregister(&mut c.stream);
            }
            !idle
        });
        if stopping {
            // Take what the kernel already holds: connections still in the accept queue (their
            // data was accepted by the kernel on our behalf) unless the manager keeps them for
            // the next instance, then every connection's unread bytes; then close them all.
            if accepting {
                accept_pending(
                    &ctx, &poll, &server, &mut table, &listener, &mut chunk, &mut batch,
                );
            }
            for (_, mut conn) in table.map.drain() {
                conn.read_available(&ctx, &mut chunk, &mut batch);
                conn.emit_finish(&ctx, &mut batch);
            }
        }
        if !batch.flush() || stopping {
            break;
        }
    }
    drop(server);
    drop(listener);
    ctx.finish();
}

/// Accepts every queued connection. At max-connections the connection idle longest makes room
/// if it has been idle for `EVICT_AFTER`; otherwise the new one is closed at once and counted.
fn accept_pending(
    ctx: &Ctx,
    poll: &mio::Poll,
    server: &StreamListener,
    table: &mut Table,
    listener: &Listener,
    chunk: &mut [u8],
    batch: &mut Batch,
) {
    let limits = ctx.limits();
    loop {
        let accepted = match server {
            StreamListener::Tcp(l) => l.accept().map(|(s, peer)| {
                let _ = s.set_nodelay(true);
                let origin = Origin {
                    transport: Transport::Tcp,
                    peer: Some(peer),
                    credentials: None,
                };
                (Stream::Tcp(s), origin)
            }),
            StreamListener::Unix(l) => l.accept().map(|(s, _)| {
                let origin = Origin {
                    transport: Transport::UnixStream,
                    peer: None,
                    credentials: peer_credentials(&s),
                };
                (Stream::Unix(s), origin)
            }),
        };
        let (mut stream, origin) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE and friends: log, and let the next readiness retry.
                log::warn!("input {}: accept failed: {e}", listener.addr);
                return;
            }
        };
        if table.map.len() >= limits.max_connections
            && !evict_idlest(ctx, poll, &mut table.map, batch)
        {
            Stats::add(&ctx.shared.stats.refused_connections, 1);
            log::debug!(
                "input {}: refused a connection: max-connections ({}) reached",
                listener.addr,
                limits.max_connections
            );
            continue;
        }
        let token = table.next_token;
        table.next_token = token.wrapping_add(1).max(FIRST_CONNECTION);
        if poll
            .registry()
            .register(&mut stream, Token(token), Interest::READABLE)
            .is_ok()
        {
            let mut conn = Connection {
                stream,
                framer: Framer::new(limits.max_message_size),
                origin,
                last_active: Instant::now(),
            };
            // Data may have arrived before registration; edge-triggered epoll would not report
            // it again, so read once now.
            match conn.read_available(ctx, chunk, batch) {
                ReadState::Open => {
                    table.map.insert(token, conn);
                }
                ReadState::Closed => {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
            }
        }
    }
}

/// Closes the connection idle longest, if it has been idle long enough to be a fair choice.
fn evict_idlest(
    ctx: &Ctx,
    poll: &mio::Poll,
    connections: &mut HashMap<usize, Connection>,
    batch: &mut Batch,
) -> bool {
    let Some((&token, conn)) = connections.iter().min_by_key(|(_, c)| c.last_active) else {
        return false;
    };
    if conn.last_active.elapsed() < EVICT_AFTER {
        return false;
    }
    if let Some(mut conn) = connections.remove(&token) {
        conn.emit_finish(ctx, batch);
        let _ = poll.registry().deregister(&mut conn.stream);
        Stats::add(&ctx.shared.stats.idle_closed, 1);
    }
    true
}

fn take_listener(listener: &mut Listener) -> io::Result<StreamListener> {
    let placeholder = Socket::UnixDatagram(std::os::unix::net::UnixDatagram::unbound()?);
    match std::mem::replace(&mut listener.socket, placeholder) {
        Socket::Tcp(s) => {
            s.set_nonblocking(true)?;
            Ok(StreamListener::Tcp(mio::net::TcpListener::from_std(s)))
        }
        Socket::UnixStream(s) => {
            s.set_nonblocking(true)?;
            Ok(StreamListener::Unix(mio::net::UnixListener::from_std(s)))
        }
        _ => Err(io::Error::other("not a stream listener")),
    }
}

fn peer_credentials(s: &mio::net::UnixStream) -> Option<Credentials> {
    let c = nix::sys::socket::getsockopt(s, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    Some(Credentials {
        pid: c.pid(),
        uid: c.uid(),
        gid: c.gid(),
    })
}
