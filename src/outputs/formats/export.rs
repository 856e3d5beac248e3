//! The Journal Export Format (systemd's `journal-export-formats`), as systemd-journal-remote
//! takes it: one entry per message, its fields as the journal output writes them but the
//! trusted ones (`_SYSTEMD_UNIT`, `_HOSTNAME`, ...) kept under their own names (journal-remote
//! stores an uploaded entry whole, so `journalctl _SYSTEMD_UNIT=nginx.service _HOSTNAME=web1`
//! finds the origin's entries), `__REALTIME_TIMESTAMP` the event's own time (a sender's
//! RFC 3339 timestamp, the journal entry's time for the journal input; else when it was
//! received), `_HOSTNAME` the sender's host (else this one), and an empty line after it. Pure.

use std::time::UNIX_EPOCH;

use crate::outputs::journal::{Trusted, encode_fields, put_field, put_number};
use crate::timestamp::rfc3339_usec;
use syslog::message::Message;

/// When the event happened, in microseconds since the epoch: a sender's RFC 3339 timestamp,
/// the journal entry's own time; for a local syslog(3) message (whose timestamp has no year
/// or zone) or one without a readable time, when it was received.
pub fn event_usec(msg: &Message) -> u64 {
    let received = msg
        .received
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    if msg.origin.transport.is_local() {
        received
    } else {
        rfc3339_usec(msg.timestamp_bytes()).unwrap_or(received)
    }
}

/// Appends the entry for `msg`.
pub fn encode(out: &mut Vec<u8>, msg: &Message, local_host: &str) {
    let realtime = event_usec(msg);
    put_number(out, "__REALTIME_TIMESTAMP", realtime);
    if msg.fields().get("_HOSTNAME").is_none() {
        let host = msg.hostname();
        let host = host.as_deref().unwrap_or(local_host);
        put_field(out, "_HOSTNAME", host.as_bytes());
    }
    encode_fields(out, msg, Trusted::Kept);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};
    use syslog::message::{Fields, Origin, Transport};
    use syslog::parse::parse;

    #[test]
    fn an_entry_keeps_the_origin_fields_and_time_and_ends_with_an_empty_line() {
        let received = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let msg = parse(
            b"<30>1 2026-12-07T15:37:24.000001Z web1 nginx 42 - - line one\nline two",
            Origin::new(Transport::Tcp),
            received,
            false,
        )
        .with_fields(
            [
                ("_SYSTEMD_UNIT", b"nginx.service".as_slice()),
                ("BINARY", b"\x00\xff"),
                ("__CURSOR", b"forged"),
            ]
            .into_iter()
            .collect::<Fields>(),
        );
        let mut out = Vec::new();
        encode(&mut out, &msg, "here");
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("__REALTIME_TIMESTAMP=1796657844000001\n_HOSTNAME=web1\n"),
            "{text}"
        );
        assert!(text.contains("_SYSTEMD_UNIT=nginx.service\n"), "{text}");
        assert!(text.contains("SYSLOG_IDENTIFIER=nginx\n"), "{text}");
        assert!(!text.contains("forged"), "{text}");
        // Binary and multi-line values in the length-prefixed form.
        assert!(out.windows(7).any(|w| w == b"BINARY\n"), "{text}");
        assert!(out.windows(8).any(|w| w == b"MESSAGE\n"), "{text}");
        assert!(out.ends_with(b"\n\n"), "{text}");
    }
}
