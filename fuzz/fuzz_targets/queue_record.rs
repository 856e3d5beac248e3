//! Disk-queue records (what a `queue-dir` segment holds; damage, a rogue write or a torn end
//! chooses the bytes): scanned as the queue scans a segment, stepping one byte past damage.
//! Every record found re-encodes to exactly the bytes it was read from, lies within the input
//! and is found in order; records written whole before arbitrary bytes are all found first,
//! as written; a position's key and text are handed back only as UTF-8.
#![no_main]
use libfuzzer_sys::fuzz_target;
use syslog::queue_record::{Decoded, Kind, decode, decode_position, encode};

/// Every record `bytes` holds, as the disk queue's reader finds them (at the end of the data an
/// incomplete record is a torn one: stepped over like damage).
fn scan(bytes: &[u8]) -> Vec<(Kind, u64, Vec<u8>)> {
    let (mut at, mut found) = (0, Vec::new());
    while at < bytes.len() {
        match decode(&bytes[at..]) {
            Decoded::Record { kind, seq, payload } => {
                assert!(payload.end <= bytes.len() - at, "a record past the data");
                let body = &bytes[at + payload.start..at + payload.end];
                let mut again = Vec::new();
                encode(&mut again, kind, seq, body);
                assert_eq!(
                    &again[..],
                    &bytes[at..at + payload.end],
                    "re-encoded differently"
                );
                if kind == Kind::Position {
                    if let Some((key, text)) = decode_position(body) {
                        assert_eq!(key.len() + 1 + text.len(), body.len());
                    }
                }
                found.push((kind, seq, body.to_vec()));
                at += payload.end;
            }
            Decoded::Incomplete | Decoded::Damaged => at += 1,
        }
    }
    found
}

fuzz_target!(|data: &[u8]| {
    scan(data);
    // The same bytes as payloads (split at 0xff), written whole, then the bytes again as a
    // damaged tail: the written records come back first, in order.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut written = Vec::new();
    let mut bytes = Vec::new();
    for (i, payload) in rest.split(|&b| b == split).enumerate() {
        let kind = if i % 3 == 2 {
            Kind::Position
        } else {
            Kind::Message
        };
        encode(&mut bytes, kind, i as u64, payload);
        written.push((kind, i as u64, payload.to_vec()));
    }
    bytes.extend_from_slice(rest);
    let found = scan(&bytes);
    assert_eq!(
        &found[..written.len()],
        &written[..],
        "written records lost"
    );
});
