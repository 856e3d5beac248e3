//! A message as a forward output sends it: RFC 5424 (the default) or RFC 3164 for old receivers,
//! and the RFC 6587 framing of a TCP or TLS stream. Pure.
//!
//! The header fields are the sender's (its timestamp when it gave an RFC 3339 one, its host
//! name, else the peer's address, else ours), cut to RFC 5424's lengths and printable ASCII, so
//! a hostile sender cannot make us send a header the receiver misparses. The text goes as
//! received: octet-counted frames, RELP and datagrams carry any byte; with LF framing newlines
//! are escaped, so one message stays one frame.

use std::io::Write;

use crate::config::Framing;
use crate::outputs::formats::line::push_rfc3339;
use crate::timestamp::{SenderTime, Zone};
use syslog::escape;
use syslog::message::{Format, Message};

/// Appends `msg` as one syslog message (no framing) to `out`.
pub fn encode(out: &mut Vec<u8>, msg: &Message, local_host: &str, rfc3164: bool) {
    let pri = u16::from(msg.facility) * 8 + u16::from(msg.severity);
    let host = match (msg.hostname(), msg.origin.peer) {
        (Some(h), _) => h.into_owned(),
        (None, Some(peer)) => peer.ip().to_string(),
        (None, None) => local_host.to_string(),
    };
    let app = msg.app_name();
    if rfc3164 {
        let _ = write!(out, "<{pri}>");
        match (msg.format, msg.timestamp()) {
            (Format::Rfc3164, Some(ts))
                if ts.len() == 15 && ts.bytes().all(|b| (32..=126).contains(&b)) =>
            {
                out.extend_from_slice(ts.as_bytes())
            }
            _ => push_bsd_time(out, msg),
        }
        out.push(b' ');
        header_field(out, &host, 255);
        out.push(b' ');
        header_field(out, app.as_deref().unwrap_or("-"), 32);
        if let Some(pid) = msg.pid() {
            out.push(b'[');
            header_field(out, &pid, 128);
            out.push(b']');
        }
        out.extend_from_slice(b": ");
        out.extend_from_slice(msg.text());
        return;
    }
    let _ = write!(out, "<{pri}>1 ");
    match (msg.format, msg.timestamp(), SenderTime::of(msg)) {
        (Format::Rfc5424, Some(ts), _) => header_field(out, &ts, 48),
        // A relayed BSD time stays the event's time, read in our zone as rsyslog reads it.
        (Format::Rfc3164, _, Some(sent)) => sent.push_rfc3339(out, msg.received, Zone::Local),
        _ => push_rfc3339(out, msg.received),
    }
    out.push(b' ');
    header_field(out, &host, 255);
    for (field, max) in [(app, 48), (msg.pid(), 128), (msg.msgid(), 32)] {
        out.push(b' ');
        match field {
            Some(v) => header_field(out, &v, max),
            None => out.push(b'-'),
        }
    }
    out.push(b' ');
    // A message's fields travel as an element of their own (a logger collector reads them back).
    let sent_sd = msg
        .structured_data()
        .filter(|_| msg.format == Format::Rfc5424)
        .map(|sd| syslog::message::sd_without_fields(&sd))
        .filter(|sd| !sd.is_empty());
    match (sent_sd, msg.fields().is_empty()) {
        (Some(sd), true) => out.extend_from_slice(sd.as_bytes()),
        (Some(sd), false) => {
            out.extend_from_slice(sd.as_bytes());
            syslog::message::push_fields_element(out, msg.fields());
        }
        (None, false) => syslog::message::push_fields_element(out, msg.fields()),
        (None, true) => out.push(b'-'),
    }
    if !msg.text().is_empty() {
        out.push(b' ');
        out.extend_from_slice(msg.text());
    }
}

/// Appends `payload` framed for a TCP or TLS stream.
pub fn frame(out: &mut Vec<u8>, payload: &[u8], framing: Framing) {
    match framing {
        Framing::OctetCounting => {
            let _ = write!(out, "{} ", payload.len());
            out.extend_from_slice(payload);
        }
        Framing::Lf => {
            escape::escape_into(out, payload, escape::LINE);
            out.push(b'\n');
        }
    }
}

/// A header field: printable ASCII without spaces (others become `?`), at most `max` bytes.
fn header_field(out: &mut Vec<u8>, value: &str, max: usize) {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        out.push(b'-');
        return;
    }
    out.extend(
        bytes[..bytes.len().min(max)]
            .iter()
            .map(|&b| if (33..=126).contains(&b) { b } else { b'?' }),
    );
}

