//! The server's side of a RELP session on one connection (the daemon's `relp://` and
//! `relp+tls://` inputs): the commands the client sends and the answers it is owed, as
//! librelp's server gives them. Pure: the daemon reads and writes the socket.
//!
//! `open` is answered at once with our offers; `syslog` before `open` ends the session. Each
//! `syslog` command's message goes to the input's batch with its transaction number, and its
//! `rsp 200 OK` is written only once every output took the message (`receipt`); so a client's
//! unacknowledged window is exactly what the outputs have not taken, and it sends that again
//! after a reconnect. `close` is answered once every message before it was, and then the
//! connection ends. A stopping input answers what its outputs took in time, then says
//! `serverclose`.
//!
//! What one connection holds is bounded: data up to max-message-size (longer is truncated, as
//! librelp does, and counted), and at most [`MAX_UNANSWERED`] transactions waiting for their
//! answer (librelp's window is 128): past that the connection is not read until answers go out,
//! and a client that does not read its answers stops being read once [`MAX_PENDING_ANSWERS`]
//! bytes of them wait.

use crate::relp::{self, Malformed, Reader};

/// Transactions waiting for their answer before the connection is no longer read.
pub const MAX_UNANSWERED: usize = 1024;
/// Answers waiting to be written before the connection is no longer read.
pub const MAX_PENDING_ANSWERS: usize = 64 * 1024;

/// The session's state besides its reader.
#[derive(Default)]
struct State {
    open: bool,
    /// Answers not yet written.
    out: Vec<u8>,
    /// `syslog` transactions handed on and not yet answered.
    unanswered: usize,
    /// The transaction of a `close` waiting for the answers before it.
    closing: Option<u32>,
    /// Closed (answered `close`, or `serverclose` sent): the connection ends once `out` is
    /// written, and nothing more is read.
    ended: bool,
    /// Why the session cannot go on.
    error: Option<String>,
    /// The transaction number of the last command (0 before the first).
    last_txnr: u32,
}

/// The transaction number due after `txnr`: 1 first, then each in turn, from 999,999,999 back
/// to 1 (librelp's wrap).
fn next_txnr(txnr: u32) -> u32 {
    if txnr >= 999_999_999 { 1 } else { txnr + 1 }
}

/// One connection's RELP session.
pub struct Session {
    reader: Reader,
    state: State,
}

