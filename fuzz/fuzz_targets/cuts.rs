//! Shared by the targets that feed a stream in pieces: eight bytes of fuzz input choose where
//! `stream` is cut.

/// `stream` cut at the points `cuts` (eight bytes, each a fraction of its length) choose.
pub fn chunks<'a>(cuts: &[u8], stream: &'a [u8]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) * stream.len() / 255)
        .collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut last = 0;
    for p in points {
        chunks.push(&stream[last..p]);
        last = p;
    }
    chunks.push(&stream[last..]);
    chunks
}
