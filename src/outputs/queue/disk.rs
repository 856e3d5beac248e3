//! The disk queue of an output (`queue-dir`): crash-safe, segmented, checksummed.
//!
//! ```text
//! queue-dir/lock                        flock(2)ed while an output uses the directory
//! queue-dir/head                        8 bytes: the sequence number of the oldest undelivered
//! queue-dir/00000000000000000042.seg    records from sequence number 42 on, appended
//! ```
//!
//! A record is `MAGIC LEN SEQ CRC PAYLOAD` (little-endian; CRC-32 of SEQ and PAYLOAD; encoded
//! and decoded by the pure `syslog::queue_record`, which is fuzzed). Records
//! are appended with write(2): once written they survive SIGKILL of logger (they are in the page
//! cache); `queue-fsync` decides when they are also on the disk (power loss). The head moves as
//! the remote acknowledges (RELP) or the socket takes (TCP, TLS, UDP) messages, and is rewritten
//! in place; a segment wholly before it is deleted. A crash between a delivery and the head's
//! rewrite sends a few messages again (bounded by what one acknowledgement covers); it never
//! loses one.
//!
//! A forward output that takes messages from an input keeping a read position (the journal,
//! the kernel log) also queues that position: after the records of each batch, a position
//! record (`POSITION_MAGIC`, the same layout, its sequence number that of the next message,
//! its payload `KEY NUL TEXT`) in the same write. The latest position per key that has reached
//! the disk is what the queue vouches for ([`DiskQueue::position`]): once a segment holding
//! one is deleted, `queue-dir/positions` keeps them (written whole, renamed into place) before
//! it goes. At start an input resumes after what its disk-queued outputs hold, so a SIGKILL
//! between the queue's write and the input's own save reads nothing twice.
//!
//! At start every segment is read once: a record whose magic, length or checksum is wrong is
//! skipped up to the next valid record (found by its magic and checksum), and the messages lost
//! there are counted from the sequence numbers and logged as corrupt. A torn record at the end
//! of the last segment (logger killed mid-write) is the same case. Writing always starts a new
//! segment, so nothing is ever appended after damage.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::Uid;

use crate::config::{Fsync, QueuePolicy};
use syslog::queue_record::{self, Decoded, Kind};

/// The latest positions of deleted segments.
const POSITIONS_FILE: &str = "positions";
/// What a read of a segment takes at once.
const READ_CHUNK: usize = 256 * 1024;

/// A segment file: its first sequence number and size.
struct Segment {
    first: u64,
    size: u64,
}

/// Reading a segment sequentially.
struct Reader {
    /// The segment's first sequence number.
    first: u64,
    file: File,
    buf: Vec<u8>,
    /// Where in `buf` the next record starts.
    pos: usize,
    /// The file offset of `buf[0]`.
    base: u64,
    eof: bool,
}

/// What a whole-queue scan found, for the start-up log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Messages waiting from before.
    pub messages: u64,
    /// Their bytes on disk.
    pub bytes: u64,
    /// Messages lost to damage (a torn last record counts one).
    pub corrupt: u64,
    /// The head pointed past every record on disk (a bit flip, a rogue write): the sequence
    /// number it held. The queue is read from its first record instead, so nothing is lost
    /// and what was delivered already may come again.
    pub head_past_data: Option<u64>,
}

/// The queue.
pub struct DiskQueue {
    dir: PathBuf,
    lock: Flock<File>,
    head_file: File,
    segments: VecDeque<Segment>,
    /// The last segment, appended to.
    tail: File,
    /// The oldest undelivered message.
    head: u64,
    /// The next message to send.
    cursor: u64,
    /// The sequence number the next pushed message gets.
    next_seq: u64,
    /// Records pushed and not yet written, their count and the first one's sequence number.
    pending: Vec<u8>,
    pending_count: u64,
    reader: Option<Reader>,
    max_bytes: u64,
    segment_max: u64,
    fsync: Fsync,
    policy: QueuePolicy,
    last_sync: Instant,
    /// Written since the last sync.
    unsynced: bool,
    /// Messages dropped by `flush` since the caller last took the count.
    dropped: u64,
    /// Messages found damaged while running, not yet reported (`take_corrupt`).
    corrupt: u64,
    /// Where damage was counted up to, so that a rewind does not count it twice.
    counted_to: u64,
    /// Damaged messages at the end of the tail, sent after messages still waiting for an
    /// answer: the head passes them once those are answered.
    lost_at_end: Option<std::ops::Range<u64>>,
    /// The latest position per input key among the records written (deleted ones included).
    positions: BTreeMap<String, String>,
    /// `positions` changed since `queue-dir/positions` was written.
    positions_unsaved: bool,
    /// Position records pushed and not yet written: where each ends in `pending`.
    pending_positions: Vec<(usize, String, String)>,
}

