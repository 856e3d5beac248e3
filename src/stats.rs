//! Counters shared by the inputs and the service loop, read for STATUS= and the heartbeat.
//!
//! Every message that enters is counted once as received and ends written (once per output
//! that took it), rejected by an output, or in a named drop (oversized, rate-limited, unrouted). Relaxed atomics: the counters are reports, not
//! synchronisation.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The daemon's counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages taken from sockets (including ones later dropped).
    pub received: AtomicU64,
    /// Messages the output took.
    pub written: AtomicU64,
    /// TCP frames over max-message-size, discarded.
    pub oversized: AtomicU64,
    /// Datagrams over max-message-size, delivered cut (and marked).
    pub truncated: AtomicU64,
    /// Messages suppressed by the per-source rate limit.
    pub rate_limited: AtomicU64,
    /// Messages no output's route took.
    pub unrouted: AtomicU64,
    /// Entries the output refused for good.
    pub rejected: AtomicU64,
    /// Messages an output with `queue-policy = "drop"` dropped because its queue was full.
    pub queue_dropped: AtomicU64,
    /// Accepted messages still queued when stop-timeout ran out.
    pub lost: AtomicU64,
    /// Failed attempts to write to the output (retried).
    pub output_errors: AtomicU64,
    /// Stream connections closed at once because max-connections was reached.
    pub refused_connections: AtomicU64,
    /// Stream connections closed for idling.
    pub idle_closed: AtomicU64,
    /// Stream connections closed for not finishing a frame within frame-timeout.
    pub slow_closed: AtomicU64,
    /// Stream connections closed at max-connections to make room for a source holding fewer.
    pub evicted: AtomicU64,
    /// Socket read errors (other than would-block).
    pub read_errors: AtomicU64,
    /// Datagrams and connections from addresses outside the input's allow-list, refused
    /// before anything was read or parsed.
    pub not_allowed: AtomicU64,
    /// TLS connections closed before or during the handshake: a certificate refused, a
    /// protocol error, the handshake not finished within frame-timeout.
    pub tls_failed: AtomicU64,
    /// Connections to a TLS input that did not start with a TLS handshake (plaintext syslog,
    /// garbage), closed at their first bytes.
    pub not_tls: AtomicU64,
    /// RELP sessions closed for a protocol error (garbage, a message before `open`).
    pub relp_errors: AtomicU64,
}

/// A consistent-enough copy of the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// See `Stats`.
    pub received: u64,
    /// See `Stats`.
    pub written: u64,
    /// See `Stats`.
    pub oversized: u64,
    /// See `Stats`.
    pub truncated: u64,
    /// See `Stats`.
    pub rate_limited: u64,
    /// See `Stats`.
    pub unrouted: u64,
    /// See `Stats`.
    pub rejected: u64,
    /// See `Stats`.
    pub queue_dropped: u64,
    /// See `Stats`.
    pub lost: u64,
    /// See `Stats`.
    pub output_errors: u64,
    /// See `Stats`.
    pub refused_connections: u64,
    /// See `Stats`.
    pub idle_closed: u64,
    /// See `Stats`.
    pub slow_closed: u64,
    /// See `Stats`.
    pub evicted: u64,
    /// See `Stats`.
    pub read_errors: u64,
    /// See `Stats`.
    pub not_allowed: u64,
    /// See `Stats`.
    pub tls_failed: u64,
    /// See `Stats`.
    pub not_tls: u64,
    /// See `Stats`.
    pub relp_errors: u64,
}

impl Stats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Reads all counters.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            received: self.received.load(Relaxed),
            written: self.written.load(Relaxed),
            oversized: self.oversized.load(Relaxed),
            truncated: self.truncated.load(Relaxed),
            rate_limited: self.rate_limited.load(Relaxed),
            unrouted: self.unrouted.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            queue_dropped: self.queue_dropped.load(Relaxed),
            lost: self.lost.load(Relaxed),
            output_errors: self.output_errors.load(Relaxed),
            refused_connections: self.refused_connections.load(Relaxed),
            idle_closed: self.idle_closed.load(Relaxed),
            slow_closed: self.slow_closed.load(Relaxed),
            evicted: self.evicted.load(Relaxed),
            read_errors: self.read_errors.load(Relaxed),
            not_allowed: self.not_allowed.load(Relaxed),
            tls_failed: self.tls_failed.load(Relaxed),
            not_tls: self.not_tls.load(Relaxed),
            relp_errors: self.relp_errors.load(Relaxed),
        }
    }
}

impl Snapshot {
    /// Messages dropped on purpose (a limit or the routing rules said so).
    pub fn dropped(&self) -> u64 {
        self.oversized + self.rate_limited + self.unrouted + self.rejected + self.queue_dropped
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received {}, written {}, dropped {} (oversized {}, rate-limited {}, unrouted {}, \
             rejected {}, queue full {}), lost at stop {}, \
             truncated {}, output errors {}, refused connections {}, idle connections closed {}, \
             slow connections closed {}, connections evicted {}, read errors {}, \
             refused as not allowed {}, TLS handshakes failed {}, not TLS {}, \
             RELP sessions broken {}",
            self.received,
            self.written,
            self.dropped(),
            self.oversized,
            self.rate_limited,
            self.unrouted,
            self.rejected,
            self.queue_dropped,
            self.lost,
            self.truncated,
            self.output_errors,
            self.refused_connections,
            self.idle_closed,
            self.slow_closed,
            self.evicted,
            self.read_errors,
            self.not_allowed,
            self.tls_failed,
            self.not_tls,
            self.relp_errors
        )
    }
}
