//! RELP, the client side, as librelp speaks it: `TXNR SP COMMAND SP DATALEN [SP DATA] LF`.
//!
//! A session opens with `open` (our offers: `relp_version=0`, `commands=syslog`), sends each
//! message as a `syslog` command with the next transaction number, and the server answers each
//! with `rsp` and `200 OK` once it took the message. Transaction numbers start at 1 on every
//! connection and must follow each other exactly (librelp's server refuses a gap); they have at
//! most nine digits, so a session is reopened before it runs out. `serverclose` (transaction 0)
//! says the server is going away. Pure: encoding and an incremental parser of what the server
//! sends.

use std::io::Write;

/// The last transaction number a session uses before it is closed and opened again.
pub const LAST_TXNR: u32 = 999_999_000;
/// What the longest response may be (an `open` answer with its offers).
const MAX_RESPONSE: usize = 64 * 1024;

/// Appends a frame.
pub fn frame(out: &mut Vec<u8>, txnr: u32, command: &str, data: &[u8]) {
    let _ = write!(out, "{txnr} {command} {}", data.len());
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
}

/// The `open` command's data: what we offer.
pub fn offers() -> Vec<u8> {
    format!(
        "relp_version=0\nrelp_software=logger,{},https://example.invalid/logger\ncommands=syslog",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

/// A frame from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// `rsp` to a transaction.
    Response {
        /// The transaction answered.
        txnr: u32,
        /// Its status is 2xx.
        ok: bool,
        /// The status and whatever follows.
        text: String,
    },
    /// The server closes the session.
    ServerClose,
}

/// What the server sent does not follow the protocol.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

/// Parses replies from the bytes read so far.
#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
}

impl Parser {
    /// Adds bytes read from the connection.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete reply, if there is one.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, Malformed> {
        let bad = |why: &str| Malformed(format!("malformed RELP reply: {why}"));
        let Some(sp1) = self.buf.iter().position(|&b| b == b' ') else {
            return self.incomplete(16);
        };
        let txnr = number(&self.buf[..sp1]).ok_or_else(|| bad("transaction number"))?;
        let rest = &self.buf[sp1 + 1..];
        let Some(sp2) = rest.iter().position(|&b| b == b' ') else {
            return self.incomplete(64);
        };
        let command = &rest[..sp2];
        if command.is_empty() || command.len() > 32 || !command.iter().all(u8::is_ascii_alphabetic)
        {
            return Err(bad("command"));
        }
        let rest = &rest[sp2 + 1..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == rest.len() {
            return self.incomplete(64);
        }
        let len = number(&rest[..digits]).ok_or_else(|| bad("data length"))? as usize;
        if len > MAX_RESPONSE {
            return Err(bad("data length"));
        }
        let after_len = &rest[digits..];
        let (data, used) = if len == 0 {
            (&after_len[..0], 0)
        } else {
            if after_len[0] != b' ' {
                return Err(bad("data"));
            }
            if after_len.len() < 1 + len {
                return Ok(None);
            }
            (&after_len[1..1 + len], 1 + len)
        };
        match after_len.get(used) {
            None => return Ok(None),
            Some(b'\n') => {}
            Some(_) => return Err(bad("trailer")),
        }
        let reply = match command {
            b"rsp" => {
                let text = String::from_utf8_lossy(data).into_owned();
                Reply::Response {
                    txnr,
                    ok: text.starts_with('2'),
                    text,
                }
            }
            b"serverclose" => Reply::ServerClose,
            other => {
                return Err(bad(&format!(
                    "unexpected command '{}'",
                    String::from_utf8_lossy(other)
                )));
            }
        };
        let consumed = self.buf.len() - after_len.len() + used + 1;
        self.buf.drain(..consumed);
        Ok(Some(reply))
    }

    fn incomplete(&self, max_header: usize) -> Result<Option<Reply>, Malformed> {
        if self.buf.len() > max_header + 16 {
            return Err(Malformed("malformed RELP reply: header too long".into()));
        }
        Ok(None)
    }

    /// Forgets a broken connection's leftovers.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_as_librelp_does() {
        let mut out = Vec::new();
        frame(&mut out, 1, "open", b"relp_version=0");
        frame(&mut out, 2, "close", b"");
        assert_eq!(out, b"1 open 14 relp_version=0\n2 close 0\n");
    }

    #[test]
    fn parses_responses_split_anywhere() {
        let offers = "200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog";
        let wire = format!(
            "1 rsp {} {offers}\n2 rsp 6 200 OK\n3 rsp 0\n0 serverclose 0\n",
            offers.len()
        );
        let wire = wire.as_bytes();
        for split in 0..wire.len() {
            let mut p = Parser::default();
            let mut got = Vec::new();
            p.feed(&wire[..split]);
            while let Some(r) = p.next_reply().unwrap() {
                got.push(r);
            }
            p.feed(&wire[split..]);
            while let Some(r) = p.next_reply().unwrap() {
                got.push(r);
            }
            assert_eq!(got.len(), 4, "split at {split}: {got:?}");
            assert!(matches!(
                got[0],
                Reply::Response {
                    txnr: 1,
                    ok: true,
                    ..
                }
            ));
            assert!(matches!(
                got[1],
                Reply::Response {
                    txnr: 2,
                    ok: true,
                    ..
                }
            ));
            assert!(matches!(
                got[2],
                Reply::Response {
                    txnr: 3,
                    ok: false,
                    ..
                }
            ));
            assert_eq!(got[3], Reply::ServerClose);
        }
    }

    #[test]
    fn refuses_what_is_not_relp() {
        for wire in [
            &b"HTTP/1.1 400 Bad\r\n"[..],
            b"1 rsp 6 200 OKX",
            b"1 r$p 0\n",
        ] {
            let mut p = Parser::default();
            p.feed(wire);
            assert!(
                p.next_reply().is_err(),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let mut p = Parser::default();
        p.feed(&[b'1'; 100]);
        assert!(p.next_reply().is_err(), "an endless header is refused");
    }
}
