//! A backlog of encoded records (journal entries, export entries) in one buffer: taking a
//! message costs a copy into it, not an allocation of its own, and records side by side are
//! one slice to send. What the backlog weighs is its bytes, as every output counts it.

use std::collections::VecDeque;

/// A buffer emptied whole above this capacity is given back rather than kept for the next
/// burst: a quiet output holds no more than this of a past one.
const KEEP_CAPACITY: usize = 1 << 20;

/// Records in the order taken.
#[derive(Debug, Default)]
pub(super) struct Records {
    /// The records' bytes from `head` on, one after the other.
    data: Vec<u8>,
    head: usize,
    /// Each record's length, first to last.
    lens: VecDeque<usize>,
}

impl Records {
    /// An empty backlog.
    pub(super) fn new() -> Records {
        Records::default()
    }

    /// Adds the record `encode` appends to the buffer it is given.
    pub(super) fn push_with(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        let start = self.data.len();
        encode(&mut self.data);
        self.lens.push_back(self.data.len() - start);
    }

    /// Adds `record`.
    pub(super) fn push(&mut self, record: &[u8]) {
        self.push_with(|data| data.extend_from_slice(record));
    }

    /// How many records.
    pub(super) fn len(&self) -> usize {
        self.lens.len()
    }

    /// True without any record.
    pub(super) fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// What the records weigh, in bytes.
    pub(super) fn bytes(&self) -> usize {
        self.data.len() - self.head
    }

    /// Each record's length, first to last.
    pub(super) fn lens(&self) -> impl Iterator<Item = usize> + '_ {
        self.lens.iter().copied()
    }

    /// The first record.
    pub(super) fn front(&self) -> Option<&[u8]> {
        let len = *self.lens.front()?;
        Some(&self.data[self.head..self.head + len])
    }

    /// The bytes of the `n` records from the `start`th (fewer if there are fewer).
    pub(super) fn span(&self, start: usize, n: usize) -> &[u8] {
        let skip: usize = self.lens.iter().take(start).sum();
        let len: usize = self.lens.iter().skip(start).take(n).sum();
        let from = self.head + skip;
        &self.data[from..from + len]
    }

    /// Drops the first `n` records (fewer if there are fewer); the bytes they held.
    pub(super) fn pop_front(&mut self, n: usize) -> usize {
        let n = n.min(self.lens.len());
        let bytes: usize = self.lens.drain(..n).sum();
        self.head += bytes;
        if self.lens.is_empty() {
            self.head = 0;
            if self.data.capacity() > KEEP_CAPACITY {
                self.data = Vec::new();
            } else {
                self.data.clear();
            }
        } else if self.head > self.data.len() / 2 && self.head >= 64 * 1024 {
            // Moving what is left to the front costs at most what was taken off it.
            self.data.drain(..self.head);
            self.head = 0;
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order_whole_and_side_by_side() {
        let mut r = Records::new();
        r.push(b"one\n");
        r.push_with(|d| d.extend_from_slice(b"two\n"));
        r.push(b"three\n");
        assert_eq!((r.len(), r.bytes()), (3, 14));
        assert_eq!(r.front(), Some(b"one\n".as_slice()));
        assert_eq!(r.span(1, 2), b"two\nthree\n");
        assert_eq!(r.span(2, 9), b"three\n");
        assert_eq!(r.pop_front(1), 4);
        assert_eq!(r.front(), Some(b"two\n".as_slice()));
        assert_eq!(r.lens().collect::<Vec<_>>(), [4, 6]);
        assert_eq!(r.pop_front(5), 10);
        assert!(r.is_empty() && r.bytes() == 0 && r.front().is_none());
    }

    #[test]
    fn a_long_backlog_taken_from_the_front_keeps_its_records_and_gives_room_back() {
        let mut r = Records::new();
        let record = |i: u32| format!("record {i:06} {}\n", "x".repeat((i % 300) as usize));
        for i in 0..5_000 {
            r.push(record(i).as_bytes());
        }
        for i in 0..4_000 {
            assert_eq!(r.front(), Some(record(i).as_bytes()));
            r.pop_front(1);
            r.push(record(5_000 + i).as_bytes());
        }
        assert!(r.data.len() <= 2 * r.bytes() + 64 * 1024);
        for i in 4_000..9_000 {
            assert_eq!(r.front(), Some(record(i).as_bytes()));
            r.pop_front(1);
        }
        assert!(r.is_empty() && r.data.capacity() <= KEEP_CAPACITY);
    }
}
