//! The journal input (`read = "journal"`): every entry of the local journal once, with every
//! field, across restarts, rotation, vacuum and journald restarts.
//!
//! Read with libsystemd's sd-journal (`sys::journal`, loaded when this input starts), on this
//! input's own thread, which waits on the journal's inotify descriptor: no polling while the
//! journal is quiet. An entry becomes a message with the entry's own time
//! (`__REALTIME_TIMESTAMP`), `PRIORITY`, `SYSLOG_FACILITY`, `SYSLOG_IDENTIFIER` (else `_COMM`),
//! `SYSLOG_PID` (else `_PID`), `_HOSTNAME` and `MESSAGE` (binary ones too), and every field
//! of the entry, `_`-trusted ones included, under their journald names (`Message::fields`).
//! Each field is cut at max-message-size (and the message marked truncated): what a local
//! writer puts in an entry costs what it weighs, up to that bound a field.
//!
//! The position is the cursor of the last entry every output took, kept in
//! `state-dir/journal.cursor` and advanced by receipts as the kernel log's is. A restart seeks
//! that cursor and reads on after it; if that entry is gone (vacuumed), sd-journal places the
//! reader by sequence number within the same journal (never by wall-clock time), and the gap is
//! logged with the exact number of entries missed and counted (`missed`).
//!
//! No loop: entries a journal output wrote (they carry `LOGGER_TRANSPORT`) and our own log
//! (`LOGGER_OWN_LOG`) are never read back when journald saw our own user write them (`_UID`), and a configuration that routes this input into a
//! journal output is refused (`config::merge`).

use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::Interest;
use mio::unix::SourceFd;

use super::{Batch, Ctx, Listener, SOCKET};
use crate::outputs::formats::line::push_rfc3339;
use crate::receipt::Mark;
use crate::stats::Stats;
use crate::sys::journal::Journal;
use syslog::message::{Fields, Message, Origin, Transport};
use syslog::parse::export::JournalEntry;
use syslog::parse::parse_owned;

/// The cursor file under state-dir.
pub(super) const CURSOR_FILE: &str = "journal.cursor";

pub(super) fn run(ctx: Ctx, poll: mio::Poll, listener: Listener) {
    let name = listener.addr().to_string();
    let matches = listener.spec.journal_match.clone();
    drop(listener);
    let mut journal = match open(&matches, ctx.limits().max_message_size) {
        Ok(j) => j,
        Err(e) => {
            log::error!("input {name}: cannot open the journal: {e}");
            return ctx.finish();
        }
    };
    let fd = match journal.fd() {
        Ok(fd) => fd,
        Err(e) => {
            log::error!("input {name}: cannot watch the journal: {e}");
            return ctx.finish();
        }
    };
    if let Err(e) = poll
        .registry()
        .register(&mut SourceFd(&fd), SOCKET, Interest::READABLE)
    {
        log::error!("input {name}: cannot poll the journal: {e}");
        return ctx.finish();
    }
    let path = ctx.tunables.state_dir.join(CURSOR_FILE);
    let mut saved = super::position::load(&path)
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let order = |a: &str, b: &str| {
        let ((a_id, a), (b_id, b)) = (seqnum(a.trim())?, seqnum(b.trim())?);
        (a_id == b_id).then(|| a.cmp(&b))
    };
    if let Some(queued) =
        super::position::queued_past(saved.as_deref(), &ctx.tunables.queued, order)
    {
        let cursor = queued.trim().to_owned();
        log::info!(
            "input {name}: resuming after the entry its disk-queued outputs took last \
             (past its own saved cursor)"
        );
        if let Err(e) = save(&path, &cursor) {
            log::error!(
                "input {name}: cannot save its position in {}: {e}",
                path.display()
            );
        }
        saved = Some(cursor);
    }
    let mut reader = Reader {
        journal,
        pending: VecDeque::new(),
        next_id: 0,
        saved,
        path,
        name,
        unread_current: false,
        fields_hint: 0,
    };
    if let Err(e) = reader.position(&ctx) {
        log::error!("input {}: cannot find its place: {e}", reader.name);
        return ctx.finish();
    }
    super::reader::run(ctx, poll, reader);
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

    /// New entries, new or rotated files (journald restarted, vacuumed, rotated).
    fn woken(&mut self) {
        if let Err(e) = self.journal.process() {
            log::warn!("input {}: the journal changed under it: {e}", self.name);
        }
    }
}

