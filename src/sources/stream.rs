//! Stream inputs: TCP and AF_UNIX stream sockets, framed per RFC 6587 by `framing::Framer`.
//!
//! One thread serves the listener and all its connections through one epoll set, and reads them
//! in turns: a connection with data reads at most [`TURN`] bytes, then waits for every other
//! ready connection to have had its turn. One flooding client therefore delays the others by a
//! turn each, never starves them, and a stop is never held up by a client that keeps sending.
//!
//! What a LAN host can hold is bounded three ways. Per source (an IPv4 address, an IPv6 /64, a
//! local user) at most max-connections-per-source connections; past it, the newcomer is closed.
//! At max-connections a newcomer takes the place of a connection of the source holding the
//! most, if that source holds more than the newcomer's (else of the connection idle longest, if
//! idle a second; else it is closed at once: the client sees a reset, not a hang in the
//! backlog). A connection that started a frame (or a TLS record) must finish it within
//! frame-timeout (slowloris: one byte every half second is never idle), and one silent for
//! idle-timeout is closed. Each
//! closure is counted by reason. When accept(2) fails for want of descriptors or memory it is
//! retried after [`ACCEPT_RETRY`] rather than at the next connection's arrival (the listener is
//! edge-triggered). Per connection the memory is the framer's buffer, bounded by
//! max-message-size plus one read.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use mio::{Events, Interest, Token};

use super::relp::Session;
use super::{Batch, Ctx, Listener, SOCKET};
use crate::framing::{Frame, Framer};
use crate::message::{Credentials, Origin, Transport};
use crate::parse::parse;
use crate::ratelimit::sender_net;
use crate::stats::Stats;
use crate::sys::Pages;

const FIRST_CONNECTION: usize = 2;
const READ_CHUNK: usize = 64 * 1024;
/// What one connection reads in its turn before the next ready connection gets one.
const TURN: usize = READ_CHUNK;
/// What a stop reads of each connection at most: more than Linux lets a TCP receive buffer
/// hold by default (tcp_rmem's 6 MiB), so what the kernel accepted is taken, while a client
/// that keeps sending cannot hold the stop.
const STOP_READ: usize = 16 << 20;
/// A connection idle this long may be closed to make room for a new one at max-connections.
const EVICT_AFTER: Duration = Duration::from_secs(1);
/// accept(2) failed for want of descriptors or memory: try again after this long.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

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

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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

/// Who holds a connection, for the per-source bounds: a network sender by [`sender_net`], a
/// local one by uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SourceKey {
    Net(IpAddr),
    User(u32),
    Unknown,
}

impl SourceKey {
    fn of(origin: &Origin) -> SourceKey {
        match (origin.peer, origin.credentials) {
            (Some(peer), _) => SourceKey::Net(sender_net(peer.ip())),
            (None, Some(c)) => SourceKey::User(c.uid),
            (None, None) => SourceKey::Unknown,
        }
    }
}

/// The connections of one listener, by poll token, with how many each source holds and which
/// have data waiting for their turn.
struct Table {
    map: HashMap<usize, Connection>,
    per_source: HashMap<SourceKey, usize>,
    /// Connections with unread data, in the order of their turns; each at most once.
    ready: VecDeque<usize>,
    next_token: usize,
}

impl Table {
    fn new() -> Table {
        Table {
            map: HashMap::new(),
            per_source: HashMap::new(),
            ready: VecDeque::new(),
            next_token: FIRST_CONNECTION,
        }
    }

    fn held_by(&self, source: SourceKey) -> usize {
        self.per_source.get(&source).copied().unwrap_or(0)
    }

    fn insert(&mut self, token: usize, conn: Connection) {
        *self.per_source.entry(conn.source).or_insert(0) += 1;
        self.map.insert(token, conn);
        self.mark_ready(token);
    }

