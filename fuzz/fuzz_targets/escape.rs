//! The escaping: no file line contains a raw newline, carriage return, ESC or other control
//! byte, each message is exactly one line, a message escaped on receive carries no control
//! character but TAB, unescaping gives the bytes back in every case, and `escaped_len` is the
//! length written; rsyslog's line formats write no control byte but their newline either.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logger::outputs::formats::line::format_line;
use logger::outputs::formats::rsyslog::{Stamp, format};
use logger::timestamp::Zone;
use syslog::escape::{LINE, RECEIVE, escape_into, escaped_len, unescape};
use syslog::message::{Origin, Transport};
use syslog::parse::parse;

fuzz_target!(|data: &[u8]| {
    let mut escaped = Vec::new();
    escape_into(&mut escaped, data, LINE);
    assert!(
        !escaped.iter().any(|&b| b < 0x20 || b == 0x7f),
        "a control byte was written raw"
    );
    assert_eq!(
        unescape(&escaped).as_deref(),
        Some(data),
        "escaping lost information"
    );
    assert_eq!(
        escaped_len(data, LINE),
        escaped.len(),
        "measured is not written"
    );
    let mut received = Vec::new();
    escape_into(&mut received, data, RECEIVE);
    assert!(
        !received
            .iter()
            .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    );
    assert_eq!(
        unescape(&received).as_deref(),
        Some(data),
        "receive escaping lost information"
    );
    let msg = parse(
        data,
        Origin::new(Transport::Tcp),
        std::time::SystemTime::UNIX_EPOCH,
        false,
    );
    let msg = msg.escape_controls();
    let mut line = Vec::new();
    format_line(&mut line, &msg, "host");
    assert_eq!(
        line.iter().filter(|&&b| b == b'\n').count(),
        1,
        "one message, one line"
    );
    // rsyslog's formats: one line too, and no control byte but its newline.
    for stamp in [Stamp::Traditional, Stamp::Rfc3339] {
        let mut line = Vec::new();
        format(&mut line, &msg, "host", Zone::Local, stamp);
        assert_eq!(
            line.iter().filter(|&&b| b < 0x20).count(),
            1,
            "rsyslog line forged"
        );
    }
});
