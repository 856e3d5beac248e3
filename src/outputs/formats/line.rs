//! The readable line format of the file and stderr outputs, and the escaping that keeps one
//! message on one line.
//!
//! `TIME HOST TAG[PID] FACILITY.SEVERITY: TEXT` with TIME in RFC 3339 UTC (the time we received
//! the message). Every byte that could end a line, move the cursor, start a terminal escape or
//! hide text is written as a visible escape ([`syslog::escape::LINE`]). The escaping is
//! reversible, so nothing is lost, and no message can forge another line. Pure.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::timestamp::civil_from_days;
use syslog::escape;
use syslog::message::Message;

/// Appends the line for `msg` (with its newline) to `out`.
pub fn format_line(out: &mut Vec<u8>, msg: &Message, local_host: &str) {
    // Fields escaped on receive hold escapes already: their backslashes stay as they are.
    let how = if msg.escaped {
        escape::LINE_OF_ESCAPED
    } else {
        escape::LINE
    };
    // A message the receive scan found plain needs no second scan.
    let plain = msg.is_plain();
    let escape_into = |out: &mut Vec<u8>, bytes: &[u8]| {
        if plain {
            out.extend_from_slice(bytes);
        } else {
            escape::escape_into(out, bytes, how);
        }
    };
    push_rfc3339(out, msg.received);
    out.push(b' ');
    // A plain message's header as its bytes; another's through the text accessors (which
    // show bytes that are not UTF-8 as U+FFFD before the escaping).
    let (hostname, app_name, procid);
    let header = if plain {
        msg.plain_header()
    } else {
        (hostname, app_name, procid) = (msg.hostname(), msg.app_name(), msg.procid());
        syslog::message::PlainHeader {
            hostname: hostname.as_deref().map(str::as_bytes),
            app_name: app_name.as_deref().map(str::as_bytes),
            procid: procid.as_deref().map(str::as_bytes),
        }
    };
    match (header.hostname, msg.origin.peer) {
        (Some(h), _) => escape_into(out, h),
        (None, Some(peer)) => {
            use std::io::Write;
            let _ = write!(out, "{}", peer.ip());
        }
        (None, None) => escape::escape_into(out, local_host.as_bytes(), escape::LINE),
    }
    out.push(b' ');
    escape_into(out, header.app_name.unwrap_or(b"-"));
    match (header.procid, msg.origin.credentials) {
        (Some(pid), _) => {
            out.push(b'[');
            escape_into(out, pid);
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

/// Appends `YYYY-MM-DDTHH:MM:SS.ffffffZ`, built in place and appended in one copy.
pub fn push_rfc3339(out: &mut Vec<u8>, t: SystemTime) {
    thread_local! {
        /// The last second formatted on this thread: the messages of a batch share it, so
        /// the calendar arithmetic runs once a second, not once a message.
        static LAST_SECOND: std::cell::Cell<(u64, [u8; 19])> =
            const { std::cell::Cell::new((u64::MAX, [0; 19])) };
    }
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let date_time = LAST_SECOND.with(|last| {
        let (cached, date_time) = last.get();
        if cached == secs {
            return date_time;
        }
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days as i64);
        let mut date_time = [0u8; 19];
        date_time.copy_from_slice(&text[..19]);
        put_digits(&mut date_time[0..4], y.clamp(0, 9999) as u64);
        put_digits(&mut date_time[5..7], u64::from(m));
        put_digits(&mut date_time[8..10], u64::from(d));
        put_digits(&mut date_time[11..13], rem / 3600);
        put_digits(&mut date_time[14..16], rem / 60 % 60);
        put_digits(&mut date_time[17..19], rem % 60);
        last.set((secs, date_time));
        date_time
    });
    text[..19].copy_from_slice(&date_time);
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
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    while n > 0 || digits.len() - i < width {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use syslog::message::{Origin, Transport};
    use syslog::parse::parse;

    #[test]
    fn each_second_is_formatted_anew_whatever_came_before() {
        let at = |micros: u64| {
            let mut out = Vec::new();
            push_rfc3339(&mut out, UNIX_EPOCH + Duration::from_micros(micros));
            String::from_utf8(out).unwrap()
        };
        assert_eq!(at(1_763_929_306_123_456), "2025-11-23T20:21:46.123456Z");
        assert_eq!(at(1_763_929_306_999_999), "2025-11-23T20:21:46.999999Z");
        assert_eq!(at(1_763_929_307_000_001), "2025-11-23T20:21:47.000001Z");
        assert_eq!(at(1_763_929_306_000_000), "2025-11-23T20:21:46.000000Z");
        assert_eq!(at(86_400_000_000), "1970-01-02T00:00:00.000000Z");
    }

    #[test]
    fn a_plain_message_is_copied_as_the_escaping_would_write_it() {
        for (raw, plain) in [
            (
                &b"<13>Nov 23 20:21:46 host app[1]: plain text, 100% ASCII"[..],
                true,
            ),
            (b"<13>Nov 23 20:21:46 host app[1]: a\\backslash", false),
            (b"<13>Nov 23 20:21:46 host app[1]: a\ttab", false),
            (
                b"<13>Nov 23 20:21:46 host app[1]: caf\xc3\xa9 \xe2\x80\xae",
                false,
            ),
        ] {
            let msg = || parse(raw, Origin::new(Transport::Udp), UNIX_EPOCH, false);
            let (unscanned, received) = (msg(), msg().escape_controls());
            assert_eq!(received.is_plain(), plain, "{raw:?}");
            let (mut a, mut b) = (Vec::new(), Vec::new());
            format_line(&mut a, &unscanned, "h");
            format_line(&mut b, &received, "h");
            if plain {
                assert_eq!(a, b, "{raw:?}");
            }
        }
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
                tls_peer: None,
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
}
