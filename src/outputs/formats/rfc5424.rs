//! The `rfc5424` file format: one RFC 5424 message per line, lossless.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`. TIMESTAMP is when it happened: a
//! network sender's own time (RFC 3339 as sent, or a BSD time with its year and the output's
//! zone), else when we received it (RFC 3339 UTC); `received=` in our element says when we
//! did. HOSTNAME the one the message carries, else the peer's address,
//! else ours. SD is the structured data as sent, then two elements of ours: the registered
//! `origin` (RFC 5424 7.2) with the sender's IP, and `logger@32473` with the transport, when we received it, the peer,
//! the sender's own timestamp and flags, so a remote `sshd` line can never pass for a local one.
//! (32473 is the documentation enterprise number of RFC 5612: a registered one is to come.)
//! Header fields and MSG use the file escaping, so each message stays one line and unescapes to
//! what was sent. Pure.

use std::io::Write;

use super::line::push_rfc3339;
use crate::timestamp::{SenderTime, Zone};
use syslog::escape::{self, Escaping};
use syslog::message::Message;

/// Appends the line for `msg` (with its newline) to `out`.
pub fn format(out: &mut Vec<u8>, msg: &Message, local_host: &str, zone: Zone) {
    let how = escaping(msg);
    let _ = write!(
        out,
        "<{}>1 ",
        u16::from(msg.facility) * 8 + u16::from(msg.severity)
    );
    match SenderTime::of(msg) {
        Some(sent) => sent.push_rfc3339(out, msg.received, zone),
        None => push_rfc3339(out, msg.received),
    }
    out.push(b' ');
    match (msg.hostname(), msg.origin.peer) {
        (Some(h), _) => escape::escape_into(out, h.as_bytes(), how),
        (None, Some(peer)) => {
            let _ = write!(out, "{}", peer.ip());
        }
        (None, None) => escape::escape_into(out, local_host.as_bytes(), escape::LINE),
    }
    for field in [msg.app_name(), msg.pid(), msg.msgid()] {
        out.push(b' ');
        match field {
            Some(v) => escape::escape_into(out, v.as_bytes(), how),
            None => out.push(b'-'),
        }
    }
    out.push(b' ');
    if let Some(sd) = msg.structured_data() {
        escape::escape_into(out, sd.as_bytes(), how);
    }
    if let Some(peer) = msg.origin.peer {
        let _ = write!(out, "[origin ip=\"{}\" software=\"logger\"]", peer.ip());
    }
    if !msg.fields().is_empty() {
        // Fields beyond syslog's, as an element of their own (names are SD-NAMEs already).
        out.extend_from_slice(b"[fields@32473");
        // An SD-NAME is at most 32 characters; longer field names stay in the other formats.
        for (name, value) in msg.fields().iter().filter(|(n, _)| n.len() <= 32) {
            out.push(b' ');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"=\"");
            param_value(out, value, how);
            out.push(b'"');
        }
        out.push(b']');
    }
    let _ = write!(
        out,
        "[logger@32473 transport=\"{}\" received=\"",
        msg.origin.transport.name()
    );
    push_rfc3339(out, msg.received);
    out.push(b'"');
    if let Some(peer) = msg.origin.peer {
        let _ = write!(out, " peer=\"{peer}\"");
    }
    if let Some(peer) = &msg.origin.tls_peer {
        out.extend_from_slice(b" tls-peer=\"");
        param_value(out, peer.as_bytes(), how);
        out.push(b'"');
    }
    if let Some(c) = msg.origin.credentials {
        let _ = write!(
            out,
            " pid=\"{}\" uid=\"{}\" gid=\"{}\"",
            c.pid, c.uid, c.gid
        );
    }
    if let Some(ts) = msg.timestamp() {
        out.extend_from_slice(b" timestamp=\"");
        param_value(out, ts.as_bytes(), how);
        out.push(b'"');
    }
    for (flag, set) in [
        ("escaped", msg.escaped),
        ("truncated", msg.truncated),
        ("invalid-utf8", msg.text_was_invalid_utf8()),
    ] {
        if set {
            let _ = write!(out, " {flag}=\"1\"");
        }
    }
    out.extend_from_slice(b"] ");
    escape::escape_into(out, msg.text(), how);
    out.push(b'\n');
}

