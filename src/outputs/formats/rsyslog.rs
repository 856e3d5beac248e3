//! rsyslog's file formats, byte for byte, so that a box's other readers (fail2ban, logcheck,
//! logwatch, an operator's grep) find the lines they know.
//!
//! - `traditional` is `RSYSLOG_TraditionalFileFormat`, Debian's default up to 11 (and what
//!   older tools and many other distributions expect):
//!   `%TIMESTAMP% %HOSTNAME% %syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%`, as in
//!   `Dec  7 15:37:24 vm sshd[2222]: Failed password …`.
//! - `rfc3339` is `RSYSLOG_FileFormat`, Debian's default since 12 (rsyslog 8.2210.0-3, "Enable
//!   high precision timestamps"): the same with the time as RFC 3339 with microseconds and the
//!   offset, `2026-12-07T15:37:24.220587+01:00`.
//!
//! Which time, as rsyslog 8.2302 chooses it: a local message (imuxsock ignores the timestamp
//! syslog(3) wrote) and one without a readable timestamp carry the time we received it, in the
//! output's zone; a network message carries its sender's time as sent (an RFC 5424 time keeps its
//! own offset; a BSD time, which has none, gets the year rsyslog would guess and the zone's
//! offset now). The host is ours for a local message, else the one the message names, else the
//! sender's address (no reverse DNS: rsyslog with `net.enableDNS="off"`). The tag is written as
//! sent (`sshd[2222]:`, an RFC 5424 `APP[PROCID]`), then the text after one space.
//!
//! Control characters are escaped the way rsyslog escapes them on receive: each byte below
//! 0x20 (TAB and newline included) as `#` and three octal digits (`#012`, `#033`), so a message
//! stays on its line and starts no terminal escape; other bytes are written as sent. Unlike
//! the `detailed` format this is not reversible (a sender's own `#012` reads the same), which
//! is rsyslog's trade. Pure.

use crate::timestamp::{self, Moment, SenderTime, Zone};
use syslog::escape;
use syslog::message::{Format, Message};

/// Which of rsyslog's two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// `RSYSLOG_TraditionalFileFormat`: `Dec  7 15:37:24`.
    Traditional,
    /// `RSYSLOG_FileFormat`: `2026-12-07T15:37:24.220587+01:00`.
    Rfc3339,
}

/// Appends the line for `msg` (with its newline) to `out`.
pub fn format(out: &mut Vec<u8>, msg: &Message, local_host: &str, zone: Zone, stamp: Stamp) {
    push_time(out, msg, zone, stamp);
    out.push(b' ');
    let plain = msg.is_plain();
    let field = |out: &mut Vec<u8>, bytes: &[u8]| push_field(out, bytes, plain, msg.escaped);
    let local = msg.origin.transport.is_local();
    let host_of_peer = |out: &mut Vec<u8>| match msg.origin.peer {
        Some(peer) => {
            use std::io::Write;
            let _ = write!(out, "{}", peer.ip());
        }
        None => push_field(out, short(local_host).as_bytes(), false, false),
    };
    let app = msg.app_name();
    if !local && msg.format != Format::Rfc5424 && app.is_none() && msg.hostname().is_none() {
        // Neither a hostname nor a tag where our parser looks for them: rsyslog's own parser
        // guesses both from the first words, and its line shows what it guessed.
        let (host, tag, text) = rsyslog_guess(msg.text());
        match host {
            Some(h) => field(out, h),
            None => host_of_peer(out),
        }
        out.push(b' ');
        field(out, tag);
        push_text(out, text, false, field);
        return;
    }
    match (local, msg.hostname()) {
        (false, Some(h)) => field(out, h.as_bytes()),
        // rsyslog names itself by its short name unless told to keep the domain.
        (true, _) => push_field(out, short(local_host).as_bytes(), false, false),
        (false, None) => host_of_peer(out),
    }
    out.push(b' ');
    let tagged = match msg.format {
        Format::Rfc5424 => {
            field(out, app.as_deref().unwrap_or("-").as_bytes());
            true
        }
        Format::Rfc3164 => app.is_some(),
        Format::Unparsed => false,
    };
    if let (Format::Rfc3164, Some(app)) = (msg.format, &app) {
        field(out, app.as_bytes());
    }
    if tagged {
        if let Some(pid) = msg.procid() {
            out.push(b'[');
            field(out, pid.as_bytes());
            out.push(b']');
        }
        if msg.format == Format::Rfc3164 && msg.tag_had_colon() {
            out.push(b':');
        }
    }
    // rsyslog's text after an RFC 3164 tag starts with the space our parser took off.
    push_text(
        out,
        msg.text(),
        msg.format == Format::Rfc3164 && tagged,
        field,
    );
}

