//! Sending on a TCP or TLS connection: batches framed from the queue and written as far as the
//! socket takes them (a remote that stops reading holds the output's thread for one
//! `link::WRITE_SLICE` at a time, never for the `remote-timeout` that declares it dead), and
//! what the remote's TCP has not acknowledged kept in the [`Tail`], so that a connection that
//! breaks does not lose what sat in the kernel's send buffer.
//!
//! When a message leaves the queue depends on where the queue lives:
//! - **disk**: once the remote's TCP acknowledged it. A broken connection rewinds the queue to
//!   the first message not acknowledged; logger may be killed at any moment without loss.
//! - **memory**: once the socket took it, so that `queue-size` frees at the socket's pace and
//!   not at the pace of the remote's delayed acknowledgements. The tail keeps a copy until the
//!   remote acknowledges it; a broken connection sends that copy first on the next one. It is
//!   memory, like the rest of the queue: a stop while the remote is down loses it.
//!
//! What no sender can recover: what the remote's TCP acknowledged and the remote's process had
//! not yet read when it died. RELP closes that window.

use std::io;
use std::time::Duration;

use super::link::{self, Link, Stall};
use super::tail::{Resend, Tail};
use super::wire;
use crate::config::Framing;
use crate::outputs::WriteOut;
use crate::outputs::queue::Queue;

/// What one write-out frames from the queue at most.
const STREAM_BATCH: usize = 256 * 1024;
/// How long a write-out with everything written waits for the remote's acknowledgement before
/// it returns (disk queue: the messages leave the queue only then).
const ACK_WAIT: Duration = Duration::from_millis(10);

/// The sending state of a forward output on TCP or TLS.
pub struct Stream {
    /// Messages stay in the queue until acknowledged (a disk queue).
    hold_in_queue: bool,
    /// Bytes given to the current connection.
    offset: u64,
    /// The batch being written.
    outgoing: Option<Outgoing>,
    /// Written, not yet acknowledged.
    tail: Tail,
    /// Memory queue: what the last connection did not get acknowledged, for the next.
    resend: Resend,
    /// Since when the connection takes nothing.
    stall: Stall,
    /// How long it may take nothing before it is dead (`remote-timeout`).
    timeout: Duration,
}

/// A batch and how far it was written.
struct Outgoing {
    bytes: Vec<u8>,
    /// Where each message ends in `bytes`.
    ends: Vec<u64>,
    /// The connection's offset of `bytes[0]`.
    start: u64,
    written: usize,
    /// The queue's sequence number of the first message.
    first_seq: u64,
    /// Its messages are in the queue (false: sent again from a broken connection's tail).
    from_queue: bool,
    /// Disk queue: how many of its messages the remote acknowledged already (a prefix).
    reported: usize,
}

impl Outgoing {
    /// The messages that end at or before `acknowledged` and were not reported yet: the
    /// sequence number of the last and their count. Only for messages still in the queue.
    fn acknowledged(&mut self, acknowledged: u64) -> Option<(u64, usize)> {
        if !self.from_queue {
            return None;
        }
        let done = self
            .ends
            .partition_point(|&e| self.start + e <= acknowledged);
        let newly = done.checked_sub(self.reported).filter(|&n| n > 0)?;
        self.reported = done;
        Some((self.first_seq + done as u64 - 1, newly))
    }
}

impl Stream {
    /// The state for a queue on disk (`hold_in_queue`) or in memory, for a remote declared
    /// dead once it took nothing for `timeout`.
    pub fn new(hold_in_queue: bool, timeout: Duration) -> Stream {
        Stream {
            hold_in_queue,
            offset: 0,
            outgoing: None,
            tail: Tail::default(),
            resend: Resend::default(),
            stall: Stall::new(timeout),
            timeout,
        }
    }

    /// A reload's new `remote-timeout`, from the next connection on.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Messages held outside the queue that only this process has: sent again from a broken
    /// connection and not yet written.
    pub fn volatile_messages(&self) -> usize {
        let outgoing = self
            .outgoing
            .as_ref()
            .filter(|o| !o.from_queue)
            .map_or(0, |o| o.ends.len());
        self.resend.ends.len() + outgoing
    }

    /// A new connection: what the last one did not get acknowledged goes first.
    pub fn connected(&mut self) {
        self.offset = 0;
        self.stall = Stall::new(self.timeout);
        self.tail.clear();
        let resend = std::mem::take(&mut self.resend);
        self.outgoing = (!resend.ends.is_empty()).then_some(Outgoing {
            bytes: resend.bytes,
            ends: resend.ends,
            start: 0,
            written: 0,
            first_seq: 0,
            from_queue: false,
            reported: 0,
        });
    }

