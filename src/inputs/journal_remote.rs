//! An upload session on one connection of a `journal-remote://` or `journal-remote+https://`
//! input: the HTTP/1.1 requests systemd-journal-upload sends, and the answers it is owed, as
//! systemd-journal-remote gives them.
//!
//! `POST /upload` with `Content-Type: application/vnd.fdo.journal` and a chunked (or
//! `Content-Length`) body of the Journal Export Format (`parse::export`). Each entry goes to
//! the input's batch as it is decoded, with a number of its own; the request is answered `202`
//! only once its body is whole and every output took each of its entries (`receipt`), so
//! journal-upload saves its cursor (it does only on a 2xx) exactly when logger holds what the
//! request carried. A connection that breaks, a stop that runs out of time (`503`), or a body
//! that is not the export format (`400`, after the entries before the damage were taken) is
//! not a 2xx: journal-upload sends the request again from its saved cursor, so what it costs is
//! duplicates of one request, never a loss.
//!
//! Refused as journal-remote refuses them, each answered and the connection closed: another
//! method (`405`), another path (`404`), another content type (`415`), no length (`411`),
//! another transfer coding (`501`), a head over [`HEAD_MAX`] (`431`). `Expect: 100-continue`
//! (curl's, for a chunked upload) is answered at once. One request at a time: the connection
//! is not read while a request waits for its answer, and a client that sends the next request
//! before the answer (pipelining, which curl does not do) is refused.
//!
//! What one connection holds is bounded: the head, an entry's fields (`ExportReader`'s bounds),
//! and at most [`MAX_UNANSWERED`] entries waiting for their outputs before the connection is
//! no longer read.

use syslog::parse::export::{ExportReader, JournalEntry, Malformed};

/// Entries waiting for their outputs before the connection is no longer read.
pub(super) const MAX_UNANSWERED: usize = 1024;
/// The request line and headers, at most.
pub(super) const HEAD_MAX: usize = 16 * 1024;
/// A chunk-size or trailer line, at most.
const LINE_MAX: usize = 1024;
/// The content type journal-remote takes.
const CONTENT_TYPE: &str = "application/vnd.fdo.journal";

/// Where the request being received is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the request line and headers (into `head`).
    Head,
    /// Reading the body.
    Body(Body),
    /// The body is whole: waiting for its entries' outputs, then the answer.
    Answering,
}

/// How the body's end is known, and where its decoding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// `Content-Length`: bytes still to come.
    Length(u64),
    /// A chunk-size line (into `line`).
    ChunkSize,
    /// Chunk data: bytes still to come.
    ChunkData(u64),
    /// The CRLF after chunk data: bytes of it seen.
    ChunkEnd(u8),
    /// Trailer lines after the last chunk, up to an empty one (into `line`).
    Trailer,
}

/// One connection's upload session.
pub(super) struct Upload {
    phase: Phase,
    head: Vec<u8>,
    line: Vec<u8>,
    reader: ExportReader,
    max_field: usize,
    /// Answers not yet written.
    out: Vec<u8>,
    /// Entries of this request handed on and not yet taken by every output.
    unanswered: usize,
    /// The number the next entry is handed on with.
    next_entry: u32,
    /// The client asked to close after this request (or spoke HTTP/1.0).
    close_after: bool,
    /// Over: the connection ends once `out` is written, and nothing more is read.
    ended: bool,
}

impl Upload {
    /// A session whose entries' values are cut at `max_field` bytes.
    pub(super) fn new(max_field: usize) -> Upload {
        Upload {
            phase: Phase::Head,
            head: Vec::new(),
            line: Vec::new(),
            reader: ExportReader::new(max_field),
            max_field,
            out: Vec::new(),
            unanswered: 0,
            next_entry: 0,
            close_after: false,
            ended: false,
        }
    }

    /// Applies a reloaded max-message-size to the requests that start from now.
    pub(super) fn set_max(&mut self, max_field: usize) {
        self.max_field = max_field;
    }

    /// True while a head, a chunk-size line or an entry is partly read (frame-timeout runs).
    pub(super) fn in_frame(&self) -> bool {
        match self.phase {
            Phase::Head => !self.head.is_empty(),
            Phase::Body(Body::ChunkSize | Body::Trailer) => {
                !self.line.is_empty() || self.reader.in_entry()
            }
            Phase::Body(_) => true,
            Phase::Answering => false,
        }
    }