/// Opens the journal with the configured matches.
fn open(matches: &[String], max_field: usize) -> io::Result<Journal> {
    let mut journal = Journal::open(max_field)?;
    for m in matches {
        match m.as_str() {
            "+" => journal.add_disjunction()?,
            pair => journal.add_match(pair.as_bytes())?,
        }
    }
    Ok(journal)
}

/// The reading state of one journal input.
struct Reader {
    journal: Journal,
    /// Sent and not yet known taken through: in the order sent, what the cursor file would
    /// hold for each entry (`file_text`) and whether every output took it. The front's number
    /// is `next_id - pending.len()`.
    pending: VecDeque<(String, bool)>,
    next_id: u64,
    /// The cursor last saved.
    saved: Option<String>,
    path: std::path::PathBuf,
    name: String,
    /// The reader stands on an entry not read yet (after a seek to a cursor that was gone).
    unread_current: bool,
    /// What the last entry's fields weighed: the next one's are collected in that much room
    /// and more, so that an entry's fields cost one allocation, not one per doubling.
    fields_hint: usize,
}

impl Reader {
    /// Places the reader after the saved cursor's entry, or at the head without one.
    fn position(&mut self, ctx: &Ctx) -> io::Result<()> {
        let journal = &mut self.journal;
        let Some(saved) = self.saved.clone() else {
            return journal.seek_head();
        };
        journal.seek_cursor(&saved)?;
        if !journal.next_entry()? {
            return Ok(());
        }
        if journal.test_cursor(&saved)? {
            return Ok(());
        }
        // The saved entry is gone: the reader stands on the first entry after where it was.
        self.unread_current = true;
        let current = journal.cursor()?;
        match (seqnum(&saved), seqnum(&current)) {
            (Some((id, old)), Some((same, new))) if id == same && new > old + 1 => {
                let missed = new - old - 1;
                Stats::add(&ctx.shared.stats.missed, missed);
                // The journal's own count between the two (its sequence numbers): with
                // journal-match, entries it would not have taken are in it too.
                log::warn!(
                    "input {}: missed {missed} journal entries (vacuumed before they were read)",
                    self.name
                );
            }
            (Some((id, _)), Some((other, _))) if id != other => log::warn!(
                "input {}: the entry it stopped at is gone with its journal (another \
                 sequence number space); reading on from the next entry",
                self.name
            ),
            _ => {}
        }
        Ok(())
    }

    /// Reads every entry there is into `batch`; false once the loop is gone.
    fn read_all(&mut self, ctx: &mut Ctx, batch: &mut Batch) -> bool {
        loop {
            if !self.unread_current {
                match self.journal.next_entry() {
                    Ok(true) => {}
                    Ok(false) => return true,
                    Err(e) => {
                        Stats::add(&ctx.shared.stats.read_errors, 1);
                        log::error!("input {}: reading the journal: {e}", self.name);
                        return true;
                    }
                }
            }
            self.unread_current = false;
            let max_field = ctx.limits().max_message_size;
            let entry = match read_entry(&mut self.journal, max_field, self.fields_hint) {
                Ok(Some(entry)) => entry,
                Ok(None) => continue,
                Err(e) => {
                    Stats::add(&ctx.shared.stats.read_errors, 1);
                    log::error!("input {}: reading an entry: {e}", self.name);
                    continue;
                }
            };
            self.fields_hint = entry.entry.fields.as_ref().bytes();
            let id = self.next_id;
            self.next_id += 1;
            self.pending.push_back((entry.position.clone(), false));
            Stats::add(&ctx.shared.stats.received, 1);
            if entry.entry.truncated {
                Stats::add(&ctx.shared.stats.truncated, 1);
            }
            let position = Mark {
                key: CURSOR_FILE,
                text: entry.position,
            };
            let msg = entry_message(
                entry.entry,
                Origin::new(Transport::Journal),
                SystemTime::now(),
            );
            batch.push_read(msg, (id as usize, 0), position);
            if !batch.loop_alive() {
                return false;
            }
            if self.pending.len().is_multiple_of(super::BATCH) {
                self.take_receipts(ctx);
            }
        }
    }

