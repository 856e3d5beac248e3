//! RELP, the Reliable Event Logging Protocol, as librelp speaks it: frames
//! `TXNR SP COMMAND SP DATALEN [SP DATA] LF`, both ways.
//!
//! A client opens a session with `open` (offers such as `relp_version=0`, `commands=syslog`),
//! sends each message as a `syslog` command with the next transaction number, and the server
//! answers each with `rsp` and `200 OK` once it took the message, in any order (librelp's
//! client finds the transaction by its number). Transaction numbers start at 1 on every
//! connection and follow each other exactly (librelp's server refuses a gap); they have at most
//! nine digits, so a client reopens its session before it runs out. `close` ends a session (the
//! server answers, then hangs up); `serverclose` (transaction 0) says the server is going away.
//!
//! Pure: encoding, [`Reader`], an incremental parser of frames for both sides, and
//! [`server::Session`], the server's side of one connection. The client is the daemon's
//! `outputs::forward`; the server's socket is read by its `inputs::stream`.

pub mod server;

use std::io::Write;

/// The last transaction number a session uses before it is closed and opened again.
pub const LAST_TXNR: u32 = 999_999_000;
/// The longest header: nine digits, a 32-letter command, nine digits, two spaces.
const MAX_HEADER: usize = 9 + 1 + 32 + 1 + 9;

/// Appends a frame.
pub fn frame(out: &mut Vec<u8>, txnr: u32, command: &str, data: &[u8]) {
    let _ = write!(out, "{txnr} {command} {}", data.len());
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
}

/// What we offer, as a client in `open` and as a server in its answer.
pub fn offers() -> String {
    format!(
        "relp_version=0\nrelp_software=logger,{},https://example.invalid/logger\ncommands=syslog",
        env!("CARGO_PKG_VERSION")
    )
}

/// One frame as read.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Its transaction number.
    pub txnr: u32,
    /// The command: `open`, `syslog`, `close`, `rsp`, `serverclose`, ...
    pub command: &'a str,
    /// The data, at most the reader's limit.
    pub data: &'a [u8],
    /// The data was longer than the limit; the rest was read and dropped.
    pub truncated: bool,
}

/// What was read does not follow the protocol: the session cannot go on.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

enum State {
    /// Reading `TXNR SP COMMAND SP DATALEN`: the spaces seen so far.
    Header { spaces: u8 },
    /// Reading DATALEN bytes of data (`left` still to come), keeping at most the limit.
    Data { left: usize, truncated: bool },
    /// The LF that ends a frame with data.
    Trailer { truncated: bool },
}

/// Parses frames from the bytes of a connection, as they come. Memory: the header, and the
/// data of one frame up to the limit (larger data is truncated, as librelp's servers do).
pub struct Reader {
    max_data: usize,
    state: State,
    head: Vec<u8>,
    /// Of the frame whose data is being read: its transaction number, command (a range of
    /// `head`) and kept data.
    txnr: u32,
    command: std::ops::Range<usize>,
    data: Vec<u8>,
    /// Data longer than the limit ends the session instead of being truncated.
    refuse_oversized: bool,
}

impl Reader {
    /// A reader keeping at most `max_data` bytes of a frame's data.
    pub fn new(max_data: usize) -> Reader {
        Reader {
            max_data,
            state: State::Header { spaces: 0 },
            head: Vec::with_capacity(MAX_HEADER),
            txnr: 0,
            command: 0..0,
            data: Vec::new(),
            refuse_oversized: false,
        }
    }

    /// A client's reader of replies: a reply's header that announces more than [`MAX_REPLY`]
    /// ends the session at once. A server sends nothing that long, and reading it to the end
    /// would let a hostile one stream a gigabyte per connection at line speed.
    pub fn for_replies() -> Reader {
        Reader {
            refuse_oversized: true,
            ..Reader::new(MAX_REPLY)
        }
    }

    /// Changes the limit for frames that start from now.
    pub fn set_max(&mut self, max_data: usize) {
        self.max_data = max_data;
    }

    /// True while a frame is partly read.
    pub fn in_frame(&self) -> bool {
        !matches!(self.state, State::Header { spaces: 0 }) || !self.head.is_empty()
    }

