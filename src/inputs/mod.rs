//! The inputs: one thread per listener, each turning what its socket receives into parsed
//! `Message` batches for the service loop.
//!
//! Threads block in `epoll` (mio) on their socket and a waker, so an idle daemon uses no CPU. A
//! spent in-flight budget (`gate::Gate`: the bytes of batches the loop has not handed on) blocks
//! the thread, which pushes back on TCP senders and leaves datagrams in the kernel's queue
//! instead of losing them here. `Input::stop` asks the thread to read what the
//! kernel already queued, send it, report `Control::InputStopped` and exit: that is how a stop or
//! a reload loses no accepted message.

pub(crate) mod bind;
mod datagram;
mod journal;
mod journal_remote;
mod kmsg;
mod position;
mod reader;
mod refusals;
mod stream;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use mio::{Poll, Token, Waker};

use crate::allow::AllowList;
use crate::config::{InputSpec, Limits};
use crate::event::{Control, Event};
use crate::gate::Gate;
use crate::receipt::{AckBoard, Mark, Receipt, Transaction};
use crate::stats::Stats;
use crate::tls;
pub(crate) use bind::Listener;
use syslog::message::Message;

/// Messages per batch sent to the service loop, at most.
pub(crate) const BATCH: usize = 64;
/// Bytes per batch, at most (plus the one message that crosses it).
pub(crate) const BATCH_BYTES: usize = 256 * 1024;
/// What the batches on their way from every input to the loop may weigh together: eight full
/// batches. Bounded in bytes, not batches (`gate::Gate`), so that 2 MiB messages, each a batch
/// of its own, cannot queue eight times 2 MiB; one message larger than this passes alone.
pub(crate) const IN_FLIGHT_BYTES: usize = 8 * BATCH_BYTES;
/// And at most 32 batches, whatever they weigh: under a flood more slack lets the input read
/// on while the loop and outputs catch up (8 delivered 377k msg/s against 480k for 32 in
/// `CASES="udp-flood-file tcp-file" benches/compare 1 5`), while small batches filling all
/// 2 MiB only added resident memory (peak 6.8 MB over TCP unbounded, 5.6 MB at 32).
pub(crate) const IN_FLIGHT_BATCHES: usize = 32;

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);

/// A batch of messages on its way from an input to the loop; from an input that acknowledges
/// (RELP), with the receipt its outputs answer through (`receipt`).
pub struct Received {
    /// The messages, at most [`BATCH`].
    pub messages: Vec<Message>,
    /// The transactions to answer once every output took them.
    pub receipt: Option<Receipt>,
}

impl Received {
    /// What its messages weigh (the in-flight budget's unit).
    pub fn weight(&self) -> usize {
        self.messages.iter().map(Message::weight).sum()
    }
}

/// What every input thread shares with the service loop.
#[derive(Clone)]
pub(crate) struct Shared {
    /// Parsed messages (`Event::Batch`) and `InputStopped` go here: the loop's channel.
    pub events: Sender<Event>,
    /// The bytes of batches on their way to the loop, bounded (see [`IN_FLIGHT_BYTES`]).
    pub in_flight: Arc<Gate>,
    /// Counters: the input's own once `Input::spawn` gave it them.
    pub stats: Arc<Stats>,
}

/// What an input reads from the configuration: everything a reload may change under it.
#[derive(Debug, Clone)]
pub(crate) struct Tunables {
    /// Its size and connection limits.
    pub limits: Limits,
    /// The networks it serves (checked before anything is parsed).
    pub allow: AllowList,
    /// Its certificates and client verification, for TLS.
    pub tls: Option<tls::Server>,
    /// Escape control characters in what is received (`escape-control-characters`).
    pub escape_controls: bool,
    /// Where a reading input keeps its position (`state-dir`).
    pub state_dir: std::path::PathBuf,
    /// At start, for a reading input: the positions its disk-queued outputs hold with what
    /// they took (`Opened::queued_positions`); it resumes after the earliest of them when
    /// that is past its own file. Empty otherwise.
    pub queued: Vec<String>,
}

/// The position file (under state-dir) of an input whose messages come by `transport`, if
/// it keeps one: the key of its positions in disk queues.
pub(crate) fn position_key(transport: syslog::message::Transport) -> Option<&'static str> {
    match transport {
        syslog::message::Transport::Journal => Some(journal::CURSOR_FILE),
        syslog::message::Transport::Kmsg => Some(kmsg::POSITION_FILE),
        _ => None,
    }
}

