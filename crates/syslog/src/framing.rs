//! RFC 6587 framing of syslog over stream sockets, detected per frame.
//!
//! A frame that starts with a non-zero digit is octet-counted (`LEN SP MSG`); anything else ends at
//! LF or NUL (a CR before the LF is dropped). Partial frames stay buffered: `Framer::feed` simply
//! returns and the next read continues them. A frame longer than the limit is reported once as
//! `Frame::Oversized` and its bytes are skipped up to the frame's end, so it can never be split
//! into a second, forged message. The buffer never holds more than the limit plus one read.
//! Pure: no I/O, never panics on any input.

/// One framing result.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole message.
    Message(&'a [u8]),
    /// The connection ended inside an octet-counted frame: what arrived of it.
    Truncated(&'a [u8]),
    /// A frame longer than the limit was discarded.
    Oversized,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    None,
    /// The rest of an oversized octet-counted frame.
    Bytes(usize),
    /// The rest of an oversized delimited frame.
    ToDelimiter,
}

/// Longest accepted octet count: 9 digits (under 1 GB) is beyond any sane limit already.
const MAX_COUNT_DIGITS: usize = 9;

/// Per-connection framing state.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    max: usize,
    skip: Skip,
}

enum Header {
    /// `LEN SP` was read: the frame length and the header length.
    Count(usize, usize),
    /// Looks octet-counted but the header is not complete yet.
    NeedMore,
    /// Not an octet-counted frame.
    Delimited,
}

fn octet_header(data: &[u8]) -> Header {
    if !matches!(data.first(), Some(b'1'..=b'9')) {
        return Header::Delimited;
    }
    for (i, &b) in data.iter().enumerate().take(MAX_COUNT_DIGITS + 1) {
        match b {
            b'0'..=b'9' if i < MAX_COUNT_DIGITS => {}
            b' ' => {
                let len = data[..i]
                    .iter()
                    .fold(0usize, |acc, d| acc * 10 + usize::from(d - b'0'));
                return Header::Count(len, i + 1);
            }
            _ => return Header::Delimited,
        }
    }
    Header::NeedMore
}

/// The position of the first LF or NUL. Eight bytes at a time: a word holds one when
/// `x ^ 0x0a..` or `x` itself has a zero byte (the exact "has zero byte" test, so the first
/// flagged byte is the answer), then the rest byte by byte.
fn find_delimiter(data: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LF: u64 = ONES * b'\n' as u64;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = data.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([1; 8]));
        let found = has_zero(word ^ LF) | has_zero(word);
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n' || b == 0)
        .map(|i| base + i)
}