    /// Removes a connection and deregisters it; its socket closes when it is dropped.
    fn remove(&mut self, poll: &mio::Poll, token: usize) -> Option<Connection> {
        let mut conn = self.map.remove(&token)?;
        if let Some(n) = self.per_source.get_mut(&conn.source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&conn.source);
            }
        }
        let _ = poll.registry().deregister(&mut conn.stream);
        Some(conn)
    }

    /// Queues a connection's turn, unless it is queued already.
    fn mark_ready(&mut self, token: usize) {
        if let Some(conn) = self.map.get_mut(&token)
            && !conn.queued
        {
            conn.queued = true;
            self.ready.push_back(token);
        }
    }

    /// The source holding the most connections, and how many.
    fn heaviest(&self) -> Option<(SourceKey, usize)> {
        self.per_source
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(k, n)| (*k, *n))
    }

    /// The connection of `source` (any source if None) idle longest.
    fn idlest(&self, source: Option<SourceKey>) -> Option<(usize, Instant)> {
        self.map
            .iter()
            .filter(|(_, c)| source.is_none_or(|s| c.source == s))
            .min_by_key(|(_, c)| c.last_active)
            .map(|(t, c)| (*t, c.last_active))
    }
}

/// How a connection's bytes become messages.
enum Protocol {
    /// Syslog frames (RFC 6587 octet counting or LF).
    Syslog(Framer),
    /// RELP commands, each message answered (`sources::relp`).
    Relp(Box<Session>),
}

impl Protocol {
    fn in_frame(&self) -> bool {
        match self {
            Protocol::Syslog(f) => f.in_frame(),
            Protocol::Relp(s) => s.in_frame(),
        }
    }

    fn set_max(&mut self, max: usize) {
        match self {
            Protocol::Syslog(f) => f.set_max(max),
            Protocol::Relp(s) => s.set_max(max),
        }
    }
}

struct Connection {
    stream: Stream,
    /// Its poll token: RELP answers find their connection by it.
    token: usize,
    protocol: Protocol,
    origin: Origin,
    source: SourceKey,
    last_active: Instant,
    /// When the frame being received began (for TLS, the handshake: from the accept); None
    /// between frames.
    frame_started: Option<Instant>,
    /// Its turn is in `Table::ready`.
    queued: bool,
    /// The TLS session, for a TLS input.
    tls: Option<Box<TlsSession>>,
    /// Not read because its RELP session waits for answers (see `Session::saturated`): read
    /// again once they go out.
    paused: bool,
}

/// A connection's TLS state: rustls' server connection, fed the bytes read from the socket
/// and drained of the plaintext at once, so that it never holds more than a record.
struct TlsSession {
    conn: rustls::ServerConnection,
    /// The first bytes were looked at (a TLS handshake starts with a handshake record).
    started: bool,
    /// Where the record being received ends: a partial record is a frame in progress.
    records: RecordBoundary,
}

/// Follows TLS record boundaries in the bytes a client sends (a 5-byte header whose last two
/// bytes are the length of what follows), so that a record sent a byte at a time and never
/// finished counts as a frame in progress, under frame-timeout, and not as activity.
#[derive(Default)]
struct RecordBoundary {
    /// Header bytes read of the next record.
    header: [u8; 5],
    have: usize,
    /// Bytes of the current record's body still to come.
    left: usize,
}

impl RecordBoundary {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.left > 0 {
                let n = self.left.min(data.len());
                self.left -= n;
                data = &data[n..];
                continue;
            }
            let n = (self.header.len() - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == self.header.len() {
                self.have = 0;
                self.left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
            }
        }
    }

    /// True while a record is partly received.
    fn partial(&self) -> bool {
        self.have > 0 || self.left > 0
    }
}

/// Why a TLS connection was closed before it could send.
enum TlsRefusal {
    /// Its first byte was not a TLS handshake record's.
    NotTls,
    /// The handshake or a record failed.
    Failed(rustls::Error),
}

/// The first byte of a TLS handshake record (ContentType handshake).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

