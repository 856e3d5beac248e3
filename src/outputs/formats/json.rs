//! The `json` file format: one JSON object per line, named after the Elastic Common Schema.
//!
//! ECS is what Elasticsearch, OpenSearch, Filebeat/Elastic Agent and Vector's syslog parsing
//! already map syslog to (`log.syslog.*`, `source.ip`, `network.transport`), so a pipeline
//! ingests these lines without a rename step; Loki and Splunk take any flat-enough JSON.
//! Fields:
//! `@timestamp` (when it happened: a network sender's own time, RFC 3339 as sent or a BSD time
//! with its year and the output's zone; else when we received it, UTC), `event.created` (when
//! we received it), `message`, `log.syslog.{priority, facility.code,
//! facility.name, severity.code, severity.name, hostname, appname, procid, msgid, version}`,
//! `network.transport`, `source.{ip, port}` for network senders, and what ECS has no field for
//! under `logger.*`: the sender's own timestamp, its structured data as sent, its kernel
//! credentials, and the flags `escaped`, `truncated`, `invalid_utf8`. With `logger.escaped`,
//! the text fields hold the receive escaping (`logger::escape::unescape` gives the bytes sent).
//! JSON escaping keeps each object on one line and shows control, bidi and other invisible
//! characters as `\uXXXX`. Pure.

use std::borrow::Cow;
use std::io::Write;

use super::line::{push_decimal, push_rfc3339};
use crate::timestamp::{SenderTime, Zone};
use syslog::escape;
use syslog::message::Message;

/// Appends the object for `msg` (with its newline) to `out`: the times and the text, the
/// `log.syslog` header, where it came from, the fields beyond syslog's, and logger's own.
pub fn format(out: &mut Vec<u8>, msg: &Message, local_host: &str, zone: Zone) {
    let (text, escaped) = text(msg);
    out.extend_from_slice(b"{\"@timestamp\":\"");
    match SenderTime::of(msg) {
        Some(sent) => sent.push_rfc3339(out, msg.received, zone),
        None => push_rfc3339(out, msg.received),
    }
    out.extend_from_slice(b"\",\"event\":{\"created\":\"");
    push_rfc3339(out, msg.received);
    out.extend_from_slice(b"\"},\"message\":");
    string(out, &text);
    push_syslog_header(out, msg, local_host);
    push_network(out, msg);
    if !msg.fields().is_empty() {
        push_journal_fields(out, msg);
    }
    push_logger_object(out, msg, escaped);
    out.extend_from_slice(b"}\n");
}

/// The text as UTF-8, and whether it is escaped: text that is not UTF-8 (receive escaping
/// turned off) is written with the receive escaping, which is UTF-8 and reversible.
fn text(msg: &Message) -> (Cow<'_, str>, bool) {
    match (msg.escaped, std::str::from_utf8(msg.text())) {
        (_, Ok(text)) => (Cow::Borrowed(text), msg.escaped),
        (false, Err(_)) => {
            let mut e = Vec::with_capacity(msg.text().len() * 2);
            escape::escape_into(&mut e, msg.text(), escape::RECEIVE);
            (Cow::Owned(String::from_utf8(e).unwrap_or_default()), true)
        }
        (true, Err(_)) => (String::from_utf8_lossy(msg.text()), true),
    }
}

/// `"log":{"syslog":{...}}`: priority, facility, severity and the header fields sent.
fn push_syslog_header(out: &mut Vec<u8>, msg: &Message, local_host: &str) {
    // Numbers and names pushed as they are: `write!` costs more than the rest of the object.
    let (facility, severity) = (u64::from(msg.facility), u64::from(msg.severity));
    out.extend_from_slice(b",\"log\":{\"syslog\":{\"priority\":");
    push_decimal(out, facility * 8 + severity, 1);
    out.extend_from_slice(b",\"facility\":{\"code\":");
    push_decimal(out, facility, 1);
    out.extend_from_slice(b",\"name\":\"");
    out.extend_from_slice(msg.facility_name().as_bytes());
    out.extend_from_slice(b"\"},\"severity\":{\"code\":");
    push_decimal(out, severity, 1);
    out.extend_from_slice(b",\"name\":\"");
    out.extend_from_slice(msg.severity_name().as_bytes());
    out.extend_from_slice(b"\"}");
    let hostname = msg.hostname().or_else(|| {
        msg.origin
            .peer
            .is_none()
            .then_some(Cow::Borrowed(local_host))
    });
    for (key, value) in [
        ("hostname", hostname),
        ("appname", msg.app_name()),
        ("procid", msg.pid()),
        ("msgid", msg.msgid()),
    ] {
        if let Some(v) = value {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            string(out, &v);
        }
    }
    if msg.format == syslog::message::Format::Rfc5424 {
        out.extend_from_slice(b",\"version\":1");
    }
    out.extend_from_slice(b"}}");
}