/// Fields escaped on receive hold escapes already; their backslashes stay.
fn escaping(msg: &Message) -> Escaping {
    if msg.escaped {
        escape::LINE_OF_ESCAPED
    } else {
        escape::LINE
    }
}

/// A PARAM-VALUE: `"`, `\` and `]` escaped as RFC 5424 6.3.3 says, then the file escaping.
fn param_value(out: &mut Vec<u8>, value: &[u8], how: Escaping) {
    let mut quoted = Vec::with_capacity(value.len());
    for &b in value {
        if matches!(b, b'"' | b'\\' | b']') {
            quoted.push(b'\\');
        }
        quoted.push(b);
    }
    escape::escape_into(out, &quoted, how);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};
    use syslog::message::{Format, Origin, Transport};
    use syslog::parse::parse;

    #[test]
    fn a_line_reads_back_as_the_message_it_was() {
        let received = UNIX_EPOCH + Duration::from_micros(1_763_929_306_123_456);
        let sent = b"<165>1 2003-10-11T22:14:15.003Z web1 evntslog 77 ID47 [ex@32473 iut=\"3\"] two\nlines";
        let origin = Origin {
            transport: Transport::Tcp,
            peer: Some("192.0.2.9:40000".parse().unwrap()),
            credentials: None,
            tls_peer: None,
        };
        let msg = parse(sent, origin, received, false);
        let mut line = Vec::new();
        format(&mut line, &msg, "box", Zone::Utc);
        let text = String::from_utf8(line.clone()).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        // The header carries when it happened; our element says when we received it.
        assert!(text.starts_with("<165>1 2003-10-11T22:14:15.003Z web1 evntslog 77 ID47 [ex@32473 iut=\"3\"][origin ip=\"192.0.2.9\" software=\"logger\"][logger@32473 transport=\"tcp\" received=\"2025-11-23T20:21:46.123456Z\" peer=\"192.0.2.9:40000\" timestamp=\"2003-10-11T22:14:15.003Z\"] two\\nlines"), "{text}");
        let back = parse(&line, Origin::new(Transport::Tcp), received, false);
        assert_eq!(back.format, Format::Rfc5424);
        assert_eq!((back.facility, back.severity), (20, 5));
        assert_eq!(back.hostname().as_deref(), Some("web1"));
        assert_eq!(back.app_name().as_deref(), Some("evntslog"));
        assert_eq!(back.procid().as_deref(), Some("77"));
        assert_eq!(back.msgid().as_deref(), Some("ID47"));
        assert!(
            back.structured_data()
                .unwrap()
                .starts_with("[ex@32473 iut=\"3\"]")
        );
        assert_eq!(
            escape::unescape(back.text()).as_deref(),
            Some(&b"two\nlines"[..])
        );
    }

    #[test]
    fn a_local_message_says_so_and_nil_fields_are_dashes() {
        let msg = parse(
            b"<13>hello",
            Origin {
                transport: Transport::UnixDatagram,
                peer: None,
                credentials: Some(syslog::message::Credentials {
                    pid: 42,
                    uid: 1000,
                    gid: 1000,
                }),
                tls_peer: None,
            },
            UNIX_EPOCH,
            false,
        );
        let mut line = Vec::new();
        format(&mut line, &msg, "box", Zone::Utc);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "<13>1 1970-01-01T00:00:00.000000Z box - 42 - [logger@32473 transport=\"unix\" received=\"1970-01-01T00:00:00.000000Z\" pid=\"42\" uid=\"1000\" gid=\"1000\"] hello\n"
        );
    }
}
