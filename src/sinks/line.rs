//! The readable line format of the file and stderr outputs, and the escaping that keeps one
//! message on one line.
//!
//! `TIME HOST TAG[PID] FACILITY.SEVERITY: TEXT` with TIME in RFC 3339 UTC (the time we received
//! the message). Every byte that could end a line, move the cursor or start a terminal escape is
//! written as a visible escape: `\n`, `\r`, `\t`, `\\`, `\xNN` for other C0 controls, DEL and
//! invalid UTF-8, `\u{NN}` for C1 controls and Unicode line separators. The escaping is
//! reversible, so nothing is lost, and no message can forge another line. Pure.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::message::Message;

/// Appends the line for `msg` (with its newline) to `out`.
pub fn format_line(out: &mut Vec<u8>, msg: &Message, local_host: &str) {
    push_rfc3339(out, msg.received);
    out.push(b' ');
    match (msg.hostname(), msg.origin.peer) {
        (Some(h), _) => escape_into(out, h.as_bytes()),
        (None, Some(peer)) => {
            use std::io::Write;
            let _ = write!(out, "{}", peer.ip());
        }
        (None, None) => escape_into(out, local_host.as_bytes()),
    }
    out.push(b' ');
    escape_into(out, msg.app_name().as_deref().unwrap_or("-").as_bytes());
    match (msg.procid(), msg.origin.credentials) {
        (Some(pid), _) => {
            out.push(b'[');
            escape_into(out, pid.as_bytes());
            out.push(b']');
        }
        (None, Some(c)) if c.pid > 0 => {
            out.push(b'[');
            push_decimal(out, u64::from(c.pid.unsigned_abs()), 1);
            out.push(b']');
        }
        _ => {}
    }
    out.push(b' ');
    out.extend_from_slice(msg.facility_name().as_bytes());
    out.push(b'.');
    out.extend_from_slice(msg.severity_name().as_bytes());
    out.extend_from_slice(b": ");
    escape_into(out, msg.text());
    out.push(b'\n');
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'\\' || b >= 0x7f
}

/// The length of the prefix that needs no escaping. Eight bytes at a time: a word passes when
/// none of its bytes is below 0x20, is 0x7f or above, or is a backslash (SWAR "has byte" tests;
/// a word that fails is rescanned byte by byte, so a false alarm only costs speed).
fn plain_prefix_len(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    for word in bytes.chunks_exact(8) {
        let w = u64::from_le_bytes(word.try_into().expect("chunks of eight"));
        let control = w.wrapping_sub(ONES * 0x20) & !w;
        let high_or_del = w | w.wrapping_add(ONES);
        let x = w ^ (ONES * u64::from(b'\\'));
        let backslash = x.wrapping_sub(ONES) & !x;
        if (control | high_or_del | backslash) & HIGH != 0 {
            break;
        }
        i += 8;
    }
    i + bytes[i..]
        .iter()
        .position(|&b| needs_escape(b))
        .unwrap_or(bytes.len() - i)
}

/// Appends `bytes` escaped as described in the module documentation.
pub fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let plain = plain_prefix_len(rest);
        out.extend_from_slice(&rest[..plain]);
        rest = &rest[plain..];
        let Some(&b) = rest.first() else { break };
        if b < 0x80 {
            match b {
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\\' => out.extend_from_slice(b"\\\\"),
                _ => push_hex(out, b),
            }
            rest = &rest[1..];
            continue;
        }
        let len = utf8_len(rest);
        match std::str::from_utf8(&rest[..len])
            .ok()
            .and_then(|s| s.chars().next())
        {
            Some(c) if ('\u{80}'..='\u{9f}').contains(&c) || c == '\u{2028}' || c == '\u{2029}' => {
                out.extend_from_slice(format!("\\u{{{:x}}}", c as u32).as_bytes());
                rest = &rest[len..];
            }
            Some(_) => {
                out.extend_from_slice(&rest[..len]);
                rest = &rest[len..];
            }
            None => {
                push_hex(out, b);
                rest = &rest[1..];
            }
        }
    }
}