impl Session {
    /// A session whose messages are cut at `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Session {
        Session {
            reader: Reader::new(max_message_size),
            state: State::default(),
        }
    }

    /// Applies a reloaded max-message-size to frames that start from now.
    pub fn set_max(&mut self, max_message_size: usize) {
        self.reader.set_max(max_message_size);
    }

    /// True while a frame is partly read (frame-timeout runs).
    pub fn in_frame(&self) -> bool {
        self.reader.in_frame()
    }

    /// Takes what the client sent: each `syslog` message goes to `message` with its data,
    /// whether it was truncated, and its transaction number. An error says why the session
    /// must end (the connection is closed; nothing unanswered was taken for good).
    pub fn feed(
        &mut self,
        bytes: &[u8],
        mut message: impl FnMut(&[u8], bool, u32),
    ) -> Result<(), String> {
        if self.state.ended || self.state.closing.is_some() || self.state.error.is_some() {
            // Nothing after `close` counts.
            return Ok(());
        }
        let state = &mut self.state;
        let read = self.reader.feed(bytes, |frame| {
            if state.error.is_some() || state.closing.is_some() {
                return;
            }
            // librelp's server takes transactions in sequence only: a repeated, skipped
            // or zero number is a broken client (or one replaying a capture), not a
            // message to take twice.
            let due = next_txnr(state.last_txnr);
            if frame.txnr != due {
                state.error = Some(format!(
                    "transaction number {} where {due} was due",
                    frame.txnr
                ));
                return;
            }
            state.last_txnr = frame.txnr;
            match frame.command {
                "syslog" if state.open => {
                    state.unanswered += 1;
                    message(frame.data, frame.truncated, frame.txnr);
                }
                "syslog" => state.error = Some("a syslog command before open".into()),
                "open" if state.open => relp::frame(
                    &mut state.out,
                    frame.txnr,
                    "rsp",
                    b"200 connection already open - ignored",
                ),
                "open" => {
                    state.open = true;
                    let answer = format!("200 OK\n{}", relp::offers());
                    relp::frame(&mut state.out, frame.txnr, "rsp", answer.as_bytes());
                }
                "close" => {
                    state.closing = Some(frame.txnr);
                    state.close_if_answered();
                }
                _ => relp::frame(
                    &mut state.out,
                    frame.txnr,
                    "rsp",
                    b"500 command not supported",
                ),
            }
        });
        if let Err(Malformed(why)) = read {
            // The frames after a malformed one cannot be found: the session ends here too.
            self.state.ended = true;
            return Err(why);
        }
        match self.state.error.take() {
            Some(why) => {
                self.state.ended = true;
                Err(why)
            }
            None => Ok(()),
        }
    }

    /// Every output took the message of `txnr`: answer it.
    pub fn answer(&mut self, txnr: u32) {
        relp::frame(&mut self.state.out, txnr, "rsp", b"200 OK");
        self.state.unanswered = self.state.unanswered.saturating_sub(1);
        self.state.close_if_answered();
    }

    /// The input stops: tell the client (it sends what was not answered again, elsewhere or
    /// later).
    pub fn server_close(&mut self) {
        if !self.state.ended {
            relp::frame(&mut self.state.out, 0, "serverclose", b"");
            self.state.ended = true;
        }
    }

    /// Transactions waiting for their answer.
    pub fn unanswered(&self) -> usize {
        self.state.unanswered
    }

    /// True when the connection must not be read for now (too much unanswered, or answers
    /// the client does not read), or for good (ended, closing).
    pub fn saturated(&self) -> bool {
        let s = &self.state;
        s.unanswered >= MAX_UNANSWERED
            || s.out.len() >= MAX_PENDING_ANSWERS
            || s.ended
            || s.closing.is_some()
    }

    /// True once the session is over and every answer written: close the connection.
    pub fn done(&self) -> bool {
        self.state.ended && self.state.out.is_empty()
    }

    /// The answers not yet written.
    pub fn answers(&self) -> &[u8] {
        &self.state.out
    }

    /// `n` bytes of the answers were written.
    pub fn written(&mut self, n: usize) {
        self.state.out.drain(..n);
        if self.state.out.is_empty() && self.state.out.capacity() > MAX_PENDING_ANSWERS {
            self.state.out = Vec::new();
        }
    }
}

