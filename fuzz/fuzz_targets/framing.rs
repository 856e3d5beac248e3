//! TCP framing fed in arbitrary chunkings: the same frames whatever the cuts, none over the limit,
//! the buffer bounded. The first byte chooses the limit, the next eight the cut points.
#![no_main]
#[path = "cuts.rs"]
mod cuts;
use libfuzzer_sys::fuzz_target;
use syslog::framing::{Frame, Framer};

fn frames(max: usize, chunks: &[&[u8]]) -> Vec<(u8, Vec<u8>)> {
    let mut framer = Framer::new(max);
    let mut out = Vec::new();
    let mut push = |f: Frame<'_>| match f {
        Frame::Message(m) => out.push((0, m.to_vec())),
        Frame::Truncated(m) => out.push((1, m.to_vec())),
        Frame::Oversized => out.push((2, Vec::new())),
    };
    for c in chunks {
        framer.feed(c, &mut push);
        assert!(
            framer.buffered() <= max + c.len() + 10,
            "framer buffer grew past its bound"
        );
    }
    framer.finish(&mut push);
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let max = 8 + usize::from(data[0]);
    let (cuts, stream) = data[1..].split_at(8);
    let whole = frames(max, &[stream]);
    for (_, m) in &whole {
        assert!(m.len() <= max, "a frame over the limit was emitted");
    }
    let chunks = cuts::chunks(cuts, stream);
    assert_eq!(
        frames(max, &chunks),
        whole,
        "framing depends on how the stream was cut"
    );
});
