//! The file output's escaping: no output line contains a raw newline, carriage return, ESC or
//! other control byte, each message is exactly one line, and unescaping gives the bytes back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logger::message::{Origin, Transport};
use logger::parse::parse;
use logger::sinks::line::{escape_into, format_line, unescape};

fuzz_target!(|data: &[u8]| {
    let mut escaped = Vec::new();
    escape_into(&mut escaped, data);
    assert!(!escaped.iter().any(|&b| b < 0x20 || b == 0x7f), "a control byte was written raw");
    assert_eq!(unescape(&escaped).as_deref(), Some(data), "escaping lost information");
    let msg = parse(data, Origin::new(Transport::Tcp), std::time::SystemTime::UNIX_EPOCH, false);
    let mut line = Vec::new();
    format_line(&mut line, &msg, "host");
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one message, one line");
});
