//! Property tests of the invariants the fuzz targets also check, so a plain `cargo test` guards
//! them: framing is independent of how the stream is cut, nothing parses into a panic, file lines
//! cannot be forged and their escaping is reversible, journal entries decode back to what was
//! encoded, and the configuration parser rejects rather than panics.

use std::time::SystemTime;

use logger::cli::Cli;
use logger::config::{Config, Env};
use logger::outputs::formats::line::format_line;
use logger::outputs::journal::{decode, encode};
use proptest::prelude::*;
use syslog::escape::{LINE, escape_into, unescape};
use syslog::framing::{Frame, Framer};
use syslog::message::{Origin, Transport};
use syslog::parse::parse;

#[derive(Debug, PartialEq, Eq)]
enum Out {
    Message(Vec<u8>),
    Truncated(Vec<u8>),
    Oversized,
}

fn frames(max: usize, chunks: &[&[u8]]) -> Vec<Out> {
    let mut framer = Framer::new(max);
    let mut out = Vec::new();
    let mut push = |f: Frame<'_>| {
        out.push(match f {
            Frame::Message(m) => Out::Message(m.to_vec()),
            Frame::Truncated(m) => Out::Truncated(m.to_vec()),
            Frame::Oversized => Out::Oversized,
        })
    };
    for chunk in chunks {
        framer.feed(chunk, &mut push);
        assert!(framer.buffered() <= max + chunk.len() + 10);
    }
    framer.finish(&mut push);
    out
}

/// Syslog-ish streams: octet-counted frames, delimited frames, junk.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let frame = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(|m| {
            let mut f = format!("{} ", m.len()).into_bytes();
            f.extend(m);
            f
        }),
        "<[0-9]{1,3}>[ -~]{0,60}\n".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..40),
    ];
    proptest::collection::vec(frame, 0..8).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn framing_does_not_depend_on_how_the_stream_is_cut(data in stream(), cuts in proptest::collection::vec(any::<usize>(), 0..6), max in 8usize..64) {
        let whole = frames(max, &[&data]);
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for p in points {
            chunks.push(&data[last..p]);
            last = p;
        }
        chunks.push(&data[last..]);
        prop_assert_eq!(frames(max, &chunks), whole.as_slice());
        for f in &whole {
            if let Out::Message(m) | Out::Truncated(m) = f {
                prop_assert!(m.len() <= max, "a frame over the limit was emitted");
            }
        }
    }

    #[test]
    fn parsing_never_panics_and_keeps_the_text(raw in proptest::collection::vec(any::<u8>(), 0..300), local in any::<bool>()) {
        let transport = if local { Transport::UnixDatagram } else { Transport::Udp };
        let msg = parse(&raw, Origin::new(transport), SystemTime::UNIX_EPOCH, false);
        prop_assert!(msg.facility <= 23 && msg.severity <= 7);
        // The text is always a contiguous piece of the input.
        prop_assert!(msg.text().is_empty() || raw.windows(msg.text().len()).any(|w| w == msg.text()));
    }

    #[test]
    fn file_lines_cannot_be_forged_and_escaping_reverses(text in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut escaped = Vec::new();
        escape_into(&mut escaped, &text, LINE);
        prop_assert!(!escaped.iter().any(|&b| b == b'\n' || b == b'\r' || b == 0x1b || b < 0x20 || b == 0x7f));
        prop_assert_eq!(unescape(&escaped), Some(text.clone()));
        let mut raw = b"<13>Nov 23 20:21:46 app: ".to_vec();
        raw.extend_from_slice(&text);
        let msg = parse(&raw, Origin::new(Transport::Tcp), SystemTime::UNIX_EPOCH, false);
        let mut line = Vec::new();
        format_line(&mut line, &msg, "host");
        prop_assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        prop_assert_eq!(line.last(), Some(&b'\n'));
    }

    #[test]
    fn rsyslog_lines_cannot_be_forged_either(raw in proptest::collection::vec(any::<u8>(), 0..300), local in any::<bool>(), escape in any::<bool>()) {
        use logger::outputs::formats::rsyslog::{Stamp, format};
        use logger::timestamp::Zone;
        let transport = if local { Transport::UnixDatagram } else { Transport::Udp };
        let mut origin = Origin::new(transport);
        if !local {
            origin.peer = Some("192.0.2.1:514".parse().unwrap());
        }
        let msg = parse(&raw, origin, SystemTime::UNIX_EPOCH, false);
        let msg = if escape { msg.escape_controls() } else { msg };
        for stamp in [Stamp::Traditional, Stamp::Rfc3339] {
            let mut line = Vec::new();
            format(&mut line, &msg, "host", Zone::Utc, stamp);
            prop_assert_eq!(line.iter().filter(|&&b| b < 0x20).count(), 1, "{:?}", String::from_utf8_lossy(&line));
            prop_assert_eq!(line.last(), Some(&b'\n'));
        }
    }

    #[test]
    fn receive_escaping_leaves_no_control_character_and_reverses(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let msg = parse(&raw, Origin::new(Transport::Udp), SystemTime::UNIX_EPOCH, false);
        let original = msg.text().to_vec();
        let app = msg.app_name().map(|a| a.into_owned());
        let escaped = msg.escape_controls();
        let text = escaped.text();
        prop_assert!(std::str::from_utf8(text).is_ok());
        prop_assert!(!text.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f));
        if escaped.escaped {
            prop_assert_eq!(unescape(text), Some(original));
        } else {
            prop_assert_eq!(text, original.as_slice());
            prop_assert_eq!(escaped.app_name().map(|a| a.into_owned()), app);
        }
    }

    #[test]
    fn journal_entries_decode_to_what_was_encoded(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let msg = parse(&raw, Origin::new(Transport::UnixDatagram), SystemTime::UNIX_EPOCH, false);
        let mut entry = Vec::new();
        encode(&mut entry, &msg);
        let fields = decode(&entry).expect("our own entry decodes");
        let message = fields.iter().find(|(k, _)| k == "MESSAGE").map(|(_, v)| v.clone());
        prop_assert_eq!(message, Some(msg.text().to_vec()));
        let priority = fields.iter().find(|(k, _)| k == "PRIORITY").map(|(_, v)| v.clone());
        prop_assert_eq!(priority, Some(vec![b'0' + msg.severity]));
    }

    #[test]
    fn the_config_parser_rejects_instead_of_panicking(text in "[a-z\\-=\\[\\]\"0-9 \\n:/.]{0,120}") {
        let _ = Config::from_toml(&text, &Cli::default(), &Env::default());
    }
}
