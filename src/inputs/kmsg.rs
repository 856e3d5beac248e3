//! The kernel log input (`read = "kmsg"`): every record of /dev/kmsg once, across restarts.
//!
//! Each read(2) of /dev/kmsg returns one record, `PRI,SEQ,USEC,FLAGS;TEXT` and then
//! ` KEY=VALUE` dictionary lines (SUBSYSTEM, DEVICE). A record becomes a message with its
//! priority and facility, the kernel's own time converted to wall-clock time (the monotonic
//! clock's offset, as journald converts it), the text with the kernel's `\xNN` escapes undone
//! (the receive escaping then applies as to any input), `kernel` as its tag for kernel records,
//! and the fields `KERNEL_SEQNUM`, `KERNEL_MONOTONIC_USEC` and `KERNEL_<KEY>` for the
//! dictionary.
//!
//! The position (the boot ID and the last sequence number taken) is kept in
//! `state-dir/kmsg.position` and advances only once every output that takes a record took it
//! (the receipts the RELP input answers with): a stop, a crash or a SIGKILL reads again what was
//! not taken, and nothing that was. At start, records of the same boot up to the saved sequence
//! number are skipped; a gap in the numbers (the ring buffer overran while logger was stopped or
//! behind) is logged with the exact number missed, like journald's "Missed N kernel messages",
//! and counted (`missed`).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write as _};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::Interest;
use mio::unix::SourceFd;

use super::{Batch, Ctx, Listener, SOCKET};
use crate::outputs::formats::line::push_rfc3339;
use crate::receipt::Mark;
use crate::stats::Stats;
use syslog::message::{Fields, Message, Origin, Transport};
use syslog::parse::kmsg::{Joiner, Record};
use syslog::parse::parse_owned;

/// A record is at most a few KiB (text and dictionary); read(2) fails with EINVAL if the buffer
/// cannot hold one.
const RECORD_MAX: usize = 16 * 1024;
/// The position file under state-dir.
pub(super) const POSITION_FILE: &str = "kmsg.position";

pub(super) fn run(ctx: Ctx, poll: mio::Poll, mut listener: Listener) {
    let name = listener.addr().to_string();
    let file = match listener.take_socket() {
        Ok(fd) => File::from(fd),
        Err(e) => {
            log::error!("input {name}: {e}");
            return ctx.finish();
        }
    };
    let raw = file.as_raw_fd();
    if let Err(e) = poll
        .registry()
        .register(&mut SourceFd(&raw), SOCKET, Interest::READABLE)
    {
        log::error!("input {name}: cannot poll /dev/kmsg: {e}");
        return ctx.finish();
    }
    let path = ctx.tunables.state_dir.join(POSITION_FILE);
    let boot = boot_id();
    let mut saved = Position::load(&path).filter(|p| Some(&p.boot) == boot.as_ref());
    let order = |a: &str, b: &str| {
        let (a, b) = (Position::parse(a)?, Position::parse(b)?);
        (a.boot == b.boot).then(|| a.seq.cmp(&b.seq))
    };
    let own = saved.as_ref().map(Position::text);
    if let Some(queued) = super::position::queued_past(own.as_deref(), &ctx.tunables.queued, order)
        .and_then(|q| Position::parse(&q))
        .filter(|q| Some(&q.boot) == boot.as_ref())
    {
        log::info!(
            "input {name}: resuming after sequence number {} that its disk-queued outputs \
             took last (past its own saved position)",
            queued.seq
        );
        if let Err(e) = queued.save(&path) {
            log::error!(
                "input {name}: cannot save its position in {}: {e}",
                path.display()
            );
        }
        saved = Some(queued);
    }
    let skip_through = saved.as_ref().map(|p| p.seq);
    let body = Reader {
        file,
        skip_through,
        expected: skip_through.map(|s| s + 1),
        pending: BTreeSet::new(),
        highest: None,
        saved: skip_through,
        path,
        boot,
        name,
        buf: vec![0; RECORD_MAX],
        joiner: Joiner::default(),
    };
    super::reader::run(ctx, poll, body);
}

impl super::reader::Body for Reader {
    fn name(&self) -> &str {
        &self.name
    }

    fn drain(&mut self, ctx: &mut Ctx, batch: &mut Batch) -> bool {
        self.read_all(ctx, batch)
    }

    fn settle(&mut self, ctx: &Ctx) {
        self.take_receipts(ctx);
    }

    fn unsettled(&self) -> bool {
        !self.pending.is_empty()
    }
}

/// The reading state of the one kmsg input.
struct Reader {
    file: File,
    /// Records of this boot up to here were taken before a restart.
    skip_through: Option<u64>,
    /// The sequence number the next record should carry.
    expected: Option<u64>,
    /// Sent, not yet taken by every output.
    pending: BTreeSet<u64>,
    /// The highest sequence number sent.
    highest: Option<u64>,
    /// The position last written.
    saved: Option<u64>,
    path: PathBuf,
    boot: Option<String>,
    name: String,
    buf: Vec<u8>,
    joiner: Joiner,
}

