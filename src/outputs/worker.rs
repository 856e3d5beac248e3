//! One output's thread and the queue in front of it.
//!
//! The service loop hands an output a shared batch and the bits of the messages its route took;
//! the thread encodes them into the sink's backlog and writes them out, retrying with backoff
//! while the output refuses (journald restarting, a full disk). A blocked write blocks this
//! thread only.
//!
//! The queue is bounded in bytes, not messages: the loop adds each message's weight when it
//! hands a batch over, the thread swaps that for the encoded size once it has encoded it, and
//! subtracts what it wrote. `Gauge::queued_bytes` is therefore everything this output holds
//! (shared batches waiting in the channel, counted by the messages it takes, and its encoded
//! backlog). When a write brings it back under half the bound, the thread wakes the loop,
//! which may be holding the inputs back for it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};

use crate::coalesce::Coalescer;
use crate::event::Event;
use crate::receipt::Receipt;
use crate::stats::Stats;
use syslog::message::Message;

use super::Sink;

/// Retry backoff bounds for an output that refuses what it is given.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The messages of `batch` whose bits are set in `mask`, weighing `bytes`: one output's share
/// of a batch.
pub(super) struct Share {
    /// The batch, shared by every output that takes some of it.
    pub batch: Arc<Vec<Message>>,
    /// Bit `i`: this output takes `batch[i]`.
    pub mask: u64,
    /// What those messages weigh.
    pub bytes: usize,
    /// The batch's receipt, from an input that answers (RELP): held until the sink took
    /// those messages.
    pub receipt: Option<Arc<Receipt>>,
}

/// What the loop sends an output's thread.
pub(super) enum Item {
    /// The shares of every batch the loop took in one round: one wake-up of the thread for all.
    Batches(Vec<Share>),
    /// Reopen the file (SIGHUP).
    Reopen,
    /// A reload: a forward output's new remotes, wire and TLS, same queue.
    Reconfigure(crate::outputs::Reconfigure),
    /// Write out what is left, then end.
    Stop,
}

/// An output's counters and queue size, shared by its thread and the loop.
#[derive(Debug, Default)]
pub(super) struct Gauge {
    /// Bytes held: see the module documentation.
    pub queued_bytes: AtomicUsize,
    /// The queue's bound in bytes (a reload may change it).
    pub limit: AtomicUsize,
    /// Messages handed over and not yet written or rejected.
    pub queued: AtomicU64,
    /// Messages written.
    pub written: AtomicU64,
    /// Messages the output refused for good.
    pub rejected: AtomicU64,
    /// Messages dropped because the queue was full (`queue-policy = "drop"`).
    pub dropped: AtomicU64,
    /// Failed writes (each retried).
    pub errors: AtomicU64,
    /// The thread has ended (after `Item::Stop`, everything written).
    pub done: AtomicBool,
    /// Of `queued`, the messages a disk queue holds: a stop does not lose them.
    pub durable: AtomicU64,
    /// A forward output's connection, as STATUS= shows it.
    pub link: std::sync::Mutex<Option<crate::outputs::forward::LinkState>>,
    /// Bumped whenever the output lets go of bytes it held (written, sent, on disk): the loop
    /// tells a slow output (it moves) from a stuck one (it does not).
    pub progress: AtomicU64,
}

impl Gauge {
    /// True while the queue holds its bound or more.
    pub(super) fn full(&self) -> bool {
        self.queued_bytes.load(Relaxed) >= self.limit.load(Relaxed)
    }
}

/// The loop's handle on an output's thread.
pub(super) struct Worker {
    items: Sender<Item>,
    /// Shares taken this round, sent together by `flush`.
    pending: Vec<Share>,
    /// Its counters.
    pub gauge: Arc<Gauge>,
    /// What it writes to, for logs and STATUS=.
    pub name: String,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread for `sink`. `wake` is the loop's: a token there says an output has
    /// room again or has ended.
    pub(super) fn spawn(
        sink: Sink,
        limit: usize,
        stats: Arc<Stats>,
        wake: Sender<Event>,
    ) -> std::io::Result<Worker> {
        let (items, rx) = channel();
        let gauge = Arc::new(Gauge::default());
        gauge.limit.store(limit, Relaxed);
        // What a disk queue holds from before counts as queued from the start: its delivery
        // is subtracted like any other message's.
        let recovered = (sink.backlog_messages() - sink.volatile_messages()) as u64;
        gauge.queued.store(recovered, Relaxed);
        gauge.durable.store(recovered, Relaxed);
        let name = sink.describe();
        let thread = Thread {
            sink,
            items: rx,
            gauge: gauge.clone(),
            stats,
            wake,
            retry: None,
            backoff: Duration::ZERO,
            coalescer: Coalescer::new(limit),
            accepted: 0,
            receipts: VecDeque::new(),
        };
        let handle = std::thread::Builder::new()
            .name("output".into())
            .spawn(move || thread.run())?;
        Ok(Worker {
            items,
            pending: Vec::new(),
            gauge,
            name,
            thread: Some(handle),
        })
    }

