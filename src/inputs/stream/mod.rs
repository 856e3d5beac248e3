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
//!
//! Split along mini-redis's seams: this module is the loop (turns, deadlines, the stop-time
//! drain and the RELP answers); `listener` accepts and admits (per-source bounds, eviction,
//! the connection table); `connection` reads one connection in its turn and turns its bytes into
//! messages (syslog frames or a RELP session); `tls` is its TLS session.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use mio::{Events, Interest, Token};

use super::journal::entry_message;
use super::journal_remote::Upload;
use super::{Batch, Ctx, Listener, SOCKET};

mod connection;
mod listener;
mod tls;

use crate::ratelimit::sender_net;
use crate::stats::Stats;
use crate::sys::Pages;
use connection::*;
use listener::*;
use syslog::framing::{Frame, Framer};
use syslog::message::{Credentials, Origin, Transport};
use syslog::parse::parse;
use syslog::relp::server::Session;
use tls::*;

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

/// What a stream input reads into: the socket's bytes, and for TLS their plaintext (a
/// record's worth, allocated for TLS inputs only).
struct Buffers {
    chunk: Pages,
    plain: Option<Vec<u8>>,
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
        let timeout = next_wake(&ctx, &table, &acceptor);
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
        take_turns(&mut ctx, &poll, &mut table, &mut buffers, &mut batch);
        close_overdue(&mut ctx, &poll, &mut table, &mut batch);
        if stopping {
            close_at_stop(
                &mut ctx,
                &mut poll,
                &mut events,
                &mut table,
                &mut buffers,
                &mut batch,
            );
        }
        if !batch.flush() || stopping {
            break;
        }
    }
    drop(acceptor);
    drop(listener);
    ctx.finish();
}

/// How long to sleep: not at all while turns are owed; else until the first deadline (an idle
/// listener with no connections sleeps until woken).
fn next_wake(ctx: &Ctx, table: &Table, acceptor: &Acceptor) -> Option<Duration> {
    if !table.ready.is_empty() {
        return Some(Duration::ZERO);
    }
    let (idle, frame) = (ctx.limits().idle_timeout, ctx.limits().frame_timeout);
    let now = Instant::now();
    table
        .map
        .values()
        .map(|c| c.deadline(idle, frame))
        .chain(acceptor.retry)
        .min()
        .map(|t| t.saturating_duration_since(now))
}

/// One turn for each connection ready now; one that read its whole turn goes to the back of
/// the line.
fn take_turns(
    ctx: &mut Ctx,
    poll: &mio::Poll,
    table: &mut Table,
    buffers: &mut Buffers,
    batch: &mut Batch,
) {
    for _ in 0..table.ready.len() {
        let Some(token) = table.ready.pop_front() else {
            break;
        };
        let Some(conn) = table.map.get_mut(&token) else {
            continue;
        };
        conn.queued = false;
        match conn.read(ctx, buffers, batch, TURN) {
            ReadState::Drained => {}
            ReadState::More => table.mark_ready(token),
            ReadState::Closed => {
                table.remove(poll, token);
            }
        }
    }
}

/// A stop: every connection's unread bytes (bounded: a client that keeps sending cannot hold
/// the stop), what answering sessions are owed, then every connection closed.
fn close_at_stop(
    ctx: &mut Ctx,
    poll: &mut mio::Poll,
    events: &mut Events,
    table: &mut Table,
    buffers: &mut Buffers,
    batch: &mut Batch,
) {
    let tokens: Vec<usize> = table.map.keys().copied().collect();
    for token in tokens {
        let Some(conn) = table.map.get_mut(&token) else {
            continue;
        };
        if matches!(conn.read(ctx, buffers, batch, STOP_READ), ReadState::Closed) {
            table.remove(poll, token);
        } else {
            conn.emit_finish(ctx, batch);
        }
    }
    if ctx.board.is_some() {
        batch.flush();
        answer_before_stop(ctx, poll, events, table);
    }
    let tokens: Vec<usize> = table.map.keys().copied().collect();
    for token in tokens {
        table.remove(poll, token);
    }
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
            .any(|c| c.protocol.answering().is_some_and(|s| s.unanswered() > 0));
        let left = deadline.saturating_duration_since(Instant::now());
        if !waiting || left.is_zero() {
            break;
        }
        let _ = poll.poll(events, Some(left.min(Duration::from_millis(100))));
    }
    for conn in table.map.values_mut() {
        if let Some(session) = conn.protocol.answering() {
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