/// Appends the text as `%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%` does (a space first
/// unless it starts with one, or always where our parser took that space off), and the newline.
fn push_text(
    out: &mut Vec<u8>,
    text: &[u8],
    space_taken: bool,
    field: impl Fn(&mut Vec<u8>, &[u8]),
) {
    if space_taken || text.first() != Some(&b' ') {
        out.push(b' ');
    }
    field(out, text);
    out.push(b'\n');
}

/// What rsyslog 8.2302's RFC 3164 parser reads as HOSTNAME and TAG in a network message's
/// words: a first word of letters, digits, `.`, `_`, `-` that ends in a letter or digit and is
/// followed by a space (or is all there is) is the hostname; then the tag runs to a `:` (kept)
/// or a space; the rest is the text.
fn rsyslog_guess(text: &[u8]) -> (Option<&[u8]>, &[u8], &[u8]) {
    let n = text
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        .count();
    let (host, rest) = if n > 0 && n == text.len() {
        (Some(text), &text[n..])
    } else if n > 0 && text[n] == b' ' && text[n - 1].is_ascii_alphanumeric() {
        (Some(&text[..n]), &text[n + 1..])
    } else {
        (None, text)
    };
    let end = rest
        .iter()
        .position(|&b| b == b':' || b == b' ')
        .map_or(rest.len(), |i| i + usize::from(rest[i] == b':'));
    (host, &rest[..end], &rest[end..])
}

fn short(host: &str) -> &str {
    match host.parse::<std::net::IpAddr>() {
        Ok(_) => host,
        Err(_) => host.split('.').next().unwrap_or(host),
    }
}

/// The time rsyslog would write: see the module documentation.
fn push_time(out: &mut Vec<u8>, msg: &Message, zone: Zone, stamp: Stamp) {
    match (SenderTime::of(msg), stamp) {
        (None, Stamp::Traditional) => {
            timestamp::push_bsd(out, &Moment::of(msg.received, zone).civil)
        }
        (None, Stamp::Rfc3339) => Moment::of(msg.received, zone).push_rfc3339(out),
        (Some(sent), Stamp::Traditional) => timestamp::push_bsd(out, sent.civil()),
        (Some(sent), Stamp::Rfc3339) => sent.push_rfc3339(out, msg.received, zone),
    }
}

/// Appends one field: as it is if the message is plain, else with its receive escaping undone
/// and its control bytes written as rsyslog writes them.
fn push_field(out: &mut Vec<u8>, bytes: &[u8], plain: bool, escaped: bool) {
    if plain {
        out.extend_from_slice(bytes);
        return;
    }
    // `\x01` and `#001` weigh the same: the escaped field's length is about the line's.
    out.reserve(bytes.len());
    let original;
    let bytes = match escaped.then(|| escape::unescape(bytes)).flatten() {
        Some(o) => {
            original = o;
            &original[..]
        }
        None => bytes,
    };
    push_hash_escaped(out, bytes);
}