    /// Adds a share to this round's; the caller has counted it in the gauge.
    pub(super) fn push(&mut self, share: Share) {
        self.pending.push(share);
    }

    /// Sends this round's shares.
    pub(super) fn flush(&mut self) {
        if !self.pending.is_empty() {
            let shares = std::mem::take(&mut self.pending);
            self.deliver(Item::Batches(shares));
        }
    }

    /// Sends `item` after this round's shares.
    pub(super) fn send(&mut self, item: Item) {
        self.flush();
        self.deliver(item);
    }

    /// The thread outlives its handle's sends (it ends only after `Stop` or when the handle is
    /// dropped), so this fails only if it panicked; the messages are then counted as dropped.
    fn deliver(&self, item: Item) {
        if let Err(e) = self.items.send(item)
            && let Item::Batches(shares) = e.0
        {
            for receipt in shares.iter().filter_map(|s| s.receipt.as_ref()) {
                receipt.fail();
            }
            let n: u64 = shares.iter().map(|s| u64::from(s.mask.count_ones())).sum();
            self.gauge.queued.fetch_sub(n, Relaxed);
            self.gauge.dropped.fetch_add(n, Relaxed);
        }
    }

    /// Joins the thread if it has ended; true if it has.
    pub(super) fn reap(&mut self) -> bool {
        if !self.gauge.done.load(Relaxed) {
            return false;
        }
        if let Some(handle) = self.thread.take() {
            let _ = handle.join();
        }
        true
    }
}

/// The thread's own state.
struct Thread {
    sink: Sink,
    items: Receiver<Item>,
    gauge: Arc<Gauge>,
    stats: Arc<Stats>,
    wake: Sender<Event>,
    /// When to try again after a failed write; None while it writes.
    retry: Option<Instant>,
    backoff: Duration,
    /// The pause after a heavy write that lets the next one cover more (see `coalesce`).
    coalescer: Coalescer,
    /// Messages the sink accepted, ever.
    accepted: u64,
    /// Receipts held until the sink took their messages: each with the value of `accepted`
    /// after its share's last message. The sink takes messages in order (`Sink::taken`).
    receipts: VecDeque<(u64, Arc<Receipt>)>,
}