    /// Reads `bytes`, handing each complete frame to `emit`. An error leaves the reader
    /// unusable (the connection must end).
    pub fn feed(
        &mut self,
        mut bytes: &[u8],
        mut emit: impl FnMut(Frame<'_>),
    ) -> Result<(), Malformed> {
        while !bytes.is_empty() {
            match self.state {
                State::Header { spaces } => {
                    let b = bytes[0];
                    bytes = &bytes[1..];
                    let ends = b == b'\n' || (b == b' ' && spaces == 2);
                    if !ends {
                        if self.head.len() >= MAX_HEADER {
                            return Err(malformed("header too long"));
                        }
                        self.head.push(b);
                        self.state = State::Header {
                            spaces: spaces + u8::from(b == b' '),
                        };
                        continue;
                    }
                    let len = self.header()?;
                    if self.refuse_oversized && len > self.max_data {
                        return Err(malformed(&format!(
                            "{len} bytes announced, more than the {} a reply may have",
                            self.max_data
                        )));
                    }
                    if b == b'\n' {
                        if len != 0 {
                            return Err(malformed("data missing"));
                        }
                        self.emit(false, &mut emit);
                        continue;
                    }
                    if len == 0 {
                        // `TXNR CMD 0 ` then LF: tolerated.
                        self.state = State::Trailer { truncated: false };
                        continue;
                    }
                    // The whole frame is here and fits: no copy.
                    if len <= self.max_data && bytes.len() > len && self.data.is_empty() {
                        if bytes[len] != b'\n' {
                            return Err(malformed("no LF after the data"));
                        }
                        emit(Frame {
                            txnr: self.txnr,
                            command: self.command_str(),
                            data: &bytes[..len],
                            truncated: false,
                        });
                        self.reset();
                        bytes = &bytes[len + 1..];
                        continue;
                    }
                    self.state = State::Data {
                        left: len,
                        truncated: len > self.max_data,
                    };
                }
                State::Data { left, truncated } => {
                    let n = left.min(bytes.len());
                    let room = self.max_data.saturating_sub(self.data.len());
                    self.data.extend_from_slice(&bytes[..n.min(room)]);
                    bytes = &bytes[n..];
                    self.state = if left == n {
                        State::Trailer { truncated }
                    } else {
                        State::Data {
                            left: left - n,
                            truncated,
                        }
                    };
                }
                State::Trailer { truncated } => {
                    if bytes[0] != b'\n' {
                        return Err(malformed("no LF after the data"));
                    }
                    bytes = &bytes[1..];
                    self.emit(truncated, &mut emit);
                }
            }
        }
        Ok(())
    }

    /// Parses the header read into `head`; returns DATALEN.
    fn header(&mut self) -> Result<usize, Malformed> {
        let head = &self.head;
        let mut fields = head.splitn(3, |&b| b == b' ');
        let (Some(txnr), Some(command), Some(len)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(malformed("incomplete header"));
        };
        self.txnr = number(txnr).ok_or_else(|| malformed("transaction number"))?;
        if command.is_empty() || command.len() > 32 || !command.iter().all(u8::is_ascii_alphabetic)
        {
            return Err(malformed("command"));
        }
        let start = txnr.len() + 1;
        self.command = start..start + command.len();
        Ok(number(len).ok_or_else(|| malformed("data length"))? as usize)
    }

    fn command_str(&self) -> &str {
        // Checked to be ASCII letters by `header`.
        std::str::from_utf8(&self.head[self.command.clone()]).unwrap_or("")
    }

    fn emit(&mut self, truncated: bool, emit: &mut impl FnMut(Frame<'_>)) {
        emit(Frame {
            txnr: self.txnr,
            command: self.command_str(),
            data: &self.data,
            truncated,
        });
        self.reset();
    }

    fn reset(&mut self) {
        self.head.clear();
        self.data.clear();
        if self.data.capacity() > 64 * 1024 {
            // One large frame does not hold its buffer for the life of the connection.
            self.data = Vec::new();
        }
        self.state = State::Header { spaces: 0 };
    }
}

fn malformed(why: &str) -> Malformed {
    Malformed(format!("malformed RELP frame: {why}"))
}

fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A server's frame, as a client reads it.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// `rsp` to a transaction.
    Response {
        /// The transaction answered.
        txnr: u32,
        /// Its status is 200 (librelp takes nothing else as success).
        ok: bool,
        /// The status and whatever follows.
        text: String,
    },
    /// The server closes the session.
    ServerClose,
}

impl Reply {
    /// What a frame from the server says; anything but `rsp` and `serverclose` is an error.
    pub fn of(frame: &Frame<'_>) -> Result<Reply, Malformed> {
        match frame.command {
            "rsp" if !frame.truncated => {
                let text = String::from_utf8_lossy(frame.data).into_owned();
                Ok(Reply::Response {
                    txnr: frame.txnr,
                    ok: text.starts_with("200"),
                    text,
                })
            }
            "serverclose" => Ok(Reply::ServerClose),
            other => Err(malformed(&format!("unexpected command '{other}'"))),
        }
    }
}

/// The most a client reads of one reply (an `open` answer with its offers).
pub const MAX_REPLY: usize = 64 * 1024;

/// Parses `bytes` as replies into `out`; stops at the first error.
pub fn replies(reader: &mut Reader, bytes: &[u8], out: &mut Vec<Reply>) -> Result<(), Malformed> {
    let mut bad = None;
    reader.feed(bytes, |frame| {
        if bad.is_none() {
            match Reply::of(&frame) {
                Ok(r) => out.push(r),
                Err(e) => bad = Some(e),
            }
        }
    })?;
    bad.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame as owned parts: transaction, command, data, truncated.
    type Owned = (u32, String, Vec<u8>, bool);

    fn frames(reader: &mut Reader, wire: &[u8]) -> Result<Vec<Owned>, Malformed> {
        let mut got = Vec::new();
        reader.feed(wire, |f| {
            got.push((f.txnr, f.command.to_owned(), f.data.to_vec(), f.truncated))
        })?;
        Ok(got)
    }

    #[test]
    fn frames_as_librelp_does() {
        let mut out = Vec::new();
        frame(&mut out, 1, "open", b"relp_version=0");
        frame(&mut out, 2, "close", b"");
        assert_eq!(out, b"1 open 14 relp_version=0\n2 close 0\n");
    }

    #[test]
    fn reads_frames_split_anywhere() {
        let offers = "200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog";
        let wire = format!(
            "1 rsp {} {offers}\n2 rsp 6 200 OK\n3 rsp 0\n0 serverclose 0\n4 syslog 5 hello\n",
            offers.len()
        );
        let wire = wire.as_bytes();
        let whole = frames(&mut Reader::new(1024), wire).unwrap();
        assert_eq!(whole.len(), 5);
        assert_eq!(whole[4], (4, "syslog".into(), b"hello".to_vec(), false));
        for split in 0..wire.len() {
            let mut r = Reader::new(1024);
            let mut got = frames(&mut r, &wire[..split]).unwrap();
            got.extend(frames(&mut r, &wire[split..]).unwrap());
            assert_eq!(got, whole, "split at {split}");
            assert!(!r.in_frame());
        }
        // Byte by byte.
        let mut r = Reader::new(1024);
        let mut got = Vec::new();
        for b in wire {
            got.extend(frames(&mut r, std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn truncates_data_over_the_limit_and_goes_on() {
        let mut wire = Vec::new();
        frame(&mut wire, 7, "syslog", &[b'a'; 100]);
        frame(&mut wire, 8, "syslog", b"next");
        for split in [0, 5, 20, 60, wire.len()] {
            let mut r = Reader::new(10);
            let mut got = frames(&mut r, &wire[..split]).unwrap();
            got.extend(frames(&mut r, &wire[split..]).unwrap());
            assert_eq!(
                got,
                vec![
                    (7, "syslog".into(), vec![b'a'; 10], true),
                    (8, "syslog".into(), b"next".to_vec(), false)
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn a_reply_announcing_more_than_a_reply_may_have_is_refused_at_its_header() {
        let mut out = Vec::new();
        let e = replies(&mut Reader::for_replies(), b"2 rsp 999999999 ", &mut out).unwrap_err();
        assert!(e.0.contains("999999999 bytes announced"), "{}", e.0);
        // One at the limit is read.
        let mut wire = Vec::new();
        frame(&mut wire, 2, "rsp", &[b'x'; MAX_REPLY]);
        replies(&mut Reader::for_replies(), &wire, &mut out).unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn replies_are_told_apart() {
        let mut r = Reader::new(MAX_REPLY);
        let mut out = Vec::new();
        replies(
            &mut r,
            b"2 rsp 6 200 OK\n3 rsp 20 500 command disabled\n0 serverclose 0\n",
            &mut out,
        )
        .unwrap();
        assert!(matches!(
            out[0],
            Reply::Response {
                txnr: 2,
                ok: true,
                ..
            }
        ));
        assert!(matches!(
            out[1],
            Reply::Response {
                txnr: 3,
                ok: false,
                ..
            }
        ));
        assert_eq!(out[2], Reply::ServerClose);
        assert!(replies(&mut Reader::new(MAX_REPLY), b"1 syslog 2 hi\n", &mut out).is_err());
    }

    #[test]
    fn refuses_what_is_not_relp() {
        for wire in [
            &b"HTTP/1.1 400 Bad\r\n"[..],
            b"1 rsp 6 200 OKX",
            b"1 r$p 0\n",
            b"1 rsp 5\n",
            b"x rsp 0\n",
            b"1234567890 rsp 0\n",
        ] {
            assert!(
                frames(&mut Reader::new(1024), wire).is_err(),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        assert!(
            frames(&mut Reader::new(1024), &[b'1'; 100]).is_err(),
            "an endless header is refused"
        );
    }
}
