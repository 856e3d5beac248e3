//! Per-source rate limiting: a token bucket for each datagram sender (UDP and local datagrams),
//! so one chatty router cannot spend the whole journald budget of the `logger` unit. Stream
//! senders are not limited: reading in turns and backpressure make them fair, and dropping
//! frames a relay already handed over would lose what it was told was delivered. It cannot
//! protect capacity against a UDP flood: the kernel drops what the socket cannot hold before
//! any limit sees it.
//!
//! A source is the remote IP address for network transports (IPv6 by its /64: see
//! [`sender_net`]) and the sender's pid for local ones (the socket itself when the kernel gave
//! no credentials). Suppressed messages are counted per
//! source and reported in one summary line by the service loop. Pure: time is passed in.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Instant;

use crate::config::RateLimit;
use syslog::message::Message;

/// Bound on tracked sources; idle full buckets are forgotten first.
const MAX_SOURCES: usize = 16_384;

/// Who a message counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// A network peer.
    Remote(IpAddr),
    /// A local process.
    LocalPid(i32),
    /// A local sender without credentials.
    Local,
}

impl Source {
    /// The source of a message.
    pub(crate) fn of(msg: &Message) -> Source {
        match (msg.origin.peer, msg.origin.credentials) {
            (Some(peer), _) => Source::Remote(sender_net(peer.ip())),
            (None, Some(c)) => Source::LocalPid(c.pid),
            (None, None) => Source::Local,
        }
    }
}

/// The address that stands for one sender: IPv4 as it is, IPv6 by its /64 (a host is given a
/// whole /64 and may send from any address in it, so keying by address would give it 2^64
/// buckets or connection counts), an IPv4-mapped IPv6 address as the IPv4 one.
pub(crate) fn sender_net(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Remote(IpAddr::V6(net)) => write!(f, "{net}/64"),
            Source::Remote(ip) => write!(f, "{ip}"),
            Source::LocalPid(pid) => write!(f, "local pid {pid}"),
            Source::Local => f.write_str("local senders"),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    suppressed: u64,
}

/// The token buckets.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    buckets: HashMap<Source, Bucket>,
}

impl RateLimiter {
    /// A limiter with the configured rate (per_second 0 = off).
    pub(crate) fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: HashMap::new(),
        }
    }

    /// Applies a new configuration, keeping what sources have spent.
    pub(crate) fn reconfigure(&mut self, limit: RateLimit) {
        self.limit = limit;
    }

    /// True if a message from `source` may pass now (the tests' one-at-a-time form of
    /// `allow_many`).
    #[cfg(test)]
    pub(crate) fn allow(&mut self, source: Source, now: Instant) -> bool {
        self.allow_many(source, 1, now) == 1
    }

    /// How many of `n` messages from `source` may pass now (the first that many): what `n`
    /// calls of `allow` at the same instant say, with one lookup (a batch from one sender).
    pub(crate) fn allow_many(&mut self, source: Source, n: u64, now: Instant) -> u64 {
        if self.limit.per_second == 0 {
            return n;
        }
        let capacity = f64::from(self.limit.burst.max(1));
        let rate = f64::from(self.limit.per_second);
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&source) {
            self.forget_idle(now, capacity, rate);
        }
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            tokens: capacity,
            last: now,
            suppressed: 0,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.last = now;
        let passed = (bucket.tokens.floor() as u64).min(n);
        bucket.tokens -= passed as f64;
        bucket.suppressed += n - passed;
        passed
    }

    /// Takes the per-source suppression counts since the last call.
    pub(crate) fn take_suppressed(&mut self) -> Vec<(Source, u64)> {
        let mut out: Vec<(Source, u64)> = self
            .buckets
            .iter_mut()
            .filter(|(_, b)| b.suppressed > 0)
            .map(|(s, b)| (*s, std::mem::take(&mut b.suppressed)))
            .collect();
        out.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        out
    }

    fn forget_idle(&mut self, now: Instant, capacity: f64, rate: f64) {
        self.buckets.retain(|_, b| {
            let refilled = b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate;
            refilled < capacity || b.suppressed > 0
        });
        if self.buckets.len() >= MAX_SOURCES {
            self.buckets.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_rate_and_counts_the_rest() {
        let mut rl = RateLimiter::new(RateLimit {
            per_second: 10,
            burst: 5,
        });
        let t0 = Instant::now();
        let a = Source::Remote("192.0.2.1".parse().unwrap());
        let b = Source::LocalPid(7);
        let passed = (0..20).filter(|_| rl.allow(a, t0)).count();
        assert_eq!(passed, 5);
        assert!(rl.allow(b, t0), "another source has its own bucket");
        assert!(rl.allow(a, t0 + Duration::from_millis(100)));
        assert!(!rl.allow(a, t0 + Duration::from_millis(100)));
        assert_eq!(rl.take_suppressed(), [(a, 16)]);
        assert_eq!(rl.take_suppressed(), []);
    }

    #[test]
    fn a_run_from_one_source_is_limited_as_its_messages_one_by_one() {
        let limit = RateLimit {
            per_second: 10,
            burst: 5,
        };
        let (mut one, mut many) = (RateLimiter::new(limit), RateLimiter::new(limit));
        let t0 = Instant::now();
        let a = Source::Remote("192.0.2.1".parse().unwrap());
        for (step, n) in [(0, 3), (0, 4), (150, 7), (150, 1), (2000, 9)] {
            let now = t0 + Duration::from_millis(step);
            let singly = (0..n).filter(|_| one.allow(a, now)).count() as u64;
            assert_eq!(many.allow_many(a, n, now), singly, "{n} at {step} ms");
        }
        assert_eq!(one.take_suppressed(), many.take_suppressed());
    }

    #[test]
    fn zero_rate_is_off() {
        let mut rl = RateLimiter::new(RateLimit {
            per_second: 0,
            burst: 0,
        });
        let now = Instant::now();
        assert!((0..100_000).all(|_| rl.allow(Source::Local, now)));
    }

    #[test]
    fn an_ipv6_host_is_one_source_whatever_address_of_its_64_it_sends_from() {
        let net = |s: &str| sender_net(s.parse().unwrap());
        assert_eq!(net("2001:db8:1:2::1"), net("2001:db8:1:2:ffff:1:2:3"));
        assert_ne!(net("2001:db8:1:2::1"), net("2001:db8:1:3::1"));
        assert_eq!(net("::ffff:192.0.2.7"), net("192.0.2.7"));
        assert_eq!(
            Source::Remote(net("2001:db8:1:2::9")).to_string(),
            "2001:db8:1:2::/64"
        );
    }
}
