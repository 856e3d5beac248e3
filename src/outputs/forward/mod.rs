//! The forward output: messages sent on to remote collectors over UDP, TCP, TLS (RFC 5425) or
//! RELP (plain or in TLS), from a queue in memory or on disk.
//!
//! It lives on its output's thread like any sink (`outputs::worker`): `accept` encodes a message
//! into the queue, `write_out` connects if need be and sends. What leaves the queue: for RELP,
//! a message the remote acknowledged; for TCP and TLS, a message the remote's TCP acknowledged
//! (disk queue) or the socket took (memory queue, which keeps a copy until the remote's TCP
//! acknowledges it: see [`stream`]); for UDP, a message sent. A broken connection sends again
//! everything not acknowledged, so RELP may duplicate up to a window ([`RELP_WINDOW`]
//! messages) and never loses; TCP and TLS lose only what the remote's kernel acknowledged and
//! its process never read.
//!
//! Remotes are tried in order at each connect (`to = [primary, backup]`); the one reached is
//! kept until it fails. When none can be reached the output waits, doubling the wait from 1 s
//! to 60 s with ±25 % jitter (a fleet does not reconnect in step), and logs an error only when
//! it differs from the previous one (a certificate error is said once, not at every attempt).
//!
//! - [`wire`]: a message as RFC 5424 / RFC 3164, and stream framing.
//! - [`link`]: one connection (UDP, TCP, TLS) with its deadlines.
//! - [`stream`]: sending on TCP and TLS, with the [`tail`] of what was not acknowledged.
//! - [`queue`]: the queue with its send cursor; [`disk`]: the crash-safe disk queue.

pub mod link;
pub mod stream;
pub mod tail;
pub mod wire;

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls::ClientConfig;

use crate::config::{Framing, OutputSpec, Remote, Scheme};
use crate::outputs::WriteOut;
use crate::outputs::queue::{MemoryQueue, Queue};
use link::Link;
use syslog::message::Message;
use syslog::relp::{self, Reply};

/// RELP messages sent and not yet acknowledged, at most (librelp's default window).
pub const RELP_WINDOW: usize = 128;
/// What one write-out sends as datagrams at most.
const DATAGRAM_BATCH: usize = 256 * 1024;
/// How long a write-out waits for RELP acknowledgements once its window is full.
const ACK_WAIT: Duration = Duration::from_millis(200);
/// How long a RELP close waits for the server to answer and hang up.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// A RELP session on the current connection.
struct Session {
    /// The next transaction number.
    txnr: u32,
    /// Sent and not yet acknowledged: transaction number, the message's sequence number, and
    /// whether it was acknowledged (a server may answer out of order; the queue's head moves
    /// only past the oldest ones answered).
    in_flight: VecDeque<(u32, u64, bool)>,
    replies: relp::Reader,
    /// Frames being written, and how much of them the connection took: more are framed only
    /// once these are written, so a remote that stops reading holds frames, not the thread.
    outbox: Vec<u8>,
    written: usize,
    stall: link::Stall,
    /// Since when messages in flight wait for an answer (reset by every answer).
    unanswered_since: Option<Instant>,
    /// How long they may (`remote-timeout`).
    timeout: Duration,
}

impl Session {
    /// A session whose remote is dead once it leaves messages unanswered, or takes nothing,
    /// for `timeout`.
    fn new(timeout: Duration) -> Session {
        Session {
            txnr: 0,
            in_flight: VecDeque::new(),
            replies: relp::Reader::for_replies(),
            outbox: Vec::new(),
            written: 0,
            stall: link::Stall::new(timeout),
            unanswered_since: None,
            timeout,
        }
    }

