//! Table-driven parser tests. Each fixture is named after the sender that produced it; the
//! util-linux ones were captured from util-linux 2.38 `logger` on Debian 12.

mod real_world;

use super::parse;
use crate::message::{Format, Message, Origin, Transport};
use std::time::SystemTime;

pub(super) struct Case {
    name: &'static str,
    transport: Transport,
    raw: &'static [u8],
    pri: (u8, u8),
    format: Format,
    timestamp: Option<&'static str>,
    host: Option<&'static str>,
    app: Option<&'static str>,
    pid: Option<&'static str>,
    msgid: Option<&'static str>,
    sd: Option<&'static str>,
    text: &'static [u8],
}

pub(super) const BASE: Case = Case {
    name: "",
    transport: Transport::Udp,
    raw: b"",
    pri: (1, 5),
    format: Format::Rfc3164,
    timestamp: None,
    host: None,
    app: None,
    pid: None,
    msgid: None,
    sd: None,
    text: b"",
};

/// Parses each case as received over its transport and checks every field.
pub(super) fn check(cases: &[Case]) {
    for c in cases {
        let msg = parse(
            c.raw,
            Origin::new(c.transport),
            SystemTime::UNIX_EPOCH,
            false,
        );
        run(&msg, c);
    }
}

fn run(msg: &Message, c: &Case) {
    let name = c.name;
    assert_eq!((msg.facility, msg.severity), c.pri, "{name}: priority");
    assert_eq!(msg.format, c.format, "{name}: format");
    assert_eq!(msg.timestamp().as_deref(), c.timestamp, "{name}: timestamp");
    assert_eq!(msg.hostname().as_deref(), c.host, "{name}: hostname");
    assert_eq!(msg.app_name().as_deref(), c.app, "{name}: app");
    assert_eq!(msg.procid().as_deref(), c.pid, "{name}: pid");
    assert_eq!(msg.msgid().as_deref(), c.msgid, "{name}: msgid");
    assert_eq!(msg.structured_data().as_deref(), c.sd, "{name}: sd");
    assert_eq!(
        String::from_utf8_lossy(msg.text()),
        String::from_utf8_lossy(c.text),
        "{name}: text"
    );
}

