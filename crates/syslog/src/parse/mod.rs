//! Syslog parsing: raw bytes in, a `Message` out.
//!
//! The parsers never fail and never do I/O. Each form is tried where its signature appears
//! (`<PRI>1 ` for RFC 5424, anything else after `<PRI>` for RFC 3164 and syslog(3)); whatever cannot
//! be read as a header stays in the text. Non-UTF-8 bytes are kept as they are.
//!
//! Two deliberate choices where peers differ:
//! - Input without a valid `<PRI>` is all text (RFC 3164 section 4.3.3: the relay adds user.notice
//!   and keeps the content), an `Unparsed` message at user.notice. Guessing a header in text that
//!   has no PRI would turn the first words of a stray line into a hostname and a tag.
//! - A UTF-8 BOM at the start of an RFC 5424 MSG is removed: RFC 5424 section 6.4 makes it a marker
//!   of the encoding, not content, and in the journal or a file it would be an invisible character
//!   in front of the text, and a forwarder writing RFC 5424 adds its own.

pub mod export;
pub mod kmsg;
mod rfc3164;
mod rfc5424;

use std::time::SystemTime;

use crate::message::{DEFAULT_PRIORITY, Format, Message, Origin, Parsed, Span, Spans};

/// Parses one message (one datagram or one TCP frame, framing already removed).
pub fn parse(raw: &[u8], origin: Origin, received: SystemTime, truncated: bool) -> Message {
    let (len, parsed, carried) = read(raw, origin.transport.is_local());
    let msg = Message::new(&raw[..len], parsed, origin, received, truncated);
    with_carried(msg, carried)
}

/// As [`parse`], keeping `raw` itself as the message's bytes: for a reader that assembled
/// them (a journal entry's header and text), no second copy.
pub fn parse_owned(
    mut raw: Vec<u8>,
    origin: Origin,
    received: SystemTime,
    truncated: bool,
) -> Message {
    let (len, parsed, carried) = read(&raw, origin.transport.is_local());
    raw.truncate(len);
    let msg = Message::from_vec(raw, parsed, origin, received, truncated);
    with_carried(msg, carried)
}

fn with_carried(msg: Message, carried: Option<crate::fields::Fields>) -> Message {
    match carried {
        Some(fields) => msg.with_fields(fields),
        None => msg,
    }
}

/// Reads the header of `raw`: how many of its bytes the message keeps (the trailer trimmed),
/// where its fields are, and the fields another logger forwarded in its structured data.
fn read(raw: &[u8], local: bool) -> (usize, Parsed, Option<crate::fields::Fields>) {
    let raw = trim_trailer(raw);
    let (pri, rest) = match split_pri(raw) {
        Some((pri, rest)) => (pri, rest),
        None => (DEFAULT_PRIORITY, raw),
    };
    let mut parsed = Parsed {
        facility: pri >> 3,
        severity: pri & 7,
        format: Format::Unparsed,
        spans: Spans::default(),
    };
    let mut fields = Fields {
        raw,
        spans: &mut parsed.spans,
    };
    let mut carried = None;
    if rest.len() == raw.len() {
        fields.spans.text = fields.span(raw);
    } else if let Some(after_version) = rest.strip_prefix(b"1 ") {
        parsed.format = Format::Rfc5424;
        rfc5424::parse_header(after_version, &mut fields);
        // Fields another logger forwarded (`[fields@32473 ...]`) become fields again.
        let sd = parsed.spans.structured_data;
        let found = crate::message::fields_from_sd(sd.slice(raw));
        carried = (!found.is_empty()).then_some(found);
    } else {
        parsed.format = Format::Rfc3164;
        rfc3164::parse_header(rest, local, &mut fields);
    }
    (raw.len(), parsed, carried)
}

/// Records where the fields a header parser finds lie in the message.
struct Fields<'a> {
    raw: &'a [u8],
    spans: &'a mut Spans,
}

impl Fields<'_> {
    /// Where `part` (a subslice of the message, or empty for absent) lies.
    fn span(&self, part: &[u8]) -> Span {
        Span::of(self.raw, part)
    }
}

/// Removes the trailing newline, carriage return and NUL bytes that senders append.
fn trim_trailer(raw: &[u8]) -> &[u8] {
    let end = raw
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r' | b'\0'))
        .map_or(0, |i| i + 1);
    &raw[..end]
}

/// Splits `<PRI>` off the front: 1-3 digits, value at most 191 (facility 23, severity 7).
fn split_pri(raw: &[u8]) -> Option<(u8, &[u8])> {
    let rest = raw.strip_prefix(b"<")?;
    let close = rest.iter().take(4).position(|&b| b == b'>')?;
    let digits = &rest[..close];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    (value <= 191).then(|| (value as u8, &rest[close + 1..]))
}

/// Splits at the first space: (token, rest after the space). Without a space, the rest is empty.
fn split_token(input: &[u8]) -> (&[u8], &[u8]) {
    match input.iter().position(|&b| b == b' ') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[]),
    }
}

#[cfg(test)]
mod tests;
