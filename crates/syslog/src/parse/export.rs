//! The Journal Export Format read back (systemd's `journal-export-formats`): what
//! systemd-journal-upload POSTs, decoded as it arrives, in pieces of any size.
//!
//! An entry is fields, one after another, and an empty line. A field is `NAME=value\n`, or, for
//! a value that holds a newline or binary bytes, `NAME\n`, its length as 8 bytes little-endian,
//! the value, and `\n`. As systemd-journal-remote reads it (`journal-importer.c`): a field
//! whose name journald would refuse is skipped, `__REALTIME_TIMESTAMP` is the entry's time,
//! every other `__` field (`__CURSOR`, `__MONOTONIC_TIMESTAMP`, ...) is the sender's
//! bookkeeping and skipped, `_BOOT_ID` and the other trusted fields are kept.
//!
//! Bounded whatever the sender declares: a value is kept up to `max_field` bytes (the rest
//! skipped and the entry marked truncated), an entry keeps at most [`ENTRY_FIELDS_MAX`] times
//! that, a line that is not yet a name after [`NAME_MAX`] bytes is an error, and so is a binary
//! length over journald's own [`DATA_SIZE_MAX`]: refused at the length, not read to its end.
//! Pure.

use crate::message::Fields;

/// The longest field journald takes (systemd's `DATA_SIZE_MAX`, 768 MiB): a binary length over
/// it is a broken or hostile stream.
pub const DATA_SIZE_MAX: u64 = 768 << 20;
/// Bytes a field name may take before the line is called broken (journald's names are at most
/// 64; longer ones up to this are skipped as journal-remote skips them).
pub const NAME_MAX: usize = 256;
/// An entry keeps at most this many times `max_field` bytes of fields: a journal entry's
/// twenty-odd fields beside a `MESSAGE` of the maximum size fit; an entry of a thousand maximal
/// fields does not hold a thousand times the bound.
pub const ENTRY_FIELDS_MAX: usize = 2;

/// One entry: its time, its `MESSAGE`, and every other field under its journald name.
#[derive(Debug, Default)]
pub struct JournalEntry {
    /// `__REALTIME_TIMESTAMP`: microseconds since the epoch, when the entry was logged.
    pub realtime_usec: Option<u64>,
    /// `MESSAGE` (binary ones too).
    pub message: Vec<u8>,
    /// The other fields, `_`-trusted ones included.
    pub fields: Fields,
    /// A value (or the entry) was longer than its bound and was cut.
    pub truncated: bool,
}

/// Why a stream is not the export format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line: an empty one ends the entry.
    LineStart,
    /// Reading a name, up to `=` (a text field) or `\n` (a binary one).
    Name,
    /// A text value, up to `\n`.
    Text,
    /// A binary value's length: `got` of its 8 bytes read.
    Length { got: usize },
    /// A binary value: `left` bytes still to come.
    Binary { left: u64 },
    /// The `\n` after a binary value.
    BinaryEnd,
}

/// Decodes entries from a stream of the export format.
pub struct ExportReader {
    state: State,
    max_field: usize,
    name: Vec<u8>,
    value: Vec<u8>,
    length: [u8; 8],
    entry: JournalEntry,
    /// Bytes the entry keeps so far.
    kept: usize,
    /// Bytes of the entry in progress seen (nothing yet: between entries).
    started: bool,
}

impl ExportReader {
    /// A reader that keeps each value up to `max_field` bytes.
    pub fn new(max_field: usize) -> ExportReader {
        ExportReader {
            state: State::LineStart,
            max_field,
            name: Vec::new(),
            value: Vec::new(),
            length: [0; 8],
            entry: JournalEntry::default(),
            kept: 0,
            started: false,
        }
    }

    /// Applies a new bound to the values that start from now.
    pub fn set_max(&mut self, max_field: usize) {
        self.max_field = max_field;
    }

    /// True while an entry is partly read.
    pub fn in_entry(&self) -> bool {
        self.started
    }