    /// An error once what is in flight has waited `timeout` without any answer: a remote
    /// that opened the session and then answers nothing is as dead as one that hung up.
    fn check_answers(&mut self) -> io::Result<()> {
        if self.in_flight.is_empty() {
            self.unanswered_since = None;
            return Ok(());
        }
        let since = *self.unanswered_since.get_or_insert_with(Instant::now);
        if since.elapsed() < self.timeout {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no RELP answer for {} to {} messages in flight",
                crate::config::fmt_duration(Some(self.timeout)),
                self.in_flight.len()
            ),
        ))
    }
}

/// A reload's new remotes, wire and TLS for a running forward output that keeps its queue
/// directory, prepared (the TLS files read) before anything changes.
pub struct Retarget {
    remotes: Vec<Remote>,
    spec: crate::config::ForwardSpec,
    policy: crate::config::QueuePolicy,
    tls: Option<Arc<ClientConfig>>,
}

/// A forward output's connection, for STATUS=, `logger --status` and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkState {
    /// The remote it is connected to, if it is.
    pub remote: Option<String>,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

impl std::fmt::Display for LinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.remote, &self.error) {
            (Some(remote), _) => write!(f, "connected to {remote}"),
            (None, Some(e)) => write!(f, "disconnected: {e}"),
            (None, None) => f.write_str("not connected"),
        }
    }
}

/// A forward output.
pub struct Forwarder {
    remotes: Vec<Remote>,
    framing: Framing,
    rfc3164: bool,
    tls_spec: crate::config::TlsClientSpec,
    tls: Option<Arc<ClientConfig>>,
    queue: Queue,
    /// The connection and the index of its remote.
    link: Option<(usize, Link)>,
    /// The remote tried first at the next connect: the one after a remote that failed, so
    /// that a remote that accepts connections and then takes nothing is left for the next.
    first: usize,
    /// How long a remote may leave what was sent unacknowledged (`remote-timeout`).
    timeout: Duration,
    /// The disk queue refuses writes (said once, until it takes them again).
    disk_failing: bool,
    /// RELP's session on the connection.
    session: Session,
    /// TCP and TLS: the batch being written and what was not acknowledged.
    stream: stream::Stream,
    backoff: Duration,
    retry_at: Option<Instant>,
    last_error: Option<String>,
    read_buf: Vec<u8>,
    /// This host's name, for messages that carry none.
    local_host: String,
}