/// `"network"` (the transport) and `"source"` (the sender's address, for a network message).
fn push_network(out: &mut Vec<u8>, msg: &Message) {
    out.extend_from_slice(b",\"network\":{\"transport\":\"");
    out.extend_from_slice(msg.origin.transport.name().as_bytes());
    out.extend_from_slice(b"\"}");
    if let Some(peer) = msg.origin.peer {
        let _ = write!(
            out,
            ",\"source\":{{\"ip\":\"{}\",\"port\":{}}}",
            peer.ip(),
            peer.port()
        );
    }
}

/// `"journal"`: the fields beyond syslog's (the journal's, the kernel log's), by their
/// journald-style names.
fn push_journal_fields(out: &mut Vec<u8>, msg: &Message) {
    out.extend_from_slice(b",\"journal\":{");
    for (i, (name, value)) in msg.fields().iter_raw().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Names are field names (checked when pushed): plain ASCII.
        out.push(b'"');
        out.extend_from_slice(name);
        out.extend_from_slice(b"\":");
        if escape::json_plain_prefix_len(value) == value.len() {
            // Plain ASCII, nearly every value: as it is, without a UTF-8 check.
            out.push(b'"');
            out.extend_from_slice(value);
            out.push(b'"');
            continue;
        }
        // A binary value as the receive escaping writes it (UTF-8, reversible).
        match std::str::from_utf8(value) {
            Ok(text) => string(out, text),
            Err(_) => {
                let mut e = Vec::with_capacity(value.len() * 2);
                escape::escape_into(&mut e, value, escape::RECEIVE);
                string(out, &String::from_utf8_lossy(&e));
            }
        }
    }
    out.push(b'}');
}

/// `"logger"`: how the message was read (its format, timestamp and structured data as sent, a
/// TLS peer, a local sender's credentials) and what was done to it (escaped, truncated).
fn push_logger_object(out: &mut Vec<u8>, msg: &Message, escaped: bool) {
    out.extend_from_slice(b",\"logger\":{\"format\":\"");
    out.extend_from_slice(match msg.format {
        syslog::message::Format::Rfc5424 => b"rfc5424".as_slice(),
        syslog::message::Format::Rfc3164 => b"rfc3164",
        syslog::message::Format::Unparsed => b"unparsed",
    });
    out.push(b'"');
    if let Some(ts) = msg.timestamp() {
        out.extend_from_slice(b",\"timestamp\":");
        string(out, &ts);
    }
    if let Some(sd) = msg.structured_data() {
        out.extend_from_slice(b",\"structured_data\":");
        string(out, &sd);
    }
    if let Some(peer) = &msg.origin.tls_peer {
        out.extend_from_slice(b",\"tls_peer\":");
        string(out, peer);
    }
    if let Some(c) = msg.origin.credentials {
        let _ = write!(
            out,
            ",\"peer_pid\":{},\"peer_uid\":{},\"peer_gid\":{}",
            c.pid, c.uid, c.gid
        );
    }
    for (flag, set) in [
        ("escaped", escaped),
        ("truncated", msg.truncated),
        ("invalid_utf8", msg.text_was_invalid_utf8()),
    ] {
        if set {
            let _ = write!(out, ",\"{flag}\":true");
        }
    }
    out.push(b'}');
}