    /// Takes the next bytes of the stream; each entry they complete goes to `entry`. After an
    /// error the stream cannot be read on (the entries before it were given).
    pub fn feed(
        &mut self,
        mut bytes: &[u8],
        mut entry: impl FnMut(JournalEntry),
    ) -> Result<(), Malformed> {
        while let Some(&first) = bytes.first() {
            match self.state {
                State::LineStart if first == b'\n' => {
                    bytes = &bytes[1..];
                    if self.started {
                        self.started = false;
                        self.kept = 0;
                        entry(std::mem::take(&mut self.entry));
                    }
                }
                State::LineStart => {
                    self.started = true;
                    self.name.clear();
                    self.value.clear();
                    self.state = State::Name;
                }
                State::Name => {
                    let end = bytes
                        .iter()
                        .position(|&b| b == b'=' || b == b'\n')
                        .unwrap_or(bytes.len());
                    if self.name.len() + end > NAME_MAX {
                        return Err(Malformed(format!(
                            "a field name longer than {NAME_MAX} bytes"
                        )));
                    }
                    self.name.extend_from_slice(&bytes[..end]);
                    match bytes.get(end) {
                        Some(b'=') => self.state = State::Text,
                        Some(_) => self.state = State::Length { got: 0 },
                        None => {}
                    }
                    bytes = &bytes[(end + 1).min(bytes.len())..];
                }
                State::Text => {
                    let end = bytes.iter().position(|&b| b == b'\n');
                    let piece = &bytes[..end.unwrap_or(bytes.len())];
                    self.keep(piece);
                    match end {
                        Some(end) => {
                            bytes = &bytes[end + 1..];
                            self.field_done();
                        }
                        None => bytes = &[],
                    }
                }
                State::Length { got } => {
                    let n = (8 - got).min(bytes.len());
                    self.length[got..got + n].copy_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if got + n < 8 {
                        self.state = State::Length { got: got + n };
                        continue;
                    }
                    let left = u64::from_le_bytes(self.length);
                    if left > DATA_SIZE_MAX {
                        return Err(Malformed(format!(
                            "a binary field of {left} bytes (journald takes at most \
                             {DATA_SIZE_MAX})"
                        )));
                    }
                    self.state = if left == 0 {
                        State::BinaryEnd
                    } else {
                        State::Binary { left }
                    };
                }
                State::Binary { left } => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    self.keep(&bytes[..n]);
                    bytes = &bytes[n..];
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::BinaryEnd
                    } else {
                        State::Binary { left }
                    };
                }
                State::BinaryEnd => {
                    if first != b'\n' {
                        return Err(Malformed(format!(
                            "byte {first:#04x} after a binary field where a newline belongs"
                        )));
                    }
                    bytes = &bytes[1..];
                    self.field_done();
                }
            }
        }
        Ok(())
    }

    /// Keeps what fits of a value's next bytes; what does not marks the entry cut.
    fn keep(&mut self, piece: &[u8]) {
        let room = self
            .max_field
            .saturating_sub(self.value.len())
            .min((self.max_field * ENTRY_FIELDS_MAX).saturating_sub(self.kept + self.value.len()));
        if piece.len() > room {
            self.entry.truncated = true;
        }
        self.value
            .extend_from_slice(&piece[..piece.len().min(room)]);
    }

    /// A field is whole: into the entry, or skipped as journal-remote skips it.
    fn field_done(&mut self) {
        self.state = State::LineStart;
        let (name, value) = (&self.name[..], &self.value[..]);
        if self.kept >= self.max_field * ENTRY_FIELDS_MAX {
            // The entry holds its bound: the fields after it are left out.
            self.entry.truncated = true;
            return;
        }
        self.kept += name.len() + value.len();
        match name {
            b"MESSAGE" => self.entry.message = value.to_vec(),
            b"__REALTIME_TIMESTAMP" => {
                self.entry.realtime_usec = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|&t| t > 0 && t < (1 << 55));
            }
            n if n.starts_with(b"__") => {}
            // A name journald would refuse is skipped (`Fields::push_raw`).
            _ => self.entry.fields.push_raw(name, value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(out: &mut Vec<u8>, name: &str, value: &[u8]) {
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }

    fn read_all(wire: &[u8], max: usize, cut: usize) -> Result<Vec<JournalEntry>, Malformed> {
        let mut reader = ExportReader::new(max);
        let mut got = Vec::new();
        for piece in wire.chunks(cut.max(1)) {
            reader.feed(piece, |e| got.push(e))?;
        }
        assert!(!reader.in_entry(), "a whole stream ends between entries");
        Ok(got)
    }

    fn sample() -> Vec<u8> {
        let mut wire = b"__CURSOR=s=1;i=2\n__REALTIME_TIMESTAMP=1796657844000001\n\
                         __MONOTONIC_TIMESTAMP=42\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
                         _HOSTNAME=web1\nMESSAGE=hello\n"
            .to_vec();
        binary(&mut wire, "BLOB", b"a\nb\x00\xff");
        wire.extend_from_slice(b"\n");
        binary(&mut wire, "MESSAGE", b"two\nlines");
        wire.extend_from_slice(b"PRIORITY=3\nlower=skipped\n\n");
        wire
    }

    #[test]
    fn entries_come_whole_with_their_time_and_fields_however_the_stream_is_cut() {
        let wire = sample();
        for cut in [1, 2, 3, 7, 8, 9, 64, wire.len()] {
            let got = read_all(&wire, 1024, cut).unwrap();
            assert_eq!(got.len(), 2, "cut {cut}");
            let first = &got[0];
            assert_eq!(first.realtime_usec, Some(1_796_657_844_000_001));
            assert_eq!(first.message, b"hello");
            let names: Vec<&str> = first.fields.as_ref().iter().map(|(n, _)| n).collect();
            assert_eq!(names, ["_BOOT_ID", "_HOSTNAME", "BLOB"], "cut {cut}");
            assert_eq!(
                first.fields.as_ref().get("BLOB"),
                Some(&b"a\nb\x00\xff"[..])
            );
            assert!(!first.truncated);
            let second = &got[1];
            assert_eq!(second.message, b"two\nlines");
            assert_eq!(second.realtime_usec, None);
            assert_eq!(second.fields.as_ref().get("PRIORITY"), Some(&b"3"[..]));
            assert_eq!(
                second.fields.as_ref().len(),
                1,
                "a lower-case name is skipped"
            );
        }
    }

    #[test]
    fn values_are_kept_up_to_the_bound_and_the_entry_is_marked_cut() {
        let mut wire = format!("MESSAGE={}\n", "x".repeat(100)).into_bytes();
        binary(&mut wire, "BIG", &[7; 300]);
        for i in 0..10 {
            wire.extend_from_slice(format!("F{i}={}\n", "y".repeat(50)).as_bytes());
        }
        wire.push(b'\n');
        let got = read_all(&wire, 64, 5).unwrap();
        let e = &got[0];
        assert!(e.truncated);
        assert_eq!(e.message.len(), 64);
        // What the message left of the entry's bound: 128 - 64 - "MESSAGE".len().
        assert_eq!(e.fields.as_ref().get("BIG").map(<[u8]>::len), Some(57));
        assert!(
            e.message.len() + e.fields.as_ref().bytes() <= 64 * ENTRY_FIELDS_MAX + 64,
            "the entry keeps about its bound, not 100 + 300 + 500 bytes"
        );
    }

    #[test]
    fn hostile_lengths_and_names_are_errors_at_once() {
        let mut wire = b"BLOB\n".to_vec();
        wire.extend_from_slice(&u64::MAX.to_le_bytes());
        let err = read_all(&wire, 64, 3).unwrap_err();
        assert!(err.0.contains("binary field"), "{err:?}");
        let err = read_all(&vec![b'A'; 10_000], 64, 100).unwrap_err();
        assert!(err.0.contains("name longer"), "{err:?}");
        let mut wire = b"BLOB\n".to_vec();
        wire.extend_from_slice(&2u64.to_le_bytes());
        wire.extend_from_slice(b"abX");
        let err = read_all(&wire, 64, 1).unwrap_err();
        assert!(err.0.contains("newline"), "{err:?}");
    }

    #[test]
    fn a_bad_timestamp_is_no_time_and_blank_lines_between_entries_are_nothing() {
        let got = read_all(b"\n\n__REALTIME_TIMESTAMP=soon\nMESSAGE=m\n\n\n", 64, 1).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].realtime_usec, None);
    }
}