/// Reverses `escape_into`: the original bytes, or None if `escaped` is not something
/// `escape_into` produces. For tools that read the files back, and for the round-trip tests.
pub fn unescape(escaped: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut i = 0;
    while i < escaped.len() {
        if escaped[i] != b'\\' {
            out.push(escaped[i]);
            i += 1;
            continue;
        }
        match *escaped.get(i + 1)? {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = std::str::from_utf8(escaped.get(i + 2..i + 4)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b'u' if escaped.get(i + 2) == Some(&b'{') => {
                let close = i + escaped[i..].iter().position(|&b| b == b'}')?;
                let hex = std::str::from_utf8(&escaped[i + 3..close]).ok()?;
                let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                i = close - 1;
            }
            _ => return None,
        }
        i += 2;
    }
    Some(out)
}

/// The length of the UTF-8 sequence a lead byte announces, bounded by the input.
fn utf8_len(bytes: &[u8]) -> usize {
    let want = match bytes[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    };
    want.min(bytes.len())
}

fn push_hex(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(&[
        b'\\',
        b'x',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 15)],
    ]);
}

/// Appends `YYYY-MM-DDTHH:MM:SS.ffffffZ`, built in place and appended in one copy.
pub fn push_rfc3339(out: &mut Vec<u8>, t: SystemTime) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut text[0..4], y.clamp(0, 9999) as u64);
    put_digits(&mut text[5..7], u64::from(m));
    put_digits(&mut text[8..10], u64::from(d));
    put_digits(&mut text[11..13], rem / 3600);
    put_digits(&mut text[14..16], rem / 60 % 60);
    put_digits(&mut text[17..19], rem % 60);
    put_digits(&mut text[20..26], u64::from(since.subsec_micros()));
    out.extend_from_slice(&text);
}

/// Writes the last `digits.len()` decimal digits of `n` into `digits`.
fn put_digits(digits: &mut [u8], mut n: u64) {
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Appends `n` in decimal, zero-padded to at least `width` digits.
fn push_decimal(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    while n > 0 || digits.len() - i < width {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[i..]);
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Origin, Transport};
    use crate::parse::parse;
    use std::time::Duration;

    fn esc(b: &[u8]) -> String {
        let mut out = Vec::new();
        escape_into(&mut out, b);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_everything_that_could_forge_a_line_or_drive_a_terminal() {
        assert_eq!(esc(b"plain text"), "plain text");
        assert_eq!(esc(b"a\nfake 2026 line\r\tb"), "a\\nfake 2026 line\\r\\tb");
        assert_eq!(esc(b"\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(esc(b"nul\0del\x7f"), "nul\\x00del\\x7f");
        assert_eq!(esc(b"back\\slash"), "back\\\\slash");
        assert_eq!(esc("héllo ✓".as_bytes()), "héllo ✓");
        assert_eq!(
            esc(b"bad \xff\xfe end \xe2\x82"),
            "bad \\xff\\xfe end \\xe2\\x82"
        );
        assert_eq!(
            esc("csi \u{9b}31m ls\u{2028}x".as_bytes()),
            "csi \\u{9b}31m ls\\u{2028}x"
        );
    }

    #[test]
    fn formats_a_line_with_rfc3339_time_host_tag_pid_priority() {
        let msg = parse(
            b"<156>Nov 23 20:21:46 myapp[2220]: hello\nworld",
            Origin::new(Transport::UnixDatagram),
            UNIX_EPOCH + Duration::from_micros(1_763_929_306_123_456),
            false,
        );
        let mut out = Vec::new();
        format_line(&mut out, &msg, "box");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2025-11-23T20:21:46.123456Z box myapp[2220] local3.warning: hello\\nworld\n"
        );
        // No tag and no credentials: "-"; no hostname: the peer's address.
        let msg = parse(
            b"<156>hello",
            Origin {
                transport: Transport::Udp,
                peer: Some("192.0.2.1:514".parse().unwrap()),
                credentials: None,
            },
            UNIX_EPOCH,
            false,
        );
        let mut out = Vec::new();
        format_line(&mut out, &msg, "box");
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains(" 192.0.2.1 - local3.warning: ")
        );
    }

    #[test]
    fn the_word_at_a_time_scan_agrees_with_the_byte_test() {
        let mut data: Vec<u8> = (0..=255u8).collect();
        data.extend_from_slice(b"plain ascii text, long enough for several words");
        for start in 0..data.len() {
            for len in [0, 1, 7, 8, 9, 16, 33] {
                let slice = &data[start..(start + len).min(data.len())];
                let expected = slice
                    .iter()
                    .position(|&b| needs_escape(b))
                    .unwrap_or(slice.len());
                assert_eq!(plain_prefix_len(slice), expected, "at {start}+{len}");
            }
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
    }
}
