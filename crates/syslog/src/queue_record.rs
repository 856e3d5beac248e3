//! The disk queue's records, encoded and decoded: what a `queue-dir` segment is made of.
//!
//! A record is `MAGIC LEN SEQ CRC PAYLOAD`: a 4-byte magic (`LGQ1` a message, `LGQP` an input's
//! read position), the payload's length (u32), the sequence number (u64) and the CRC-32 of
//! `SEQ PAYLOAD` (u32), all little-endian, then the payload. A position's payload is
//! `KEY NUL TEXT`. The daemon appends records and reads them back after a crash, a bit flip or
//! a rogue write: [`decode`] says of the bytes at hand whether they start a valid record, need
//! more bytes to tell, or are damage to step over (one byte at a time, to the next magic whose
//! checksum holds). Pure: no I/O, never panics on any input (fuzzed: `fuzz/fuzz_targets/queue_record.rs`).

use std::ops::Range;

/// The magic of a message record.
pub const MESSAGE_MAGIC: [u8; 4] = *b"LGQ1";
/// The magic of a read-position record.
pub const POSITION_MAGIC: [u8; 4] = *b"LGQP";
/// A record's bytes before its payload.
pub const HEADER: usize = 4 + 4 + 8 + 4;
/// The largest payload a record may announce; a larger length is damage.
pub const MAX_PAYLOAD: usize = 32 << 20;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A queued message (the payload is the message as its output holds it).
    Message,
    /// An input's read position (`KEY NUL TEXT`), as of the messages before it.
    Position,
}

impl Kind {
    fn magic(self) -> [u8; 4] {
        match self {
            Kind::Message => MESSAGE_MAGIC,
            Kind::Position => POSITION_MAGIC,
        }
    }
}

/// What the bytes at hand start with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole, valid record: its kind, sequence number, where its payload lies and where it
    /// ends (both within the bytes given).
    Record {
        /// Message or position.
        kind: Kind,
        /// Its sequence number.
        seq: u64,
        /// Its payload's bytes.
        payload: Range<usize>,
    },
    /// The bytes could start a record whose end lies beyond them: read more (at the end of the
    /// data, this is a torn record, and damage).
    Incomplete,
    /// Not a record here (a wrong magic, an impossible length, a checksum that does not hold):
    /// step one byte and look again.
    Damaged,
}

/// Appends a record.
pub fn encode(out: &mut Vec<u8>, kind: Kind, seq: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&len| len as usize <= MAX_PAYLOAD)
        .expect("a queued payload is bounded far below MAX_PAYLOAD");
    out.extend_from_slice(&kind.magic());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&checksum(seq, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Appends a position record for input `key` at `text`.
pub fn encode_position(out: &mut Vec<u8>, seq: u64, key: &str, text: &str) {
    let mut payload = Vec::with_capacity(key.len() + 1 + text.len());
    payload.extend_from_slice(key.as_bytes());
    payload.push(0);
    payload.extend_from_slice(text.as_bytes());
    encode(out, Kind::Position, seq, &payload);
}

/// What `bytes` start with.
pub fn decode(bytes: &[u8]) -> Decoded {
    let Some(header) = bytes.get(..HEADER) else {
        return match bytes.get(..4) {
            Some(magic) if kind_of(magic).is_none() => Decoded::Damaged,
            _ => Decoded::Incomplete,
        };
    };
    let Some(kind) = kind_of(&header[..4]) else {
        return Decoded::Damaged;
    };
    let len = u32::from_le_bytes(field(header, 4)) as usize;
    if len > MAX_PAYLOAD {
        return Decoded::Damaged;
    }
    let Some(payload) = bytes.get(HEADER..HEADER + len) else {
        return Decoded::Incomplete;
    };
    let seq = u64::from_le_bytes(field(header, 8));
    let crc = u32::from_le_bytes(field(header, 16));
    if checksum(seq, payload) != crc {
        return Decoded::Damaged;
    }
    Decoded::Record {
        kind,
        seq,
        payload: HEADER..HEADER + len,
    }
}

/// A position record's key and text; None for one that is not UTF-8 or has no NUL (damage the
/// checksum missed cannot name an input).
pub fn decode_position(payload: &[u8]) -> Option<(&str, &str)> {
    let nul = payload.iter().position(|&b| b == 0)?;
    let key = std::str::from_utf8(&payload[..nul]).ok()?;
    let text = std::str::from_utf8(&payload[nul + 1..]).ok()?;
    Some((key, text))
}

/// Of the records encoded back to back in `bytes` (ours, not yet written: trusted), how many
/// bytes and how many message records lie whole within its first `upto` bytes.
pub fn whole_records(bytes: &[u8], upto: usize) -> (usize, u64) {
    let (mut at, mut messages) = (0, 0);
    while let Some(header) = bytes.get(at..at + HEADER) {
        let end = at + HEADER + u32::from_le_bytes(field(header, 4)) as usize;
        if end > upto.min(bytes.len()) {
            break;
        }
        let message = header[..4] == MESSAGE_MAGIC;
        (at, messages) = (end, messages + u64::from(message));
    }
    (at, messages)
}

fn kind_of(magic: &[u8]) -> Option<Kind> {
    match magic {
        m if m == MESSAGE_MAGIC => Some(Kind::Message),
        m if m == POSITION_MAGIC => Some(Kind::Position),
        _ => None,
    }
}

/// The `N` bytes of `header` at `at` (within HEADER, by construction).
fn field<const N: usize>(header: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&header[at..at + N]);
    out
}