impl DiskQueue {
    /// Opens (creating it if need be) the queue in `dir`, reading what it holds. The directory
    /// and its segments must belong to `daemon_uid` (the user the daemon runs as) or to us:
    /// as root, a queue another user prepared would be forwarded as if we had received it.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        fsync: Fsync,
        policy: QueuePolicy,
        daemon_uid: Uid,
    ) -> io::Result<(DiskQueue, Recovered)> {
        let claimed = Claimed::take(dir, daemon_uid)?;
        let mut recovered = Recovered::default();
        let head = clamp_head(dir, &claimed.firsts, claimed.head, &mut recovered)?;
        let found = recover(dir, &claimed.firsts, head, fsync, &mut recovered)?;
        let (head, next_seq, mut segments) = (found.head, found.next_seq, found.segments);
        let tail = create_segment(dir, next_seq, fsync != Fsync::Off)?;
        segments.push_back(Segment {
            first: next_seq,
            size: 0,
        });
        let q = DiskQueue {
            dir: dir.to_owned(),
            lock: claimed.lock,
            head_file: claimed.head_file,
            segments,
            tail,
            head,
            cursor: head,
            next_seq,
            pending: Vec::new(),
            pending_count: 0,
            reader: None,
            max_bytes,
            segment_max: (max_bytes / 16).clamp(64 << 10, 64 << 20),
            fsync,
            policy,
            last_sync: Instant::now(),
            unsynced: false,
            dropped: 0,
            corrupt: 0,
            counted_to: next_seq,
            lost_at_end: None,
            positions: found.positions,
            positions_unsaved: !found.positions_saved,
            pending_positions: Vec::new(),
        };
        q.write_head()?;
        Ok((q, recovered))
    }

    /// Adds a message (written at the next `flush`).
    pub fn push(&mut self, payload: &[u8]) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending_count += 1;
        queue_record::encode(&mut self.pending, Kind::Message, seq, payload);
    }

    /// Adds an input's read position as of the messages pushed so far (written with them at
    /// the next `flush`, in the same write).
    pub fn push_position(&mut self, key: &str, text: &str) {
        queue_record::encode_position(&mut self.pending, self.next_seq, key, text);
        self.pending_positions
            .push((self.pending.len(), key.to_owned(), text.to_owned()));
    }

    /// The latest read position of input `key` that this queue holds on disk.
    pub fn position(&self, key: &str) -> Option<&str> {
        self.positions.get(key).map(String::as_str)
    }

    /// Bytes pushed and not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Messages pushed and not yet written.
    pub fn pending_messages(&self) -> u64 {
        self.pending_count
    }

    /// Messages not yet delivered (on disk and pending).
    pub fn messages(&self) -> u64 {
        self.next_seq - self.head
    }

    /// Bytes the segments take on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// Messages dropped by `flush` since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// True if a written message waits to be sent.
    pub fn has_unsent(&self) -> bool {
        self.cursor < self.written_end()
    }

    /// The sequence number after the last one written.
    fn written_end(&self) -> u64 {
        self.next_seq - self.pending_count
    }

    /// Writes what was pushed, syncing as the policy says. With no room, the policy decides:
    /// `block` keeps it pending and says so (the output's memory queue then fills and holds
    /// the inputs back), `drop` and `block-bounded` drop it, `drop-oldest` deletes the oldest
    /// segments.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return self.sync_if_due();
        }
        let need = self.pending.len() as u64;
        while self.disk_bytes() + need > self.max_bytes {
            match self.policy {
                QueuePolicy::DropOldest if self.segments.len() > 1 => self.drop_oldest()?,
                QueuePolicy::Drop | QueuePolicy::BlockBounded => {
                    self.dropped += self.pending_count;
                    self.next_seq -= self.pending_count;
                    self.pending.clear();
                    self.pending_count = 0;
                    self.pending_positions.clear();
                    return Ok(());
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::StorageFull,
                        format!(
                            "the disk queue {} is full ({} bytes)",
                            self.dir.display(),
                            self.max_bytes
                        ),
                    ));
                }
            }
        }
        if let Err(e) = self.write_pending() {
            if is_disk_full(&e) {
                // Start a new tail, so that the full one is deleted once what it holds is
                // delivered: space comes back as the remote takes messages.
                if self.segments.back().is_some_and(|s| s.size > 0) && self.roll().is_ok() {
                    self.drop_delivered()?;
                }
            }
            return Err(e);
        }
        if self.fsync == Fsync::Batch {
            self.sync()?;
        } else {
            self.sync_if_due()?;
        }
        if self
            .segments
            .back()
            .is_some_and(|s| s.size >= self.segment_max)
        {
            self.roll()?;
        }
        Ok(())
    }

    /// Writes what was pushed to the tail segment, as far as the disk takes it. A disk that
    /// fills keeps the whole records written before it stopped (the torn rest is cut off), and
    /// what did not fit stays pending: a write larger than the free space is not retried whole
    /// for ever.
    fn write_pending(&mut self) -> io::Result<()> {
        let mut written = 0;
        let result = loop {
            if written == self.pending.len() {
                break Ok(());
            }
            match self.tail.write(&self.pending[written..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let (whole, records) = match result {
            Ok(()) => (written, self.pending_count),
            Err(_) => queue_record::whole_records(&self.pending, written),
        };
        let tail = self.segments.back_mut().expect("a tail segment");
        if whole < written {
            let _ = self.tail.set_len(tail.size + whole as u64);
            let _ = self.tail.seek(SeekFrom::Start(tail.size + whole as u64));
        }
        tail.size += whole as u64;
        self.pending.drain(..whole);
        self.pending_count -= records;
        let written = self
            .pending_positions
            .iter()
            .take_while(|(end, _, _)| *end <= whole)
            .count();
        for (_, key, text) in self.pending_positions.drain(..written) {
            self.positions.insert(key, text);
            self.positions_unsaved = true;
        }
        for (end, _, _) in &mut self.pending_positions {
            *end -= whole;
        }
        if whole > 0 {
            self.unsynced = true;
            if result.is_err() && self.fsync != Fsync::Off {
                // Records that made it count as queued: make them so.
                let _ = self.sync();
            }
        }
        result
    }

    /// Starts a new tail segment, at the first message not written yet.
    fn roll(&mut self) -> io::Result<()> {
        if self.fsync != Fsync::Off {
            self.sync()?;
        }
        let first = self.written_end();
        self.tail = create_segment(&self.dir, first, self.fsync != Fsync::Off)?;
        self.segments.push_back(Segment { first, size: 0 });
        Ok(())
    }

    /// Deletes the segments whose every message was delivered.
    fn drop_delivered(&mut self) -> io::Result<()> {
        while self.segments.len() > 1 && self.segments[1].first <= self.head {
            self.keep_positions()?;
            let old = self.segments.pop_front().expect("checked");
            if self.reader.as_ref().is_some_and(|r| r.first == old.first) {
                self.reader = None;
            }
            fs::remove_file(segment_path(&self.dir, old.first))?;
        }
        Ok(())
    }

    fn sync_if_due(&mut self) -> io::Result<()> {
        match self.fsync {
            Fsync::Every(d) if self.unsynced && self.last_sync.elapsed() >= d => self.sync(),
            _ => Ok(()),
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        self.tail.sync_data()?;
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Before a segment is deleted: the positions its records hold go to
    /// `queue-dir/positions`, so that the queue still vouches for them.
    fn keep_positions(&mut self) -> io::Result<()> {
        if self.positions_unsaved {
            save_positions(&self.dir, &self.positions, self.fsync != Fsync::Off)?;
            self.positions_unsaved = false;
        }
        Ok(())
    }

    /// Deletes the oldest segment, counting its undelivered messages as dropped.
    fn drop_oldest(&mut self) -> io::Result<()> {
        self.keep_positions()?;
        let old = self.segments.pop_front().expect("more than one segment");
        let next = self.segments.front().map_or(self.next_seq, |s| s.first);
        self.dropped += next.saturating_sub(self.head.max(old.first));
        fs::remove_file(segment_path(&self.dir, old.first))?;
        if self.head < next {
            self.head = next;
            self.write_head()?;
        }
        if self.cursor < next {
            self.cursor = next;
            self.reader = None;
        }
        Ok(())
    }

    /// The next written message not yet sent.
    pub fn next_unsent(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        loop {
            if self.cursor >= self.written_end() {
                return Ok(None);
            }
            let want = self.segment_of(self.cursor);
            if self.reader.as_ref().is_none_or(|r| r.first != want) {
                let file = open_file(&segment_path(&self.dir, want), false)?;
                self.reader = Some(Reader {
                    first: want,
                    file,
                    buf: Vec::new(),
                    pos: 0,
                    base: 0,
                    eof: false,
                });
            }
            let reader = self.reader.as_mut().expect("just opened");
            match reader.next_record()? {
                Some((_, _, Kind::Position)) => continue,
                Some((seq, range, Kind::Message)) if seq >= self.cursor => {
                    self.skipped(self.cursor..seq);
                    self.cursor = seq + 1;
                    let reader = self.reader.as_ref().expect("just read");
                    return Ok(Some((seq, &reader.buf[range])));
                }
                Some(_) => continue,
                None => {
                    // The end of this segment: on to the next, if there is one.
                    let next = self.segments.iter().map(|s| s.first).find(|&f| f > want);
                    match next {
                        Some(n) => {
                            self.skipped(self.cursor..n);
                            self.cursor = self.cursor.max(n);
                            self.reader = None;
                        }
                        None => {
                            // The tail, read to its end. What was written past the cursor and
                            // not read is damaged: writes are whole records, read back at once.
                            self.reader = None;
                            let end = self.written_end();
                            if self.cursor < end {
                                self.skipped(self.cursor..end);
                                if self.head == self.cursor {
                                    // Nothing before them waits for an answer: they leave now.
                                    self.head = end;
                                    self.write_head()?;
                                } else {
                                    self.lost_at_end = Some(self.cursor..end);
                                }
                                self.cursor = end;
                            }
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    /// Messages `range` were damaged on disk while queued (found reading them, or a segment
    /// ending early): counted once, even when a rewind reads past them again.
    fn skipped(&mut self, range: std::ops::Range<u64>) {
        let start = range.start.max(self.counted_to);
        if start < range.end {
            self.corrupt += range.end - start;
            self.counted_to = range.end;
        }
    }

    /// Messages found damaged while running since the last call.
    pub fn take_corrupt(&mut self) -> u64 {
        std::mem::take(&mut self.corrupt)
    }

    /// The first sequence number of the segment holding `seq`.
    fn segment_of(&self, seq: u64) -> u64 {
        self.segments
            .iter()
            .rev()
            .find(|s| s.first <= seq)
            .or(self.segments.front())
            .map_or(0, |s| s.first)
    }

    /// Everything up to `seq` is delivered: moves the head, deletes finished segments.
    pub fn ack_through(&mut self, seq: u64) -> io::Result<()> {
        if seq < self.head {
            return Ok(());
        }
        self.head = (seq + 1).min(self.next_seq);
        if let Some(lost) = self.lost_at_end.take_if(|lost| lost.start <= self.head) {
            self.head = self.head.max(lost.end);
        }
        self.cursor = self.cursor.max(self.head);
        self.drop_delivered()?;
        self.write_head()
    }

    /// A reload's new bound, sync and full-queue policy; what is queued stays.
    pub fn set_limits(&mut self, max_bytes: u64, fsync: Fsync, policy: QueuePolicy) {
        self.max_bytes = max_bytes;
        self.fsync = fsync;
        self.policy = policy;
    }

    /// Sends again from the head (a broken connection).
    pub fn rewind(&mut self) {
        if self.cursor != self.head {
            self.cursor = self.head;
            self.reader = None;
        }
    }

    /// Before a privilege drop: the directory and every file in it become the user's, so
    /// that new segments can be made and old ones read after it.
    pub fn hand_over(&self, uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> io::Result<()> {
        let own = |f: &File| nix::unistd::fchown(f, Some(uid), Some(gid)).map_err(io::Error::from);
        own(&File::open(&self.dir)?)?;
        own(&self.lock)?;
        own(&self.head_file)?;
        match File::open(self.dir.join(POSITIONS_FILE)) {
            Ok(f) => own(&f)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        for s in &self.segments {
            own(&open_file(&segment_path(&self.dir, s.first), false)?)?;
        }
        Ok(())
    }

    fn write_head(&self) -> io::Result<()> {
        self.head_file.write_all_at(&self.head.to_le_bytes(), 0)
    }
}

/// Opens the queue in `dir` with the bound, sync and policy of `spec`, and says what it found:
/// A queue directory made ours: created if need be, checked (a directory only its owner
/// writes, owned with everything in it by the daemon's user or us), locked, its head read and
/// its segments listed.
struct Claimed {
    lock: Flock<File>,
    head_file: File,
    /// The head as written (not yet checked against the data).
    head: u64,
    /// Each segment's first sequence number, in order.
    firsts: Vec<u64>,
}

impl Claimed {
    fn take(dir: &Path, daemon_uid: Uid) -> io::Result<Claimed> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let meta = fs::symlink_metadata(dir)?;
        if !meta.is_dir() || meta.mode() & 0o022 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} must be a directory writable by its owner alone",
                    dir.display()
                ),
            ));
        }
        let trusted = |uid: u32| uid == daemon_uid.as_raw() || uid == Uid::effective().as_raw();
        if !trusted(meta.uid()) {
            return Err(not_ours(dir, meta.uid(), daemon_uid));
        }
        let lock = open_file(&dir.join("lock"), true)?;
        let lock = Flock::lock(lock, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "{} is in use by another output or process ({e})",
                    dir.display()
                ),
            )
        })?;
        let head_file = open_file(&dir.join("head"), true)?;
        let mut head_bytes = [0u8; 8];
        let head = match head_file.read_at(&mut head_bytes, 0)? {
            8 => u64::from_le_bytes(head_bytes),
            _ => 0,
        };
        let mut firsts: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name();
                let name = name.to_str()?;
                name.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        firsts.sort_unstable();
        let head_owner = head_file.metadata()?.uid();
        if !trusted(head_owner) {
            return Err(not_ours(&dir.join("head"), head_owner, daemon_uid));
        }
        let positions_path = dir.join(POSITIONS_FILE);
        let positions_file = positions_path.exists().then_some(positions_path);
        let segment_paths = firsts.iter().map(|&first| segment_path(dir, first));
        for path in positions_file.into_iter().chain(segment_paths) {
            let owner = fs::symlink_metadata(&path)?.uid();
            if !trusted(owner) {
                return Err(not_ours(&path, owner, daemon_uid));
            }
        }
        Ok(Claimed {
            lock,
            head_file,
            head,
            firsts,
        })
    }
}

/// The head, checked against the data: it can point at most just past the last record, or at
/// the first sequence number of the newest segment (empty once all was delivered). Further
/// means damage: taken at its word it would skip, and delete, every record on disk; the queue
/// is read from its oldest segment instead.
fn clamp_head(dir: &Path, firsts: &[u64], head: u64, recovered: &mut Recovered) -> io::Result<u64> {
    let (Some(&oldest), Some(&newest)) = (firsts.first(), firsts.last()) else {
        return Ok(head);
    };
    let last = scan_segment(&segment_path(dir, newest))?
        .seqs
        .last()
        .copied();
    let end = last.map_or(newest, |s| newest.max(s + 1));
    if head > end {
        recovered.head_past_data = Some(head);
        return Ok(oldest);
    }
    Ok(head)
}

/// What the segments hold, read once at start.
struct Found {
    /// The segments with undelivered messages (emptied ones are deleted).
    segments: VecDeque<Segment>,
    head: u64,
    next_seq: u64,
    positions: BTreeMap<String, String>,
    /// `positions` is what `queue-dir/positions` holds.
    positions_saved: bool,
}

/// Reads every segment: counts what waits and what damage lost (gaps in the sequence numbers,
/// a torn end), keeps the latest read positions, and deletes segments holding nothing to send
/// (saving their positions first).
fn recover(
    dir: &Path,
    firsts: &[u64],
    mut head: u64,
    fsync: Fsync,
    recovered: &mut Recovered,
) -> io::Result<Found> {
    let mut segments = VecDeque::new();
    let mut expected = head;
    let mut first_valid = None;
    let mut positions = load_positions(dir)?;
    let mut positions_saved = true;
    for (i, &first) in firsts.iter().enumerate() {
        let path = segment_path(dir, first);
        let next_first = firsts.get(i + 1).copied();
        let scan = scan_segment(&path)?;
        if !scan.positions.is_empty() {
            positions.extend(scan.positions);
            positions_saved = false;
        }
        // Records before the head were delivered; count the gaps among the rest.
        let mut live = 0;
        for &seq in &scan.seqs {
            if seq < expected {
                continue;
            }
            recovered.corrupt += seq - expected;
            expected = seq + 1;
            live += 1;
            first_valid.get_or_insert(seq);
        }
        if scan.damaged_tail {
            match next_first {
                Some(n) if n > expected => recovered.corrupt += n - expected,
                Some(_) => {}
                None => recovered.corrupt += 1,
            }
        }
        if let Some(n) = next_first {
            expected = expected.max(n);
        }
        if live == 0 {
            if !positions_saved {
                save_positions(dir, &positions, fsync != Fsync::Off)?;
                positions_saved = true;
            }
            fs::remove_file(&path)?;
            continue;
        }
        recovered.messages += live;
        recovered.bytes += scan.size;
        segments.push_back(Segment {
            first,
            size: scan.size,
        });
    }
    if let Some(v) = first_valid {
        head = head.max(v.min(expected));
    }
    let next_seq = expected.max(head);
    if segments.is_empty() {
        head = next_seq;
    }
    Ok(Found {
        segments,
        head,
        next_seq,
        positions,
        positions_saved,
    })
}

/// messages waiting from before, damage skipped, a head past the data.
pub fn open_logged(
    dir: &Path,
    spec: &crate::config::OutputSpec,
    daemon_uid: Uid,
) -> io::Result<DiskQueue> {
    let fwd = &spec.forward;
    let (q, found) = DiskQueue::open(
        dir,
        fwd.queue_max_bytes(),
        fwd.fsync,
        spec.policy,
        daemon_uid,
    )?;
    if let Some(head) = found.head_past_data {
        log::error!(
            "queue {}: corrupt head ({head} is past every record on disk); sending all {} \
             messages it holds, some of which may have been delivered already",
            dir.display(),
            found.messages
        );
    }
    if found.corrupt > 0 {
        log::error!(
            "queue {}: {} corrupt messages skipped (damaged or torn records); the rest is kept",
            dir.display(),
            found.corrupt
        );
    }
    if found.messages > 0 {
        log::info!(
            "queue {}: {} messages ({} bytes) wait from before",
            dir.display(),
            found.messages,
            found.bytes
        );
    }
    Ok(q)
}

impl Reader {
    /// The next valid record: its sequence number and where its payload is in `buf`. Damage is
    /// skipped to the next valid record.
    fn next_record(&mut self) -> io::Result<Option<(u64, std::ops::Range<usize>, Kind)>> {
        loop {
            match queue_record::decode(&self.buf[self.pos..]) {
                Decoded::Record { kind, seq, payload } => {
                    let body = self.pos + payload.start..self.pos + payload.end;
                    self.pos = body.end;
                    return Ok(Some((seq, body, kind)));
                }
                Decoded::Incomplete => {
                    if !self.fill()? {
                        if self.pos == self.buf.len() {
                            return Ok(None);
                        }
                        // Torn: what is left cannot be a whole record; look past its magic.
                        self.pos += 1;
                    }
                }
                Decoded::Damaged => self.pos += 1,
            }
        }
    }

    /// Reads more of the file; false at its end.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        let start = self.buf.len();
        self.buf.resize(start + READ_CHUNK, 0);
        let n = loop {
            match self.file.read(&mut self.buf[start..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(start);
                return Err(e);
            }
        };
        self.buf.truncate(start + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }
}

/// What one segment holds.
struct Scan {
    seqs: Vec<u64>,
    /// The position records, in the order written.
    positions: Vec<(String, String)>,
    size: u64,
    /// Bytes after the last valid record (a torn end).
    damaged_tail: bool,
}

fn scan_segment(path: &Path) -> io::Result<Scan> {
    let file = open_file(path, false)?;
    let size = file.metadata()?.len();
    let mut reader = Reader {
        first: 0,
        file,
        buf: Vec::new(),
        pos: 0,
        base: 0,
        eof: false,
    };
    let mut seqs = Vec::new();
    let mut positions = Vec::new();
    let mut end_of_valid = 0;
    while let Some((seq, range, kind)) = reader.next_record()? {
        end_of_valid = reader.base + range.end as u64;
        match kind {
            Kind::Message => seqs.push(seq),
            Kind::Position => positions.extend(
                queue_record::decode_position(&reader.buf[range])
                    .map(|(key, text)| (key.to_owned(), text.to_owned())),
            ),
        }
    }
    Ok(Scan {
        seqs,
        positions,
        size,
        damaged_tail: end_of_valid != size,
    })
}

/// The positions `queue-dir/positions` keeps (none without the file).
fn load_positions(dir: &Path) -> io::Result<BTreeMap<String, String>> {
    let path = dir.join(POSITIONS_FILE);
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    Ok(scan_segment(&path)?.positions.into_iter().collect())
}

/// Writes `queue-dir/positions` whole: to a new file, renamed over the old one.
fn save_positions(dir: &Path, positions: &BTreeMap<String, String>, sync: bool) -> io::Result<()> {
    let mut bytes = Vec::new();
    for (key, text) in positions {
        queue_record::encode_position(&mut bytes, 0, key, text);
    }
    let temp = dir.join(format!("{POSITIONS_FILE}.new"));
    let _ = fs::remove_file(&temp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&temp)?;
    file.write_all(&bytes)?;
    if sync {
        file.sync_data()?;
    }
    drop(file);
    fs::rename(&temp, dir.join(POSITIONS_FILE))
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.seg"))
}

/// The filesystem is full (or the user's quota is).
fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.raw_os_error() == Some(nix::libc::ENOSPC)
        || e.raw_os_error() == Some(nix::libc::EDQUOT)
}

/// The refusal of a queue directory or segment another user owns.
fn not_ours(path: &Path, owner: u32, daemon_uid: Uid) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{} is owned by uid {owner}, not by the daemon's user (uid {daemon_uid}): \
             refusing to forward what another user could have put there; remove it or give \
             it to uid {daemon_uid}",
            path.display()
        ),
    )
}

