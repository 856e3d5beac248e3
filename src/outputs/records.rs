//! A backlog of encoded records (journal entries, export entries) in chunks: small records are
//! encoded side by side into shared chunks of [`CHUNK`] bytes, so taking a message costs a copy,
//! not an allocation of its own; a record expected past [`BIG`] gets a chunk of its own, sized
//! for it, as it would alone. What the backlog weighs is its records' bytes, and what it holds
//! is that and at most the unused end of each shared chunk: a 2 MiB entry costs 2 MiB, not a
//! doubling of one buffer that holds everything.

use std::collections::VecDeque;

/// The size of a shared chunk.
const CHUNK: usize = 64 * 1024;
/// A record expected to be larger than this gets a chunk of its own.
const BIG: usize = CHUNK / 4;

/// Records side by side, never across chunks.
#[derive(Debug)]
struct Chunk {
    data: Vec<u8>,
    /// How many records of the backlog are in it.
    records: usize,
    /// Others may be appended (a shared chunk, not one sized for a big record).
    shared: bool,
}

/// Records in the order taken.
#[derive(Debug, Default)]
pub(super) struct Records {
    chunks: VecDeque<Chunk>,
    /// Where the first record starts in the first chunk.
    head: usize,
    /// Each record's length, first to last.
    lens: VecDeque<usize>,
    bytes: usize,
    /// An emptied shared chunk kept for the next records (a steady stream allocates nothing).
    spare: Option<Vec<u8>>,
}

impl Records {
    /// An empty backlog.
    pub(super) fn new() -> Records {
        Records::default()
    }

    /// Adds the record `encode` appends to the buffer it is given; `expected` is about how
    /// long it will be (a message's weight), which chooses where it goes.
    pub(super) fn push_with(&mut self, expected: usize, encode: impl FnOnce(&mut Vec<u8>)) {
        let fits = |c: &Chunk| c.shared && c.data.len() + expected <= CHUNK;
        if expected > BIG {
            self.chunks.push_back(Chunk {
                data: Vec::with_capacity(expected),
                records: 0,
                shared: false,
            });
        } else if !self.chunks.back().is_some_and(fits) {
            let data = self
                .spare
                .take()
                .unwrap_or_else(|| Vec::with_capacity(CHUNK));
            self.chunks.push_back(Chunk {
                data,
                records: 0,
                shared: true,
            });
        }
        let chunk = self.chunks.back_mut().expect("a chunk was made above");
        let start = chunk.data.len();
        encode(&mut chunk.data);
        let len = chunk.data.len() - start;
        chunk.records += 1;
        self.lens.push_back(len);
        self.bytes += len;
    }

    /// Adds `record`.
    pub(super) fn push(&mut self, record: &[u8]) {
        self.push_with(record.len(), |data| data.extend_from_slice(record));
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
        self.bytes
    }

    /// Each record's length, first to last.
    pub(super) fn lens(&self) -> impl Iterator<Item = usize> + '_ {
        self.lens.iter().copied()
    }

    /// The first record.
    pub(super) fn front(&self) -> Option<&[u8]> {
        let len = *self.lens.front()?;
        let chunk = self.chunks.front()?;
        Some(&chunk.data[self.head..self.head + len])
    }

    /// Appends to `out` the `n` records from the `start`th (fewer if there are fewer).
    pub(super) fn copy_out(&self, start: usize, n: usize, out: &mut Vec<u8>) {
        let mut lens = self.lens.iter();
        let mut at = self.head;
        let mut index = 0;
        for chunk in &self.chunks {
            for _ in 0..chunk.records {
                let Some(&len) = lens.next() else { return };
                if index >= start + n {
                    return;
                }
                if index >= start {
                    out.extend_from_slice(&chunk.data[at..at + len]);
                }
                at += len;
                index += 1;
            }
            at = 0;
        }
    }

    /// Drops the first `n` records (fewer if there are fewer); the bytes they held.
    pub(super) fn pop_front(&mut self, n: usize) -> usize {
        let mut dropped = 0;
        for _ in 0..n {
            let (Some(len), Some(chunk)) = (self.lens.pop_front(), self.chunks.front_mut()) else {
                break;
            };
            dropped += len;
            self.head += len;
            chunk.records -= 1;
            if chunk.records == 0 {
                let chunk = self.chunks.pop_front().expect("the front chunk");
                if chunk.shared && chunk.data.capacity() <= CHUNK {
                    let mut data = chunk.data;
                    data.clear();
                    self.spare = Some(data);
                }
                self.head = 0;
            }
        }
        self.bytes -= dropped;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> Vec<u8> {
        let size = match i % 7 {
            0 => 3 * CHUNK,
            1 => BIG + 1,
            _ => i % 500,
        };
        let mut r = format!("record {i:06} ").into_bytes();
        r.resize(r.len() + size, b'x');
        r.push(b'\n');
        r
    }

    #[test]
    fn records_come_back_in_order_whole() {
        let mut r = Records::new();
        r.push(b"one\n");
        r.push_with(4, |d| d.extend_from_slice(b"two\n"));
        r.push(b"three\n");
        assert_eq!((r.len(), r.bytes()), (3, 14));
        assert_eq!(r.front(), Some(b"one\n".as_slice()));
        let mut out = Vec::new();
        r.copy_out(1, 2, &mut out);
        assert_eq!(out, b"two\nthree\n");
        out.clear();
        r.copy_out(2, 9, &mut out);
        assert_eq!(out, b"three\n");
        assert_eq!(r.pop_front(1), 4);
        assert_eq!(r.front(), Some(b"two\n".as_slice()));
        assert_eq!(r.lens().collect::<Vec<_>>(), [4, 6]);
        assert_eq!(r.pop_front(5), 10);
        assert!(r.is_empty() && r.bytes() == 0 && r.front().is_none());
    }

    #[test]
    fn small_and_big_records_cost_what_they_weigh_and_come_back_across_chunks() {
        let mut r = Records::new();
        for i in 0..300 {
            r.push(&record(i));
        }
        let held: usize = r.chunks.iter().map(|c| c.data.capacity()).sum();
        assert!(
            held <= r.bytes() + r.bytes() / 3 + CHUNK,
            "{held} bytes held for {} of records",
            r.bytes()
        );
        let mut out = Vec::new();
        r.copy_out(5, 20, &mut out);
        assert_eq!(out, (5..25).flat_map(record).collect::<Vec<_>>());
        for i in 0..200 {
            assert_eq!(r.front(), Some(record(i).as_slice()));
            r.pop_front(1);
            r.push(&record(300 + i));
        }
        for i in 200..500 {
            assert_eq!(r.front(), Some(record(i).as_slice()));
            r.pop_front(1);
        }
        assert!(r.is_empty() && r.bytes() == 0 && r.chunks.is_empty());
    }
}