impl TlsSession {
    /// Takes `data` read from the socket: handshake records are answered on `stream`,
    /// application data is decrypted into `plain` and handed to `deliver` with `origin`, which
    /// names the verified client from the moment the handshake completes.
    fn feed(
        &mut self,
        mut data: &[u8],
        stream: &mut Stream,
        plain: &mut [u8],
        origin: &mut Origin,
        mut deliver: impl FnMut(&[u8], &Origin),
    ) -> Result<(), TlsRefusal> {
        if !self.started && !data.is_empty() {
            self.started = true;
            if data[0] != TLS_HANDSHAKE_RECORD {
                return Err(TlsRefusal::NotTls);
            }
        }
        self.records.feed(data);
        while !data.is_empty() {
            if self.conn.read_tls(&mut data).is_err() {
                // Its buffer is full: only possible if plaintext were left unread, which
                // never happens below; refuse rather than spin.
                return Err(TlsRefusal::Failed(rustls::Error::General(
                    "record buffer full".into(),
                )));
            }
            let was_handshaking = self.conn.is_handshaking();
            let processed = self.conn.process_new_packets();
            // The handshake's answer, or the alert that says why it failed.
            self.flush(stream);
            processed.map_err(TlsRefusal::Failed)?;
            if was_handshaking && !self.conn.is_handshaking() {
                self.established(origin);
            }
            loop {
                match self.conn.reader().read(plain) {
                    Ok(0) => break,
                    Ok(n) => deliver(&plain[..n], origin),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
        }
        Ok(())
    }

    /// The handshake is done: the verified client certificate, if any, names the sender of
    /// every message on this connection.
    fn established(&self, origin: &mut Origin) {
        if let Some(cert) = self.conn.peer_certificates().and_then(|c| c.first()) {
            let peer = crate::tls::identity::describe(cert);
            log::debug!("TLS client {} is {peer}", describe(origin));
            origin.tls_peer = Some(peer.into());
        }
    }

    /// Writes what rustls has to send. A socket too full to take a handshake flight (a few
    /// KiB, against a send buffer of 16 KiB at least) is a peer not reading: what is left is
    /// sent at the next wake-up, and the frame-timeout deadline closes a peer that never reads.
    fn flush(&mut self, stream: &mut Stream) {
        while self.conn.wants_write() {
            match self.conn.write_tls(stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }
}

enum ReadState {
    /// The socket would block: nothing more until epoll says so.
    Drained,
    /// It read its budget; there may be more.
    More,
    /// The peer closed, or reading failed, or the loop is gone.
    Closed,
}

impl Connection {
    fn new(
        stream: Stream,
        origin: Origin,
        max_message_size: usize,
        tls: Option<rustls::ServerConnection>,
    ) -> Connection {
        let now = Instant::now();
        let protocol = if origin.transport.is_relp() {
            Protocol::Relp(Box::new(Session::new(max_message_size)))
        } else {
            Protocol::Syslog(Framer::new(max_message_size))
        };
        Connection {
            stream,
            token: 0,
            protocol,
            source: SourceKey::of(&origin),
            origin,
            last_active: now,
            // A TLS handshake must be done within frame-timeout, like a frame.
            frame_started: tls.as_ref().map(|_| now),
            queued: false,
            tls: tls.map(|conn| {
                Box::new(TlsSession {
                    conn,
                    started: false,
                    records: RecordBoundary::default(),
                })
            }),
            paused: false,
        }
    }

    fn relp(&mut self) -> Option<&mut Session> {
        match &mut self.protocol {
            Protocol::Relp(s) => Some(s),
            Protocol::Syslog(_) => None,
        }
    }

    /// Writes the RELP answers the socket takes; the rest waits for it to be writable.
    fn send_answers(&mut self) {
        let Connection {
            stream,
            protocol: Protocol::Relp(session),
            tls,
            ..
        } = self
        else {
            return;
        };
        while !session.answers().is_empty() {
            let written = match tls {
                Some(tls) => {
                    let n = tls.conn.writer().write(session.answers());
                    tls.flush(stream);
                    n
                }
                None => stream.write(session.answers()),
            };
            match written {
                Ok(0) => break,
                Ok(n) => session.written(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if let Some(tls) = tls {
            tls.flush(stream);
        }
    }

    /// True while a TLS handshake is not finished.
    fn handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.handshaking())
    }

    /// Reads up to `budget` bytes (or until the socket would block or closes), feeding frames
    /// into `batch`; through TLS, decrypted into `plain` first.
    fn read(
        &mut self,
        ctx: &mut Ctx,
        buffers: &mut Buffers,
        batch: &mut Batch,
        budget: usize,
    ) -> ReadState {
        let mut taken = 0;
        if let Some(tls) = &mut self.tls {
            // What could not be sent at the last turn.
            tls.flush(&mut self.stream);
        }
        if let Some(state) = self.relp_turn() {
            return state;
        }
        while taken < budget {
            match self.stream.read(&mut buffers.chunk) {
                Ok(0) => {
                    self.emit_finish(ctx, batch);
                    return ReadState::Closed;
                }
                Ok(n) => {
                    taken += n;
                    let now = Instant::now();
                    self.last_active = now;
                    let Connection {
                        stream,
                        protocol,
                        origin,
                        tls,
                        token,
                        ..
                    } = self;
                    let stats = &ctx.shared.stats;
                    let received = SystemTime::now();
                    let mut frames = 0usize;
                    let mut broken = None;
                    let mut take = |bytes: &[u8], origin: &Origin| match protocol {
                        Protocol::Syslog(framer) => framer.feed(bytes, |frame| {
                            frames += 1;
                            push_frame(frame, origin, stats, received, batch)
                        }),
                        Protocol::Relp(session) => {
                            let fed = session.feed(bytes, |data, truncated, txnr| {
                                frames += 1;
                                Stats::add(&stats.received, 1);
                                if truncated {
                                    Stats::add(&stats.truncated, 1);
                                }
                                let msg = parse(data, origin.clone(), received, truncated);
                                batch.push_answered(msg, (*token, txnr));
                            });
                            if let Err(why) = fed {
                                broken.get_or_insert(why);
                            }
                        }
                    };
                    let Buffers { chunk, plain } = buffers;
                    let data = &chunk[..n];
                    match tls {
                        None => take(data, origin),
                        Some(tls) => {
                            let plain = plain.get_or_insert_with(|| vec![0; TLS_RECORD]);
                            if let Err(refusal) = tls.feed(data, stream, plain, origin, take) {
                                self.refuse_tls(ctx, refusal);
                                return ReadState::Closed;
                            }
                        }
                    }
                    if let Some(why) = broken {
                        Stats::add(&ctx.shared.stats.relp_errors, 1);
                        ctx.refused(format_args!(
                            "closed the RELP session of {}: {why}",
                            describe(&self.origin)
                        ));
                        return ReadState::Closed;
                    }
                    // The deadline runs from the start of the frame in progress (or of the
                    // handshake, or of a TLS record not yet whole): a frame finished restarts
                    // it, a frame still open keeps it.
                    let partial_record = self.tls.as_ref().is_some_and(|t| t.records.partial());
                    if !self.protocol.in_frame() && !self.handshaking() && !partial_record {
                        self.frame_started = None;
                    } else if frames > 0 || self.frame_started.is_none() {
                        self.frame_started = Some(now);
                    }
                    if !batch.loop_alive() {
                        return ReadState::Closed;
                    }
                    if let Some(state) = self.relp_turn() {
                        return state;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadState::Drained,
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
        ReadState::More
    }

    /// For a RELP session: writes what it owes, and says whether to stop reading for now
    /// (`Drained`: woken again when answers go out) or for good (`Closed`: the session is over
    /// and answered).
    fn relp_turn(&mut self) -> Option<ReadState> {
        self.send_answers();
        let session = self.relp()?;
        if session.done() {
            return Some(ReadState::Closed);
        }
        let saturated = session.saturated();
        self.paused = saturated;
        saturated.then_some(ReadState::Drained)
    }

    /// Every output took the message of `txnr`: answers it (written by `relp_turn`).
    fn answer(&mut self, txnr: u32) {
        if let Some(session) = self.relp() {
            session.answer(txnr);
            // An answer is the connection at work: not idle while outputs take their time.
            self.last_active = Instant::now();
        }
    }

    /// Counts and says why a TLS connection is closed before it could send.
    fn refuse_tls(&self, ctx: &mut Ctx, refusal: TlsRefusal) {
        let from = describe(&self.origin);
        match refusal {
            TlsRefusal::NotTls => {
                Stats::add(&ctx.shared.stats.not_tls, 1);
                ctx.refused(format_args!(
                    "closed a connection from {from}: it did not start a TLS handshake \
                     (plaintext syslog on a TLS port?)"
                ));
            }
            TlsRefusal::Failed(e) => {
                Stats::add(&ctx.shared.stats.tls_failed, 1);
                ctx.refused(format_args!("TLS with {from} failed: {e}"));
            }
        }
    }

    /// The connection ends: what it sent of an unfinished syslog frame is kept, marked
    /// truncated. (An unfinished RELP frame was never answered: the client sends it again.)
    fn emit_finish(&mut self, ctx: &Ctx, batch: &mut Batch) {
        if self.handshaking() {
            return;
        }
        let origin = &self.origin;
        let stats = &ctx.shared.stats;
        if let Protocol::Syslog(framer) = &mut self.protocol {
            framer.finish(|frame| push_frame(frame, origin, stats, SystemTime::now(), batch));
        }
    }

    /// When it must next be looked at: idle-timeout after its last byte, or frame-timeout
    /// after the start of an unfinished frame.
    fn deadline(&self, idle: Duration, frame: Duration) -> Instant {
        let idle = self.last_active + idle;
        match self.frame_started {
            Some(t) => idle.min(t + frame),
            None => idle,
        }
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

/// What a stream input reads into: the socket's bytes, and for TLS their plaintext (a
/// record's worth, allocated for TLS inputs only).
struct Buffers {
    chunk: Pages,
    plain: Option<Vec<u8>>,
}

/// The most plaintext one TLS record carries.
const TLS_RECORD: usize = 16 * 1024;

/// The listening socket's state between wake-ups.
struct Acceptor {
    server: StreamListener,
    /// accept(2) is failing for want of resources: when to try again.
    retry: Option<Instant>,
}

pub(super) fn run(mut ctx: Ctx, mut poll: mio::Poll, mut listener: Listener) {
    let mut server = match take_listener(&mut listener) {
        Ok(s) => s,
        Err(e) => {
            log::error!("input {}: {e}", listener.addr());
            return ctx.finish();
        }
    };
    let registered = match &mut server {
        StreamListener::Tcp(l) => poll.registry().register(l, SOCKET, Interest::READABLE),
        StreamListener::Unix(l) => poll.registry().register(l, SOCKET, Interest::READABLE),
    };
    if let Err(e) = registered {
        log::error!("input {}: cannot poll the socket: {e}", listener.addr());
        return ctx.finish();
    }
    let mut acceptor = Acceptor {
        server,
        retry: None,
    };
    let mut table = Table::new();
    let mut buffers = match Pages::zeroed(READ_CHUNK) {
        Ok(chunk) => Buffers { chunk, plain: None },
        Err(e) => {
            log::error!("input {}: cannot map its read buffer: {e}", listener.addr());
            return ctx.finish();
        }
    };
    let mut batch = ctx.batch();
    let mut events = Events::with_capacity(256);
    loop {
        // The connections open as the last turn left them, for `logger --status`.
        ctx.shared
            .stats
            .connections
            .store(table.map.len() as u64, std::sync::atomic::Ordering::Relaxed);
        // Turns still owed: look at the sockets without sleeping. Otherwise sleep until the
        // first deadline (an idle listener with no connections sleeps until woken).
        let timeout = if table.ready.is_empty() {
            let (idle, frame) = (ctx.limits().idle_timeout, ctx.limits().frame_timeout);
            let now = Instant::now();
            table
                .map
                .values()
                .map(|c| c.deadline(idle, frame))
                .chain(acceptor.retry)
                .min()
                .map(|t| t.saturating_duration_since(now))
        } else {
            Some(Duration::ZERO)
        };
        if let Err(e) = poll.poll(&mut events, timeout)
            && e.kind() != io::ErrorKind::Interrupted
        {
            log::error!("input {}: poll failed: {e}", listener.addr());
            break;
        }
        if ctx.refresh().is_some() {
            batch.escape = ctx.tunables.escape_controls;
            for conn in table.map.values_mut() {
                conn.protocol.set_max(ctx.limits().max_message_size);
            }
        }
        let stopping = ctx.stopping();
        // A socket the service manager holds outlives us: connections still in its accept queue
        // at a stop are left there for the next instance instead of being taken and closed.
        let accepting = !(stopping && listener.activated);
        // A stop takes what the kernel already holds, connections still in the accept queue
        // included (their data was accepted on our behalf), unless the manager keeps them.
        let mut accept_now = stopping || acceptor.retry.is_some_and(|t| t <= Instant::now());
        for event in events.iter() {
            match event.token() {
                SOCKET => accept_now = true,
                Token(t) => table.mark_ready(t),
            }
        }
        answer_taken(&ctx, &poll, &mut table);
        if accept_now && accepting {
            accept_pending(
                &mut ctx,
                &poll,
                &mut acceptor,
                &mut table,
                &listener,
                &mut buffers,
                &mut batch,
            );
        }
        // One turn for each connection ready now; one that read its whole turn goes to the
        // back of the line.
        for _ in 0..table.ready.len() {
            let Some(token) = table.ready.pop_front() else {
                break;
            };
            let Some(conn) = table.map.get_mut(&token) else {
                continue;
            };
            conn.queued = false;
            match conn.read(&mut ctx, &mut buffers, &mut batch, TURN) {
                ReadState::Drained => {}
                ReadState::More => table.mark_ready(token),
                ReadState::Closed => {
                    table.remove(&poll, token);
                }
            }
        }
        close_overdue(&mut ctx, &poll, &mut table, &mut batch);
        if stopping {
            // Every connection's unread bytes (bounded: a client that keeps sending cannot
            // hold the stop), then close them all.
            let tokens: Vec<usize> = table.map.keys().copied().collect();
            for token in tokens {
                let Some(conn) = table.map.get_mut(&token) else {
                    continue;
                };
                if matches!(
                    conn.read(&mut ctx, &mut buffers, &mut batch, STOP_READ),
                    ReadState::Closed
                ) {
                    table.remove(&poll, token);
                } else {
                    conn.emit_finish(&ctx, &mut batch);
                }
            }
            if ctx.board.is_some() {
                batch.flush();
                answer_before_stop(&ctx, &mut poll, &mut events, &mut table);
            }
            let tokens: Vec<usize> = table.map.keys().copied().collect();
            for token in tokens {
                table.remove(&poll, token);
            }
        }
        if !batch.flush() || stopping {
            break;
        }
    }
    drop(acceptor);
    drop(listener);
    ctx.finish();
}

/// Answers the RELP transactions whose messages every output took (posted on the input's
/// board), writes the answers, and reads again a connection that waited for them.
fn answer_taken(ctx: &Ctx, poll: &mio::Poll, table: &mut Table) {
    let Some(board) = &ctx.board else {
        return;
    };
    let answered = board.take();
    if answered.is_empty() {
        return;
    }
    let mut touched = Vec::new();
    for (token, txnr) in answered {
        // A connection closed meanwhile: its client sends those again.
        if let Some(conn) = table.map.get_mut(&token) {
            conn.answer(txnr);
            touched.push(token);
        }
    }
    touched.sort_unstable();
    touched.dedup();
    for token in touched {
        let Some(conn) = table.map.get_mut(&token) else {
            continue;
        };
        let paused = conn.paused;
        match conn.relp_turn() {
            Some(ReadState::Closed) => {
                table.remove(poll, token);
            }
            None if paused => table.mark_ready(token),
            _ => {}
        }
    }
}

/// How long a stopping RELP input waits for its outputs to take what it read, so that it can
/// answer it. What is not answered by then is sent again by the client, to the next instance.
const ANSWER_AT_STOP: Duration = Duration::from_secs(5);

/// A stopping RELP input: answers what the outputs take, until nothing waits or
/// [`ANSWER_AT_STOP`]; then says `serverclose` on every session.
fn answer_before_stop(ctx: &Ctx, poll: &mut mio::Poll, events: &mut Events, table: &mut Table) {
    let deadline = Instant::now() + ANSWER_AT_STOP;
    loop {
        answer_taken(ctx, poll, table);
        let waiting = table
            .map
            .values_mut()
            .any(|c| c.relp().is_some_and(|s| s.unanswered() > 0));
        let left = deadline.saturating_duration_since(Instant::now());
        if !waiting || left.is_zero() {
            break;
        }
        let _ = poll.poll(events, Some(left.min(Duration::from_millis(100))));
    }
    for conn in table.map.values_mut() {
        if let Some(session) = conn.relp() {
            session.server_close();
            conn.send_answers();
        }
    }
}

/// Closes connections silent for idle-timeout, and those that have not finished a frame
/// within frame-timeout; each counted.
fn close_overdue(ctx: &mut Ctx, poll: &mio::Poll, table: &mut Table, batch: &mut Batch) {
    let (idle, frame) = (ctx.limits().idle_timeout, ctx.limits().frame_timeout);
    let now = Instant::now();
    let overdue: Vec<(usize, bool)> = table
        .map
        .iter()
        .filter(|(_, c)| c.deadline(idle, frame) <= now)
        .map(|(t, c)| (*t, now.saturating_duration_since(c.last_active) >= idle))
        .collect();
    for (token, was_idle) in overdue {
        let Some(mut conn) = table.remove(poll, token) else {
            continue;
        };
        if conn.handshaking() {
            Stats::add(&ctx.shared.stats.tls_failed, 1);
            ctx.refused(format_args!(
                "closed a connection from {}: no TLS handshake within frame-timeout",
                describe(&conn.origin)
            ));
            continue;
        }
        if was_idle {
            Stats::add(&ctx.shared.stats.idle_closed, 1);
        } else {
            Stats::add(&ctx.shared.stats.slow_closed, 1);
            log::debug!(
                "closed a connection from {}: a frame unfinished after frame-timeout",
                describe(&conn.origin)
            );
        }
        // What it sent of an unfinished octet-counted frame is kept, marked truncated.
        conn.emit_finish(ctx, batch);
    }
}

fn describe(origin: &Origin) -> String {
    match (origin.peer, origin.credentials) {
        (Some(peer), _) => peer.to_string(),
        (None, Some(c)) => format!("pid {} uid {}", c.pid, c.uid),
        (None, None) => "a local peer".into(),
    }
}

/// Accepts every queued connection, within the per-source and total bounds (see the module
/// documentation). New connections are queued for a turn: edge-triggered epoll would not
/// report data that arrived before registration.
fn accept_pending(
    ctx: &mut Ctx,
    poll: &mio::Poll,
    acceptor: &mut Acceptor,
    table: &mut Table,
    listener: &Listener,
    buffers: &mut Buffers,
    batch: &mut Batch,
) {
    let transport = listener.addr().transport;
    loop {
        let accepted = match &acceptor.server {
            StreamListener::Tcp(l) => l.accept().map(|(s, peer)| {
                let _ = s.set_nodelay(true);
                let origin = Origin {
                    transport,
                    peer: Some(peer),
                    credentials: None,
                    tls_peer: None,
                };
                (Stream::Tcp(s), origin)
            }),
            StreamListener::Unix(l) => l.accept().map(|(s, _)| {
                let origin = Origin {
                    transport: Transport::UnixStream,
                    peer: None,
                    credentials: peer_credentials(&s),
                    tls_peer: None,
                };
                (Stream::Unix(s), origin)
            }),
        };
        let (stream, origin) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if out_of_resources(&e) => {
                // The connection stays in the backlog; the listener will not be reported
                // readable again until another one arrives, so come back on a timer.
                if acceptor.retry.is_none() {
                    log::warn!(
                        "input {}: accept failed: {e}; retrying every {} ms",
                        listener.addr(),
                        ACCEPT_RETRY.as_millis()
                    );
                }
                acceptor.retry = Some(Instant::now() + ACCEPT_RETRY);
                return;
            }
            // The peer gave up while queued (ECONNABORTED) and the like: the next one.
            Err(_) => continue,
        };
        // The allow-list first: a refused address costs an accept and a close, nothing more.
        if let Some(peer) = origin.peer
            && !ctx.admits(peer, "connection")
        {
            continue;
        }
        let tls = match &ctx.tunables.tls {
            None => None,
            Some(server) => match rustls::ServerConnection::new(server.config.clone()) {
                Ok(conn) => Some(conn),
                Err(e) => {
                    log::error!("input {}: cannot start TLS: {e}", listener.addr());
                    continue;
                }
            },
        };
        // A handshake and RELP answers write: what the socket cannot take at once is sent
        // when it has room.
        let interest = if tls.is_some() || transport.is_relp() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let limits = ctx.limits().clone();
        let mut conn = Connection::new(stream, origin, limits.max_message_size, tls);
        if !admit(ctx, poll, table, conn.source, buffers, batch) {
            Stats::add(&ctx.shared.stats.refused_connections, 1);
            log::debug!(
                "input {}: refused a connection from {}: max-connections ({}) or \
                 max-connections-per-source ({}) reached",
                listener.addr(),
                describe(&conn.origin),
                limits.max_connections,
                limits.max_connections_per_source
            );
            continue;
        }
        let token = table.next_token;
        table.next_token = token.wrapping_add(1).max(FIRST_CONNECTION);
        conn.token = token;
        if poll
            .registry()
            .register(&mut conn.stream, Token(token), interest)
            .is_ok()
        {
            table.insert(token, conn);
        }
    }
    if acceptor.retry.take().is_some() {
        log::info!("input {}: accepting connections again", listener.addr());
    }
}

/// accept(2) errors that say "not now" rather than "not this one".
fn out_of_resources(e: &io::Error) -> bool {
    use nix::errno::Errno;
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}

/// Whether a newcomer from `source` may have a connection, making room if need be. A source at
/// max-connections-per-source may replace its own connection idle longest, if idle for
/// `EVICT_AFTER`. At max-connections, a source holding more than the newcomer's would once it
/// is in gives up its connection idle longest (counted as evicted); failing that, the
/// connection idle longest gives way if idle for `EVICT_AFTER` (counted as idle). What an evicted connection has sent is read first, one
/// turn's worth.
fn admit(
    ctx: &mut Ctx,
    poll: &mio::Poll,
    table: &mut Table,
    source: SourceKey,
    buffers: &mut Buffers,
    batch: &mut Batch,
) -> bool {
    let limits = ctx.limits().clone();
    let held = table.held_by(source);
    let long_idle =
        |(t, last): (usize, Instant)| (last.elapsed() >= EVICT_AFTER).then_some((t, false));
    let victim = if held >= limits.max_connections_per_source {
        // At its own bound, a source's new connection may replace its own idle one.
        table.idlest(Some(source)).and_then(long_idle)
    } else if table.map.len() < limits.max_connections {
        return true;
    } else {
        match table.heaviest() {
            Some((heavy, n)) if heavy != source && n > held + 1 => {
                table.idlest(Some(heavy)).map(|(t, _)| (t, true))
            }
            _ => table.idlest(None).and_then(long_idle),
        }
    };
    let Some((token, evicted)) = victim else {
        return false;
    };
    if let Some(mut conn) = table.remove(poll, token) {
        if !matches!(conn.read(ctx, buffers, batch, TURN), ReadState::Closed) {
            conn.emit_finish(ctx, batch);
        }
        let stats = &ctx.shared.stats;
        Stats::add(
            if evicted {
                &stats.evicted
            } else {
                &stats.idle_closed
            },
            1,
        );
    }
    true
}

fn take_listener(listener: &mut Listener) -> io::Result<StreamListener> {
    let fd = listener.take_socket()?;
    match listener.addr().transport {
        Transport::Tcp | Transport::Tls | Transport::Relp | Transport::RelpTls => {
            let s = std::net::TcpListener::from(fd);
            s.set_nonblocking(true)?;
            Ok(StreamListener::Tcp(mio::net::TcpListener::from_std(s)))
        }
        Transport::UnixStream => {
            let s = std::os::unix::net::UnixListener::from(fd);
            s.set_nonblocking(true)?;
            Ok(StreamListener::Unix(mio::net::UnixListener::from_std(s)))
        }
        other => Err(io::Error::other(format!(
            "a {} socket is not a stream listener",
            other.name()
        ))),
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

#[cfg(test)]
mod tests {
    use super::RecordBoundary;

    #[test]
    fn a_record_is_partial_from_its_first_header_byte_to_its_last_body_byte() {
        // Two records: 3 and 2 bytes of body.
        let wire = [22, 3, 3, 0, 3, 1, 2, 3, 23, 3, 3, 0, 2, 9, 9];
        let mut r = RecordBoundary::default();
        let mut partial = Vec::new();
        for b in wire {
            r.feed(&[b]);
            partial.push(r.partial());
        }
        let ends: Vec<usize> = (0..wire.len()).filter(|&i| !partial[i]).collect();
        assert_eq!(
            ends,
            vec![7, 14],
            "whole after each record's last byte only"
        );
        let mut r = RecordBoundary::default();
        r.feed(&wire);
        assert!(!r.partial(), "both records whole in one read");
        r.feed(&wire[..9]);
        assert!(r.partial());
    }
}
