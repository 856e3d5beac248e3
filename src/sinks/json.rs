//! The `json` file format: one JSON object per line, named after the Elastic Common Schema.
//!
//! ECS is what Elasticsearch, OpenSearch, Filebeat/Elastic Agent and Vector's syslog parsing
//! already map syslog to (`log.syslog.*`, `source.ip`, `network.transport`), so a pipeline
//! ingests these lines without a rename step; Loki and Splunk take any flat-enough JSON.
//! Fields:
//! `@timestamp` (received, RFC 3339 UTC), `message`, `log.syslog.{priority, facility.code,
//! facility.name, severity.code, severity.name, hostname, appname, procid, msgid, version}`,
//! `network.transport`, `source.{ip, port}` for network senders, and what ECS has no field for
//! under `logger.*`: the sender's own timestamp, its structured data as sent, its kernel
//! credentials, and the flags `escaped`, `truncated`, `invalid_utf8`. With `logger.escaped`,
//! the text fields hold the receive escaping (`logger::escape::unescape` gives the bytes sent).
//! JSON escaping keeps each object on one line and shows control, bidi and other invisible
//! characters as `\uXXXX`. Pure.

use std::io::Write;

use super::line::push_rfc3339;
use crate::escape;
use crate::message::Message;

/// Appends the object for `msg` (with its newline) to `out`.
pub fn format(out: &mut Vec<u8>, msg: &Message, local_host: &str) {
    // Text that is not UTF-8 (receive escaping turned off) is written with the receive
    // escaping, which is UTF-8 and reversible, and flagged as escaped.
    let (text, escaped) = match (msg.escaped, std::str::from_utf8(msg.text())) {
        (false, Err(_)) => {
            let mut e = Vec::with_capacity(msg.text().len() * 2);
            escape::escape_into(&mut e, msg.text(), escape::RECEIVE);
            (String::from_utf8(e).unwrap_or_default(), true)
        }
        (was, _) => (String::from_utf8_lossy(msg.text()).into_owned(), was),
    };
    out.extend_from_slice(b"{\"@timestamp\":\"");
    push_rfc3339(out, msg.received);
    out.extend_from_slice(b"\",\"message\":");
    string(out, &text);
    let _ = write!(
        out,
        ",\"log\":{{\"syslog\":{{\"priority\":{},\"facility\":{{\"code\":{},\"name\":\"{}\"}},\
         \"severity\":{{\"code\":{},\"name\":\"{}\"}}",
        u16::from(msg.facility) * 8 + u16::from(msg.severity),
        msg.facility,
        msg.facility_name(),
        msg.severity,
        msg.severity_name()
    );
    let hostname = msg
        .hostname()
        .map(|h| h.into_owned())
        .or_else(|| msg.origin.peer.is_none().then(|| local_host.to_owned()));
    for (key, value) in [
        ("hostname", hostname),
        ("appname", msg.app_name().map(|v| v.into_owned())),
        ("procid", msg.pid().map(|v| v.into_owned())),
        ("msgid", msg.msgid().map(|v| v.into_owned())),
    ] {
        if let Some(v) = value {
            let _ = write!(out, ",\"{key}\":");
            string(out, &v);
        }
    }
    if msg.format == crate::message::Format::Rfc5424 {
        out.extend_from_slice(b",\"version\":1");
    }
    let _ = write!(
        out,
        "}}}},\"network\":{{\"transport\":\"{}\"}}",
        msg.origin.transport.name()
    );
    if let Some(peer) = msg.origin.peer {
        let _ = write!(
            out,
            ",\"source\":{{\"ip\":\"{}\",\"port\":{}}}",
            peer.ip(),
            peer.port()
        );
    }
    out.extend_from_slice(b",\"logger\":{\"format\":\"");
    out.extend_from_slice(match msg.format {
        crate::message::Format::Rfc5424 => b"rfc5424".as_slice(),
        crate::message::Format::Rfc3164 => b"rfc3164",
        crate::message::Format::Unparsed => b"unparsed",
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
    out.extend_from_slice(b"}}\n");
}

/// A JSON string: quotes, backslashes, control characters (C0, DEL, C1), line separators and
/// the invisible format characters the file escaping shows are written as escapes.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
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
    use crate::message::{Origin, Transport};
    use crate::parse::parse;
    use std::time::UNIX_EPOCH;

    #[test]
    fn an_object_per_line_with_ecs_names_and_the_origin() {
        let msg = parse(
            b"<38>Nov 22 00:00:33 gw1 sshd[5]: Accepted \"key\" for ops\tnow \xe2\x80\xae",
            Origin {
                transport: Transport::Udp,
                peer: Some("10.1.2.3:514".parse().unwrap()),
                credentials: None,
            },
            UNIX_EPOCH,
            false,
        );
        let mut line = Vec::new();
        format(&mut line, &msg, "box");
        let text = String::from_utf8(line).unwrap();
        assert_eq!(
            text,
            "{\"@timestamp\":\"1970-01-01T00:00:00.000000Z\",\"message\":\"Accepted \\\"key\\\" for ops\\tnow \\u202e\",\
             \"log\":{\"syslog\":{\"priority\":38,\"facility\":{\"code\":4,\"name\":\"auth\"},\
             \"severity\":{\"code\":6,\"name\":\"info\"},\"hostname\":\"gw1\",\"appname\":\"sshd\",\
             \"procid\":\"5\"}},\"network\":{\"transport\":\"udp\"},\
             \"source\":{\"ip\":\"10.1.2.3\",\"port\":514},\
             \"logger\":{\"format\":\"rfc3164\",\"timestamp\":\"Nov 22 00:00:33\"}}\n"
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
        format(&mut line, &msg, "box");
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
        format(&mut line, &escaped, "box");
        assert!(
            String::from_utf8(line)
                .unwrap()
                .contains("\"message\":\"a\\\\nb\\\\x1b[2J \\\\xff\"")
        );
    }
}