/// A JSON string: quotes, backslashes, control characters (C0, DEL, C1), line separators and
/// the invisible format characters the file escaping shows are written as escapes. Runs of
/// printable ASCII, nearly all of a typical message, are copied whole.
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let mut rest = s;
    while !rest.is_empty() {
        let run = escape::json_plain_prefix_len(rest.as_bytes());
        out.extend_from_slice(&rest.as_bytes()[..run]);
        // The byte after a run of ASCII starts a character.
        rest = &rest[run..];
        let Some(c) = rest.chars().next() else {
            break;
        };
        rest = &rest[c.len_utf8()..];
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if escape::is_control_or_invisible(c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;
    use syslog::message::{Origin, Transport};
    use syslog::parse::parse;

    #[test]
    fn an_object_per_line_with_ecs_names_and_the_origin() {
        let msg = parse(
            b"<38>Nov 22 00:00:33 gw1 sshd[5]: Accepted \"key\" for ops\tnow \xe2\x80\xae",
            Origin {
                transport: Transport::Udp,
                peer: Some("10.1.2.3:514".parse().unwrap()),
                credentials: None,
                tls_peer: None,
            },
            UNIX_EPOCH,
            false,
        );
        let mut line = Vec::new();
        format(&mut line, &msg, "box", Zone::Utc);
        let text = String::from_utf8(line).unwrap();
        assert_eq!(
            text,
            "{\"@timestamp\":\"1970-11-22T00:00:33+00:00\",\"event\":{\"created\":\"1970-01-01T00:00:00.000000Z\"},\"message\":\"Accepted \\\"key\\\" for ops\\tnow \\u202e\",\
             \"log\":{\"syslog\":{\"priority\":38,\"facility\":{\"code\":4,\"name\":\"auth\"},\
             \"severity\":{\"code\":6,\"name\":\"info\"},\"hostname\":\"gw1\",\"appname\":\"sshd\",\
             \"procid\":\"5\"}},\"network\":{\"transport\":\"udp\"},\
             \"source\":{\"ip\":\"10.1.2.3\",\"port\":514},\
             \"logger\":{\"format\":\"rfc3164\",\"timestamp\":\"Nov 22 00:00:33\"}}\n"
        );
    }

    #[test]
    fn a_relayed_event_keeps_its_own_time_and_says_when_it_arrived() {
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_796_657_844);
        let origin = || {
            let mut o = Origin::new(Transport::Udp);
            o.peer = Some("192.0.2.9:514".parse().unwrap());
            o
        };
        let relayed = parse(
            b"<13>1 2020-03-04T05:06:07.89+02:00 web1 app - - - stamped in 2020",
            origin(),
            now,
            false,
        );
        let mut line = Vec::new();
        format(&mut line, &relayed, "box", Zone::Utc);
        let text = String::from_utf8(line).unwrap();
        assert!(
            text.starts_with(
                "{\"@timestamp\":\"2020-03-04T05:06:07.89+02:00\",\
                 \"event\":{\"created\":\"2026-12-07T15:37:24.000000Z\"}"
            ),
            "{text}"
        );
        let mut line = Vec::new();
        crate::outputs::formats::rfc5424::format(&mut line, &relayed, "box", Zone::Utc);
        let text = String::from_utf8(line).unwrap();
        assert!(
            text.starts_with("<13>1 2020-03-04T05:06:07.89+02:00 web1 "),
            "{text}"
        );
        assert!(
            text.contains("received=\"2026-12-07T15:37:24.000000Z\""),
            "{text}"
        );
        // A local message's time is when it arrived (syslog(3) writes whole seconds).
        let local = parse(
            b"<13>Mar  4 05:06:07 app: local",
            Origin::new(Transport::UnixDatagram),
            now,
            false,
        );
        let mut line = Vec::new();
        format(&mut line, &local, "box", Zone::Utc);
        assert!(
            String::from_utf8(line)
                .unwrap()
                .starts_with("{\"@timestamp\":\"2026-12-07T15:37:24.000000Z\"")
        );
    }

    #[test]
    fn control_characters_and_invalid_utf8_stay_on_one_line_and_reversible() {
        let msg = parse(
            b"<13>app: a\nb\x1b[2J \xff",
            Origin::new(Transport::UnixDatagram),
            UNIX_EPOCH,
            false,
        );
        let mut line = Vec::new();
        format(&mut line, &msg, "box", Zone::Utc);
        let text = String::from_utf8(line).unwrap();
        assert_eq!(text.matches('\n').count(), 1);
        assert!(!text.bytes().any(|b| b < 0x20 && b != b'\n'));
        // Not UTF-8 and not escaped on receive: written with the receive escaping, flagged.
        assert!(
            text.contains("\"message\":\"a\\\\nb\\\\x1b[2J \\\\xff\""),
            "{text}"
        );
        assert!(text.contains("\"escaped\":true") && text.contains("\"invalid_utf8\":true"));
        let escaped = msg.escape_controls();
        let mut line = Vec::new();
        format(&mut line, &escaped, "box", Zone::Utc);
        assert!(
            String::from_utf8(line)
                .unwrap()
                .contains("\"message\":\"a\\\\nb\\\\x1b[2J \\\\xff\"")
        );
    }

    #[test]
    fn strings_escape_what_the_per_character_rule_escapes_and_copy_the_rest() {
        // The rule, one character at a time, as it was written before runs were copied whole.
        fn reference(s: &str) -> String {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if escape::is_control_or_invisible(c) => {
                        for unit in c.encode_utf16(&mut [0u16; 2]) {
                            out.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        for s in [
            "",
            "plain ascii",
            "\"quoted\" and \\ back",
            "tab\tnew\nline\r\u{0}\u{1b}[2J\u{7f}",
            "caf\u{e9} \u{202e}rtl\u{2028}\u{85}\u{feff}z",
            "\u{1f600} emoji then ascii",
            "\u{ad}",
            "ends in \u{9f}",
        ] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(String::from_utf8(out).unwrap(), reference(s), "{s:?}");
        }
    }
}
