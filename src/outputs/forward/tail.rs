//! What a TCP or TLS connection of a forward output took and the remote's TCP has not yet
//! acknowledged, so that a connection that breaks (the remote killed, reset, rebooted) does not
//! lose what sat in the kernel's send buffer.
//!
//! Offsets count the bytes given to the connection since it opened. The kernel says how many of
//! those the remote has not acknowledged (`sys::unacknowledged_bytes`); a message that ends at
//! or before the acknowledged offset is delivered. A message counts as acknowledged only whole,
//! and is sent again whole: the remote may see it twice, never cut.
//!
//! Memory: a batch is kept until its last message is acknowledged, so the tail holds what the
//! socket's send buffer holds plus the rest of the oldest batch (one write-out's batch is at
//! most `STREAM_BATCH` and one message): bounded by the send buffer the link sets.

use std::collections::VecDeque;

/// Framed messages given to one connection, in order.
#[derive(Default)]
pub struct Tail {
    chunks: VecDeque<Chunk>,
    /// The buffers of a batch forgotten, for the next (a batch is framed into one).
    spare: Option<(Vec<u8>, Vec<u64>)>,
}

/// One batch as it was written.
struct Chunk {
    /// The connection's offset of `bytes[0]`.
    start: u64,
    bytes: Vec<u8>,
    /// The connection's offset at the end of each message, ascending.
    ends: Vec<u64>,
    /// The queue's sequence number of the first message.
    first_seq: u64,
    /// How many of its messages `acknowledged` reported.
    reported: usize,
}

/// Messages to send again on a new connection: framed, with where each ends in `bytes`.
#[derive(Debug, Default, PartialEq)]
pub struct Resend {
    /// The framed messages.
    pub bytes: Vec<u8>,
    /// Where each ends in `bytes`.
    pub ends: Vec<u64>,
}

impl Tail {
    /// Records a batch of messages `first_seq..` written at offset `start`, of which the first
    /// `reported` were reported acknowledged already; `ends` are relative to `bytes`.
    pub fn push(
        &mut self,
        start: u64,
        bytes: Vec<u8>,
        mut ends: Vec<u64>,
        first_seq: u64,
        reported: usize,
    ) {
        if ends.is_empty() {
            return;
        }
        for end in &mut ends {
            *end += start;
        }
        self.chunks.push_back(Chunk {
            start,
            bytes,
            ends,
            first_seq,
            reported,
        });
    }

    /// The remote acknowledged everything up to offset `acknowledged`: forgets the batches it
    /// covers whole, and returns how many messages that acknowledged which were not before, and
    /// the sequence number of the last of them.
    pub fn acknowledged(&mut self, acknowledged: u64) -> Option<(u64, usize)> {
        let mut newly = 0;
        let mut last = None;
        while let Some(chunk) = self.chunks.front_mut() {
            let done = chunk.ends.partition_point(|&e| e <= acknowledged);
            if done > chunk.reported {
                newly += done - chunk.reported;
                last = Some(chunk.first_seq + done as u64 - 1);
                chunk.reported = done;
            }
            if done < chunk.ends.len() {
                break;
            }
            let chunk = self.chunks.pop_front().expect("checked");
            self.spare = Some((chunk.bytes, chunk.ends));
        }
        last.map(|seq| (seq, newly))
    }

    /// Empty buffers for the next batch, reused from one forgotten if there is one.
    pub fn buffers(&mut self) -> (Vec<u8>, Vec<u64>) {
        let (mut bytes, mut ends) = self.spare.take().unwrap_or_default();
        bytes.clear();
        ends.clear();
        (bytes, ends)
    }

    /// Bytes held.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.bytes.len()).sum()
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.chunks.clear();
    }

    /// Empties the tail into the messages that end after `acknowledged`, to send again.
    pub fn take_unacknowledged(&mut self, acknowledged: u64) -> Resend {
        let mut resend = Resend::default();
        for chunk in self.chunks.drain(..) {
            // The first message not acknowledged, and where it starts.
            let first = chunk.ends.partition_point(|&e| e <= acknowledged);
            let from = if first == 0 {
                chunk.start
            } else {
                chunk.ends[first - 1]
            };
            let base = resend.bytes.len() as u64;
            resend
                .bytes
                .extend_from_slice(&chunk.bytes[(from - chunk.start) as usize..]);
            resend
                .ends
                .extend(chunk.ends[first..].iter().map(|e| base + e - from));
        }
        resend
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages 7 "aa", 8 "bbb", 9 "c" written as two batches from offset 10.
    fn tail() -> Tail {
        let mut t = Tail::default();
        t.push(10, b"aabbb".to_vec(), vec![2, 5], 7, 0);
        t.push(15, b"c".to_vec(), vec![1], 9, 0);
        t
    }

    #[test]
    fn acknowledgements_are_reported_once_per_message() {
        let mut t = tail();
        assert_eq!(t.acknowledged(11), None, "no message is acknowledged whole");
        assert_eq!(t.acknowledged(14), Some((7, 1)));
        assert_eq!(t.bytes(), 6, "the first batch still has a message waiting");
        assert_eq!(t.acknowledged(14), None);
        assert_eq!(t.acknowledged(16), Some((9, 2)));
        assert!(t.is_empty());
        assert_eq!(t.bytes(), 0);
    }

    #[test]
    fn a_message_partly_acknowledged_is_sent_again_whole() {
        let mut t = tail();
        let resend = t.take_unacknowledged(13);
        assert_eq!(resend.bytes, b"bbbc");
        assert_eq!(resend.ends, [3, 4]);
        assert!(t.is_empty());
        assert_eq!(t.bytes(), 0);
    }

    #[test]
    fn nothing_acknowledged_sends_everything_again() {
        let resend = tail().take_unacknowledged(0);
        assert_eq!(resend.bytes, b"aabbbc");
        assert_eq!(resend.ends, [2, 5, 6]);
        assert_eq!(tail().take_unacknowledged(16), Resend::default());
    }
}