/// CRC-32 (IEEE, as zlib's `crc32`) of the sequence number's bytes and the payload.
fn checksum(seq: u64, payload: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(payload);
    crc.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        let mut bytes = Vec::new();
        encode(&mut bytes, Kind::Message, 42, b"hello");
        encode_position(&mut bytes, 43, "kmsg", "boot 7");
        let Decoded::Record { kind, seq, payload } = decode(&bytes) else {
            panic!("{:?}", decode(&bytes));
        };
        assert_eq!(
            (kind, seq, &bytes[payload.clone()]),
            (Kind::Message, 42, &b"hello"[..])
        );
        let rest = &bytes[payload.end..];
        let Decoded::Record { kind, seq, payload } = decode(rest) else {
            panic!("{:?}", decode(rest));
        };
        assert_eq!((kind, seq), (Kind::Position, 43));
        assert_eq!(decode_position(&rest[payload]), Some(("kmsg", "boot 7")));
    }

    #[test]
    fn the_checksum_is_zlibs_crc32_of_sequence_and_payload() {
        // The standard check value: crc32(b"123456789") = 0xCBF43926.
        let seq = u64::from_le_bytes(*b"12345678");
        assert_eq!(checksum(seq, b"9"), 0xCBF4_3926);
    }

    #[test]
    fn damage_a_torn_end_and_a_short_read_are_told_apart() {
        let mut bytes = Vec::new();
        encode(&mut bytes, Kind::Message, 1, b"payload");
        assert_eq!(decode(&bytes[..HEADER + 3]), Decoded::Incomplete);
        assert_eq!(decode(&bytes[..2]), Decoded::Incomplete);
        assert_eq!(decode(b"XY"), Decoded::Incomplete);
        assert_eq!(decode(b"XYZW"), Decoded::Damaged);
        let mut flipped = bytes.clone();
        flipped[HEADER + 1] ^= 1;
        assert_eq!(decode(&flipped), Decoded::Damaged);
        let mut huge = bytes.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge), Decoded::Damaged);
        assert_eq!(decode(&bytes[1..]), Decoded::Damaged);
    }

    #[test]
    fn whole_records_counts_messages_not_positions() {
        let mut bytes = Vec::new();
        encode(&mut bytes, Kind::Message, 1, b"a");
        encode_position(&mut bytes, 2, "k", "v");
        encode(&mut bytes, Kind::Message, 2, b"b");
        let first = HEADER + 1;
        assert_eq!(whole_records(&bytes, first), (first, 1));
        assert_eq!(whole_records(&bytes, bytes.len() - 1).1, 1);
        assert_eq!(whole_records(&bytes, bytes.len()), (bytes.len(), 2));
        assert_eq!(whole_records(&bytes, usize::MAX), (bytes.len(), 2));
    }
}