fn open_file(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
}

fn create_segment(dir: &Path, first: u64, sync_dir: bool) -> io::Result<File> {
    let path = segment_path(dir, first);
    // A segment by this name can only be an empty leftover (its records would have moved
    // next_seq past it): start it afresh.
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&path)?;
    file.set_len(0)?;
    if sync_dir {
        File::open(dir)?.sync_all()?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, max: u64, policy: QueuePolicy) -> (DiskQueue, Recovered) {
        DiskQueue::open(dir, max, Fsync::Off, policy, Uid::effective()).unwrap()
    }

    #[test]
    fn a_queue_another_user_owns_is_refused_before_it_is_read() {
        if !Uid::effective().is_root() {
            // Only root can give a directory away. CI runs as root, strict: never skipped there.
            assert!(
                std::env::var_os("LOGGER_TEST_STRICT").is_none(),
                "LOGGER_TEST_STRICT=1 and this test needs root"
            );
            return;
        }
        let nobody = Uid::from_raw(65534);
        let gid = nix::unistd::Gid::from_raw(65534);
        // The directory itself, prepared by another user with a record planted in it.
        let dir = tempfile::tempdir().unwrap();
        let planted = dir.path().join("q");
        {
            let (mut q, _) = open(&planted, 1 << 30, QueuePolicy::Block);
            q.push(&payload(1));
            q.flush().unwrap();
        }
        nix::unistd::chown(&planted, Some(nobody), Some(gid)).unwrap();
        let e = DiskQueue::open(
            &planted,
            1 << 30,
            Fsync::Off,
            QueuePolicy::Block,
            Uid::effective(),
        )
        .err()
        .expect("refused");
        assert!(e.to_string().contains("owned by uid 65534"), "{e}");
        // It is ours if it is the daemon's user's.
        assert!(DiskQueue::open(&planted, 1 << 30, Fsync::Off, QueuePolicy::Block, nobody).is_ok());
        // A segment planted by another user in our directory.
        nix::unistd::chown(&planted, Some(Uid::effective()), None).unwrap();
        let segment = fs::read_dir(&planted)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.extension().is_some_and(|x| x == "seg") && fs::metadata(p).unwrap().len() > 0
            })
            .expect("a segment with the record");
        nix::unistd::chown(&segment, Some(nobody), None).unwrap();
        let e = DiskQueue::open(
            &planted,
            1 << 30,
            Fsync::Off,
            QueuePolicy::Block,
            Uid::effective(),
        )
        .err()
        .expect("refused");
        assert!(
            e.to_string().contains(&segment.display().to_string()),
            "{e}"
        );
    }

    fn drain(q: &mut DiskQueue) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some((seq, p)) = q.next_unsent().unwrap() {
            out.push((seq, p.to_vec()));
        }
        out
    }

    fn payload(i: u64) -> Vec<u8> {
        format!("message {i:06} {}", "x".repeat((i % 50) as usize)).into_bytes()
    }

    #[test]
    fn what_is_not_acknowledged_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, rec) = open(dir.path(), 1 << 30, QueuePolicy::Block);
        assert_eq!(rec, Recovered::default());
        for i in 0..1000 {
            q.push(&payload(i));
        }
        q.flush().unwrap();
        let sent = drain(&mut q);
        assert_eq!(sent.len(), 1000);
        q.ack_through(399).unwrap();
        drop(q); // as SIGKILL would: nothing more written
        let (mut q, rec) = open(dir.path(), 1 << 30, QueuePolicy::Block);
        assert_eq!(rec.messages, 600);
        assert_eq!(rec.corrupt, 0);
        let again = drain(&mut q);
        assert_eq!(again.first().unwrap(), &(400, payload(400)));
        assert_eq!(again.len(), 600);
        q.ack_through(999).unwrap();
        assert_eq!(q.messages(), 0);
    }

    #[test]
    fn an_input_position_is_queued_with_its_records_and_outlives_their_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, _) = open(dir.path(), 1 << 30, QueuePolicy::Block);
        let text = "boot_id=b\nseq=9\n";
        for i in 0..10 {
            q.push(&payload(i));
        }
        q.push_position("kmsg.position", text);
        assert_eq!(q.pending_messages(), 10, "a position is not a message");
        assert_eq!(q.position("kmsg.position"), None, "not on disk yet");
        q.flush().unwrap();
        assert_eq!(q.position("kmsg.position"), Some(text));
        // Pushed, never written (SIGKILL before the flush): not vouched for.
        q.push(&payload(10));
        q.push_position("kmsg.position", "boot_id=b\nseq=10\n");
        let sent = drain(&mut q);
        assert_eq!(sent.len(), 10, "position records are never sent");
        assert_eq!(sent.last().unwrap(), &(9, payload(9)));
        drop(q);

        let (mut q, rec) = open(dir.path(), 1 << 30, QueuePolicy::Block);
        assert_eq!((rec.messages, rec.corrupt), (10, 0));
        assert_eq!(q.position("kmsg.position"), Some(text));
        // Delivered and deleted, the position stays.
        drain(&mut q);
        q.ack_through(9).unwrap();
        q.push(&payload(10));
        q.push_position("journal.cursor", "s=x;i=1");
        q.flush().unwrap();
        q.roll().unwrap();
        drain(&mut q);
        q.ack_through(10).unwrap();
        drop(q);
        let (q, rec) = open(dir.path(), 1 << 30, QueuePolicy::Block);
        assert_eq!(rec.messages, 0);
        assert_eq!(q.position("kmsg.position"), Some(text));
        assert_eq!(q.position("journal.cursor"), Some("s=x;i=1"));
        let segments = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "seg")
            })
            .count();
        assert_eq!(segments, 1, "only the new, empty tail");
    }

    #[test]
    fn a_head_past_the_data_is_damage_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, _) = open(dir.path(), 1 << 30, QueuePolicy::Block);
        for i in 0..500 {
            q.push(&payload(i));
        }
        q.flush().unwrap();
        drop(q);
        // A bit flip in the head file.
        fs::write(dir.path().join("head"), (1u64 << 40).to_le_bytes()).unwrap();
        let (mut q, rec) = open(dir.path(), 1 << 30, QueuePolicy::Block);
        assert_eq!(rec.head_past_data, Some(1 << 40));
        assert_eq!(rec.messages, 500, "every record kept");
        let again = drain(&mut q);
        assert_eq!(again.len(), 500);
        assert_eq!(again.first().unwrap(), &(0, payload(0)));
        // Once all was delivered, a head at the next sequence number is no damage.
        q.ack_through(499).unwrap();
        drop(q);
        let (_, rec) = open(dir.path(), 1 << 30, QueuePolicy::Block);
        assert_eq!(rec, Recovered::default());
    }

    #[test]
    fn records_damaged_while_queued_are_counted_once_and_leave_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, _) = open(dir.path(), 1 << 30, QueuePolicy::Block);
        for i in 0..100 {
            q.push(&payload(i));
        }
        q.flush().unwrap();
        // A bit flip in record 50's payload and in the last two records, while logger runs.
        let seg = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "seg"))
            .unwrap();
        let mut bytes = fs::read(&seg).unwrap();
        for n in [50u64, 98, 99] {
            let text = format!("message {n:06} ");
            let at = bytes
                .windows(text.len())
                .position(|w| w == text.as_bytes())
                .unwrap();
            bytes[at] ^= 0xff;
        }
        fs::write(&seg, &bytes).unwrap();
        let sent = drain(&mut q);
        assert_eq!(sent.len(), 97);
        assert_eq!(q.take_corrupt(), 3);
        // A rewind reads past them again: not counted twice.
        q.rewind();
        assert_eq!(drain(&mut q).len(), 97);
        assert_eq!(q.take_corrupt(), 0);
        // Once what was sent is answered, nothing is left: the damaged ones are gone too.
        q.ack_through(97).unwrap();
        assert_eq!(q.messages(), 0, "the damaged tail still counted as queued");
    }

    #[test]
    fn segments_roll_and_finished_ones_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, _) = open(dir.path(), 4 << 20, QueuePolicy::Block);
        for i in 0..40_000 {
            q.push(&payload(i));
            if i % 100 == 99 {
                q.flush().unwrap();
            }
        }
        let segs = || {
            fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "seg")
                })
                .count()
        };
        assert!(segs() > 2, "{} segments", segs());
        let sent = drain(&mut q);
        assert_eq!(sent.len(), 40_000);
        assert!(sent.iter().enumerate().all(|(i, (s, _))| *s == i as u64));
        q.ack_through(39_999).unwrap();
        assert_eq!(segs(), 1);
    }

    #[test]
    fn a_corrupt_record_is_skipped_and_counted_and_a_torn_end_too() {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, _) = open(dir.path(), 1 << 30, QueuePolicy::Block);
        for i in 0..100 {
            q.push(&payload(i));
        }
        q.flush().unwrap();
        drop(q);
        let seg = segment_path(dir.path(), 0);
        let mut bytes = fs::read(&seg).unwrap();
        // Damage the 11th record's payload, and tear the last one.
        let mut offset = 0;
        for i in 0..10 {
            offset += queue_record::HEADER + payload(i).len();
        }
        bytes[offset + queue_record::HEADER + 3] ^= 0xff;
        bytes.truncate(bytes.len() - 5);
        fs::write(&seg, &bytes).unwrap();
        let (mut q, rec) = open(dir.path(), 1 << 30, QueuePolicy::Block);
        assert_eq!(rec.corrupt, 2, "{rec:?}");
        let seqs: Vec<u64> = drain(&mut q).into_iter().map(|(s, _)| s).collect();
        assert_eq!(seqs.len(), 98);
        assert!(!seqs.contains(&10) && !seqs.contains(&99));
        // New messages follow, in a new segment.
        q.push(&payload(7));
        q.flush().unwrap();
        assert_eq!(drain(&mut q), vec![(99, payload(7))]);
    }

    #[test]
    fn a_full_queue_blocks_drops_or_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, _) = open(dir.path(), 1 << 20, QueuePolicy::Block);
        let big = vec![b'x'; 60_000];
        let mut full = None;
        for i in 0..40 {
            q.push(&big);
            if let Err(e) = q.flush() {
                full = Some((i, e));
                break;
            }
        }
        let (i, e) = full.expect("1 MiB holds fewer than 40 of 60 KB");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(i > 10, "full after {i}");
        assert_eq!(q.pending_messages(), 1, "kept, not lost");
        drop(q);

        let dir = tempfile::tempdir().unwrap();
        let (mut q, _) = open(dir.path(), 1 << 20, QueuePolicy::DropOldest);
        for _ in 0..100 {
            q.push(&big);
            q.flush().unwrap();
        }
        assert!(q.disk_bytes() <= 1 << 20);
        let dropped = q.take_dropped();
        let left = drain(&mut q).len() as u64;
        assert_eq!(dropped + left, 100, "dropped {dropped} left {left}");
        assert!(left > 5);
    }
}
