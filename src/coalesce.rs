//! Coalescing under load: under a heavy stream, let a queue fill for a moment before draining it
//! again, so that one wake-up takes hundreds of messages instead of a handful. Datagram inputs
//! use it on their socket's queue, the service loop on the queue of batches from the inputs,
//! and outputs on theirs (`outputs::worker`); for the last two "datagrams" are messages, the
//! capacity is the queue's bound and the overhead what the queue charges a message beyond its
//! bytes.
//!
//! Without it an input wakes for nearly every datagram that finds it waiting, and so does the
//! service loop for every small batch: at 300k msg/s that is tens of thousands of context switches
//! a second on each side, the largest single cost in a profile. Network cards solve the same
//! problem with interrupt moderation; this is that, in user space, and only under load.
//!
//! The pause is bounded by what the socket can hold: the arrival rate seen over the last drain
//! times the pause must fit in a quarter of the receive buffer, so coalescing never turns into
//! loss; and a drain that found the queue over half full means the input is falling behind (a
//! flood), so there is no pause at all until it catches up. A quiet input (under 20k datagrams a
//! second, or fewer than 4 per drain) never pauses: latency first, and an idle daemon stays
//! asleep in epoll.

use std::time::{Duration, Instant};

/// Datagrams one drain must read before the next drain is delayed...
const BURST: usize = 4;
/// ...and the arrival rate (datagrams a second) they must show. Below it a pause would gather too
/// few datagrams to pay for itself.
const MIN_RATE: f64 = 20_000.0;
/// The longest pause: the latency coalescing may add to a message.
const MAX_PAUSE: Duration = Duration::from_millis(1);
/// Shorter pauses cost more in timer wake-ups than they save.
const MIN_PAUSE: Duration = Duration::from_micros(50);
/// What the kernel charges a queued datagram beyond its payload (sk_buff and slab rounding),
/// rounded up so the estimate errs towards shorter pauses.
const OVERHEAD_PER_DATAGRAM: usize = 2048;

/// Decides the pause after each drain of one queue.
pub(crate) struct Coalescer {
    /// What the queue holds, as it accounts it (for a socket, SO_RCVBUF).
    capacity: usize,
    /// What it charges an item beyond the item's own bytes.
    overhead: usize,
    last_drain: Option<Instant>,
}

impl Coalescer {
    /// For a socket whose SO_RCVBUF reads `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> Coalescer {
        Coalescer::with_overhead(capacity, OVERHEAD_PER_DATAGRAM)
    }

    /// For a queue of `capacity` bytes that charges each item `overhead` bytes beyond its own
    /// (a queue bounded in slots of a byte-bounded size: the slot size over the items a slot
    /// holds at most).
    pub(crate) fn with_overhead(capacity: usize, overhead: usize) -> Coalescer {
        Coalescer {
            capacity,
            overhead,
            last_drain: None,
        }
    }

    /// Sleeps as long as `pause` asks for after a drain that just read `datagrams` totalling
    /// `bytes`.
    pub(crate) fn wait(&mut self, datagrams: usize, bytes: usize) {
        if let Some(pause) = self.pause(datagrams, bytes, Instant::now()) {
            std::thread::sleep(pause);
        }
    }

    /// After a drain that ended at `now` having read `datagrams` totalling `bytes`: how long to
    /// wait before waiting on the socket again, if at all.
    pub(crate) fn pause(
        &mut self,
        datagrams: usize,
        bytes: usize,
        now: Instant,
    ) -> Option<Duration> {
        let since = now.saturating_duration_since(self.last_drain.replace(now)?);
        if datagrams < BURST || since.is_zero() {
            return None;
        }
        let charge = bytes / datagrams + self.overhead;
        if datagrams.saturating_mul(charge) > self.capacity / 2 {
            // The queue was over half full: the input is not keeping up, and a pause would
            // only turn into drops. Read on at once.
            return None;
        }
        let rate = datagrams as f64 / since.as_secs_f64();
        if rate < MIN_RATE {
            return None;
        }
        let room = (self.capacity / 4 / charge) as f64;
        let pause = Duration::from_secs_f64(room / rate).min(MAX_PAUSE);
        (pause >= MIN_PAUSE).then_some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(c: &mut Coalescer, start: Instant, gap: Duration, n: usize) -> Option<Duration> {
        c.pause(0, 0, start);
        c.pause(n, n * 256, start + gap)
    }

    #[test]
    fn a_quiet_input_never_pauses() {
        let mut c = Coalescer::new(8 << 20);
        assert_eq!(
            after(&mut c, Instant::now(), Duration::from_millis(1), 5),
            None
        );
    }

    #[test]
    fn an_input_falling_behind_never_pauses() {
        // 3000 datagrams of 256 B found at once fill more than half of 8 MiB as the kernel
        // counts them: a flood. No pause, however long ago the last drain was.
        let mut c = Coalescer::new(8 << 20);
        assert_eq!(
            after(&mut c, Instant::now(), Duration::from_millis(20), 3000),
            None
        );
    }

    #[test]
    fn small_drains_at_a_high_rate_pause() {
        // 10 datagrams in 100 µs: 100k/s arriving in small bursts, as a paced sender does.
        let mut c = Coalescer::new(8 << 20);
        assert_eq!(
            after(&mut c, Instant::now(), Duration::from_micros(100), 10),
            Some(MAX_PAUSE)
        );
    }

    #[test]
    fn the_first_drain_has_no_rate_to_go_on() {
        let mut c = Coalescer::new(8 << 20);
        assert_eq!(c.pause(1000, 256_000, Instant::now()), None);
    }

    #[test]
    fn a_heavy_stream_into_a_large_buffer_pauses_the_longest() {
        // 300 datagrams in 1 ms = 300k/s; a quarter of 8 MiB holds ~900 of them: 3 ms, capped.
        let mut c = Coalescer::new(8 << 20);
        assert_eq!(
            after(&mut c, Instant::now(), Duration::from_millis(1), 300),
            Some(MAX_PAUSE)
        );
    }

    #[test]
    fn the_pause_never_outgrows_a_quarter_of_the_buffer() {
        // Default buffer (212992 B doubled by the kernel): a quarter holds 18 datagrams of
        // 256 B; at 100k/s they arrive in 180 µs.
        let mut c = Coalescer::new(425_984);
        let p = after(&mut c, Instant::now(), Duration::from_micros(400), 40).unwrap();
        let arriving = 100_000.0 * p.as_secs_f64();
        assert!(arriving <= 425_984.0 / 4.0 / 2304.0, "{p:?}");
        // At a million a second there is no room worth pausing for.
        let mut c = Coalescer::new(425_984);
        assert_eq!(
            after(&mut c, Instant::now(), Duration::from_micros(100), 100),
            None
        );
    }
}