/// The current `Tunables` of one input. A reload replaces them and wakes the input, which
/// takes the new ones before it reads again; between wake-ups an input checks one counter.
#[derive(Debug)]
pub(crate) struct Settings {
    generation: AtomicU64,
    current: Mutex<Tunables>,
}

impl Settings {
    /// Settings starting at `tunables`.
    pub(crate) fn new(tunables: Tunables) -> Settings {
        Settings {
            generation: AtomicU64::new(0),
            current: Mutex::new(tunables),
        }
    }

    /// Replaces them; inputs take them at their next wake-up (see `Input::wake`).
    pub(crate) fn replace(&self, tunables: Tunables) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = tunables;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// What it holds now.
    pub(crate) fn current(&self) -> Tunables {
        self.get().1
    }

    fn get(&self) -> (u64, Tunables) {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        (self.generation.load(Ordering::Acquire), current.clone())
    }
}

/// A running input thread.
pub(crate) struct Input {
    /// Identifies the thread in `Control::InputStopped`.
    pub id: u64,
    /// The input it serves (as configured).
    pub spec: InputSpec,
    /// The bound address (port 0 resolved).
    pub bound: String,
    /// Passed by the service manager.
    pub activated: bool,
    /// What it runs with; a reload replaces them.
    pub settings: Arc<Settings>,
    /// What it received and refused (its thread counts here, not in the service's).
    pub stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

/// What an input thread gets.
struct Ctx {
    id: u64,
    stop: Arc<AtomicBool>,
    shared: Shared,
    settings: Arc<Settings>,
    refusals: refusals::RefusalLog,
    /// The settings it runs with, and their generation.
    tunables: Tunables,
    generation: u64,
    /// Where outputs post the transactions they took, for an input that answers (RELP).
    board: Option<Arc<AckBoard>>,
}

impl Ctx {
    fn new(
        id: u64,
        stop: Arc<AtomicBool>,
        shared: Shared,
        settings: Arc<Settings>,
        name: String,
        board: Option<Arc<AckBoard>>,
    ) -> Ctx {
        let (generation, tunables) = settings.get();
        Ctx {
            id,
            stop,
            shared,
            settings,
            refusals: refusals::RefusalLog::new(name),
            tunables,
            generation,
            board,
        }
    }

    /// The context of another thread serving the same input (a datagram input's second
    /// reader): the same counters, settings and stop, a refusal log of its own. It reports
    /// nothing when it ends: the input's own thread does, once that thread ended.
    fn helper(&self, name: String) -> Ctx {
        Ctx::new(
            self.id,
            self.stop.clone(),
            self.shared.clone(),
            self.settings.clone(),
            name,
            None,
        )
    }

    fn limits(&self) -> &Limits {
        &self.tunables.limits
    }

    /// Takes settings a reload replaced; returns the old ones if they changed.
    fn refresh(&mut self) -> Option<Tunables> {
        if self.settings.generation.load(Ordering::Acquire) == self.generation {
            return None;
        }
        let (generation, tunables) = self.settings.get();
        self.generation = generation;
        Some(std::mem::replace(&mut self.tunables, tunables))
    }

    /// True if the allow-list admits `peer`; a refusal is counted and said (at a bounded
    /// rate) before anything it sent is looked at.
    fn admits(&mut self, peer: SocketAddr, what: &str) -> bool {
        if self.tunables.allow.allows(peer.ip()) {
            return true;
        }
        Stats::add(&self.shared.stats.not_allowed, 1);
        self.refusals.refused(format_args!(
            "refused a {what} from {peer}: not in its allow-list"
        ));
        false
    }

    /// Counts and says a refusal for another reason.
    fn refused(&mut self, what: std::fmt::Arguments<'_>) {
        self.refusals.refused(what);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn batch(&self) -> Batch {
        Batch {
            messages: Vec::with_capacity(BATCH),
            bytes: 0,
            escape: self.tunables.escape_controls,
            to_loop: self.shared.events.clone(),
            in_flight: self.shared.in_flight.clone(),
            loop_gone: false,
            board: self.board.clone(),
            transactions: Vec::new(),
            position: None,
        }
    }

    fn finish(self) {
        let _ = self
            .shared
            .events
            .send(Event::Control(Control::InputStopped(self.id)));
    }
}

/// Messages on their way to the service loop. It is sent as soon as it holds [`BATCH`] messages
/// or [`BATCH_BYTES`], so a stream of 64 KiB messages (up to 256 KiB each once escaped) queues
/// what it weighs rather than 64 of them a batch. Control characters are escaped as messages
/// are pushed (unless `escape-control-characters = false`): in the input's own thread, so that
/// no output ever sees a raw one and the loop does none of the work. From a RELP input it
/// carries the transactions of its messages, which become the batch's `Receipt`.
struct Batch {
    messages: Vec<Message>,
    bytes: usize,
    escape: bool,
    to_loop: Sender<Event>,
    in_flight: Arc<Gate>,
    loop_gone: bool,
    board: Option<Arc<AckBoard>>,
    transactions: Vec<Transaction>,
    /// Where a reading input stands after the last message pushed.
    position: Option<Mark>,
}

impl Batch {
    /// Adds a message that answers `transaction` once every output took it.
    fn push_answered(&mut self, msg: Message, transaction: Transaction) {
        self.transactions.push(transaction);
        self.push(msg);
    }

