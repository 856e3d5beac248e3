//! The inputs: one thread per listener, each turning what its socket receives into parsed
//! `Message` batches for the service loop.
//!
//! Threads block in `epoll` (mio) on their socket and a waker, so an idle daemon uses no CPU. A
//! full message channel blocks the thread, which pushes back on TCP senders and leaves datagrams in
//! the kernel's queue instead of losing them here. `Input::stop` asks the thread to read what the
//! kernel already queued, send it, report `Control::InputStopped` and exit: that is how a stop or
//! a reload loses no accepted message.

pub mod bind;
mod coalesce;
mod datagram;
mod stream;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use mio::{Poll, Token, Waker};

use crate::config::Limits;
use crate::event::Control;
use crate::message::Message;
use crate::stats::Stats;
pub use bind::{Listener, Socket};

/// Messages per batch sent to the service loop.
pub const BATCH: usize = 64;

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);

/// What every input thread shares with the service loop.
#[derive(Clone)]
pub struct Shared {
    /// Parsed messages go here.
    pub messages: Sender<Vec<Message>>,
    /// `InputStopped` goes here.
    pub control: Sender<Control>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Size and connection limits.
    pub limits: Limits,
    /// Escape control characters in what is received (`escape-control-characters`).
    pub escape_controls: bool,
}

/// A running input thread.
pub struct Input {
    /// Identifies the thread in `Control::InputStopped`.
    pub id: u64,
    /// The address it serves (as configured).
    pub addr: crate::listen::ListenAddr,
    /// The bound address (port 0 resolved).
    pub bound: String,
    /// Passed by the service manager.
    pub activated: bool,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

/// What an input thread gets.
struct Ctx {
    id: u64,
    stop: Arc<AtomicBool>,
    shared: Shared,
}

impl Ctx {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Sends a batch, its control characters escaped unless the operator said otherwise; false
    /// if the service loop is gone. Escaping happens here, in the input's own thread, so that
    /// no output ever sees a raw control character and the loop does none of the work.
    fn send(&self, batch: &mut Vec<Message>) -> bool {
        if batch.is_empty() {
            return true;
        }
        let mut full = std::mem::replace(batch, Vec::with_capacity(BATCH));
        if self.shared.escape_controls {
            // Collected in place: same element type, so the vector's buffer is reused.
            full = full.into_iter().map(Message::escape_controls).collect();
        }
        self.shared.messages.send(full).is_ok()
    }

    fn finish(self) {
        let _ = self.shared.control.send(Control::InputStopped(self.id));
    }
}

impl Input {
    /// Starts a thread serving `listener`.
    pub fn spawn(id: u64, listener: Listener, shared: Shared) -> io::Result<Input> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let addr = listener.addr.clone();
        let bound = listener.bound();
        let activated = listener.activated;
        let ctx = Ctx {
            id,
            stop: stop.clone(),
            shared,
        };
        let thread = std::thread::Builder::new()
            .name(format!("input-{id}"))
            .spawn(move || {
                if listener.addr.is_stream() {
                    stream::run(ctx, poll, listener)
                } else {
                    datagram::run(ctx, poll, listener)
                }
            })?;
        Ok(Input {
            id,
            addr,
            bound,
            activated,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// Asks the thread to drain its socket and exit; it reports `InputStopped` when done.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }

    /// Waits for the thread to end (after `InputStopped`).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