    /// Takes the entries every output took and saves the cursor of the last one before the
    /// first still pending.
    fn take_receipts(&mut self, ctx: &Ctx) {
        let Some(board) = &ctx.board else { return };
        let front = self.next_id - self.pending.len() as u64;
        for (id, _) in board.take() {
            if let Some(slot) = (id as u64)
                .checked_sub(front)
                .and_then(|i| self.pending.get_mut(i as usize))
            {
                slot.1 = true;
            }
        }
        let mut through = None;
        while self.pending.front().is_some_and(|(_, taken)| *taken) {
            through = self.pending.pop_front().map(|(cursor, _)| cursor);
        }
        let Some(text) = through else { return };
        match super::position::save(&self.path, &text) {
            Ok(()) => self.saved = Some(text.trim_end().to_owned()),
            Err(e) => log::error!(
                "input {}: cannot save its position in {}: {e}",
                self.name,
                self.path.display()
            ),
        }
    }
}

/// One journal entry, read, and where it stands.
struct Entry {
    /// What the cursor file holds for it (`file_text`).
    position: String,
    entry: JournalEntry,
}

/// The current entry, or None for one logger wrote itself (relayed, or its own log); its
/// fields are collected in room for `fields_hint` bytes (what the last one's weighed) and more.
fn read_entry(
    journal: &mut Journal,
    max_field: usize,
    fields_hint: usize,
) -> io::Result<Option<Entry>> {
    let mut position = journal.cursor_with(1)?;
    position.push('\n');
    let realtime_usec = journal.realtime_usec()?;
    let mut message = Vec::new();
    let mut fields = Fields::with_capacity(fields_hint + fields_hint / 4 + 64);
    let mut marked = false;
    let mut uid = None;
    let mut truncated = false;
    journal.for_each_field(|field| {
        let Some(eq) = field.iter().position(|&b| b == b'=') else {
            return;
        };
        let (name, value) = (&field[..eq], &field[eq + 1..]);
        // The copy is bounded whatever the entry holds (sd-journal's threshold cuts only
        // compressed fields): each field at most max-message-size, the message marked cut.
        if value.len() > max_field {
            truncated = true;
        }
        let value = &value[..value.len().min(max_field)];
        match name {
            b"MESSAGE" => message = value.to_vec(),
            b"LOGGER_TRANSPORT" => marked = true,
            n if n == crate::selflog::OWN_LOG_FIELD.as_bytes() => marked = true,
            _ => {
                if name == b"_UID" {
                    uid = std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse::<u32>().ok());
                }
                fields.push_raw(name, value);
            }
        }
    })?;
    // Ours only if journald saw our own user write it (`_UID` is journald's, not the
    // writer's): another user's entry that carries our marks is read like any other, so
    // nobody hides from this input by adding LOGGER_TRANSPORT to what they log.
    let ours = marked && uid == Some(nix::unistd::Uid::effective().as_raw());
    debug_assert_eq!(position, file_text(position.trim_end()));
    Ok((!ours).then_some(Entry {
        position,
        entry: JournalEntry {
            realtime_usec: Some(realtime_usec),
            message,
            fields,
            truncated,
        },
    }))
}