impl Forwarder {
    /// Opens the queue (reading a disk queue's backlog, which must belong to `daemon_uid` or to
    /// us) and loads the TLS files.
    pub fn open(
        spec: &OutputSpec,
        remotes: &[Remote],
        daemon_uid: nix::unistd::Uid,
    ) -> io::Result<Forwarder> {
        let fwd = &spec.forward;
        let tls = load_tls(&fwd.tls, remotes)?;
        let queue = match &fwd.queue_dir {
            None => Queue::Memory(MemoryQueue::default()),
            Some(dir) => {
                let q = crate::outputs::queue::disk::open_logged(dir, spec, daemon_uid)?;
                Queue::Disk(Box::new(q))
            }
        };
        let timeout = fwd.remote_timeout();
        let stream = stream::Stream::new(matches!(queue, Queue::Disk(_)), timeout);
        Ok(Forwarder {
            remotes: remotes.to_vec(),
            framing: fwd.framing,
            rfc3164: fwd.rfc3164,
            tls_spec: fwd.tls.clone(),
            tls,
            queue,
            link: None,
            first: 0,
            timeout,
            disk_failing: false,
            session: Session::new(timeout),
            stream,
            backoff: Duration::ZERO,
            retry_at: None,
            last_error: None,
            read_buf: vec![0; 16 * 1024],
            local_host: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "localhost".into()),
        })
    }

    /// Prepares a reload's change of remotes, wire or TLS files for an output that keeps its
    /// queue: reads the TLS files now, so that a bad one refuses the reload.
    pub fn prepare(spec: &OutputSpec, remotes: &[Remote]) -> io::Result<Retarget> {
        Ok(Retarget {
            remotes: remotes.to_vec(),
            spec: spec.forward.clone(),
            policy: spec.policy,
            tls: load_tls(&spec.forward.tls, remotes)?,
        })
    }

    /// Takes a reload's new remotes, wire and TLS (`prepare`), keeping the queue: the session
    /// is closed and the next write-out connects to the new remotes. Queued messages keep the
    /// format (RFC 5424 or 3164) they were queued in.
    pub fn retarget(&mut self, r: Retarget) {
        let before = self.describe();
        self.close_link();
        if let Queue::Disk(q) = &mut self.queue {
            q.set_limits(r.spec.queue_max_bytes(), r.spec.fsync, r.policy);
        }
        self.remotes = r.remotes;
        self.timeout = r.spec.remote_timeout();
        self.stream.set_timeout(self.timeout);
        self.session = Session::new(self.timeout);
        self.framing = r.spec.framing;
        self.rfc3164 = r.spec.rfc3164;
        self.tls_spec = r.spec.tls;
        self.tls = r.tls;
        self.first = 0;
        self.backoff = Duration::ZERO;
        self.retry_at = None;
        self.last_error = None;
        log::info!(
            "output {before} now forwards to {} from the same queue ({} messages)",
            self.describe(),
            self.queue.messages()
        );
    }

    /// Queues a reading input's position with the messages accepted so far (disk queue).
    pub fn mark_position(&mut self, position: &crate::receipt::Mark) {
        if let Queue::Disk(q) = &mut self.queue {
            q.push_position(position.key, &position.text);
        }
    }

    /// The latest position of input `key` on the disk queue.
    pub fn queued_position(&self, key: &str) -> Option<String> {
        match &self.queue {
            Queue::Disk(q) => q.position(key).map(str::to_owned),
            Queue::Memory(_) => None,
        }
    }

    /// Bytes held in memory.
    pub fn backlog_bytes(&self) -> usize {
        self.queue.memory_bytes()
    }

    /// Messages not yet delivered.
    pub fn backlog_messages(&self) -> usize {
        self.queue.messages() as usize + self.stream.volatile_messages()
    }

    /// Messages that a stop would lose (in memory only).
    pub fn volatile_messages(&self) -> usize {
        self.queue.volatile_messages() as usize + self.stream.volatile_messages()
    }

    /// Writes a disk queue's pending messages; an error (a full queue, say) leaves them
    /// pending, and the next `write_out` reports it.
    pub fn persist(&mut self) {
        if matches!(self.queue, Queue::Disk(_)) {
            let flushed = self.queue.flush();
            self.note_disk(&flushed);
        }
    }

    /// Says once when the disk queue stops taking messages (a full filesystem, say) and once
    /// when it takes them again; meanwhile what it holds is still sent, which frees it.
    fn note_disk(&mut self, flushed: &io::Result<()>) {
        match (flushed, self.disk_failing) {
            (Err(e), false) => {
                self.disk_failing = true;
                log::error!(
                    "{}: cannot write its disk queue: {e}; {} messages wait in memory and go \
                     to disk as soon as there is room, while what it holds is still sent",
                    self.describe(),
                    self.queue.volatile_messages()
                );
            }
            (Ok(()), true) => {
                self.disk_failing = false;
                log::info!("{}: its disk queue takes messages again", self.describe());
            }
            _ => {}
        }
    }

    /// Re-reads the TLS files (SIGHUP); on error keeps the ones it has.
    pub fn reload(&mut self) {
        if self.tls.is_none() {
            return;
        }
        match crate::tls::client::load(&self.tls_spec) {
            Ok(config) => self.tls = Some(config),
            Err(e) => log::error!(
                "{}: keeping the TLS files loaded before: {e}",
                self.describe()
            ),
        }
    }

    /// Before a privilege drop: the disk queue becomes the user's; a failure is logged (the
    /// queue then fails at its next new segment, and says so).
    pub fn hand_over(&self, uid: nix::unistd::Uid, gid: nix::unistd::Gid) {
        if let Err(e) = self.queue.hand_over(uid, gid) {
            log::warn!(
                "cannot give the queue of {} to uid {uid}: {e}",
                self.describe()
            );
        }
    }

    /// `relp://a:2514, relp://b:2514`.
    pub fn describe(&self) -> String {
        crate::config::Output::Forward(self.remotes.clone()).to_string()
    }

    /// The connection's state, for STATUS=.
    pub fn state(&self) -> LinkState {
        LinkState {
            remote: self
                .link
                .as_ref()
                .map(|(i, _)| self.remotes[*i].to_string()),
            error: self.last_error.as_ref().map(|e| e.to_string()),
        }
    }

    /// Writes the queue to disk if it is one, connects if need be, and sends.
    pub fn write_out(&mut self) -> WriteOut {
        let mut out = WriteOut::default();
        let flushed = self.queue.flush();
        if matches!(self.queue, Queue::Disk(_)) {
            self.note_disk(&flushed);
        }
        if let Queue::Disk(q) = &mut self.queue {
            out.dropped = q.take_dropped();
            let corrupt = q.take_corrupt();
            if corrupt > 0 {
                // Lost to damage on disk while queued: said, and counted as refused for good.
                log::error!(
                    "{}: {corrupt} corrupt messages skipped in its disk queue (damaged while \
                     queued); the rest is sent",
                    self.describe()
                );
                out.rejected += corrupt;
            }
        }
        if let Err(e) = self.send(&mut out) {
            out.error = Some(e);
            out.retry_at = self.retry_at;
        } else if let Err(e) = flushed {
            // A full disk queue (or filesystem): what it holds is still sent at full speed,
            // which frees it. Only with nothing left to send is there nothing to do but wait.
            let sending =
                out.written > 0 || self.queue.has_unsent() || !self.session.in_flight.is_empty();
            if !sending {
                out.error = Some(e);
            }
        }
        out
    }

    fn send(&mut self, out: &mut WriteOut) -> io::Result<()> {
        if self.link.is_none() {
            if self.retry_at.is_some_and(|t| Instant::now() < t) {
                return Err(io::Error::other(
                    self.last_error.clone().unwrap_or_default(),
                ));
            }
            self.connect()?;
        }
        let (i, link) = self.link.as_mut().expect("connected");
        let result = match self.remotes[*i].scheme {
            Scheme::Udp => self.send_datagrams(out),
            Scheme::Tcp | Scheme::Tls => {
                self.stream
                    .send(link, &mut self.queue, self.framing, &mut self.read_buf, out)
            }
            Scheme::Relp | Scheme::RelpTls => self.send_relp(out),
        };
        if let Err(e) = result {
            self.broken(&e, out);
            return Err(e);
        }
        Ok(())
    }

    /// UDP: a message is delivered once sent.
    fn send_datagrams(&mut self, out: &mut WriteOut) -> io::Result<()> {
        let (_, link) = self.link.as_mut().expect("connected");
        loop {
            let mut last = None;
            let mut count = 0;
            let mut bytes = 0;
            while bytes < DATAGRAM_BATCH {
                let Some((seq, payload)) = self.queue.next_unsent()? else {
                    break;
                };
                bytes += payload.len();
                match link.send(payload) {
                    Ok(()) => count += 1,
                    // A datagram too large for the path is the message's fault, not the link's.
                    Err(e) if e.raw_os_error() == Some(nix::libc::EMSGSIZE) => out.rejected += 1,
                    Err(e) => {
                        // What went before it was sent: only the rest is sent again.
                        if let Some(seq) = last {
                            self.queue.ack_through(seq)?;
                            out.written += count;
                        }
                        return Err(e);
                    }
                }
                last = Some(seq);
            }
            // One acknowledgement (one rewrite of a disk queue's head) per batch.
            let Some(seq) = last else {
                return Ok(());
            };
            self.queue.ack_through(seq)?;
            out.written += count;
        }
    }

    /// RELP: fills the window, then takes the acknowledgements.
    fn send_relp(&mut self, out: &mut WriteOut) -> io::Result<()> {
        let (_, link) = self.link.as_mut().expect("connected");
        let session = &mut self.session;
        if session.written == session.outbox.len() {
            session.outbox.clear();
            session.written = 0;
            while session.in_flight.len() < RELP_WINDOW && session.txnr < relp::LAST_TXNR {
                let Some((seq, payload)) = self.queue.next_unsent()? else {
                    break;
                };
                let txnr = session.txnr;
                session.txnr += 1;
                relp::frame(&mut session.outbox, txnr, "syslog", payload);
                session.in_flight.push_back((txnr, seq, false));
            }
        }
        let written = link.write_from(&session.outbox, &mut session.written, &mut session.stall)?;
        if self.session.in_flight.is_empty() {
            if self.session.txnr >= relp::LAST_TXNR {
                // Out of transaction numbers: a new session starts at 1.
                self.close_link();
            }
            return Ok(());
        }
        // Wait for acknowledgements only as long as there is nothing more to send (a write
        // that took nothing has waited already).
        let window_full = self.session.in_flight.len() >= RELP_WINDOW || !self.queue.has_unsent();
        let wait = if window_full && written {
            ACK_WAIT
        } else {
            Duration::from_millis(1)
        };
        let n = match link.receive(&mut self.read_buf, wait) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "the remote closed the connection",
                ));
            }
            Ok(n) => n,
            Err(e) if link::timed_out(&e) => return self.session.check_answers(),
            Err(e) => return Err(e),
        };
        let mut replies = Vec::new();
        let parsed = relp::replies(&mut self.session.replies, &self.read_buf[..n], &mut replies)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.0));
        // The replies of one read move the queue's head once, even if one of them breaks the
        // session: what was acknowledged before it is not sent again.
        let mut acked = None;
        let result = self.take_replies(replies, &mut acked, out).and(parsed);
        if let Some(seq) = acked {
            self.queue.ack_through(seq)?;
        }
        // Bytes that answer nothing (a reply dribbled a byte at a time) keep the clock running.
        result.and_then(|()| self.session.check_answers())
    }

    /// Takes the replies read; `acked` ends as the last sequence number of the oldest run of
    /// acknowledged messages.
    fn take_replies(
        &mut self,
        replies: Vec<Reply>,
        acked: &mut Option<u64>,
        out: &mut WriteOut,
    ) -> io::Result<()> {
        let in_flight = &mut self.session.in_flight;
        let mut result = Ok(());
        for reply in replies {
            match reply {
                Reply::ServerClose => {
                    result = Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the remote closes the session (serverclose)",
                    ));
                    break;
                }
                Reply::Response { txnr, ok, text } => {
                    // Transaction numbers in flight are consecutive: the answered one is found
                    // by its distance from the oldest.
                    let index = in_flight
                        .front()
                        .and_then(|&(first, _, _)| txnr.checked_sub(first))
                        .map(|i| i as usize)
                        .filter(|&i| i < in_flight.len() && !in_flight[i].2);
                    let Some(index) = index else {
                        result = Err(unexpected(txnr));
                        break;
                    };
                    if !ok {
                        result = Err(io::Error::other(format!(
                            "the remote refused a message: {}",
                            text.trim()
                        )));
                        break;
                    }
                    in_flight[index].2 = true;
                    out.written += 1;
                }
            }
        }
        while let Some(&(_, seq, true)) = in_flight.front() {
            in_flight.pop_front();
            *acked = Some(seq);
        }
        if acked.is_some() {
            // The remote answers: it has `remote-timeout` again for the rest.
            self.session.unanswered_since = None;
        }
        result
    }

    /// Tries each remote in order, from the one after the last that failed.
    fn connect(&mut self) -> io::Result<()> {
        let mut errors = Vec::new();
        let n = self.remotes.len();
        for i in (0..n).map(|k| (self.first + k) % n) {
            let remote = &self.remotes[i];
            let name = self.tls_spec.name.as_deref().unwrap_or(&remote.host);
            let attempt = Link::connect(remote, self.tls.as_ref(), name).and_then(|mut link| {
                if remote.scheme.is_relp() {
                    open_session(&mut link, &mut self.read_buf)?;
                }
                Ok(link)
            });
            match attempt {
                Ok(link) => {
                    if self.last_error.take().is_some() || self.backoff.is_zero() {
                        log::info!("forwarding to {remote}");
                    }
                    self.link = Some((i, link));
                    self.first = i;
                    self.session = Session {
                        txnr: 2,
                        ..Session::new(self.timeout)
                    };
                    self.stream.connected();
                    self.backoff = Duration::ZERO;
                    self.retry_at = None;
                    self.queue.rewind();
                    return Ok(());
                }
                Err(e) => errors.push(format!("{remote}: {e}")),
            }
        }
        let error = errors.join("; ");
        self.backoff = (self.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
        self.retry_at = Some(Instant::now() + jitter(self.backoff));
        if self.last_error.as_deref() != Some(error.as_str()) {
            log::error!("cannot forward: {error}; retrying, with backoff up to 60 s");
            self.last_error = Some(error.clone());
        }
        Err(io::Error::new(io::ErrorKind::NotConnected, error))
    }

    /// The connection failed: drop it, send everything unacknowledged again on the next.
    fn broken(&mut self, e: &io::Error, out: &mut WriteOut) {
        if let Some((i, link)) = self.link.take() {
            self.stream.broken(&link, &mut self.queue, out);
            let error = format!("{}: {e}", self.remotes[i]);
            let next = (i + 1) % self.remotes.len();
            if next == i {
                log::error!("connection lost: {error}; sending again what it did not acknowledge");
            } else {
                log::error!(
                    "connection lost: {error}; sending what it did not acknowledge to {} next",
                    self.remotes[next]
                );
            }
            self.first = next;
            self.last_error = Some(error);
        }
        self.session = Session::new(self.timeout);
        self.queue.rewind();
        self.backoff = self.backoff.max(BACKOFF_MIN);
        self.retry_at = Some(Instant::now() + jitter(BACKOFF_MIN));
    }

    /// Ends the session politely (RELP `close`) and the connection.
    fn close_link(&mut self) {
        if let Some((i, mut link)) = self.link.take()
            && self.remotes[i].scheme.is_relp()
        {
            let mut frame = Vec::new();
            relp::frame(&mut frame, self.session.txnr, "close", b"");
            // The server answers a close before it hangs up; closing first would leave it
            // writing into a reset connection. Not in the middle of a frame, and not for
            // longer than CLOSE_WAIT.
            let deadline = Instant::now() + CLOSE_WAIT;
            let (mut written, mut stall) = (0, link::Stall::default());
            let mut sent = self.session.written == self.session.outbox.len();
            while sent {
                match link.write_from(&frame, &mut written, &mut stall) {
                    Ok(true) => break,
                    Ok(false) if Instant::now() < deadline => {}
                    _ => sent = false,
                }
            }
            if sent {
                while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                    match link.receive(&mut self.read_buf, left) {
                        Ok(n) if n > 0 => continue,
                        _ => break,
                    }
                }
            }
        }
        self.session = Session::new(self.timeout);
        self.stream.closed();
        self.queue.rewind();
    }

    /// Before the process ends: the disk queue written out, the session closed.
    pub fn finish(&mut self) {
        if let Err(e) = self.queue.flush() {
            log::error!("{}: {e}", self.describe());
        }
        self.close_link();
        let waiting = self.queue.messages() - self.queue.volatile_messages();
        if waiting > 0 {
            log::info!(
                "{}: {waiting} messages wait in the disk queue for the next start",
                self.describe()
            );
        }
    }
}

