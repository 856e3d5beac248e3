//! One connection of a stream input: its socket, what its bytes become (syslog frames, a RELP
//! session or journal uploads), reading in turns, its deadlines, and handing its messages to the batch.
//! mini-redis's `Handler` and `Connection`.

use super::*;

pub(super) enum Stream {
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

/// How a connection's bytes become messages.
pub(super) enum Protocol {
    /// Syslog frames (RFC 6587 octet counting or LF).
    Syslog(Framer),
    /// RELP commands, each message answered (`syslog::relp::server`).
    Relp(Box<Session>),
    /// systemd-journal-upload's requests, each answered once its entries are taken
    /// (`inputs::journal_remote`).
    Upload(Box<Upload>),
}

impl Protocol {
    pub(super) fn in_frame(&self) -> bool {
        match self {
            Protocol::Syslog(f) => f.in_frame(),
            Protocol::Relp(s) => s.in_frame(),
            Protocol::Upload(u) => u.in_frame(),
        }
    }

    pub(super) fn set_max(&mut self, max: usize) {
        match self {
            Protocol::Syslog(f) => f.set_max(max),
            Protocol::Relp(s) => s.set_max(max),
            Protocol::Upload(u) => u.set_max(max),
        }
    }

    /// The session that answers what the outputs took, for RELP and uploads.
    pub(super) fn answering(&mut self) -> Option<&mut dyn Answering> {
        match self {
            Protocol::Syslog(_) => None,
            Protocol::Relp(s) => Some(&mut **s),
            Protocol::Upload(u) => Some(&mut **u),
        }
    }
}

/// A session whose sender learns when its messages were taken: RELP's `rsp`, HTTP's `202`.
/// The loop writes its answers, stops reading it while it is saturated, and asks it to close
/// at a stop.
pub(super) trait Answering {
    /// Every output took the message numbered `n`.
    fn answer(&mut self, n: u32);
    /// The input stops: say so to the client.
    fn server_close(&mut self);
    /// Messages waiting for their outputs.
    fn unanswered(&self) -> usize;
    /// Not to be read for now, or for good.
    fn saturated(&self) -> bool;
    /// Over, and every answer written.
    fn done(&self) -> bool;
    /// The answers not yet written.
    fn answers(&self) -> &[u8];
    /// `n` bytes of them were written.
    fn written(&mut self, n: usize);
}

/// Implements `Answering` by the session's own methods of the same names.
macro_rules! answering_by_methods {
    ($t:ty) => {
        impl Answering for $t {
            fn answer(&mut self, n: u32) {
                <$t>::answer(self, n)
            }
            fn server_close(&mut self) {
                <$t>::server_close(self)
            }
            fn unanswered(&self) -> usize {
                <$t>::unanswered(self)
            }
            fn saturated(&self) -> bool {
                <$t>::saturated(self)
            }
            fn done(&self) -> bool {
                <$t>::done(self)
            }
            fn answers(&self) -> &[u8] {
                <$t>::answers(self)
            }
            fn written(&mut self, n: usize) {
                <$t>::written(self, n)
            }
        }
    };
}
answering_by_methods!(Session);
answering_by_methods!(Upload);

pub(super) struct Connection {
    pub(super) stream: Stream,
    /// Its poll token: RELP answers find their connection by it.
    pub(super) token: usize,
    pub(super) protocol: Protocol,
    pub(super) origin: Origin,
    pub(super) source: SourceKey,
    pub(super) last_active: Instant,
    /// When the frame being received began (for TLS, the handshake: from the accept); None
    /// between frames.
    pub(super) frame_started: Option<Instant>,
    /// Its turn is in `Table::ready`.
    pub(super) queued: bool,
    /// The TLS session, for a TLS input.
    pub(super) tls: Option<Box<TlsSession>>,
    /// Not read because its RELP session waits for answers (see `Session::saturated`): read
    /// again once they go out.
    pub(super) paused: bool,
}

pub(super) enum ReadState {
    /// The socket would block: nothing more until epoll says so.
    Drained,
    /// It read its budget; there may be more.
    More,
    /// The peer closed, or reading failed, or the loop is gone.
    Closed,
}

impl Connection {
    pub(super) fn new(
        stream: Stream,
        origin: Origin,
        max_message_size: usize,
        tls: Option<rustls::ServerConnection>,
    ) -> Connection {
        let now = Instant::now();
        let protocol = if origin.transport.is_relp() {
            Protocol::Relp(Box::new(Session::new(max_message_size)))
        } else if origin.transport.is_journal_upload() {
            Protocol::Upload(Box::new(Upload::new(max_message_size)))
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

    /// Writes the answers the socket takes; the rest waits for it to be writable.
    pub(super) fn send_answers(&mut self) {
        let Connection {
            stream,
            protocol,
            tls,
            ..
        } = self;
        let Some(session) = protocol.answering() else {
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
    pub(super) fn handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.handshaking())
    }

    /// Reads up to `budget` bytes (or until the socket would block or closes), feeding frames
    /// into `batch`; through TLS, decrypted into `plain` first.
    pub(super) fn read(
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
                    if let Some(state) = self.take_chunk(ctx, buffers, batch, n) {
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

    /// Takes the `n` bytes just read into `buffers.chunk`: fed to the protocol (through TLS
    /// first), the frame timer kept, answers sent. `None`: read on.
    fn take_chunk(
        &mut self,
        ctx: &mut Ctx,
        buffers: &mut Buffers,
        batch: &mut Batch,
        n: usize,
    ) -> Option<ReadState> {
        let now = Instant::now();
        self.last_active = now;
        let (frames, broken) = match self.feed(ctx, buffers, batch, n) {
            Ok(fed) => fed,
            Err(refusal) => {
                self.refuse_tls(ctx, refusal);
                return Some(ReadState::Closed);
            }
        };
        if let Some(why) = broken {
            self.end_broken_session(ctx, &why);
            return Some(ReadState::Closed);
        }
        // The deadline runs from the start of the frame in progress (or of the handshake, or
        // of a TLS record not yet whole): a frame finished restarts it, a frame still open
        // keeps it.
        let partial_record = self.tls.as_ref().is_some_and(|t| t.records.partial());
        if !self.protocol.in_frame() && !self.handshaking() && !partial_record {
            self.frame_started = None;
        } else if frames > 0 || self.frame_started.is_none() {
            self.frame_started = Some(now);
        }
        if !batch.loop_alive() {
            return Some(ReadState::Closed);
        }
        self.relp_turn()
    }

    /// Feeds the `n` bytes read to the protocol, decrypted first through TLS: how many frames
    /// (messages, RELP commands, upload entries) it finished, and why the session cannot go on
    /// if it cannot.
    fn feed(
        &mut self,
        ctx: &mut Ctx,
        buffers: &mut Buffers,
        batch: &mut Batch,
        n: usize,
    ) -> Result<(usize, Option<String>), TlsRefusal> {
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
            Protocol::Upload(upload) => {
                let fed = upload.feed(bytes, |entry, n| {
                    frames += 1;
                    Stats::add(&stats.received, 1);
                    if entry.truncated {
                        Stats::add(&stats.truncated, 1);
                    }
                    let msg = entry_message(entry, origin.clone(), received);
                    batch.push_answered(msg, (*token, n));
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
                tls.feed(data, stream, plain, origin, take)?;
            }
        }
        Ok((frames, broken))
    }

    /// A RELP session or an upload that cannot go on: counted, logged (at a bounded rate), its
    /// answer (an HTTP error) sent before the connection closes.
    fn end_broken_session(&mut self, ctx: &mut Ctx, why: &str) {
        let from = describe(&self.origin);
        if self.origin.transport.is_relp() {
            Stats::add(&ctx.shared.stats.relp_errors, 1);
            ctx.refused(format_args!("closed the RELP session of {from}: {why}"));
        } else {
            Stats::add(&ctx.shared.stats.upload_errors, 1);
            ctx.refused(format_args!("refused an upload from {from}: {why}"));
        }
        self.send_answers();
    }

    /// For a RELP session: writes what it owes, and says whether to stop reading for now
    /// (`Drained`: woken again when answers go out) or for good (`Closed`: the session is over
    /// and answered).
    pub(super) fn relp_turn(&mut self) -> Option<ReadState> {
        self.send_answers();
        let session = self.protocol.answering()?;
        if session.done() {
            return Some(ReadState::Closed);
        }
        let saturated = session.saturated();
        self.paused = saturated;
        saturated.then_some(ReadState::Drained)
    }

    /// Every output took the message of `txnr`: answers it (written by `relp_turn`).
    pub(super) fn answer(&mut self, txnr: u32) {
        if let Some(session) = self.protocol.answering() {
            session.answer(txnr);
            // An answer is the connection at work: not idle while outputs take their time.
            self.last_active = Instant::now();
        }
    }

    /// Counts and says why a TLS connection is closed before it could send.
    pub(super) fn refuse_tls(&self, ctx: &mut Ctx, refusal: TlsRefusal) {
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
    pub(super) fn emit_finish(&mut self, ctx: &Ctx, batch: &mut Batch) {
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
    pub(super) fn deadline(&self, idle: Duration, frame: Duration) -> Instant {
        let idle = self.last_active + idle;
        match self.frame_started {
            Some(t) => idle.min(t + frame),
            None => idle,
        }
    }
}

pub(super) fn push_frame(
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

pub(super) fn describe(origin: &Origin) -> String {
    match (origin.peer, origin.credentials) {
        (Some(peer), _) => peer.to_string(),
        (None, Some(c)) => format!("pid {} uid {}", c.pid, c.uid),
        (None, None) => "a local peer".into(),
    }
}
