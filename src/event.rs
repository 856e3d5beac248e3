//! What reaches the service loop: one channel carries it all, in the order it was sent.
//!
//! One channel, not one per source with a `select`: std's channel parks a waiting thread
//! without yielding the CPU first, where crossbeam-channel's backoff called sched_yield(2) up to
//! four times before blocking, and under a local flood each yield waited out a sender's time
//! slice (a flood into a file got 0.26× rsyslog's rate). Batches are bounded in bytes by the
//! in-flight gate (`gate::Gate`), not by the channel; batches the loop cannot hand on yet (an
//! output holds the inputs back) wait in the loop, still counted by the gate.

use std::sync::mpsc::Sender;

use crate::inputs::Received;
use crate::report::Report;

/// A control event: from the signal thread or from an input thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SIGHUP: reload the configuration.
    Reload,
    /// SIGTERM or SIGINT: drain and exit.
    Terminate,
    /// An input thread has sent its last batch and exited.
    InputStopped(u64),
}

/// A question from the control socket or the metrics responder, answered on its channel (a
/// send that cannot block: the asker may have given up).
#[derive(Debug)]
pub enum Request {
    /// A picture of the daemon (`logger --status`, `/metrics`).
    Report(Sender<Report>),
    /// Reload, then say whether the new configuration runs, or why it was refused
    /// (`logger --reload`).
    Reload(Sender<Result<(), String>>),
}

/// One thing for the service loop to do.
pub enum Event {
    /// A signal, or an input that stopped.
    Control(Control),
    /// A question from the control socket or the metrics responder.
    Request(Request),
    /// Messages from an input.
    Batch(Received),
    /// An output has room again, or has ended.
    Room,
}