/// The client configuration for the TLS files of `tls`, if a remote needs one.
fn load_tls(
    tls: &crate::config::TlsClientSpec,
    remotes: &[Remote],
) -> io::Result<Option<Arc<ClientConfig>>> {
    if !remotes.iter().any(|r| r.scheme.is_tls()) {
        return Ok(None);
    }
    crate::tls::client::load(tls)
        .map(Some)
        .map_err(io::Error::other)
}

impl crate::outputs::Output for Forwarder {
    fn describe(&self) -> String {
        Forwarder::describe(self)
    }

    fn accept(&mut self, msg: &Message) {
        let mut payload = Vec::with_capacity(64 + msg.text().len());
        wire::encode(&mut payload, msg, &self.local_host, self.rfc3164);
        self.queue.push(payload);
    }

    fn backlog_bytes(&self) -> usize {
        Forwarder::backlog_bytes(self)
    }

    fn backlog_messages(&self) -> usize {
        Forwarder::backlog_messages(self)
    }

    fn write_out(&mut self) -> WriteOut {
        Forwarder::write_out(self)
    }

    /// SIGHUP: the TLS files read again.
    fn reopen(&mut self) -> io::Result<()> {
        self.reload();
        Ok(())
    }

    fn volatile_messages(&self) -> usize {
        Forwarder::volatile_messages(self)
    }