    /// Adds a message from a reading input, after which it stands at `position`.
    fn push_read(&mut self, msg: Message, transaction: Transaction, position: Mark) {
        self.position = Some(position);
        self.push_answered(msg, transaction);
    }

    /// Adds a message; a batch that is full is sent at once (blocking while the batches on their
    /// way to the loop weigh the in-flight budget: that is the backpressure on the input).
    fn push(&mut self, msg: Message) {
        let msg = if self.escape {
            msg.escape_controls()
        } else {
            msg
        };
        self.bytes += msg.weight();
        self.messages.push(msg);
        if self.messages.len() >= BATCH || self.bytes >= BATCH_BYTES {
            self.flush();
        }
    }

    /// Sends what it holds; false once the service loop is gone.
    fn flush(&mut self) -> bool {
        if !self.messages.is_empty() && !self.loop_gone {
            // Waits while the batches already on their way weigh the budget: the
            // backpressure on the input, in bytes.
            self.loop_gone = !self.in_flight.take(self.bytes);
            if !self.loop_gone {
                let messages = std::mem::replace(&mut self.messages, Vec::with_capacity(BATCH));
                let receipt = match &self.board {
                    Some(board) if !self.transactions.is_empty() => Some(Receipt::new(
                        board.clone(),
                        std::mem::take(&mut self.transactions),
                        self.position.take(),
                    )),
                    _ => None,
                };
                let received = Received { messages, receipt };
                if let Err(e) = self.to_loop.send(Event::Batch(received)) {
                    self.loop_gone = true;
                    if let Event::Batch(Received {
                        receipt: Some(r), ..
                    }) = &e.0
                    {
                        r.fail();
                    }
                }
            }
        }
        self.messages.clear();
        self.transactions.clear();
        self.position = None;
        self.bytes = 0;
        !self.loop_gone
    }

    /// False once the service loop is gone: the input has nowhere to send and stops.
    fn loop_alive(&self) -> bool {
        !self.loop_gone
    }
}

impl Input {
    /// Starts a thread serving `listener` with `tunables`: the one place an input's kind
    /// chooses its code.
    pub(crate) fn spawn(
        id: u64,
        listener: Listener,
        tunables: Tunables,
        shared: Shared,
    ) -> io::Result<Input> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let spec = listener.spec.clone();
        let bound = listener.bound();
        let activated = listener.activated;
        let settings = Arc::new(Settings::new(tunables));
        // Its own counters: what it received and refused, by reason (`Stats`).
        let stats = Arc::new(Stats::default());
        let shared = Shared {
            stats: stats.clone(),
            ..shared
        };
        // Inputs that learn when their messages were taken: RELP answers them, the kernel log
        // advances its position.
        let transport = listener.addr().transport;
        let board =
            (transport.is_answered() || transport.is_read()).then(|| AckBoard::new(waker.clone()));
        let ctx = Ctx::new(
            id,
            stop.clone(),
            shared,
            settings.clone(),
            bound.clone(),
            board,
        );
        let thread = std::thread::Builder::new()
            .name(format!("input-{id}"))
            .spawn(move || {
                if listener.addr().transport == syslog::message::Transport::Journal {
                    journal::run(ctx, poll, listener)
                } else if listener.addr().transport.is_read() {
                    kmsg::run(ctx, poll, listener)
                } else if listener.addr().is_stream() {
                    stream::run(ctx, poll, listener)
                } else {
                    datagram::run(ctx, poll, listener)
                }
            })?;
        Ok(Input {
            id,
            spec,
            bound,
            activated,
            settings,
            stats,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// Wakes the thread so that it takes new settings now rather than at its next message.
    pub(crate) fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// Asks the thread to drain its socket and exit; it reports `InputStopped` when done.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }

    /// Waits for the thread to end (after `InputStopped`).
    pub(crate) fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