impl Reader {
    /// Reads every record the kernel has for us into `batch`; false once the loop is gone.
    fn read_all(&mut self, ctx: &mut Ctx, batch: &mut Batch) -> bool {
        let offset = monotonic_offset_usec();
        loop {
            let n = match self.file.read(&mut self.buf) {
                Ok(n) if n > 0 => n,
                Ok(_) => return self.finish(offset, ctx, batch),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return self.finish(offset, ctx, batch);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EPIPE: the ring overwrote records we had not read; the next read returns
                // the oldest one left, and the gap shows in the sequence numbers.
                Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
                Err(e) => {
                    Stats::add(&ctx.shared.stats.read_errors, 1);
                    log::error!("input {}: reading /dev/kmsg: {e}", self.name);
                    return true;
                }
            };
            let Some(record) = Record::parse(&self.buf[..n]) else {
                continue;
            };
            if self.skip_through.is_some_and(|s| record.seq <= s) {
                continue;
            }
            for complete in self.joiner.push(record) {
                if !self.take(complete, offset, ctx, batch) {
                    return false;
                }
            }
        }
    }

    /// At the end of a drain: a line still held is complete as far as the kernel wrote it.
    fn finish(&mut self, offset: i128, ctx: &mut Ctx, batch: &mut Batch) -> bool {
        match self.joiner.finish() {
            Some(held) => self.take(held, offset, ctx, batch),
            None => true,
        }
    }

    /// Hands one complete record (joined, if it was continued) to the batch.
    fn take(&mut self, record: Record, offset: i128, ctx: &mut Ctx, batch: &mut Batch) -> bool {
        if let Some(expected) = self.expected
            && record.seq > expected
        {
            let missed = record.seq - expected;
            Stats::add(&ctx.shared.stats.missed, missed);
            log::warn!(
                "input {}: missed {missed} kernel messages (the ring buffer overran before \
                 they were read: sequence numbers {expected} to {})",
                self.name,
                record.seq - 1
            );
        }
        let last = record.joined.last().copied().unwrap_or(record.seq);
        self.expected = Some(last + 1);
        self.highest = Some(last);
        self.pending.insert(record.seq);
        self.pending.extend(record.joined.iter().copied());
        Stats::add(&ctx.shared.stats.received, 1);
        // The continuation records are answered with the line they joined.
        batch
            .transactions
            .extend(record.joined.iter().map(|&seq| (seq as usize, 0)));
        let message = record_message(&record, offset);
        match &self.boot {
            Some(boot) => {
                let position = Mark {
                    key: POSITION_FILE,
                    text: Position {
                        boot: boot.clone(),
                        seq: last,
                    }
                    .text(),
                };
                batch.push_read(message, (record.seq as usize, 0), position);
            }
            None => batch.push_answered(message, (record.seq as usize, 0)),
        }
        if !batch.loop_alive() {
            return false;
        }
        // The position follows the outputs during a long drain too, so that a SIGKILL
        // reads again only what was taken since the last batch.
        if self.pending.len().is_multiple_of(super::BATCH) {
            self.take_receipts(ctx);
        }
        true
    }

    /// Takes the records every output took and saves the position they allow.
    fn take_receipts(&mut self, ctx: &Ctx) {
        let Some(board) = &ctx.board else { return };
        for (seq, _) in board.take() {
            self.pending.remove(&(seq as u64));
        }
        let taken = match self.pending.first() {
            Some(first) => first.checked_sub(1),
            None => self.highest,
        };
        let (Some(taken), Some(boot)) = (taken, &self.boot) else {
            return;
        };
        if self.saved.is_some_and(|s| s >= taken) {
            return;
        }
        match (Position {
            boot: boot.clone(),
            seq: taken,
        })
        .save(&self.path)
        {
            Ok(()) => self.saved = Some(taken),
            Err(e) => log::error!(
                "input {}: cannot save its position in {}: {e}",
                self.name,
                self.path.display()
            ),
        }
    }
}

/// The message of a record: its time as wall-clock time (`offset`: realtime minus monotonic,
/// in microseconds), `kernel` as the tag of the kernel's own records (a user-space writer's
/// text carries its own tag), and the record's numbers and dictionary as fields.
fn record_message(record: &Record, offset: i128) -> Message {
    let wall = (i128::from(record.usec) + offset).max(0) as u64;
    // One allocation for the header and the text, kept as the message's bytes.
    let mut raw = Vec::with_capacity(48 + record.text.len());
    let _ = write!(
        raw,
        "<{}>",
        u16::from(record.facility) * 8 + u16::from(record.priority)
    );
    push_rfc3339(&mut raw, UNIX_EPOCH + Duration::from_micros(wall));
    raw.push(b' ');
    if record.facility == 0 {
        raw.extend_from_slice(b"kernel: ");
    }
    raw.extend_from_slice(&record.text);
    let msg = parse_owned(raw, Origin::new(Transport::Kmsg), SystemTime::now(), false);
    let mut fields = Fields::new();
    fields.push("KERNEL_SEQNUM", record.seq.to_string().as_bytes());
    fields.push("KERNEL_MONOTONIC_USEC", record.usec.to_string().as_bytes());
    for (key, value) in &record.dictionary {
        fields.push(&format!("KERNEL_{key}"), value);
    }
    msg.with_fields(fields)
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, in microseconds: what turns a record's time into
/// wall-clock time.
fn monotonic_offset_usec() -> i128 {
    use nix::time::{ClockId, clock_gettime};
    let usec = |c: ClockId| {
        clock_gettime(c).map_or(0, |t| {
            i128::from(t.tv_sec()) * 1_000_000 + i128::from(t.tv_nsec()) / 1000
        })
    };
    usec(ClockId::CLOCK_REALTIME) - usec(ClockId::CLOCK_MONOTONIC)
}

/// This boot's ID (`/proc/sys/kernel/random/boot_id`).
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Where reading stopped: the boot and the last sequence number every output took.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    boot: String,
    seq: u64,
}

