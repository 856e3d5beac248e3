//! The listening side of a stream input: the listener, accepting connections in a loop that
//! survives running out of descriptors, admission by source and by count (eviction of the
//! connection of the source holding the most, or the one idle longest), and the table of
//! connections by poll token with the order of their turns. mini-redis's `Listener`.

use super::*;

pub(super) enum StreamListener {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
}

/// Who holds a connection, for the per-source bounds: a network sender by [`sender_net`], a
/// local one by uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum SourceKey {
    Net(IpAddr),
    User(u32),
    Unknown,
}

impl SourceKey {
    pub(super) fn of(origin: &Origin) -> SourceKey {
        match (origin.peer, origin.credentials) {
            (Some(peer), _) => SourceKey::Net(sender_net(peer.ip())),
            (None, Some(c)) => SourceKey::User(c.uid),
            (None, None) => SourceKey::Unknown,
        }
    }
}

/// The connections of one listener, by poll token, with how many each source holds and which
/// have data waiting for their turn.
pub(super) struct Table {
    pub(super) map: HashMap<usize, Connection>,
    pub(super) per_source: HashMap<SourceKey, usize>,
    /// Connections with unread data, in the order of their turns; each at most once.
    pub(super) ready: VecDeque<usize>,
    pub(super) next_token: usize,
}

impl Table {
    pub(super) fn new() -> Table {
        Table {
            map: HashMap::new(),
            per_source: HashMap::new(),
            ready: VecDeque::new(),
            next_token: FIRST_CONNECTION,
        }
    }

    pub(super) fn held_by(&self, source: SourceKey) -> usize {
        self.per_source.get(&source).copied().unwrap_or(0)
    }

    pub(super) fn insert(&mut self, token: usize, conn: Connection) {
        *self.per_source.entry(conn.source).or_insert(0) += 1;
        self.map.insert(token, conn);
        self.mark_ready(token);
    }

    /// Removes a connection and deregisters it; its socket closes when it is dropped.
    pub(super) fn remove(&mut self, poll: &mio::Poll, token: usize) -> Option<Connection> {
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
    pub(super) fn mark_ready(&mut self, token: usize) {
        if let Some(conn) = self.map.get_mut(&token)
            && !conn.queued
        {
            conn.queued = true;
            self.ready.push_back(token);
        }
    }

    /// The source holding the most connections, and how many.
    pub(super) fn heaviest(&self) -> Option<(SourceKey, usize)> {
        self.per_source
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(k, n)| (*k, *n))
    }

    /// The connection of `source` (any source if None) idle longest.
    pub(super) fn idlest(&self, source: Option<SourceKey>) -> Option<(usize, Instant)> {
        self.map
            .iter()
            .filter(|(_, c)| source.is_none_or(|s| c.source == s))
            .min_by_key(|(_, c)| c.last_active)
            .map(|(t, c)| (*t, c.last_active))
    }
}

/// The listening socket's state between wake-ups.
pub(super) struct Acceptor {
    pub(super) server: StreamListener,
    /// accept(2) is failing for want of resources: when to try again.
    pub(super) retry: Option<Instant>,
}

/// Accepts every queued connection, within the per-source and total bounds (see the module
/// documentation). New connections are queued for a turn: edge-triggered epoll would not
/// report data that arrived before registration.
pub(super) fn accept_pending(
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
        let (stream, origin) = match acceptor.server.accept(transport) {
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
        let Ok(tls) = start_tls(ctx, listener) else {
            continue;
        };
        // A handshake and RELP answers write: what the socket cannot take at once is sent
        // when it has room.
        let interest = if tls.is_some() || transport.is_answered() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let limits = ctx.limits().clone();
        let mut conn = Connection::new(stream, origin, limits.max_message_size, tls);
        if !admit(ctx, poll, table, conn.source, buffers, batch) {
            refused_for_room(ctx, listener, &conn, &limits);
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

impl StreamListener {
    /// One queued connection, with where it came from.
    fn accept(&self, transport: Transport) -> io::Result<(Stream, Origin)> {
        match self {
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
        }
    }
}

/// A new connection's TLS server side, for a TLS input (`Ok(None)` for another); `Err` when
/// rustls cannot start one (logged: the connection is closed).
fn start_tls(ctx: &Ctx, listener: &Listener) -> Result<Option<rustls::ServerConnection>, ()> {
    let Some(server) = &ctx.tunables.tls else {
        return Ok(None);
    };
    rustls::ServerConnection::new(server.config.clone())
        .map(Some)
        .map_err(|e| log::error!("input {}: cannot start TLS: {e}", listener.addr()))
}

/// A connection refused for want of room: counted, and logged at debug level (a flood of them
/// is what the bounds are for).
fn refused_for_room(
    ctx: &Ctx,
    listener: &Listener,
    conn: &Connection,
    limits: &crate::config::Limits,
) {
    Stats::add(&ctx.shared.stats.refused_connections, 1);
    log::debug!(
        "input {}: refused a connection from {}: max-connections ({}) or \
         max-connections-per-source ({}) reached",
        listener.addr(),
        describe(&conn.origin),
        limits.max_connections,
        limits.max_connections_per_source
    );
}

/// accept(2) errors that say "not now" rather than "not this one".
pub(super) fn out_of_resources(e: &io::Error) -> bool {
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
pub(super) fn admit(
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

pub(super) fn take_listener(listener: &mut Listener) -> io::Result<StreamListener> {
    let fd = listener.take_socket()?;
    match listener.addr().transport {
        Transport::Tcp
        | Transport::Tls
        | Transport::Relp
        | Transport::RelpTls
        | Transport::JournalRemote
        | Transport::JournalRemoteTls => {
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

pub(super) fn peer_credentials(s: &mio::net::UnixStream) -> Option<Credentials> {
    let c = nix::sys::socket::getsockopt(s, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    Some(Credentials {
        pid: c.pid(),
        uid: c.uid(),
        gid: c.gid(),
    })
}
