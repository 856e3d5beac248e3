//! The control events that reach the service loop besides messages.

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
