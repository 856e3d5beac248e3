//! A forward output's queue: encoded messages, each with a sequence number, from the oldest not
//! yet delivered to the newest. A send cursor runs ahead of the head: what lies between was sent
//! and waits for its acknowledgement (RELP), and a broken connection rewinds the cursor to the
//! head, so all of it is sent again. In memory (bounded by the output's queue-size, lost with
//! the process) or on disk (`disk::DiskQueue`: survives a crash of logger and of the remote).

use std::collections::VecDeque;
use std::io;

pub mod disk;

use disk::DiskQueue;

/// The queue of one forward output.
pub enum Queue {
    /// In memory.
    Memory(MemoryQueue),
    /// In `queue-dir` (boxed: its bookkeeping outweighs a memory queue's).
    Disk(Box<DiskQueue>),
}

impl Queue {
    /// Adds an encoded message at the tail.
    pub fn push(&mut self, payload: Vec<u8>) {
        match self {
            Queue::Memory(q) => q.push(payload),
            Queue::Disk(q) => q.push(&payload),
        }
    }

    /// Makes what was pushed durable as the policy says (disk), before it is sent.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Queue::Memory(_) => Ok(()),
            Queue::Disk(q) => q.flush(),
        }
    }

    /// The next message not yet sent, with its sequence number; advances the send cursor.
    pub fn next_unsent(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        match self {
            Queue::Memory(q) => Ok(q.next_unsent()),
            Queue::Disk(q) => q.next_unsent(),
        }
    }

    /// Everything up to `seq` is delivered.
    pub fn ack_through(&mut self, seq: u64) -> io::Result<()> {
        match self {
            Queue::Memory(q) => {
                q.ack_through(seq);
                Ok(())
            }
            Queue::Disk(q) => q.ack_through(seq),
        }
    }

    /// The connection broke: what was sent and not acknowledged is sent again.
    pub fn rewind(&mut self) {
        match self {
            Queue::Memory(q) => q.sent = 0,
            Queue::Disk(q) => q.rewind(),
        }
    }

    /// Messages not yet delivered.
    pub fn messages(&self) -> u64 {
        match self {
            Queue::Memory(q) => q.items.len() as u64,
            Queue::Disk(q) => q.messages(),
        }
    }

    /// Bytes held in memory (what the output's queue-size bounds).
    pub fn memory_bytes(&self) -> usize {
        match self {
            Queue::Memory(q) => q.bytes,
            Queue::Disk(q) => q.pending_bytes(),
        }
    }

    /// Messages held in memory only (a stop loses them unless they are delivered).
    pub fn volatile_messages(&self) -> u64 {
        match self {
            Queue::Memory(q) => q.items.len() as u64,
            Queue::Disk(q) => q.pending_messages(),
        }
    }

    /// Before a privilege drop: a disk queue becomes the user's.
    pub fn hand_over(&self, uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> io::Result<()> {
        match self {
            Queue::Memory(_) => Ok(()),
            Queue::Disk(q) => q.hand_over(uid, gid),
        }
    }

    /// True if there is a message not yet sent.
    pub fn has_unsent(&self) -> bool {
        match self {
            Queue::Memory(q) => q.sent < q.items.len(),
            Queue::Disk(q) => q.has_unsent(),
        }
    }
}

/// The queue in memory.
#[derive(Default)]
pub struct MemoryQueue {
    items: VecDeque<Vec<u8>>,
    /// The sequence number of `items[0]`.
    head: u64,
    /// How many of `items` were sent (and wait for their acknowledgement).
    sent: usize,
    bytes: usize,
}

impl MemoryQueue {
    fn push(&mut self, payload: Vec<u8>) {
        self.bytes += payload.len();
        self.items.push_back(payload);
    }

    fn next_unsent(&mut self) -> Option<(u64, &[u8])> {
        let item = self.items.get(self.sent)?;
        let seq = self.head + self.sent as u64;
        self.sent += 1;
        Some((seq, item))
    }

    fn ack_through(&mut self, seq: u64) {
        while self.head <= seq {
            let Some(item) = self.items.pop_front() else {
                break;
            };
            self.bytes -= item.len();
            self.head += 1;
            self.sent = self.sent.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_queue_resends_what_was_not_acknowledged() {
        let mut q = Queue::Memory(MemoryQueue::default());
        for i in 0..4u8 {
            q.push(vec![i; 3]);
        }
        assert_eq!(q.next_unsent().unwrap().unwrap().0, 0);
        assert_eq!(q.next_unsent().unwrap().unwrap().0, 1);
        assert_eq!(q.next_unsent().unwrap().unwrap().0, 2);
        q.ack_through(0).unwrap();
        q.rewind();
        let (seq, bytes) = q.next_unsent().unwrap().unwrap();
        assert_eq!((seq, bytes), (1, &[1u8, 1, 1][..]));
        assert_eq!(q.messages(), 3);
        assert_eq!(q.memory_bytes(), 9);
        q.ack_through(3).unwrap();
        assert_eq!(q.messages(), 0);
        assert!(!q.has_unsent());
    }
}
