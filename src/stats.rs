//! Counters shared by the inputs and the service loop, read for STATUS=, the heartbeat,
//! `logger --status` and the metrics.
//!
//! Every message that enters is counted once as received and ends written (once per output
//! that took it), rejected by an output, or in a named drop (oversized, rate-limited,
//! unrouted). Each input thread counts into a `Stats` of its own (what it received and refused,
//! by reason); the loop and the outputs count into the service's. The daemon's totals are
//! their sum, and an input a reload stops has its counts kept, so no total ever goes back.
//! Relaxed atomics: the counters are reports, not synchronisation.

use std::fmt;
use std::ops::AddAssign;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Declares every counter once: the atomic `Stats`, its plain `Snapshot`, reading and adding.
macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// The daemon's counters (an input's, or the loop's and outputs').
        #[derive(Debug, Default)]
        pub struct Stats {
            $( $(#[$doc])* pub $name: AtomicU64, )*
        }

        /// A consistent-enough copy of the counters.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct Snapshot {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl Stats {
            /// Reads all counters.
            pub fn snapshot(&self) -> Snapshot {
                Snapshot { $( $name: self.$name.load(Relaxed), )* }
            }
        }

        impl Snapshot {
            /// Every counter as a journal field: `logger_received` (journald upper-cases it).
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![ $( (concat!("logger_", stringify!($name)), self.$name), )* ]
            }
        }

        impl AddAssign for Snapshot {
            fn add_assign(&mut self, other: Snapshot) {
                $( self.$name += other.$name; )*
            }
        }
    };
}

counters! {
    /// Messages taken from sockets (including ones later dropped).
    received,
    /// Messages the output took.
    written,
    /// TCP frames over max-message-size, discarded.
    oversized,
    /// Datagrams over max-message-size, delivered cut (and marked).
    truncated,
    /// Messages suppressed by the per-source rate limit.
    rate_limited,
    /// Messages no output's route took.
    unrouted,
    /// Entries the output refused for good.
    rejected,
    /// Messages an output with `queue-policy = "drop"` dropped because its queue was full.
    queue_dropped,
    /// Accepted messages still queued when stop-timeout ran out.
    lost,
    /// Failed attempts to write to the output (retried).
    output_errors,
    /// Stream connections closed at once because max-connections was reached.
    refused_connections,
    /// Stream connections closed for idling.
    idle_closed,
    /// Stream connections closed for not finishing a frame within frame-timeout.
    slow_closed,
    /// Stream connections closed at max-connections to make room for a source holding fewer.
    evicted,
    /// Socket read errors (other than would-block).
    read_errors,
    /// Datagrams and connections from addresses outside the input's allow-list, refused
    /// before anything was read or parsed.
    not_allowed,
    /// TLS connections closed before or during the handshake: a certificate refused, a
    /// protocol error, the handshake not finished within frame-timeout.
    tls_failed,
    /// Connections to a TLS input that did not start with a TLS handshake (plaintext syslog,
    /// garbage), closed at their first bytes.
    not_tls,
    /// RELP sessions closed for a protocol error (garbage, a message before `open`).
    relp_errors,
    /// Uploads (systemd-journal-upload's requests) refused: not `POST /upload` of the Journal
    /// Export Format, or a body that is not that format.
    upload_errors,
    /// Records an input knows it missed: kernel messages the ring buffer overwrote before they
    /// were read (the gap in their sequence numbers).
    missed,
    /// A gauge, not a counter: stream connections open now (an input's own).
    connections,
}

impl Stats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

impl Snapshot {
    /// Messages dropped on purpose (a limit or the routing rules said so).
    pub fn dropped(&self) -> u64 {
        self.oversized + self.rate_limited + self.unrouted + self.rejected + self.queue_dropped
    }

    /// What an input refused or closed, by reason, as `logger --status` and the metrics name
    /// them.
    pub fn refusals(&self) -> [(&'static str, u64); 11] {
        [
            ("not_allowed", self.not_allowed),
            ("oversized", self.oversized),
            ("max_connections", self.refused_connections),
            ("evicted", self.evicted),
            ("idle", self.idle_closed),
            ("slow", self.slow_closed),
            ("tls_failed", self.tls_failed),
            ("not_tls", self.not_tls),
            ("relp_error", self.relp_errors),
            ("upload_error", self.upload_errors),
            ("read_error", self.read_errors),
        ]
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
             RELP sessions broken {}, uploads refused {}",
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
            self.relp_errors,
            self.upload_errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_add_field_by_field() {
        let (a, b) = (Stats::default(), Stats::default());
        Stats::add(&a.received, 3);
        Stats::add(&b.received, 4);
        Stats::add(&b.not_allowed, 1);
        let mut total = a.snapshot();
        total += b.snapshot();
        assert_eq!((total.received, total.not_allowed), (7, 1));
        assert_eq!(total.refusals()[0], ("not_allowed", 1));
    }
}