impl Thread {
    fn run(mut self) {
        let mut stopping = false;
        loop {
            // A stop waits for what only memory holds; a disk queue keeps the rest.
            let pending = if stopping {
                self.sink.volatile_messages() > 0
            } else {
                self.sink.backlog_messages() > 0
            };
            // Wait for messages, or for the retry of those it holds.
            let item = if stopping {
                if !pending {
                    break;
                }
                if let Some(t) = self.retry {
                    std::thread::sleep(t.saturating_duration_since(Instant::now()));
                }
                None
            } else if !pending {
                self.items.recv().ok()
            } else if let Some(t) = self.retry {
                match self
                    .items
                    .recv_timeout(t.saturating_duration_since(Instant::now()))
                {
                    Ok(item) => Some(item),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        stopping = true;
                        None
                    }
                }
            } else {
                // Messages wait (for an acknowledgement, say): take what came meanwhile too.
                match self.items.try_recv() {
                    Ok(item) => Some(item),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => {
                        stopping = true;
                        None
                    }
                }
            };
            // The handle was dropped (a reload plan that was not committed, or the loop ended).
            if item.is_none() && !pending && !stopping {
                break;
            }
            // Take it and whatever else is queued, so that one write covers many batches.
            let mut next = item;
            while let Some(item) = next.take() {
                stopping |= self.take(item);
                if !stopping {
                    next = match self.items.try_recv() {
                        Ok(item) => Some(item),
                        Err(TryRecvError::Empty) => None,
                        Err(TryRecvError::Disconnected) => {
                            stopping = true;
                            None
                        }
                    };
                }
            }
            if self.sink.backlog_messages() > 0 && self.retry.is_none_or(|t| t <= Instant::now()) {
                let (messages, bytes) = self.write_out();
                if !stopping && self.retry.is_none() {
                    self.coalescer.wait(messages, bytes);
                }
            }
        }
        self.sink.finish();
        self.answer_taken();
        // What it could not take in time is not answered: the senders send it again.
        for (_, receipt) in self.receipts.drain(..) {
            receipt.fail();
        }
        self.gauge.done.store(true, Relaxed);
        let _ = self.wake.send(Event::Room);
    }

    /// Handles one item; true for `Stop`.
    fn take(&mut self, item: Item) -> bool {
        match item {
            Item::Batches(shares) => {
                for share in shares {
                    let Share {
                        batch,
                        mask,
                        bytes,
                        receipt,
                    } = share;
                    let before = self.sink.backlog_bytes();
                    let mut bits = mask;
                    while bits != 0 {
                        let i = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        self.sink.accept(&batch[i]);
                    }
                    self.accepted += u64::from(mask.count_ones());
                    if let Some(position) = receipt.as_ref().and_then(|r| r.position()) {
                        self.sink.mark_position(position);
                    }
                    if let Some(receipt) = receipt {
                        self.receipts.push_back((self.accepted, receipt));
                    }
                    let encoded = self.sink.backlog_bytes() - before;
                    // Swap the weight the loop counted for what the encoding holds.
                    self.gauge.queued_bytes.fetch_add(encoded, Relaxed);
                    self.release(bytes);
                }
                // A disk queue takes what it was given now, not at the next send: with the
                // remote down, sends wait for the backoff, and memory would fill meanwhile.
                let held = self.sink.backlog_bytes();
                self.sink.persist();
                self.let_go(held - self.sink.backlog_bytes());
                self.note_durable();
                self.answer_taken();
                false
            }
            Item::Reopen => {
                if let Err(e) = self.sink.reopen() {
                    log::error!("cannot reopen {}: {e}", self.sink.describe());
                }
                false
            }
            Item::Reconfigure(change) => {
                self.sink.reconfigure(change);
                false
            }
            Item::Stop => true,
        }
    }

    /// Lets go of the receipts whose messages the sink took (see `Sink::volatile_messages`):
    /// the last holder of a receipt answers its sender.
    fn answer_taken(&mut self) {
        let taken = self.accepted - self.sink.volatile_messages() as u64;
        while self
            .receipts
            .front()
            .is_some_and(|(last, _)| *last <= taken)
        {
            self.receipts.pop_front();
        }
    }

    /// Records how many of the messages held are safe on disk.
    fn note_durable(&self) {
        let durable = self.sink.backlog_messages() - self.sink.volatile_messages();
        self.gauge.durable.store(durable as u64, Relaxed);
    }

    /// Takes `n` bytes the output let go of (written, sent, on disk) off the queue: that is
    /// progress, which tells a slow output from a stuck one. (The swap of a share's weight for
    /// its encoded size is not: a stuck output shrinks its queue that way too.)
    fn let_go(&self, n: usize) {
        if n > 0 {
            self.gauge.progress.fetch_add(1, Relaxed);
        }
        self.release(n);
    }

    /// Takes `n` bytes off the queue; wakes the loop when that brings it under half its bound.
    /// Half, not the bound itself: a loop woken at the first free byte would take one batch
    /// and find the queue full again, a wake-up per batch; from half it takes many at once.
    fn release(&self, n: usize) {
        let before = self.gauge.queued_bytes.fetch_sub(n, Relaxed);
        let low = self.gauge.limit.load(Relaxed) / 2;
        if before >= low && before - n < low {
            let _ = self.wake.send(Event::Room);
        }
    }

    /// Hands the backlog to the output; on failure arms the retry with backoff and says so
    /// once, when it starts failing. Returns the messages and bytes written.
    fn write_out(&mut self) -> (usize, usize) {
        let before = self.sink.backlog_bytes();
        let out = self.sink.write_out();
        self.answer_taken();
        let bytes = before - self.sink.backlog_bytes();
        self.let_go(bytes);
        let g = &self.gauge;
        g.queued.fetch_sub(out.written + out.rejected, Relaxed);
        g.written.fetch_add(out.written, Relaxed);
        g.rejected.fetch_add(out.rejected, Relaxed);
        if out.dropped > 0 {
            g.queued.fetch_sub(out.dropped, Relaxed);
            g.dropped.fetch_add(out.dropped, Relaxed);
            Stats::add(&self.stats.queue_dropped, out.dropped);
        }
        self.note_durable();
        if let Some(state) = self.sink.link_state()
            && let Ok(mut link) = g.link.lock()
        {
            *link = Some(state);
        }
        Stats::add(&self.stats.written, out.written);
        Stats::add(&self.stats.rejected, out.rejected);
        match &out.error {
            None => {
                if self.retry.take().is_some() {
                    log::info!("output {} is writable again", self.sink.describe());
                }
                self.backoff = Duration::ZERO;
            }
            Some(e) => {
                g.errors.fetch_add(1, Relaxed);
                Stats::add(&self.stats.output_errors, 1);
                if self.retry.is_none() {
                    log::error!(
                        "cannot write to {}: {e}; keeping {} messages and retrying",
                        self.sink.describe(),
                        self.sink.backlog_messages()
                    );
                }
                self.backoff = (self.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                self.retry = Some(out.retry_at.unwrap_or(Instant::now() + self.backoff));
            }
        }
        (out.written as usize, bytes)
    }
}
