//! The one input loop that a reader plugs its body into: wait for readiness, take the settings a
//! reload replaced, read everything ready into a batch and hand it on, and at a stop read what
//! is left, hand it on and, for an input that learns what the outputs took (a read log's
//! position), wait for that before it ends.
//!
//! Datagram sockets, the kernel log and the journal are bodies of it ([`Body`]): each only says
//! how to read, what a reload changes for it and what the outputs' receipts mean to it. Adding a
//! reader is one module with one `Body`. (Stream inputs keep their own loop: connections,
//! deadlines and TLS are theirs.)

use std::io;
use std::time::{Duration, Instant};

use mio::Events;

use super::{Batch, Ctx, Tunables};

/// At a stop, how long a reading input waits for the outputs to take what it sent, so that the
/// position it saves is the last one taken (the loop's stop-timeout bounds the daemon anyway).
const STOP_SETTLE: Duration = Duration::from_secs(30);

/// What one kind of input does inside the loop.
pub(super) trait Body {
    /// What it reads, for logs (`udp://0.0.0.0:514`, `journal:///var/log/journal`).
    fn name(&self) -> &str;

    /// Reads everything ready into `batch`; false once the service loop is gone.
    fn drain(&mut self, ctx: &mut Ctx, batch: &mut Batch) -> bool;

    /// A reload replaced its settings (`old` were the previous ones).
    fn retune(&mut self, _ctx: &Ctx, _old: &Tunables) {}

    /// After a drain, before it waits again (the datagram inputs' coalescing pause).
    fn after_drain(&mut self) {}

    /// Woken: takes in what the outputs' receipts say they took.
    fn settle(&mut self, _ctx: &Ctx) {}

    /// Sent, and not yet taken by every output (a stop waits for these).
    fn unsettled(&self) -> bool {
        false
    }

    /// Woken, before the next drain (the journal takes in new and rotated files).
    fn woken(&mut self) {}

    /// The input ends: stop what the body started (a datagram input's second reader) before
    /// the input is reported stopped.
    fn end(&mut self) {}
}

/// Serves `body` until a stop, then reports the input stopped.
pub(super) fn run(mut ctx: Ctx, mut poll: mio::Poll, mut body: impl Body) {
    let mut batch = ctx.batch();
    let mut events = Events::with_capacity(8);
    loop {
        // On a stop this is the drain: what the kernel (or the log) already holds is read.
        let stopping = ctx.stopping();
        if !body.drain(&mut ctx, &mut batch) || !batch.flush() {
            body.end();
            return ctx.finish();
        }
        if stopping {
            let deadline = Instant::now() + STOP_SETTLE;
            while body.unsettled() && Instant::now() < deadline {
                let _ = poll.poll(&mut events, Some(Duration::from_millis(100)));
                body.settle(&ctx);
            }
            break;
        }
        body.after_drain();
        if let Err(e) = poll.poll(&mut events, None)
            && e.kind() != io::ErrorKind::Interrupted
        {
            log::error!("input {}: poll failed: {e}", body.name());
            break;
        }
        if let Some(old) = ctx.refresh() {
            batch.escape = ctx.tunables.escape_controls;
            body.retune(&ctx, &old);
        }
        body.settle(&ctx);
        body.woken();
    }
    body.end();
    ctx.finish();
}
