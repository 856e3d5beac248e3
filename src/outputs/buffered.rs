//! A disk queue in front of any output (`queue-dir` on a file, the journal, stderr or a
//! templated file): each message is encoded as the output would hold it (its line, its entry)
//! and written to the queue (`queue::disk`) before anything else happens to it; the output is
//! fed from the queue, and a message leaves the queue only once the output took it (written
//! to the file, accepted by journald). So an output that stalls (a slow NFS mount, a full
//! disk, a journald that stops reading) holds what it was given on disk, not in memory, and a
//! SIGKILL while it stalls loses nothing: the restart writes again what was not taken (a file
//! may then hold the last lines twice, at most what one write-out moved).
//!
//! The forward output keeps its queue itself (what it sends waits for the remote's
//! acknowledgement, and several requests may be in flight), so it is never wrapped here.

use std::collections::VecDeque;
use std::io;
use std::path::Path;

use super::queue::disk::DiskQueue;
use super::{Output, Sink, WriteOut};
use crate::receipt::Mark;
use syslog::message::Message;

/// What one write-out moves from the disk queue into the output's memory at most.
const MOVE_BYTES: usize = 256 * 1024;

/// An output fed from a disk queue.
pub(super) struct DiskBuffered {
    inner: Sink,
    queue: Box<DiskQueue>,
    dir: String,
    /// The sequence numbers of the messages moved into the output and not yet taken by it,
    /// oldest first.
    moved: VecDeque<u64>,
    item: Vec<u8>,
    /// The queue refuses writes (a full filesystem): said once, until it takes them again.
    disk_failing: bool,
}

impl DiskBuffered {
    /// Puts the queue in `dir` in front of `inner`.
    pub(super) fn new(inner: Sink, queue: DiskQueue, dir: &Path) -> DiskBuffered {
        DiskBuffered {
            inner,
            queue: Box::new(queue),
            dir: dir.display().to_string(),
            moved: VecDeque::new(),
            item: Vec::new(),
            disk_failing: false,
        }
    }

    /// Says once when the queue stops taking messages and once when it takes them again.
    fn note_disk(&mut self, flushed: &io::Result<()>) {
        match (flushed, self.disk_failing) {
            (Err(e), false) => {
                self.disk_failing = true;
                log::error!(
                    "{}: cannot write its disk queue {}: {e}; {} messages wait in memory and go \
                     to disk as soon as there is room, while what it holds is still written",
                    self.inner.describe(),
                    self.dir,
                    self.queue.pending_messages()
                );
            }
            (Ok(()), true) => {
                self.disk_failing = false;
                log::info!(
                    "{}: its disk queue {} takes messages again",
                    self.inner.describe(),
                    self.dir
                );
            }
            _ => {}
        }
    }
}

impl Output for DiskBuffered {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn accept(&mut self, msg: &Message) {
        self.item.clear();
        self.inner.encode_item(msg, &mut self.item);
        self.queue.push(&self.item);
    }

    /// What waits in memory for the disk: what the output holds was read back from the disk
    /// (at most `MOVE_BYTES`), and was let go of when it was written there.
    fn backlog_bytes(&self) -> usize {
        self.queue.pending_bytes()
    }

    fn backlog_messages(&self) -> usize {
        self.queue.messages() as usize
    }

    fn write_out(&mut self) -> WriteOut {
        let flushed = self.queue.flush();
        self.note_disk(&flushed);
        let mut read_error = None;
        while self.inner.backlog_bytes() < MOVE_BYTES {
            match self.queue.next_unsent() {
                Ok(Some((seq, item))) => {
                    self.inner.accept_item(item);
                    self.moved.push_back(seq);
                }
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        let mut out = self.inner.write_out();
        let mut taken = None;
        for _ in 0..out.written + out.rejected {
            taken = self.moved.pop_front().or(taken);
        }
        if let Some(seq) = taken
            && let Err(e) = self.queue.ack_through(seq)
        {
            log::error!(
                "{}: its disk queue {}: {e}",
                self.inner.describe(),
                self.dir
            );
        }
        out.dropped += self.queue.take_dropped();
        let corrupt = self.queue.take_corrupt();
        if corrupt > 0 {
            log::error!(
                "{}: {corrupt} corrupt messages skipped in its disk queue {} (damaged while \
                 queued); the rest is written",
                self.inner.describe(),
                self.dir
            );
            out.rejected += corrupt;
        }
        if let Some(e) = read_error
            && out.error.is_none()
        {
            out.error = Some(e);
        }
        out
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.inner.reopen()
    }

    fn volatile_messages(&self) -> usize {
        self.queue.pending_messages() as usize
    }

    fn persist(&mut self) {
        let flushed = self.queue.flush();
        self.note_disk(&flushed);
    }

    fn mark_position(&mut self, position: &Mark) {
        self.queue.push_position(position.key, &position.text);
    }

    fn queued_position(&self, key: &str) -> Option<String> {
        self.queue.position(key).map(str::to_owned)
    }

    fn link_state(&self) -> Option<super::forward::LinkState> {
        self.inner.link_state()
    }

    fn finish(&mut self) {
        self.persist();
        self.inner.finish();
    }

    fn hand_over(&mut self, uid: nix::unistd::Uid, gid: nix::unistd::Gid) {
        self.inner.hand_over(uid, gid);
        if let Err(e) = self.queue.hand_over(uid, gid) {
            log::warn!("cannot give the disk queue {} to uid {uid}: {e}", self.dir);
        }
    }
}