impl Position {
    /// The saved position, if there is a readable one (a damaged file starts afresh: the
    /// whole ring is read, and the gap check has nothing to compare with).
    fn load(path: &Path) -> Option<Position> {
        Position::parse(&super::position::load(path)?)
    }

    /// Reads what `text` writes.
    fn parse(text: &str) -> Option<Position> {
        let mut boot = None;
        let mut seq = None;
        for line in text.lines() {
            match line.split_once('=') {
                Some(("boot_id", v)) => boot = Some(v.to_owned()),
                Some(("seq", v)) => seq = v.parse().ok(),
                _ => {}
            }
        }
        Some(Position {
            boot: boot?,
            seq: seq?,
        })
    }

    /// Writes it, whole (`position::save`).
    fn save(&self, path: &Path) -> io::Result<()> {
        super::position::save(path, &self.text())
    }

    /// What its file holds.
    fn text(&self) -> String {
        format!("boot_id={}\nseq={}\n", self.boot, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_with_their_dictionary_and_escapes_undone() {
        let raw =
            b"6,339,5140900,-;NET: Registered \\x1b[1mfamily\\x5c 10\n SUBSYSTEM=net\n DEVICE=n1\n";
        let r = Record::parse(raw).unwrap();
        assert_eq!(
            (r.priority, r.facility, r.seq, r.usec),
            (6, 0, 339, 5_140_900)
        );
        assert_eq!(r.text, b"NET: Registered \x1b[1mfamily\\ 10");
        assert_eq!(
            r.dictionary,
            vec![
                ("SUBSYSTEM".to_owned(), b"net".to_vec()),
                ("DEVICE".to_owned(), b"n1".to_vec())
            ]
        );
        assert_eq!(r.flags, b'-');
        // A user-space writer's record (facility user) keeps its own tag.
        let r = Record::parse(b"14,7,100,-;myapp: hello").unwrap();
        assert_eq!((r.facility, r.priority), (1, 6));
        let msg = record_message(&r, 1_796_657_844_000_000);
        assert_eq!(msg.app_name().as_deref(), Some("myapp"));
        assert_eq!(msg.text(), b"hello");
        assert_eq!(
            msg.timestamp().as_deref(),
            Some("2026-12-07T15:37:24.000100Z")
        );
        let kernel = record_message(&Record::parse(b"4,8,100,-;usb 1-1: new device").unwrap(), 0);
        assert_eq!(kernel.app_name().as_deref(), Some("kernel"));
        assert_eq!(kernel.text(), b"usb 1-1: new device");
        assert_eq!(kernel.fields().iter().next().unwrap().0, "KERNEL_SEQNUM");
        for junk in [&b""[..], b"no semicolon", b"x,1,2,-;text", b"6,-1,2,-;t"] {
            assert_eq!(Record::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn continued_lines_are_joined_and_answered_together() {
        let mut j = Joiner::default();
        let rec = |raw: &[u8]| Record::parse(raw).unwrap();
        assert!(j.push(rec(b"6,10,1,c;usb 1-1: ")).is_empty());
        assert!(j.push(rec(b"6,11,2,+;new device ")).is_empty());
        assert!(j.push(rec(b"6,12,3,+;found")).is_empty());
        let done = j.push(rec(b"6,13,4,-;next line"));
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].text, b"usb 1-1: new device found");
        assert_eq!((done[0].seq, done[0].joined.clone()), (10, vec![11, 12]));
        assert_eq!(done[1].seq, 13);
        // A line begun and never continued is complete at the end of the drain.
        assert!(j.push(rec(b"6,14,5,c;alone")).is_empty());
        assert_eq!(j.finish().unwrap().text, b"alone");
        assert!(j.finish().is_none());
        // A `+` without a line to continue is a line of its own.
        assert_eq!(j.push(rec(b"6,15,6,+;orphan")).len(), 1);
    }

    #[test]
    fn the_position_survives_a_restart_and_a_damaged_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(POSITION_FILE);
        let p = Position {
            boot: "b-1".into(),
            seq: 42,
        };
        p.save(&path).unwrap();
        assert_eq!(Position::load(&path), Some(p));
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(Position::load(&path), None);
    }
}
