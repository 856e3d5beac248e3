//! The RELP reader (a server's, and a client's reading replies) fed in arbitrary chunkings: the
//! same frames and the same verdict whatever the cuts, no data over the limit, no panic. The
//! first byte chooses the limit and the mode, the next eight the cut points.
#![no_main]
#[path = "cuts.rs"]
mod cuts;
use libfuzzer_sys::fuzz_target;
use syslog::relp::{Reader, Reply};

type Frames = (Vec<(u32, String, Vec<u8>, bool)>, Option<String>);

fn frames(max: usize, chunks: &[&[u8]]) -> Frames {
    let mut reader = Reader::new(max);
    let mut out = Vec::new();
    for c in chunks {
        let result = reader.feed(c, |f| {
            assert!(f.data.len() <= max, "data over the limit was handed on");
            out.push((f.txnr, f.command.to_owned(), f.data.to_vec(), f.truncated));
        });
        if let Err(e) = result {
            return (out, Some(e.0));
        }
    }
    (out, None)
}

fn replies(chunks: &[&[u8]]) -> (Vec<Reply>, bool) {
    let mut reader = Reader::for_replies();
    let mut out = Vec::new();
    for c in chunks {
        if syslog::relp::replies(&mut reader, c, &mut out).is_err() {
            return (out, true);
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let max = 1 + usize::from(data[0] & 0x7f);
    let (cuts, stream) = data[1..].split_at(8);
    let chunks = cuts::chunks(cuts, stream);
    if data[0] & 0x80 == 0 {
        assert_eq!(
            frames(max, &chunks),
            frames(max, &[stream]),
            "frames depend on the cuts"
        );
    } else {
        assert_eq!(
            replies(&chunks),
            replies(&[stream]),
            "replies depend on the cuts"
        );
    }
});