#[test]
fn fixtures() {
    let cases = [
        Case {
            name: "util-linux logger -u -t myapp -i -p local3.warning (syslog(3) local form)",
            transport: Transport::UnixDatagram,
            raw: b"<156>Nov 23 20:21:46 myapp[2220]: hello local",
            pri: (19, 4),
            timestamp: Some("Nov 23 20:21:46"),
            app: Some("myapp"),
            pid: Some("2220"),
            text: b"hello local",
            ..BASE
        },
        Case {
            name: "util-linux logger -u (no -t: tag is the user name)",
            transport: Transport::UnixDatagram,
            raw: b"<13>Nov 23 20:21:46 root: plain",
            timestamp: Some("Nov 23 20:21:46"),
            app: Some("root"),
            text: b"plain",
            ..BASE
        },
        Case {
            name: "glibc syslog(3) with LOG_PID, single-digit day",
            transport: Transport::UnixDatagram,
            raw: b"<30>Jan  5 01:02:03 sshd[77]: Accepted publickey\n",
            pri: (3, 6),
            timestamp: Some("Jan  5 01:02:03"),
            app: Some("sshd"),
            pid: Some("77"),
            text: b"Accepted publickey",
            ..BASE
        },
        Case {
            name: "util-linux logger -d --rfc3164 -t net3 -i",
            raw: b"<13>Nov 23 20:21:46 vm net3[2224]: udp 3164",
            timestamp: Some("Nov 23 20:21:46"),
            host: Some("vm"),
            app: Some("net3"),
            pid: Some("2224"),
            text: b"udp 3164",
            ..BASE
        },
        Case {
            name: "util-linux logger -d (default RFC 5424)",
            raw: b"<13>1 2026-11-23T20:21:46.827204+00:00 vm net - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] udp default",
            format: Format::Rfc5424,
            timestamp: Some("2026-11-23T20:21:46.827204+00:00"),
            host: Some("vm"),
            app: Some("net"),
            sd: Some("[timeQuality tzKnown=\"1\" isSynced=\"0\"]"),
            text: b"udp default",
            ..BASE
        },
        Case {
            name: "util-linux logger --rfc5424 --msgid --sd-id --sd-param -i",
            raw: b"<13>1 2026-11-23T20:21:46.8+00:00 vm net5 2230 ID47 [timeQuality tzKnown=\"1\"][exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] udp 5424",
            format: Format::Rfc5424,
            timestamp: Some("2026-11-23T20:21:46.8+00:00"),
            host: Some("vm"),
            app: Some("net5"),
            pid: Some("2230"),
            msgid: Some("ID47"),
            sd: Some("[timeQuality tzKnown=\"1\"][exampleSDID@32473 iut=\"3\" eventSource=\"Application\"]"),
            text: b"udp 5424",
            ..BASE
        },
        Case {
            name: "util-linux logger --rfc5424=notq,notime (nil timestamp, no SD)",
            raw: b"<13>1 - vm root - - - bare",
            format: Format::Rfc5424,
            host: Some("vm"),
            app: Some("root"),
            text: b"bare",
            ..BASE
        },
        Case {
            name: "RFC 5424 example 1 with BOM",
            raw: b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed",
            pri: (4, 2),
            format: Format::Rfc5424,
            timestamp: Some("2003-10-11T22:14:15.003Z"),
            host: Some("mymachine.example.com"),
            app: Some("su"),
            msgid: Some("ID47"),
            text: b"'su root' failed",
            ..BASE
        },
        Case {
            name: "RFC 5424 escaped ] and \" inside a param value",
            raw: b"<165>1 - h a - - [x@1 v=\"a\\]b\\\"c\"] text",
            pri: (20, 5),
            format: Format::Rfc5424,
            host: Some("h"),
            app: Some("a"),
            sd: Some("[x@1 v=\"a\\]b\\\"c\"]"),
            text: b"text",
            ..BASE
        },
        Case {
            name: "RFC 5424 unterminated structured data stays in the text",
            raw: b"<13>1 - h a - - [x@1 v=\"open text",
            format: Format::Rfc5424,
            host: Some("h"),
            app: Some("a"),
            text: b"[x@1 v=\"open text",
            ..BASE
        },
        Case {
            name: "RFC 5424 header cut short",
            raw: b"<13>1 2026-01-01T00:00:00Z",
            format: Format::Rfc5424,
            timestamp: Some("2026-01-01T00:00:00Z"),
            ..BASE
        },
        Case {
            name: "rsyslog omfwd RSYSLOG_ForwardFormat (RFC 3339 time in a BSD header)",
            raw: b"<86>2026-11-23T20:21:46.123456+00:00 web1 sudo[991]: pam_unix(sudo:session): session opened",
            pri: (10, 6),
            timestamp: Some("2026-11-23T20:21:46.123456+00:00"),
            host: Some("web1"),
            app: Some("sudo"),
            pid: Some("991"),
            text: b"pam_unix(sudo:session): session opened",
            ..BASE
        },
        Case {
            name: "BusyBox syslogd remote forward (hostname, tag without pid)",
            raw: b"<14>Nov 23 20:21:46 router1 udhcpc: lease obtained",
            pri: (1, 6),
            timestamp: Some("Nov 23 20:21:46"),
            host: Some("router1"),
            app: Some("udhcpc"),
            text: b"lease obtained",
            ..BASE
        },
        Case {
            // rsyslog, syslog-ng and syslog-loose all read the word after the hostname as the
            // tag, colon or not.
            name: "network gear: hostname, then a tag without a colon",
            raw: b"<189>Nov 23 20:21:46 sw-core-1 %LINK-3-UPDOWN Interface Gi0/1 down",
            pri: (23, 5),
            timestamp: Some("Nov 23 20:21:46"),
            host: Some("sw-core-1"),
            app: Some("%LINK-3-UPDOWN"),
            text: b"Interface Gi0/1 down",
            ..BASE
        },
        Case {
            name: "PRI only, no header",
            raw: b"<11>something happened",
            pri: (1, 3),
            text: b"something happened",
            ..BASE
        },
        Case {
            name: "no PRI at all",
            raw: b"just text\r\n",
            format: Format::Unparsed,
            text: b"just text",
            ..BASE
        },
        Case {
            name: "PRI out of range is not a PRI",
            raw: b"<192>Nov 23 20:21:46 a: b",
            format: Format::Unparsed,
            text: b"<192>Nov 23 20:21:46 a: b",
            ..BASE
        },
        Case {
            name: "unterminated PRI",
            raw: b"<13",
            format: Format::Unparsed,
            text: b"<13",
            ..BASE
        },
        Case {
            name: "non-UTF-8 and escapes are kept byte for byte",
            transport: Transport::UnixDatagram,
            raw: b"<13>Nov 23 20:21:46 app: \xff\xfe \x1b[31mred\nforged",
            timestamp: Some("Nov 23 20:21:46"),
            app: Some("app"),
            text: b"\xff\xfe \x1b[31mred\nforged",
            ..BASE
        },
    ];
    check(&cases);
}

#[test]
fn local_text_without_tag_is_not_read_as_a_hostname() {
    let msg = parse(
        b"<13>Nov 23 20:21:46 hello world",
        Origin::new(Transport::UnixDatagram),
        SystemTime::UNIX_EPOCH,
        false,
    );
    assert_eq!(msg.hostname(), None);
    assert_eq!(msg.text(), b"hello world");
}

#[test]
fn never_panics_on_short_or_odd_input() {
    let inputs: [&[u8]; 12] = [
        b"",
        b"<",
        b"<>",
        b"<1>",
        b"<1>1",
        b"<1>1 ",
        b"<1>1 - - - - - [",
        b"<1>1 - - - - - [a \"\\",
        b"<1>Nov",
        b"<1>Nov 23 20:21:46",
        b"<1>a[",
        b"<1>a[]: b",
    ];
    for raw in inputs {
        for t in [Transport::Udp, Transport::UnixDatagram] {
            parse(raw, Origin::new(t), SystemTime::UNIX_EPOCH, false);
        }
    }
}

#[test]
fn parsing_owned_bytes_gives_the_same_message_without_the_trailer() {
    let inputs: [&[u8]; 4] = [
        b"<13>1 2026-12-07T15:37:24Z web1 app 42 ID [fields@32473 A=\"1\"] text\n\0",
        b"<30>Dec  7 15:37:24 web1 nginx[42]: hello\r\n",
        b"no header at all\n",
        b"",
    ];
    for raw in inputs {
        let origin = || Origin::new(Transport::Udp);
        let borrowed = parse(raw, origin(), SystemTime::UNIX_EPOCH, false);
        let owned = super::parse_owned(raw.to_vec(), origin(), SystemTime::UNIX_EPOCH, false);
        assert_eq!(owned, borrowed);
        assert!(!owned.text().ends_with(b"\n") && !owned.text().ends_with(b"\0"));
    }
}