    /// Takes what the client sent: each entry goes to `entry` with its number. An error says
    /// why the session ends; its answer is queued (written before the connection closes).
    pub(super) fn feed(
        &mut self,
        mut bytes: &[u8],
        mut entry: impl FnMut(JournalEntry, u32),
    ) -> Result<(), String> {
        while !bytes.is_empty() && !self.ended {
            let result = match self.phase {
                Phase::Head => self.take_head(&mut bytes),
                Phase::Body(body) => self.take_body(body, &mut bytes, &mut entry),
                Phase::Answering => Err(Refusal::new(
                    400,
                    "a request sent before the answer to the one before it",
                )),
            };
            if let Err(refusal) = result {
                return Err(self.refuse(refusal));
            }
        }
        Ok(())
    }

    /// Reads the head up to its empty line, and checks it.
    fn take_head(&mut self, bytes: &mut &[u8]) -> Result<(), Refusal> {
        // The end of the head may straddle reads: look from a little before the new bytes.
        let from = self.head.len().saturating_sub(3);
        let room = HEAD_MAX + 1 - self.head.len();
        let n = bytes.len().min(room);
        self.head.extend_from_slice(&bytes[..n]);
        let Some(end) = find(&self.head[from..], b"\r\n\r\n").map(|i| from + i + 4) else {
            if self.head.len() > HEAD_MAX {
                return Err(Refusal::new(431, "a request head over 16 KiB"));
            }
            *bytes = &bytes[n..];
            return Ok(());
        };
        // What followed the head is the body's.
        let used = end - (self.head.len() - n);
        *bytes = &bytes[used..];
        let head = std::mem::take(&mut self.head);
        let request = Request::parse(&head[..end])?;
        self.close_after = request.close;
        if request.expect_continue {
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        self.reader = ExportReader::new(self.max_field);
        self.phase = Phase::Body(request.body);
        if request.body == Body::Length(0) {
            self.body_done()?;
        }
        Ok(())
    }

    /// Reads body bytes: chunk framing off, entries out.
    fn take_body(
        &mut self,
        body: Body,
        bytes: &mut &[u8],
        entry: &mut impl FnMut(JournalEntry, u32),
    ) -> Result<(), Refusal> {
        match body {
            Body::Length(left) | Body::ChunkData(left) => {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                self.entries(&bytes[..n], entry)?;
                *bytes = &bytes[n..];
                let left = left - n as u64;
                match body {
                    Body::Length(_) if left == 0 => self.body_done()?,
                    Body::Length(_) => self.phase = Phase::Body(Body::Length(left)),
                    _ if left == 0 => self.phase = Phase::Body(Body::ChunkEnd(0)),
                    _ => self.phase = Phase::Body(Body::ChunkData(left)),
                }
            }
            Body::ChunkEnd(seen) => {
                let expected = b"\r\n"[usize::from(seen)];
                if bytes[0] != expected {
                    return Err(Refusal::new(400, "chunk data not followed by CRLF"));
                }
                *bytes = &bytes[1..];
                self.phase = Phase::Body(if seen == 0 {
                    Body::ChunkEnd(1)
                } else {
                    Body::ChunkSize
                });
            }
            Body::ChunkSize | Body::Trailer => {
                let Some(line) = self.take_line(bytes)? else {
                    return Ok(());
                };
                if body == Body::Trailer {
                    if line.is_empty() {
                        self.body_done()?;
                    }
                    return Ok(());
                }
                let size = chunk_size(&line)?;
                self.phase = Phase::Body(if size == 0 {
                    Body::Trailer
                } else {
                    Body::ChunkData(size)
                });
            }
        }
        Ok(())
    }

    /// One CRLF-ended line (its CRLF off) once it is whole.
    fn take_line(&mut self, bytes: &mut &[u8]) -> Result<Option<Vec<u8>>, Refusal> {
        let end = bytes.iter().position(|&b| b == b'\n');
        let piece = &bytes[..end.unwrap_or(bytes.len())];
        if self.line.len() + piece.len() > LINE_MAX {
            return Err(Refusal::new(400, "a chunk line over 1 KiB"));
        }
        self.line.extend_from_slice(piece);
        let Some(end) = end else {
            *bytes = &[];
            return Ok(None);
        };
        *bytes = &bytes[end + 1..];
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(line))
    }

    /// Decodes body bytes into entries, each numbered and counted as waiting.
    fn entries(
        &mut self,
        bytes: &[u8],
        entry: &mut impl FnMut(JournalEntry, u32),
    ) -> Result<(), Refusal> {
        let (unanswered, next) = (&mut self.unanswered, &mut self.next_entry);
        self.reader
            .feed(bytes, |e| {
                *unanswered += 1;
                *next = next.wrapping_add(1);
                entry(e, *next);
            })
            .map_err(|Malformed(why)| Refusal {
                status: 400,
                why: format!("not the Journal Export Format: {why}"),
            })
    }