impl State {
    fn close_if_answered(&mut self) {
        if let Some(txnr) = self.closing
            && self.unanswered == 0
        {
            relp::frame(&mut self.out, txnr, "rsp", b"");
            self.closing = None;
            self.ended = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(s: &mut Session, wire: &[u8]) -> Result<Vec<(Vec<u8>, u32)>, String> {
        let mut got = Vec::new();
        s.feed(wire, |data, _, txnr| got.push((data.to_vec(), txnr)))?;
        Ok(got)
    }

    fn drain(s: &mut Session) -> String {
        let text = String::from_utf8_lossy(s.answers()).into_owned();
        s.written(s.answers().len());
        text
    }

    #[test]
    fn answers_open_at_once_and_messages_when_taken() {
        let mut s = Session::new(1024);
        let mut wire = Vec::new();
        relp::frame(
            &mut wire,
            1,
            "open",
            b"relp_version=0\ncommands=syslog\nx=y",
        );
        wire.extend_from_slice(b"2 syslog 5 hello\n3 syslog 5 world\n");
        let got = take(&mut s, &wire).unwrap();
        assert_eq!(got, vec![(b"hello".to_vec(), 2), (b"world".to_vec(), 3)]);
        let open = drain(&mut s);
        assert!(open.starts_with("1 rsp "), "{open}");
        assert!(open.contains("200 OK\nrelp_version=0\n"), "{open}");
        assert!(open.contains("commands=syslog\n"), "{open}");
        assert_eq!(s.unanswered(), 2);
        s.answer(3);
        s.answer(2);
        assert_eq!(drain(&mut s), "3 rsp 6 200 OK\n2 rsp 6 200 OK\n");
        assert_eq!(s.unanswered(), 0);
    }

    #[test]
    fn close_waits_for_the_answers_before_it() {
        let mut s = Session::new(1024);
        take(&mut s, b"1 open 0\n2 syslog 1 a\n3 close 0\n4 syslog 1 b\n").unwrap();
        drain(&mut s);
        assert!(s.saturated() && !s.done(), "closing: not read, not done");
        s.answer(2);
        assert_eq!(drain(&mut s), "2 rsp 6 200 OK\n3 rsp 0\n");
        assert!(s.done());
    }

    #[test]
    fn syslog_before_open_and_garbage_end_the_session() {
        let mut s = Session::new(1024);
        assert!(take(&mut s, b"1 syslog 1 a\n").is_err());
        let mut s = Session::new(1024);
        assert!(take(&mut s, b"GET / HTTP/1.1\r\n").is_err());
    }

    #[test]
    fn nothing_is_handed_on_after_a_malformed_frame() {
        // Found by fuzz/fuzz_targets/relp_session.rs: the reader's error ended the feed but
        // not the session, so a later read handed on a frame after the garbage.
        let mut s = Session::new(1024);
        assert!(take(&mut s, b"1 open 0\n2 syslog 5 hello\nGET / HTTP/1.1\r\n").is_err());
        assert!(s.done() || s.saturated(), "the session is over");
        assert_eq!(take(&mut s, b"3 syslog 1 d\n"), Ok(vec![]));
    }

    #[test]
    fn unknown_commands_are_refused_and_the_session_goes_on() {
        let mut s = Session::new(1024);
        take(&mut s, b"1 open 0\n2 starttls 0\n").unwrap();
        assert!(drain(&mut s).ends_with("2 rsp 25 500 command not supported\n"));
        assert_eq!(take(&mut s, b"3 syslog 1 a\n").unwrap().len(), 1);
    }

    #[test]
    fn transactions_out_of_sequence_end_the_session_after_what_came_before() {
        for (wire, taken) in [
            // The same transaction three times: one message, not three.
            (
                &b"1 open 0\n2 syslog 1 a\n2 syslog 1 a\n2 syslog 1 a\n"[..],
                1,
            ),
            (b"1 open 0\n3 syslog 1 a\n", 0),
            (b"1 open 0\n2 syslog 1 a\n4 syslog 1 b\n", 1),
            (b"1 open 0\n0 syslog 1 a\n", 0),
            (b"5 open 0\n", 0),
        ] {
            let mut s = Session::new(1024);
            let mut got = Vec::new();
            let fed = s.feed(wire, |data, _, txnr| got.push((data.to_vec(), txnr)));
            let why = fed.expect_err("out of sequence");
            assert!(why.contains("was due"), "{why}");
            assert_eq!(got.len(), taken, "{}", String::from_utf8_lossy(wire));
        }
    }

    #[test]
    fn transaction_numbers_wrap_as_librelp_wraps_them() {
        assert_eq!(next_txnr(0), 1);
        assert_eq!(next_txnr(41), 42);
        assert_eq!(next_txnr(999_999_999), 1);
    }

    #[test]
    fn a_stop_says_serverclose() {
        let mut s = Session::new(1024);
        take(&mut s, b"1 open 0\n").unwrap();
        drain(&mut s);
        s.server_close();
        assert_eq!(drain(&mut s), "0 serverclose 0\n");
        assert!(s.done());
    }

    #[test]
    fn too_many_unanswered_stops_reading() {
        let mut s = Session::new(1024);
        let mut wire = b"1 open 0\n".to_vec();
        for t in 2..2 + MAX_UNANSWERED as u32 {
            relp::frame(&mut wire, t, "syslog", b"m");
        }
        take(&mut s, &wire).unwrap();
        drain(&mut s);
        assert!(s.saturated());
        s.answer(2);
        assert!(!s.saturated());
    }
}
