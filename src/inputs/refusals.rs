//! Refusals said at a bounded rate: an input refuses a sender (not on its allow-list, a TLS
//! handshake that failed, plaintext on a TLS port) with a warning that names the sender and
//! the reason, but a LAN host retrying a thousand times a second must not write a thousand
//! lines a second into the journal. The first refusal is said at once; the ones that follow
//! within [`INTERVAL`] are counted and summed up in the next line said. Every refusal is also
//! counted in `Stats` by reason.

use std::fmt;
use std::time::{Duration, Instant};

/// At most one line per input per this long.
pub(super) const INTERVAL: Duration = Duration::from_secs(10);

/// One input's refusal log.
#[derive(Debug)]
pub(super) struct RefusalLog {
    input: String,
    last_said: Option<Instant>,
    unsaid: u64,
}

impl RefusalLog {
    /// The log of the input serving `input` (as it is named in messages).
    pub(super) fn new(input: String) -> RefusalLog {
        RefusalLog {
            input,
            last_said: None,
            unsaid: 0,
        }
    }

    /// Says a refusal, or counts it if one was said within [`INTERVAL`].
    pub(super) fn refused(&mut self, what: fmt::Arguments<'_>) {
        let now = Instant::now();
        if self
            .last_said
            .is_some_and(|t| now.saturating_duration_since(t) < INTERVAL)
        {
            self.unsaid += 1;
            return;
        }
        if self.unsaid > 0 {
            log::warn!(
                "input {}: {what} (and {} more refusals not logged since the last)",
                self.input,
                self.unsaid
            );
        } else {
            log::warn!("input {}: {what}", self.input);
        }
        self.last_said = Some(now);
        self.unsaid = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_refusal_is_said_and_the_rest_counted() {
        let mut log = RefusalLog::new("udp://0.0.0.0:514".into());
        log.refused(format_args!("refused 192.0.2.1"));
        assert!(log.last_said.is_some());
        for _ in 0..1000 {
            log.refused(format_args!("refused 192.0.2.1"));
        }
        assert_eq!(log.unsaid, 1000);
        log.last_said = Some(Instant::now() - INTERVAL);
        log.refused(format_args!("refused 192.0.2.1"));
        assert_eq!(log.unsaid, 0);
    }
}