    /// The body is whole: answer once its entries are taken.
    fn body_done(&mut self) -> Result<(), Refusal> {
        if self.reader.in_entry() {
            // journal-remote's answer to a body that ends inside an entry.
            return Err(Refusal::new(400, "the body ends inside an entry"));
        }
        self.phase = Phase::Answering;
        self.answer_if_taken();
        Ok(())
    }

    fn answer_if_taken(&mut self) {
        if self.phase == Phase::Answering && self.unanswered == 0 && !self.ended {
            respond(&mut self.out, 202, "Accepted", "OK.\n", self.close_after);
            self.ended = self.close_after;
            self.phase = Phase::Head;
        }
    }

    /// Queues the answer to a refused request; the session ends with it. Returns why.
    fn refuse(&mut self, refusal: Refusal) -> String {
        let text = format!("{}\n", refusal.why);
        respond(&mut self.out, refusal.status, refusal.reason(), &text, true);
        self.ended = true;
        format!("{} ({})", refusal.why, refusal.status)
    }

    /// Every output took the entry numbered `_n`: the request is answered once none waits.
    pub(super) fn answer(&mut self, _n: u32) {
        self.unanswered = self.unanswered.saturating_sub(1);
        self.answer_if_taken();
    }

    /// The input stops: a request in progress is answered 503 (journal-upload sends it again,
    /// to the next instance); an idle connection just closes.
    pub(super) fn server_close(&mut self) {
        if self.ended {
            return;
        }
        if !(self.phase == Phase::Head && self.head.is_empty()) {
            respond(
                &mut self.out,
                503,
                "Service Unavailable",
                "logger is stopping\n",
                true,
            );
        }
        self.ended = true;
    }

    /// Entries waiting for their outputs.
    pub(super) fn unanswered(&self) -> usize {
        self.unanswered
    }

    /// True when the connection must not be read for now (too many entries waiting, or a
    /// request waiting for its answer), or for good (ended).
    pub(super) fn saturated(&self) -> bool {
        self.unanswered >= MAX_UNANSWERED || self.phase == Phase::Answering || self.ended
    }

    /// True once the session is over and every answer written: close the connection.
    pub(super) fn done(&self) -> bool {
        self.ended && self.out.is_empty()
    }

    /// The answers not yet written.
    pub(super) fn answers(&self) -> &[u8] {
        &self.out
    }

    /// `n` bytes of the answers were written.
    pub(super) fn written(&mut self, n: usize) {
        self.out.drain(..n);
    }
}

/// A request refused: the status and why.
struct Refusal {
    status: u16,
    why: String,
}

impl Refusal {
    fn new(status: u16, why: &str) -> Refusal {
        Refusal {
            status,
            why: why.into(),
        }
    }

    fn reason(&self) -> &'static str {
        match self.status {
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            411 => "Length Required",
            415 => "Unsupported Media Type",
            431 => "Request Header Fields Too Large",
            _ => "Not Implemented",
        }
    }
}

/// What a request's head says.
struct Request {
    body: Body,
    expect_continue: bool,
    close: bool,
}