/// Appends `bytes` with every byte below 0x20 as `#` and three octal digits.
pub fn push_hash_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut rest = bytes;
    while let Some(i) = rest.iter().position(|&b| b < 0x20) {
        out.extend_from_slice(&rest[..i]);
        let b = rest[i];
        out.extend_from_slice(&[b'#', b'0' + (b >> 6), b'0' + (b >> 3 & 7), b'0' + (b & 7)]);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};
    use syslog::message::{Origin, Transport};
    use syslog::parse::parse;

    /// 2026-12-07T15:37:24.220587Z.
    const RECEIVED: u64 = 1_796_657_844_220_587;

    fn line(raw: &[u8], transport: Transport, stamp: Stamp) -> String {
        let mut origin = Origin::new(transport);
        if !transport.is_local() {
            origin.peer = Some("192.0.2.7:514".parse().unwrap());
        }
        let received = UNIX_EPOCH + Duration::from_micros(RECEIVED);
        let msg = parse(raw, origin, received, false).escape_controls();
        let mut out = Vec::new();
        format(&mut out, &msg, "vm", Zone::Utc, stamp);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_read_as_rsyslog_8_2302_writes_them() {
        use Stamp::{Rfc3339, Traditional};
        use Transport::{Udp, UnixDatagram as Local};
        // Each expectation is what rsyslogd 8.2302 wrote for the same bytes (TZ=UTC).
        for (raw, transport, stamp, expected) in [
            (
                &b"<38>Dec  7 15:37:20 sshd[2222]: Failed password for root"[..],
                Local,
                Traditional,
                "Dec  7 15:37:24 vm sshd[2222]: Failed password for root\n",
            ),
            (
                b"<38>Dec  7 15:37:20 sshd[2222]: Failed password for root",
                Local,
                Rfc3339,
                "2026-12-07T15:37:24.220587+00:00 vm sshd[2222]: Failed password for root\n",
            ),
            (
                b"<13>Dec  7 15:37:20 tag: multi\nline\ttab \x1b[31m esc \xc3\xa9",
                Local,
                Traditional,
                "Dec  7 15:37:24 vm tag: multi#012line#011tab #033[31m esc \u{e9}\n",
            ),
            (
                b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed",
                Udp,
                Traditional,
                "Oct 11 22:14:15 mymachine su: 'su root' failed\n",
            ),
            (
                b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed",
                Udp,
                Rfc3339,
                "2026-10-11T22:14:15+00:00 mymachine su: 'su root' failed\n",
            ),
            (
                b"<13>Oct 1 01:02:03 host tag: onedigit",
                Udp,
                Traditional,
                "Oct  1 01:02:03 host tag: onedigit\n",
            ),
            (
                b"<165>1 2020-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% do-nuts",
                Udp,
                Traditional,
                "Aug 24 05:14:15 192.0.2.1 myproc[8710] %% do-nuts\n",
            ),
            (
                b"<165>1 2020-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% do-nuts",
                Udp,
                Rfc3339,
                "2020-08-24T05:14:15.000003-07:00 192.0.2.1 myproc[8710] %% do-nuts\n",
            ),
            (
                b"<13>1 2020-08-24T05:14:15.1Z host app - - [a@32473 x=\"1\"] with sd",
                Udp,
                Rfc3339,
                "2020-08-24T05:14:15.1Z host app with sd\n",
            ),
            (
                b"<13>1 2020-08-24T05:14:15Z host app - - -",
                Udp,
                Traditional,
                "Aug 24 05:14:15 host app \n",
            ),
            (
                b"<13>1 - host app - - - nilts",
                Udp,
                Traditional,
                "Dec  7 15:37:24 host app nilts\n",
            ),
            (
                b"<13>hello: world",
                Udp,
                Traditional,
                "Dec  7 15:37:24 192.0.2.7 hello: world\n",
            ),
            (
                b"headerless datagram",
                Udp,
                Traditional,
                "Dec  7 15:37:24 headerless datagram \n",
            ),
            (
                b"<13>hello world: x",
                Udp,
                Traditional,
                "Dec  7 15:37:24 hello world: x\n",
            ),
            (b"<13>hello", Udp, Traditional, "Dec  7 15:37:24 hello  \n"),
            (
                b"<13>Oct  1 01:02:03 host tag:nospace",
                Udp,
                Traditional,
                "Oct  1 01:02:03 host tag: nospace\n",
            ),
            (
                b"<13>Oct  1 01:02:03 host tag  twospace",
                Udp,
                Traditional,
                "Oct  1 01:02:03 host tag  twospace\n",
            ),
            (
                b"<13>Oct  1 01:02:03 myhost sshd[22] x",
                Udp,
                Traditional,
                "Oct  1 01:02:03 myhost sshd[22] x\n",
            ),
        ] {
            let got = line(raw, transport, stamp);
            assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_written_as_sent_and_controls_never_raw() {
        let raw = b"<13>Oct  1 01:02:03 host tag: ctl \x01 del \x7f bad \xff nel \xc2\x85 \\x01";
        let msg = parse(raw, Origin::new(Transport::Udp), UNIX_EPOCH, false).escape_controls();
        assert!(msg.escaped);
        let mut out = Vec::new();
        format(&mut out, &msg, "vm", Zone::Utc, Stamp::Traditional);
        assert_eq!(
            out,
            b"Oct  1 01:02:03 host tag: ctl #001 del \x7f bad \xff nel \xc2\x85 \\x01\n"
        );
        assert_eq!(
            out.iter().filter(|&&b| b < 0x20).count(),
            1,
            "only the newline"
        );
    }
}