impl Framer {
    /// Changes the largest message (a reload); a frame already cut keeps the old decision.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// A framer for messages of at most `max` bytes.
    pub fn new(max: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            max,
            skip: Skip::None,
        }
    }

    /// Bytes held for an incomplete frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True between the first byte of a frame and its end (including while the rest of an
    /// oversized frame is skipped).
    pub fn in_frame(&self) -> bool {
        !self.buf.is_empty() || self.skip != Skip::None
    }

    /// Adds bytes read from the connection and emits every frame they complete.
    pub fn feed(&mut self, data: &[u8], mut emit: impl FnMut(Frame<'_>)) {
        if self.buf.is_empty() {
            // The common case: frames straight from the read, only an unfinished tail is kept.
            let used = self.frames(data, &mut emit);
            self.buf.extend_from_slice(&data[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.buf);
            buf.extend_from_slice(data);
            let used = self.frames(&buf, &mut emit);
            buf.drain(..used);
            self.buf = buf;
        }
    }

    /// Emits every whole frame at the start of `input`; returns how many bytes it used.
    fn frames(&mut self, input: &[u8], emit: &mut impl FnMut(Frame<'_>)) -> usize {
        let mut pos = 0;
        loop {
            let avail = &input[pos..];
            match self.skip {
                Skip::Bytes(n) => {
                    let taken = n.min(avail.len());
                    pos += taken;
                    if taken < n {
                        self.skip = Skip::Bytes(n - taken);
                        break;
                    }
                    self.skip = Skip::None;
                }
                Skip::ToDelimiter => match find_delimiter(avail) {
                    Some(i) => {
                        pos += i + 1;
                        self.skip = Skip::None;
                    }
                    None => {
                        pos = input.len();
                        break;
                    }
                },
                Skip::None if avail.is_empty() => break,
                Skip::None => match octet_header(avail) {
                    Header::Count(len, header) if len > self.max => {
                        emit(Frame::Oversized);
                        pos += header;
                        self.skip = Skip::Bytes(len);
                    }
                    Header::Count(len, header) if avail.len() - header >= len => {
                        emit(Frame::Message(&avail[header..header + len]));
                        pos += header + len;
                    }
                    Header::Count(..) | Header::NeedMore => break,
                    Header::Delimited => match find_delimiter(avail) {
                        Some(i) if i > self.max => {
                            emit(Frame::Oversized);
                            pos += i + 1;
                        }
                        Some(i) => {
                            let frame = &avail[..i];
                            let frame = frame.strip_suffix(b"\r").unwrap_or(frame);
                            if !frame.is_empty() {
                                emit(Frame::Message(frame));
                            }
                            pos += i + 1;
                        }
                        None if avail.len() > self.max => {
                            emit(Frame::Oversized);
                            pos = input.len();
                            self.skip = Skip::ToDelimiter;
                            break;
                        }
                        None => break,
                    },
                },
            }
        }
        pos
    }

    /// The connection ended: emits what is left of an unfinished frame, if anything.
    pub fn finish(&mut self, mut emit: impl FnMut(Frame<'_>)) {
        if self.skip == Skip::None && !self.buf.is_empty() {
            match octet_header(&self.buf) {
                Header::Count(_, header) => emit(Frame::Truncated(&self.buf[header..])),
                _ => {
                    let frame = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
                    // A tail that looked like an unfinished octet count is held unchecked; it
                    // obeys the limit like any other frame.
                    if frame.len() > self.max {
                        emit(Frame::Oversized);
                    } else {
                        emit(Frame::Message(frame));
                    }
                }
            }
        }
        self.buf.clear();
        self.skip = Skip::None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum Out {
        M(Vec<u8>),
        T(Vec<u8>),
        O,
    }

    fn collect(max: usize, chunks: &[&[u8]], finish: bool) -> Vec<Out> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        let mut push = |fr: Frame<'_>| {
            out.push(match fr {
                Frame::Message(m) => Out::M(m.to_vec()),
                Frame::Truncated(m) => Out::T(m.to_vec()),
                Frame::Oversized => Out::O,
            })
        };
        for c in chunks {
            f.feed(c, &mut push);
            assert!(f.buffered() <= max + c.len() + MAX_COUNT_DIGITS + 1);
        }
        if finish {
            f.finish(&mut push);
        }
        out
    }

    fn m(s: &[u8]) -> Out {
        Out::M(s.to_vec())
    }

    #[test]
    fn the_word_at_a_time_delimiter_search_agrees_with_the_byte_search() {
        let mut data: Vec<u8> = (0..=255u8).rev().collect();
        data.extend_from_slice(b"no delimiter here, long enough for several words\x01\x0b\x09");
        for start in 0..data.len() {
            for len in [0, 1, 7, 8, 9, 16, 33, 300] {
                let slice = &data[start..(start + len).min(data.len())];
                let expected = slice.iter().position(|&b| b == b'\n' || b == 0);
                assert_eq!(find_delimiter(slice), expected, "at {start}+{len}");
            }
        }
    }

    #[test]
    fn newline_nul_and_crlf_framing() {
        assert_eq!(
            collect(100, &[b"<13>a\n<13>b\0<13>c\r\n\n"], false),
            [m(b"<13>a"), m(b"<13>b"), m(b"<13>c")]
        );
    }

    #[test]
    fn octet_counting_and_mixed_frames() {
        assert_eq!(
            collect(100, &[b"5 <13>a3 x\ny<13>z\n"], false),
            [m(b"<13>a"), m(b"x\ny"), m(b"<13>z")]
        );
    }

    #[test]
    fn every_chunking_yields_the_same_frames() {
        let data: &[u8] = b"11 <13>1 - h a\n<14>two\n7 <15>3xy<16>four";
        let whole = collect(100, &[data], true);
        for split in 0..data.len() {
            let (a, b) = data.split_at(split);
            assert_eq!(collect(100, &[a, b], true), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(collect(100, &bytes, true), whole);
    }

    #[test]
    fn oversized_frames_are_skipped_not_split() {
        let mut long = b"<13>".to_vec();
        long.extend(std::iter::repeat_n(b'x', 50));
        long.extend(b"\n<13>after\n");
        assert_eq!(
            collect(20, &[&long[..30], &long[30..]], false),
            [Out::O, m(b"<13>after")]
        );
        assert_eq!(collect(20, &[&long], false), [Out::O, m(b"<13>after")]);
        assert_eq!(
            collect(
                20,
                &[b"30 <13>0123456789", b"0123456789012345<13>ok\n"],
                false
            ),
            [Out::O, m(b"<13>ok")]
        );
    }

    #[test]
    fn a_count_larger_than_the_data_waits_then_truncates_at_close() {
        assert_eq!(collect(100, &[b"50 <13>short"], false), []);
        assert_eq!(
            collect(100, &[b"50 <13>short"], true),
            [Out::T(b"<13>short".to_vec())]
        );
    }

    #[test]
    fn an_unterminated_last_line_is_a_message_at_close() {
        assert_eq!(collect(100, &[b"<13>last"], true), [m(b"<13>last")]);
    }

    #[test]
    fn a_digit_tail_over_the_limit_is_oversized_at_close() {
        // Found by fuzz/framing: nine digits look like an unfinished count and were emitted whole.
        assert_eq!(collect(8, &[b"999999999"], true), [Out::O]);
    }

    #[test]
    fn digits_without_a_space_are_not_a_count() {
        assert_eq!(
            collect(100, &[b"1234567890123 x\n"], false),
            [m(b"1234567890123 x")]
        );
        assert_eq!(collect(100, &[b"12a\n"], false), [m(b"12a")]);
    }
}