/// `Mmm dd hh:mm:ss` of when we received it, in UTC (as every time logger writes).
fn push_bsd_time(out: &mut Vec<u8>, msg: &Message) {
    let mut iso = Vec::with_capacity(32);
    push_rfc3339(&mut iso, msg.received);
    // 2026-11-24T08:01:02.123456Z
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = std::str::from_utf8(&iso[5..7])
        .ok()
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(1);
    out.extend_from_slice(MONTHS[month.clamp(1, 12) - 1].as_bytes());
    out.push(b' ');
    out.push(if iso[8] == b'0' { b' ' } else { iso[8] });
    out.push(iso[9]);
    out.push(b' ');
    out.extend_from_slice(&iso[11..19]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};
    use syslog::message::{Origin, Transport};
    use syslog::parse::parse;

    fn message(raw: &[u8]) -> Message {
        let mut origin = Origin::new(Transport::Udp);
        origin.peer = Some("192.0.2.7:514".parse().unwrap());
        let received = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        parse(raw, origin, received, false)
    }

    #[test]
    fn fields_travel_as_an_element_and_come_back_as_fields() {
        let fields: syslog::message::Fields = [
            ("_SYSTEMD_UNIT", b"nginx.service".as_slice()),
            ("MY_FIELD", b"quote \" bracket ] backslash \\"),
            ("BINARY", b"\x00\xff"),
            ("A_NAME_LONGER_THAN_AN_SD_NAME_MAY_BE", b"left out"),
        ]
        .into_iter()
        .collect();
        for raw in [
            &b"<13>1 2026-12-07T15:37:24Z web1 app - - - text"[..],
            b"<13>1 2026-12-07T15:37:24Z web1 app - - [x@1 a=\"b\"] text",
            b"<13>Dec  7 15:37:24 web1 app: text",
        ] {
            let msg = message(raw).with_fields(fields.clone());
            let mut out = Vec::new();
            encode(&mut out, &msg, "here", false);
            let back = parse(
                &out,
                Origin::new(Transport::Tcp),
                SystemTime::UNIX_EPOCH,
                false,
            );
            assert_eq!(back.text(), b"text", "{}", String::from_utf8_lossy(&out));
            assert_eq!(
                back.fields().iter().take(2).collect::<Vec<_>>(),
                fields.as_ref().iter().take(2).collect::<Vec<_>>(),
                "{}",
                String::from_utf8_lossy(&out)
            );
            assert_eq!(
                back.fields().iter().nth(2).unwrap().1,
                b"\\x00\\xff",
                "binary: receive-escaped"
            );
            assert_eq!(back.fields().len(), 3, "the long name is left out");
            // Forwarded again, the element is not doubled.
            let mut again = Vec::new();
            encode(&mut again, &back, "here", false);
            let text = String::from_utf8_lossy(&again);
            assert_eq!(text.matches("[fields@32473").count(), 1, "{text}");
            assert_eq!(
                text.contains("[x@1 a=\"b\"]"),
                raw.windows(5).any(|w| w == b"[x@1 "),
                "{text}"
            );
        }
    }

    fn encoded(raw: &[u8], rfc3164: bool) -> String {
        let mut out = Vec::new();
        encode(&mut out, &message(raw), "here", rfc3164);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc5424_passes_through_with_its_own_header() {
        let raw = b"<165>1 2026-11-24T08:00:00Z web1 app 42 ID7 [a b=\"c\"] hello";
        assert_eq!(encoded(raw, false), String::from_utf8_lossy(raw));
    }

    #[test]
    fn rfc3164_becomes_rfc5424_with_the_receive_time_and_the_peer_as_host() {
        let out = encoded(b"<13>sshd[7]: hi", false);
        assert!(out.starts_with("<13>1 2026-11-18T"), "{out}");
        assert!(out.ends_with(" 192.0.2.7 sshd 7 - - hi"), "{out}");
    }

    #[test]
    fn a_hostile_hostname_cannot_break_the_header() {
        let out = encoded(b"<13>Nov 24 08:00:00 h\xc3\xa9 app: x", false);
        assert!(out.contains(" h?? app "), "{out}");
    }

    #[test]
    fn rfc3164_out_keeps_the_senders_bsd_timestamp() {
        let out = encoded(b"<13>Nov 24 08:00:00 web1 app[9]: hello", true);
        assert_eq!(out, "<13>Nov 24 08:00:00 web1 app[9]: hello");
        let out = encoded(b"<13>1 2026-11-24T08:00:00Z web1 app - - - hi", true);
        assert!(out.starts_with("<13>Nov 18 "), "{out}");
    }

    #[test]
    fn frames() {
        let mut out = Vec::new();
        frame(&mut out, b"a\nb", Framing::OctetCounting);
        frame(&mut out, b"a\nb", Framing::Lf);
        assert_eq!(out, b"3 a\nba\\nb\n");
    }
}
