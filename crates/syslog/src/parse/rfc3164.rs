//! RFC 3164 (BSD syslog) and syslog(3)'s local form, after `<PRI>`.
//!
//! RFC 3164 describes what devices sent in 2001 rather than a standard, so this reads the header
//! the way rsyslog, syslog-ng and syslog-loose agree on, and tolerates what real senders do:
//!
//! - spaces between `<PRI>` and the timestamp;
//! - month names in any case (`NOV`), a day without its padding space (`Jun 8`), a year before
//!   the time (`Apr 15 2007 21:28:13`, Cisco), a fraction, a `:` after the time, or an RFC 3339
//!   timestamp (rsyslog's forwarding format);
//! - an IP literal as the hostname, IPv6 included (`0002::`);
//! - a tag followed directly by its text (`sshd:Accepted`), and a lone `:` where the tag would be.
//!
//! Network senders write `TIMESTAMP HOSTNAME TAG[PID]: MSG`, where the word after the hostname
//! is the tag even without a colon (as all three peers read it). syslog(3) on a local socket
//! writes `TIMESTAMP TAG[PID]: MSG` with no hostname; there, and wherever there is no timestamp,
//! only a word that looks like a tag (`name:` or `name[pid]`) is read as one, and only a word
//! followed by such a tag is a hostname. Whatever is not read as a header stays in the text.

use std::net::IpAddr;

use super::{Fields, split_token};

const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

/// Finds the fields in everything after `<PRI>`. `local`: the message came over an AF_UNIX
/// socket, where syslog(3) writes no hostname.
pub(super) fn parse_header(input: &[u8], local: bool, fields: &mut Fields<'_>) {
    let input = skip_spaces(input);
    let (timestamp, rest) = split_timestamp(input);
    if let Some(t) = timestamp {
        fields.spans.timestamp = fields.span(t);
    }
    let text = if timestamp.is_some() && !local {
        network_header(rest, fields)
    } else {
        tag_first_header(rest, fields)
    };
    fields.spans.text = fields.span(text);
}

/// After a network sender's timestamp: HOSTNAME, then TAG. A first word that cannot be a
/// hostname (`%PIX-6-302014:`, `sshd[7]:`) is the tag of a sender that wrote no hostname.
fn network_header<'a>(rest: &'a [u8], fields: &mut Fields<'_>) -> &'a [u8] {
    if let Some(text) = lone_colon(rest) {
        return text;
    }
    let (first, after_first) = split_token(rest);
    if first.is_empty() {
        return rest;
    }
    if !is_hostname(first) {
        return read_tag(rest, fields, false).unwrap_or(rest);
    }
    fields.spans.hostname = fields.span(first);
    if after_first.first() == Some(&b' ') {
        // Two spaces after the hostname: an empty tag (syslog-loose reads it so too).
        return skip_spaces(after_first);
    }
    if let Some(text) = lone_colon(after_first) {
        return text;
    }
    read_tag(after_first, fields, false).unwrap_or(after_first)
}

/// Without a timestamp, or from a local socket: a tag if the first word looks like one, else a
/// hostname if the second does, else all text.
fn tag_first_header<'a>(rest: &'a [u8], fields: &mut Fields<'_>) -> &'a [u8] {
    if let Some(text) = lone_colon(rest) {
        return text;
    }
    if let Some(text) = read_tag(rest, fields, true) {
        return text;
    }
    let (first, after_first) = split_token(rest);
    if !first.is_empty()
        && !after_first.is_empty()
        && let Some(text) = read_tag(after_first, fields, true)
    {
        fields.spans.hostname = fields.span(first);
        return text;
    }
    rest
}

/// `:` alone where the tag would be (`<34>Oct 11 22:14:15 : a message`): the text after it.
fn lone_colon(input: &[u8]) -> Option<&[u8]> {
    let after = input.strip_prefix(b":")?;
    match after.first() {
        None => Some(after),
        Some(b' ') => Some(&after[1..]),
        Some(_) => None,
    }
}

/// Reads `TAG`, `TAG:`, `TAG[PID]` or `TAG[PID]:` at the start of `input` and returns the text
/// after it (and after one space). The tag ends at the first byte that cannot be in a tag; it is
/// a tag only if that byte is `:`, `[`, a space or the end. `strict`: only `TAG:` and `TAG[PID]`
/// count, not a bare word. A clock or an RFC 3339 time (`02:00:00`) is never a tag.
fn read_tag<'a>(input: &'a [u8], fields: &mut Fields<'_>, strict: bool) -> Option<&'a [u8]> {
    let end = input
        .iter()
        .position(|&b| !is_tag_byte(b))
        .unwrap_or(input.len());
    let tag = &input[..end];
    let mut rest = &input[end..];
    if tag.is_empty() || !matches!(rest.first(), None | Some(b':' | b'[' | b' ')) {
        return None;
    }
    if tag[0].is_ascii_digit()
        && rest.first() == Some(&b':')
        && rest.get(1).is_some_and(u8::is_ascii_digit)
    {
        return None;
    }
    let mut procid: &[u8] = &[];
    if let Some(after) = rest.strip_prefix(b"[") {
        let close = after.iter().position(|&b| b == b']')?;
        if close == 0 || after[..close].contains(&b' ') {
            return None;
        }
        procid = &after[..close];
        rest = &after[close + 1..];
        if !matches!(rest.first(), None | Some(b':' | b' ')) {
            return None;
        }
    }
    let colon = rest.first() == Some(&b':');
    if strict && !colon && procid.is_empty() {
        return None;
    }
    if colon {
        rest = &rest[1..];
    }
    fields.spans.app_name = fields.span(tag);
    fields.spans.procid = fields.span(procid);
    fields.spans.tag_colon = colon;
    Some(rest.strip_prefix(b" ").unwrap_or(rest))
}