/// The message of a journal entry (the local journal's, or one systemd-journal-upload sent):
/// a syslog header made of its fields (its time, host, identifier, pid, priority and
/// facility), its MESSAGE as the text, and every field beside. Without a time of its own, the
/// entry is dated `received`.
pub(super) fn entry_message(entry: JournalEntry, origin: Origin, received: SystemTime) -> Message {
    let field = |name: &str| entry.fields.as_ref().get(name);
    let number =
        |name: &str| -> Option<u32> { std::str::from_utf8(field(name)?).ok()?.trim().parse().ok() };
    let severity = number("PRIORITY").map_or(6, |p| p.min(7));
    let kernel = field("_TRANSPORT") == Some(b"kernel");
    let facility = number("SYSLOG_FACILITY").map_or(if kernel { 0 } else { 1 }, |f| f.min(23));
    // The header is short; one allocation for it and the text.
    let mut raw = Vec::with_capacity(160 + entry.message.len());
    let _ = write!(raw, "<{}>", facility * 8 + severity);
    let time = entry
        .realtime_usec
        .map_or(received, |t| UNIX_EPOCH + Duration::from_micros(t));
    push_rfc3339(&mut raw, time);
    raw.push(b' ');
    if let Some(host) = field("_HOSTNAME").filter(|h| is_hostname(h)) {
        raw.extend_from_slice(host);
        raw.push(b' ');
    }
    let tag = field("SYSLOG_IDENTIFIER")
        .or_else(|| field("_COMM"))
        .unwrap_or(if kernel { b"kernel" } else { b"-" });
    raw.extend(tag.iter().map(|&b| match b {
        b' ' | b':' | b'[' | b']' | b'\n' => b'_',
        b => b,
    }));
    if let Some(pid) = field("SYSLOG_PID")
        .or_else(|| field("_PID"))
        .filter(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit))
    {
        raw.push(b'[');
        raw.extend_from_slice(pid);
        raw.push(b']');
    }
    raw.extend_from_slice(b": ");
    raw.extend_from_slice(&entry.message);
    parse_owned(raw, origin, received, entry.truncated).with_fields(entry.fields)
}

/// Letters, digits, `.`, `-`, `_`: what the header parser reads as a hostname.
fn is_hostname(h: &[u8]) -> bool {
    !h.is_empty()
        && h.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// A cursor's sequence number space and number: `s=ID;i=HEX;...`.
fn seqnum(cursor: &str) -> Option<(&str, u64)> {
    let mut id = None;
    let mut number = None;
    for part in cursor.split(';') {
        match part.split_once('=') {
            Some(("s", v)) => id = Some(v),
            Some(("i", v)) => number = u64::from_str_radix(v, 16).ok(),
            _ => {}
        }
    }
    Some((id?, number?))
}

/// What the cursor file holds for `cursor`.
fn file_text(cursor: &str) -> String {
    format!("{cursor}\n")
}

/// Writes the cursor, whole (`position::save`).
fn save(path: &Path, cursor: &str) -> io::Result<()> {
    super::position::save(path, &file_text(cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_give_their_sequence_numbers() {
        let c = "s=739ad463348b4ceca5a9e69c95a3c93f;i=4ece7;b=6c7c6013a8494546b1e57d1b1cee1d7d;\
                 m=5f5e67a;t=4c508b6d9a0ad;x=9fa3e0dd2ef5b2ec";
        assert_eq!(
            seqnum(c),
            Some(("739ad463348b4ceca5a9e69c95a3c93f", 0x4ece7))
        );
        assert_eq!(seqnum("garbage"), None);
    }

    #[test]
    fn an_entry_becomes_a_message_with_its_own_time_and_every_field() {
        let entry = JournalEntry {
            realtime_usec: Some(1_796_657_844_000_001),
            message: b"Started nginx.\nsecond line".to_vec(),
            truncated: false,
            fields: [
                ("PRIORITY", b"3".as_slice()),
                ("SYSLOG_FACILITY", b"3"),
                ("SYSLOG_IDENTIFIER", b"nginx: worker"),
                ("_PID", b"4242"),
                ("_HOSTNAME", b"web1"),
                ("_SYSTEMD_UNIT", b"nginx.service"),
                ("MY_FIELD", b"\x00\xffbinary"),
            ]
            .into_iter()
            .collect(),
        };
        let msg = entry_message(entry, Origin::new(Transport::Journal), SystemTime::now());
        assert_eq!((msg.facility, msg.severity), (3, 3));
        assert_eq!(msg.hostname().as_deref(), Some("web1"));
        assert_eq!(msg.app_name().as_deref(), Some("nginx__worker"));
        assert_eq!(msg.procid().as_deref(), Some("4242"));
        assert_eq!(
            msg.timestamp().as_deref(),
            Some("2026-12-07T15:37:24.000001Z")
        );
        assert_eq!(msg.text(), b"Started nginx.\nsecond line");
        assert_eq!(msg.origin.transport, Transport::Journal);
        assert_eq!(
            msg.fields().get("MY_FIELD"),
            Some(b"\x00\xffbinary".as_slice())
        );
        assert!(msg.fields().get("_SYSTEMD_UNIT").is_some());
    }
}
