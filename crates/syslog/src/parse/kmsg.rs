//! /dev/kmsg records read back (the kernel's `Documentation/ABI/testing/dev-kmsg`): each
//! read(2) of /dev/kmsg returns one record, `PRI,SEQ,USEC,FLAGS[,...];TEXT` and then
//! ` KEY=VALUE` dictionary lines (SUBSYSTEM, DEVICE), the text with non-printable bytes as
//! `\xNN`; kernels before 4.9 wrote a line in pieces (flags `c`, then `+`), which [`Joiner`]
//! puts back together. Pure: the kernel log input (`inputs::kmsg`) reads, this decodes.

/// One /dev/kmsg record.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    /// The severity, 0 to 7.
    pub priority: u8,
    /// The facility, at most 23 (0: the kernel's own).
    pub facility: u8,
    /// The kernel's sequence number.
    pub seq: u64,
    /// Microseconds since boot (CLOCK_MONOTONIC).
    pub usec: u64,
    /// `c`: a line continued by the records flagged `+` that follow (kernels before 4.9);
    /// `-` otherwise.
    pub flags: u8,
    /// The text, the kernel's escapes undone.
    pub text: Vec<u8>,
    /// The dictionary: KEY and value.
    pub dictionary: Vec<(String, Vec<u8>)>,
    /// The sequence numbers of the continuation records joined into this one.
    pub joined: Vec<u64>,
}

impl Record {
    /// Reads `PRI,SEQ,USEC,FLAGS[,...];TEXT\n KEY=VALUE\n...`; None for what is not a record.
    pub fn parse(bytes: &[u8]) -> Option<Record> {
        let semicolon = bytes.iter().position(|&b| b == b';')?;
        let prefix = std::str::from_utf8(&bytes[..semicolon]).ok()?;
        let mut parts = prefix.split(',');
        let pri: u32 = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let usec = parts.next()?.parse().ok()?;
        let flags = parts.next().and_then(|f| f.bytes().next()).unwrap_or(b'-');
        let rest = &bytes[semicolon + 1..];
        let mut lines = rest.split(|&b| b == b'\n');
        let text = unescape_kernel(lines.next().unwrap_or_default());
        let dictionary = lines
            .filter_map(|l| l.strip_prefix(b" "))
            .filter_map(|l| {
                let eq = l.iter().position(|&b| b == b'=')?;
                let key = std::str::from_utf8(&l[..eq]).ok()?;
                let valid = !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
                valid.then(|| (key.to_owned(), l[eq + 1..].to_vec()))
            })
            .collect();
        Some(Record {
            priority: (pri & 7) as u8,
            facility: ((pri >> 3) & 0x7f).min(23) as u8,
            seq,
            usec,
            flags,
            text,
            dictionary,
            joined: Vec::new(),
        })
    }
}

/// Joins continued lines: a record flagged `c` is held until the records flagged `+` that
/// continue it have been appended (the kernels before 4.9 wrote a line in pieces; newer ones
/// write it whole, flagged `-`).
#[derive(Default)]
pub struct Joiner {
    held: Option<Record>,
}

impl Joiner {
    /// Takes the next record; returns the records now complete, in order.
    pub fn push(&mut self, record: Record) -> Vec<Record> {
        match (record.flags, &mut self.held) {
            (b'+', Some(held)) => {
                held.text.extend_from_slice(&record.text);
                held.joined.push(record.seq);
                Vec::new()
            }
            (b'c', _) => self.held.replace(record).into_iter().collect(),
            _ => {
                let mut done: Vec<Record> = self.held.take().into_iter().collect();
                done.push(record);
                done
            }
        }
    }

    /// The record held, once nothing more has come (the end of a drain).
    pub fn finish(&mut self) -> Option<Record> {
        self.held.take()
    }
}

/// Undoes the kernel's `\xNN` escapes of non-printable bytes (a backslash itself is `\x5c`).
pub fn unescape_kernel(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if text[i] == b'\\'
            && text.get(i + 1) == Some(&b'x')
            && let (Some(h), Some(l)) = (
                text.get(i + 2).copied().and_then(hex),
                text.get(i + 3).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 4;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}