impl Request {
    /// Reads and checks a head (request line, headers, the empty line).
    fn parse(head: &[u8]) -> Result<Request, Refusal> {
        let head = std::str::from_utf8(head)
            .map_err(|_| Refusal::new(400, "a request head that is not text"))?;
        let mut lines = head.split("\r\n");
        let mut parts = lines.next().unwrap_or("").split(' ');
        let (method, target, version) = (parts.next(), parts.next(), parts.next());
        let (Some(method), Some(target), Some(version), None) =
            (method, target, version, parts.next())
        else {
            return Err(Refusal::new(400, "not an HTTP request line"));
        };
        let close = match version {
            "HTTP/1.1" => false,
            "HTTP/1.0" => true,
            _ => return Err(Refusal::new(400, "not HTTP/1.0 or HTTP/1.1")),
        };
        let mut request = Request {
            body: Body::Trailer,
            expect_continue: false,
            close,
        };
        let (mut length, mut chunked, mut content_type) = (None, false, None);
        for line in lines.filter(|l| !l.is_empty()) {
            let Some((name, value)) = line.split_once(':') else {
                return Err(Refusal::new(400, "a header line without a colon"));
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-type" => content_type = Some(value),
                "content-length" => {
                    let n = value
                        .parse::<u64>()
                        .map_err(|_| Refusal::new(400, "a Content-Length that is not a number"))?;
                    if length.is_some_and(|l| l != n) {
                        return Err(Refusal::new(400, "two different Content-Length headers"));
                    }
                    length = Some(n);
                }
                "transfer-encoding" => {
                    if !value.eq_ignore_ascii_case("chunked") {
                        return Err(Refusal::new(501, "a transfer coding other than chunked"));
                    }
                    chunked = true;
                }
                "expect" => request.expect_continue = value.eq_ignore_ascii_case("100-continue"),
                "connection" => {
                    for token in value.split(',') {
                        match token.trim().to_ascii_lowercase().as_str() {
                            "close" => request.close = true,
                            "keep-alive" => request.close = false,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if method != "POST" {
            return Err(Refusal::new(405, "only POST /upload is served"));
        }
        if target.split('?').next() != Some("/upload") {
            return Err(Refusal::new(404, "only POST /upload is served"));
        }
        let media = content_type.map(|t| t.split(';').next().unwrap_or("").trim());
        if !media.is_some_and(|m| m.eq_ignore_ascii_case(CONTENT_TYPE)) {
            return Err(Refusal::new(
                415,
                "Content-Type: application/vnd.fdo.journal is required",
            ));
        }
        request.body = match (chunked, length) {
            (true, Some(_)) => {
                return Err(Refusal::new(
                    400,
                    "both Transfer-Encoding and Content-Length",
                ));
            }
            (true, None) => Body::ChunkSize,
            (false, Some(n)) => Body::Length(n),
            (false, None) => return Err(Refusal::new(411, "a body without a length")),
        };
        Ok(request)
    }
}

/// A chunk-size line's size (hexadecimal; extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> Result<u64, Refusal> {
    let digits = line.split(|&b| b == b';').next().unwrap_or(&[]);
    let digits = std::str::from_utf8(digits).unwrap_or("").trim();
    if digits.is_empty() || digits.len() > 15 {
        return Err(Refusal::new(
            400,
            "a chunk size that is not 1 to 15 hex digits",
        ));
    }
    u64::from_str_radix(digits, 16).map_err(|_| Refusal::new(400, "a chunk size that is not hex"))
}

/// Appends an answer.
fn respond(out: &mut Vec<u8>, status: u16, reason: &str, body: &str, close: bool) {
    let connection = if close { "Connection: close\r\n" } else { "" };
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\n{connection}\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "POST /upload HTTP/1.1\r\nHost: x\r\n\
                        Content-Type: application/vnd.fdo.journal\r\n\
                        Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";

    fn chunked(body: &[u8], piece: usize) -> Vec<u8> {
        let mut wire = HEAD.as_bytes().to_vec();
        for part in body.chunks(piece) {
            wire.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            wire.extend_from_slice(part);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        wire
    }

    fn entries(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("__CURSOR=c{i}\nMESSAGE=m{i}\n\n").into_bytes())
            .collect()
    }

    fn feed(u: &mut Upload, wire: &[u8], cut: usize) -> Result<Vec<(Vec<u8>, u32)>, String> {
        let mut got = Vec::new();
        for piece in wire.chunks(cut) {
            u.feed(piece, |e, n| got.push((e.message, n)))?;
        }
        Ok(got)
    }

    fn drain(u: &mut Upload) -> String {
        let text = String::from_utf8_lossy(u.answers()).into_owned();
        u.written(u.answers().len());
        text
    }

    #[test]
    fn a_chunked_upload_is_answered_202_only_once_every_entry_was_taken() {
        for cut in [1, 2, 5, 13, 4096] {
            let mut u = Upload::new(1024);
            let got = feed(&mut u, &chunked(&entries(3), 7), cut).unwrap();
            let messages: Vec<&[u8]> = got.iter().map(|(m, _)| &m[..]).collect();
            assert_eq!(messages, [&b"m0"[..], b"m1", b"m2"], "cut {cut}");
            assert_eq!(drain(&mut u), "HTTP/1.1 100 Continue\r\n\r\n");
            assert!(u.saturated(), "not read while the request waits");
            u.answer(got[0].1);
            u.answer(got[1].1);
            assert_eq!(drain(&mut u), "", "one entry still waits");
            u.answer(got[2].1);
            let answer = drain(&mut u);
            assert!(answer.starts_with("HTTP/1.1 202 Accepted\r\n"), "{answer}");
            assert!(
                !u.saturated() && !u.done(),
                "kept alive for the next request"
            );
        }
    }

    #[test]
    fn the_next_request_on_the_connection_is_served_too() {
        let mut u = Upload::new(1024);
        let mut body = entries(1);
        let mut wire = format!(
            "POST /upload HTTP/1.1\r\nContent-Type: application/vnd.fdo.journal\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        wire.append(&mut body);
        let got = feed(&mut u, &wire, 3).unwrap();
        u.answer(got[0].1);
        assert!(drain(&mut u).starts_with("HTTP/1.1 202"));
        let got = feed(&mut u, &chunked(&entries(2), 100), 1000).unwrap();
        assert_eq!(got.len(), 2);
        u.answer(1);
        u.answer(2);
        assert!(drain(&mut u).contains("202 Accepted"));
    }

    #[test]
    fn what_journal_remote_refuses_is_refused_with_its_status_and_the_session_ends() {
        for (wire, status) in [
            ("GET / HTTP/1.1\r\n\r\n", "405"),
            (
                "POST /other HTTP/1.1\r\nContent-Type: application/vnd.fdo.journal\r\n\
                 Content-Length: 0\r\n\r\n",
                "404",
            ),
            (
                "POST /upload HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
                "415",
            ),
            (
                "POST /upload HTTP/1.1\r\nContent-Type: application/vnd.fdo.journal\r\n\r\n",
                "411",
            ),
            (
                "POST /upload HTTP/1.1\r\nContent-Type: application/vnd.fdo.journal\r\n\
                 Transfer-Encoding: gzip\r\n\r\n",
                "501",
            ),
            ("\u{1}\u{2}garbage\r\n\r\n", "400"),
        ] {
            let mut u = Upload::new(1024);
            let err = feed(&mut u, wire.as_bytes(), 4).expect_err(wire);
            let answer = drain(&mut u);
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status} ")),
                "{wire:?}: {answer}"
            );
            assert!(answer.contains("Connection: close"), "{answer}");
            assert!(u.done(), "{err}");
        }
        let mut u = Upload::new(1024);
        let huge = format!("POST /upload HTTP/1.1\r\nX: {}\r\n", "a".repeat(HEAD_MAX));
        feed(&mut u, huge.as_bytes(), 100).unwrap_err();
        assert!(drain(&mut u).starts_with("HTTP/1.1 431 "));
    }

    #[test]
    fn damage_in_the_body_gives_400_after_the_entries_before_it() {
        let mut body = entries(2);
        body.extend_from_slice(b"BLOB\n\xff\xff\xff\xff\xff\xff\xff\xff");
        let mut u = Upload::new(1024);
        let mut got = Vec::new();
        let err = u
            .feed(&chunked(&body, 1000), |e, n| got.push((e.message, n)))
            .unwrap_err();
        assert!(err.contains("Journal Export Format"), "{err}");
        assert_eq!(got.len(), 2, "the entries before the damage are taken");
        assert!(drain(&mut u).contains("HTTP/1.1 400 "));
        // A body that ends inside an entry.
        let mut u = Upload::new(1024);
        let err = feed(&mut u, &chunked(b"MESSAGE=cut\n", 100), 1000).unwrap_err();
        assert!(err.contains("inside an entry"), "{err}");
    }

    #[test]
    fn hostile_chunk_sizes_and_lines_are_refused() {
        for bad in ["zz\r\n", "fffffffffffffffff\r\n", &"1".repeat(2000)] {
            let mut wire = HEAD.as_bytes().to_vec();
            wire.extend_from_slice(bad.as_bytes());
            let mut u = Upload::new(1024);
            assert!(feed(&mut u, &wire, 50).is_err(), "{bad:.20}");
            assert!(drain(&mut u).contains("400 Bad Request"));
        }
    }

    #[test]
    fn a_stop_answers_503_mid_request_and_closes_an_idle_connection_quietly() {
        let mut u = Upload::new(1024);
        let got = feed(&mut u, &chunked(&entries(1), 100), 1000).unwrap();
        assert_eq!(got.len(), 1);
        drain(&mut u);
        u.server_close();
        assert!(drain(&mut u).starts_with("HTTP/1.1 503 "));
        assert!(u.done());
        let mut u = Upload::new(1024);
        u.server_close();
        assert_eq!(drain(&mut u), "");
        assert!(u.done());
    }

    #[test]
    fn a_pipelined_request_is_refused() {
        let mut wire = chunked(&entries(1), 100);
        wire.extend_from_slice(HEAD.as_bytes());
        let mut u = Upload::new(1024);
        let err = feed(&mut u, &wire, wire.len()).unwrap_err();
        assert!(err.contains("before the answer"), "{err}");
    }
}
