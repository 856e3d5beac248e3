//! RFC 3164 (BSD syslog) and syslog(3)'s local form, after `<PRI>`.
//!
//! Network senders write `TIMESTAMP HOSTNAME TAG[PID]: MSG`; syslog(3) on a local socket writes
//! `TIMESTAMP TAG[PID]: MSG` with no hostname. A generic parser reads that tag as a hostname; here a
//! token that looks like a tag (`name:` or `name[pid]`) is a tag, and only a token followed by one
//! is a hostname.

use super::{Fields, split_token};

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Finds the fields in everything after `<PRI>`. `local`: the message came over an AF_UNIX
/// socket, where syslog(3) writes no hostname.
pub(super) fn parse_header(input: &[u8], local: bool, fields: &mut Fields<'_>) {
    let (timestamp, rest) = split_timestamp(input);
    if let Some(t) = timestamp {
        fields.spans.timestamp = fields.span(t);
    }
    let (first, after_first) = split_token(rest);
    if looks_like_tag(first) {
        let text = read_tag(rest, fields);
        fields.spans.text = fields.span(text);
        return;
    }
    let (second, _) = split_token(after_first);
    if !first.is_empty() && looks_like_tag(second) {
        fields.spans.hostname = fields.span(first);
        let text = read_tag(after_first, fields);
        fields.spans.text = fields.span(text);
    } else if timestamp.is_some() && !local && !first.is_empty() {
        // A network sender always writes a hostname after the timestamp (RFC 3164 4.1.2), even
        // when no tag follows (`<13>Nov 23 10:00:00 router link down`).
        fields.spans.hostname = fields.span(first);
        fields.spans.text = fields.span(after_first);
    } else {
        fields.spans.text = fields.span(rest);
    }
}

/// `Mmm dd hh:mm:ss` (optionally `.fraction`), or an RFC 3339 timestamp as rsyslog forwards.
fn split_timestamp(input: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let bsd = input.len() >= 15
        && MONTHS.iter().any(|m| input[..3] == m[..])
        && input[3] == b' '
        && (input[4] == b' ' || input[4].is_ascii_digit())
        && input[5].is_ascii_digit()
        && input[6] == b' '
        && is_clock(&input[7..15]);
    let iso = input.len() >= 19
        && input[..4].iter().all(u8::is_ascii_digit)
        && input[4] == b'-'
        && input[10] == b'T';
    if !(bsd || iso) {
        return (None, input);
    }
    let start = if bsd { 15 } else { 10 };
    let end = input[start..]
        .iter()
        .position(|&b| b == b' ')
        .map_or(input.len(), |i| start + i);
    let rest = &input[end..];
    (Some(&input[..end]), rest.strip_prefix(b" ").unwrap_or(rest))
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

/// `name:`, `name[pid]` or `name[pid]:`.
fn looks_like_tag(token: &[u8]) -> bool {
    if token.len() < 2 {
        return false;
    }
    let body = token.strip_suffix(b":").unwrap_or(token);
    if body.len() < token.len() && !body.is_empty() && !body.contains(&b'[') {
        return true;
    }
    match body.iter().position(|&b| b == b'[') {
        Some(open) => open > 0 && body.ends_with(b"]") && open + 1 < body.len() - 1,
        None => false,
    }
}

/// Reads `TAG[PID]:` and returns the text after it (and after one space).
fn read_tag<'a>(input: &'a [u8], fields: &mut Fields<'_>) -> &'a [u8] {
    let end = input
        .iter()
        .position(|&b| matches!(b, b'[' | b':' | b' '))
        .unwrap_or(input.len());
    fields.spans.app_name = fields.span(&input[..end]);
    let mut rest = &input[end..];
    if let Some(after) = rest.strip_prefix(b"[")
        && let Some(close) = after.iter().position(|&b| b == b']')
    {
        fields.spans.procid = fields.span(&after[..close]);
        rest = &after[close + 1..];
    }
    let rest = rest.strip_prefix(b":").unwrap_or(rest);
    rest.strip_prefix(b" ").unwrap_or(rest)
}