    fn persist(&mut self) {
        Forwarder::persist(self);
    }

    fn mark_position(&mut self, position: &crate::receipt::Mark) {
        Forwarder::mark_position(self, position);
    }

    fn queued_position(&self, key: &str) -> Option<String> {
        Forwarder::queued_position(self, key)
    }

    fn link_state(&self) -> Option<LinkState> {
        Some(self.state())
    }

    fn reconfigure(&mut self, change: crate::outputs::Reconfigure) {
        match change.take::<Retarget>() {
            Ok(r) => self.retarget(r),
            Err(_) => log::error!(
                "{}: a reconfiguration of another kind of output",
                self.describe()
            ),
        }
    }

    fn finish(&mut self) {
        Forwarder::finish(self);
    }

    fn hand_over(&mut self, uid: nix::unistd::Uid, gid: nix::unistd::Gid) {
        Forwarder::hand_over(self, uid, gid);
    }
}

/// Opens a RELP session on a fresh connection: `open` and its `200 OK`.
fn open_session(link: &mut Link, buf: &mut [u8]) -> io::Result<()> {
    let mut frame = Vec::new();
    relp::frame(&mut frame, 1, "open", relp::offers().as_bytes());
    link.send(&frame)?;
    let deadline = Instant::now() + link::HANDSHAKE_TIMEOUT;
    let mut reader = relp::Reader::for_replies();
    let mut replies = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no answer to RELP open",
            ));
        }
        let n = match link.receive(buf, left) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "the remote closed the connection at RELP open",
                ));
            }
            Ok(n) => n,
            Err(e) if link::timed_out(&e) => continue,
            Err(e) => return Err(e),
        };
        relp::replies(&mut reader, &buf[..n], &mut replies)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.0))?;
        match replies.first() {
            None => continue,
            Some(Reply::Response {
                txnr: 1,
                ok: true,
                text,
            }) if text.contains("commands=syslog") => {
                return Ok(());
            }
            Some(Reply::Response { text, .. }) => {
                return Err(io::Error::other(format!(
                    "RELP open refused: {}",
                    text.lines().next().unwrap_or("")
                )));
            }
            Some(Reply::ServerClose) => {
                return Err(io::Error::other("RELP open answered by serverclose"));
            }
        }
    }
}

fn unexpected(txnr: u32) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a RELP response to transaction {txnr}, which is not waiting for one"),
    )
}

/// `d` ± 25 %, from the clock's nanoseconds: enough to keep a fleet out of step.
fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let spread = (nanos % 1000) as f64 / 1000.0 - 0.5; // -0.5..0.5
    d.mul_f64(1.0 + spread / 2.0)
}