    /// The connection broke (`link` is still open): keeps what it did not acknowledge. The
    /// caller rewinds the queue, which sends again what is still in it.
    pub fn broken(&mut self, link: &Link, queue: &mut Queue, out: &mut WriteOut) {
        let acknowledged = link
            .unacknowledged()
            .map_or(0, |n| self.offset.saturating_sub(n));
        if self.hold_in_queue {
            let _ = self.take(acknowledged, queue, out);
            self.tail.clear();
            self.outgoing = None;
        } else {
            match self.outgoing.take() {
                // Partly written: what the remote acknowledged of it leaves the queue, the
                // rest is sent again from the queue.
                Some(mut o) if o.from_queue => {
                    if let Some((seq, n)) = o.acknowledged(acknowledged)
                        && queue.ack_through(seq).is_ok()
                    {
                        out.written += n as u64;
                    }
                }
                Some(o) => self.tail.push(o.start, o.bytes, o.ends, o.first_seq, 0),
                None => {}
            }
            self.resend = self.tail.take_unacknowledged(acknowledged);
        }
        self.offset = 0;
        self.stall = Stall::new(self.timeout);
    }

    /// The connection was closed on purpose (a stop): what it holds is left to the kernel.
    pub fn closed(&mut self) {
        self.outgoing = None;
        self.tail.clear();
        self.offset = 0;
        self.stall = Stall::new(self.timeout);
    }

    /// Writes what the queue has, as far as the socket takes it; `buf` is for reading.
    pub fn send(
        &mut self,
        link: &mut Link,
        queue: &mut Queue,
        framing: Framing,
        buf: &mut [u8],
        out: &mut WriteOut,
    ) -> io::Result<()> {
        loop {
            if let Some(o) = &mut self.outgoing {
                let before = o.written;
                let done = link.write_from(&o.bytes, &mut o.written, &mut self.stall);
                self.offset += (o.written - before) as u64;
                if !done? {
                    // Stalled: still take what the remote acknowledged meanwhile, so that a
                    // disk queue's head is not behind it when logger is killed.
                    return self.take_acknowledged(link, queue, out);
                }
                let o = self.outgoing.take().expect("checked");
                if o.from_queue && !self.hold_in_queue {
                    queue.ack_through(o.first_seq + o.ends.len() as u64 - 1)?;
                    out.written += o.ends.len() as u64;
                }
                let reported = if self.hold_in_queue { o.reported } else { 0 };
                self.tail
                    .push(o.start, o.bytes, o.ends, o.first_seq, reported);
            }
            self.take_acknowledged(link, queue, out)?;
            if !self.frame_next(queue, framing)? {
                break;
            }
        }
        if self.hold_in_queue && !self.tail.is_empty() {
            // All written, waiting for the remote's acknowledgement; a remote that hangs up is
            // seen here too. The output's thread comes back for the rest.
            match link.receive(buf, ACK_WAIT) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "the remote closed the connection",
                    ));
                }
                Ok(_) => {}
                Err(e) if link::not_now(&e) => {}
                Err(e) => return Err(e),
            }
            self.take_acknowledged(link, queue, out)?;
        }
        Ok(())
    }

    /// Forgets what the remote acknowledged; a disk queue lets those messages go.
    fn take_acknowledged(
        &mut self,
        link: &Link,
        queue: &mut Queue,
        out: &mut WriteOut,
    ) -> io::Result<()> {
        let acknowledged = self.offset.saturating_sub(link.unacknowledged()?);
        if self.hold_in_queue {
            self.take(acknowledged, queue, out)
        } else {
            self.tail.acknowledged(acknowledged);
            Ok(())
        }
    }

    /// Disk queue: lets go of every message the remote acknowledged, written whole or in part.
    fn take(&mut self, acknowledged: u64, queue: &mut Queue, out: &mut WriteOut) -> io::Result<()> {
        let from_tail = self.tail.acknowledged(acknowledged);
        let from_outgoing = self
            .outgoing
            .as_mut()
            .and_then(|o| o.acknowledged(acknowledged));
        if let Some((seq, _)) = from_outgoing.or(from_tail) {
            queue.ack_through(seq)?;
        }
        for (_, n) in [from_tail, from_outgoing].into_iter().flatten() {
            out.written += n as u64;
        }
        Ok(())
    }

    /// Frames the next batch from the queue; false if it has nothing to send.
    fn frame_next(&mut self, queue: &mut Queue, framing: Framing) -> io::Result<bool> {
        let (mut bytes, mut ends) = self.tail.buffers();
        let mut first = None;
        while bytes.len() < STREAM_BATCH {
            let Some((seq, payload)) = queue.next_unsent()? else {
                break;
            };
            first.get_or_insert(seq);
            wire::frame(&mut bytes, payload, framing);
            ends.push(bytes.len() as u64);
        }
        let Some(first_seq) = first else {
            return Ok(false);
        };
        self.outgoing = Some(Outgoing {
            bytes,
            ends,
            start: self.offset,
            written: 0,
            first_seq,
            from_queue: true,
            reported: 0,
        });
        Ok(true)
    }
}