/// Printable ASCII but the bytes that end a tag or mark text (`:`, `[`, `]`, quotes, braces,
/// `=`, `,`, `;`, `<`, `>`, `\`), and UTF-8. rsyslog and syslog-ng accept more; these are what
/// real tags use (`sshd(pam_unix)`, `%PIX-6-302014`, `postfix/smtpd`, `#001`).
fn is_tag_byte(b: u8) -> bool {
    b >= 0x80
        || b.is_ascii_graphic()
            && !matches!(
                b,
                b':' | b'['
                    | b']'
                    | b'{'
                    | b'}'
                    | b'"'
                    | b'\''
                    | b'='
                    | b','
                    | b';'
                    | b'<'
                    | b'>'
                    | b'\\'
            )
}

/// A hostname, an IPv4 or IPv6 literal, or a name of letters, digits, `.`, `-`, `_` and non-ASCII
/// bytes (internationalised names sent as UTF-8).
fn is_hostname(token: &[u8]) -> bool {
    let name = token
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') || b >= 0x80);
    name || std::str::from_utf8(token).is_ok_and(|s| s.parse::<IpAddr>().is_ok())
}

fn skip_spaces(input: &[u8]) -> &[u8] {
    let n = input.iter().take_while(|&&b| b == b' ').count();
    &input[n..]
}

/// Splits off the timestamp: `Mmm dd [yyyy] hh:mm:ss[.frac][:]`, or an RFC 3339 timestamp as
/// rsyslog forwards. The span excludes a trailing `:` and the space after it.
fn split_timestamp(input: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let end = bsd_timestamp_len(input).or_else(|| rfc3339_len(input));
    let Some(end) = end else {
        return (None, input);
    };
    let mut rest = &input[end..];
    rest = rest.strip_prefix(b":").unwrap_or(rest);
    (Some(&input[..end]), rest.strip_prefix(b" ").unwrap_or(rest))
}

/// The length of `Mmm dd [yyyy] hh:mm:ss[.fraction]` at the start of `input`, if there is one
/// followed by a space, a `:` or the end.
fn bsd_timestamp_len(input: &[u8]) -> Option<usize> {
    let month = input.get(..3)?;
    if !MONTHS.iter().any(|m| month.eq_ignore_ascii_case(&m[..])) {
        return None;
    }
    let mut i = 3;
    let spaces = count(&input[i..], |b| b == b' ');
    if !(1..=2).contains(&spaces) {
        return None;
    }
    i += spaces;
    let day = count(&input[i..], |b| b.is_ascii_digit());
    if !(1..=2).contains(&day) || input.get(i + day) != Some(&b' ') {
        return None;
    }
    i += day + 1;
    // A year before the time, as Cisco devices write it.
    if count(&input[i..], |b| b.is_ascii_digit()) == 4 && input.get(i + 4) == Some(&b' ') {
        i += 5;
    }
    if !input.get(i..i + 8).is_some_and(is_clock) {
        return None;
    }
    i += 8;
    if input.get(i) == Some(&b'.') {
        let fraction = count(&input[i + 1..], |b| b.is_ascii_digit());
        if fraction > 0 {
            i += 1 + fraction;
        }
    }
    matches!(input.get(i), None | Some(b' ' | b':')).then_some(i)
}

/// The length of an RFC 3339 timestamp (`2026-11-23T20:21:46.123+00:00`) at the start.
fn rfc3339_len(input: &[u8]) -> Option<usize> {
    let date = input.get(..11)?;
    let shaped = date[..4].iter().all(u8::is_ascii_digit)
        && date[4] == b'-'
        && date[7] == b'-'
        && matches!(date[10], b'T' | b't')
        && input
            .get(11..13)
            .is_some_and(|h| h.iter().all(u8::is_ascii_digit));
    shaped.then(|| input.iter().position(|&b| b == b' ').unwrap_or(input.len()))
}

fn count(input: &[u8], pred: impl Fn(u8) -> bool) -> usize {
    input.iter().take_while(|&&b| pred(b)).count()
}

fn is_clock(t: &[u8]) -> bool {
    t.len() == 8
        && t.iter().enumerate().all(|(i, b)| {
            if i == 2 || i == 5 {
                *b == b':'
            } else {
                b.is_ascii_digit()
            }
        })
}
