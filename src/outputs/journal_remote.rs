//! The journal-remote output (`to = "journal-remote+http://HOST:PORT"`, or `+https` with the
//! output's `tls-*` keys: the server verified against `tls-ca` or a pinned fingerprint, our
//! certificate from `tls-cert`/`tls-key`, as journal-remote's `--trust` expects; the rustls
//! client of `tls://`): entries uploaded to systemd-journal-remote in the Journal Export Format
//! (`formats::export`), as systemd-journal-upload does, over HTTP/1.1 with one connection kept
//! open.
//!
//! An entry leaves the backlog only once journal-remote answered 2xx for the request that
//! carried it; a broken connection, a timeout or any other answer keeps every entry and the
//! worker tries again with its backoff (so a collector that is down or restarting costs a
//! resend of at most one request, never a loss). A request carries up to [`BATCH_BYTES`] of
//! entries. journal-remote refuses a request whose body it cannot parse with 400 ("Bad
//! message", which stops systemd-journal-upload for good, systemd #21407): then the entries
//! go one per request; one refused alone is bad only once journal-remote has shown it takes
//! entries, by taking one of the next [`PROBE`] sent alone: the run refused before that one is
//! rejected (counted, logged) and the rest delivered, so consecutive bad entries never stall
//! the output. A collector that takes none of them is an error that keeps every entry, not a
//! reason to reject anything. An answer longer than [`MAX_RESPONSE`] is refused at its header.

use std::io::{self, Read, Write};
use std::time::Duration;

use super::connect::{Conn, TlsClient};
use super::formats::export;
use super::records::Records;
use super::{Output, WriteOut};
use crate::config::{JournalRemote, OutputSpec};
use syslog::message::Message;

/// After an entry is refused alone, how many of the next are sent alone to find one
/// journal-remote takes (a run of bad entries longer than this, or a collector that takes
/// nothing, is an error that keeps every entry).
pub const PROBE: usize = 16;
/// What one request carries at most (journal-remote's own limit on an entry is far larger).
pub const BATCH_BYTES: usize = 1 << 20;
/// The longest answer taken: journal-remote's are a few bytes.
pub const MAX_RESPONSE: usize = 64 * 1024;
/// How long a connect, a write or an answer may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The output.
pub struct JournalRemoteOutput {
    target: JournalRemote,
    local_host: String,
    entries: Records,
    conn: Option<Conn>,
    /// For https: the TLS client and the name the server's certificate must carry.
    tls: Option<TlsClient>,
    /// After a 400 to a request of several entries: one entry per request.
    single: bool,
    request: Vec<u8>,
}

impl JournalRemoteOutput {
    /// The output `spec` asks for, uploading to `target`: for https its TLS files are read
    /// now (a bad one fails the start or the reload). It connects at its first write-out.
    pub fn open(target: JournalRemote, spec: &OutputSpec) -> io::Result<JournalRemoteOutput> {
        let tls = match target.tls {
            false => None,
            true => {
                let config =
                    crate::tls::client::load(&spec.forward.tls).map_err(io::Error::other)?;
                let name = spec
                    .forward
                    .tls
                    .name
                    .clone()
                    .unwrap_or_else(|| target.host.clone());
                Some((config, name))
            }
        };
        let mut output = JournalRemoteOutput::new(target);
        output.tls = tls;
        Ok(output)
    }

    /// An output uploading over plain HTTP to `target`; it connects at its first write-out.
    pub fn new(target: JournalRemote) -> JournalRemoteOutput {
        JournalRemoteOutput {
            target,
            local_host: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "localhost".into()),
            entries: Records::new(),
            conn: None,
            tls: None,
            single: false,
            request: Vec::new(),
        }
    }

    /// Sends `n` entries from the `start`th in one request; journal-remote's status.
    fn post(&mut self, start: usize, n: usize) -> io::Result<u16> {
        if self.conn.is_none() {
            let (host, port) = (self.target.host.as_str(), self.target.port);
            self.conn = Some(Conn::open(host, port, self.tls.as_ref(), TIMEOUT)?);
        }
        let length: usize = self.entries.lens().skip(start).take(n).sum();
        self.request.clear();
        let host = &self.target.host;
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        write!(
            self.request,
            "POST /upload HTTP/1.1\r\nHost: {host}:{}\r\n\
             Content-Type: application/vnd.fdo.journal\r\nContent-Length: {length}\r\n\r\n",
            self.target.port
        )?;
        self.entries.copy_out(start, n, &mut self.request);
        let conn = self.conn.as_mut().expect("connected above");
        conn.write_all(&self.request)?;
        conn.flush()?;
        let (status, keep) = read_response(conn)?;
        if !keep {
            self.conn = None;
        }
        Ok(status)
    }
}

impl JournalRemoteOutput {
    /// The first entry was refused alone: sends the next ones alone, up to [`PROBE`], until
    /// journal-remote takes one. Some(k): it took the `k`th, so it works and the `k` before it,
    /// each refused alone, are bad. None: it refused them all, which says more about the
    /// collector than about the entries.
    fn find_bad_run(&mut self) -> io::Result<Option<usize>> {
        for k in 1..self.entries.len().min(1 + PROBE) {
            match self.post(k, 1)? {
                status if (200..300).contains(&status) => return Ok(Some(k)),
                400 => {}
                status => {
                    return Err(io::Error::other(format!(
                        "journal-remote answered HTTP {status}"
                    )));
                }
            }
        }
        Ok(None)
    }

    /// Takes `n` entries off the front of the backlog; the bytes they held.
    fn pop(&mut self, n: usize) -> usize {
        self.entries.pop_front(n)
    }
}

impl Output for JournalRemoteOutput {
    fn describe(&self) -> String {
        self.target.to_string()
    }

    fn accept(&mut self, msg: &Message) {
        let host = &self.local_host;
        // The fields' names and the header fields come on top of the message's weight.
        let expected = msg.weight() + 512;
        self.entries
            .push_with(expected, |data| export::encode(data, msg, host));
    }

    fn encode_item(&self, msg: &Message, item: &mut Vec<u8>) {
        export::encode(item, msg, &self.local_host);
    }

    fn accept_item(&mut self, item: &[u8]) {
        self.entries.push(item);
    }

    fn backlog_bytes(&self) -> usize {
        self.entries.bytes()
    }

    fn backlog_messages(&self) -> usize {
        self.entries.len()
    }

    fn write_out(&mut self) -> WriteOut {
        let mut out = WriteOut::default();
        while !self.entries.is_empty() {
            let n = if self.single {
                1
            } else {
                let mut size = 0;
                let fit = self
                    .entries
                    .lens()
                    .take_while(|len| {
                        size += len;
                        size <= BATCH_BYTES
                    })
                    .count();
                fit.max(1)
            };
            match self.post(0, n) {
                Ok(status) if (200..300).contains(&status) => {
                    self.pop(n);
                    out.written += n as u64;
                }
                Ok(400) if n > 1 => self.single = true,
                Ok(400) => match self.find_bad_run() {
                    Ok(Some(k)) => {
                        let bad = self.pop(k);
                        log::error!(
                            "{} refused {k} entries ({bad} bytes) as bad messages, each alone, \
                             and took the next: they are left out and the rest is sent",
                            self.describe()
                        );
                        out.rejected += k as u64;
                        self.pop(1);
                        out.written += 1;
                        self.single = false;
                    }
                    Ok(None) => {
                        out.error = Some(io::Error::other(
                            "journal-remote refused every entry sent alone: it takes nothing \
                             now (nothing is left out)",
                        ));
                        break;
                    }
                    Err(e) => {
                        self.conn = None;
                        out.error = Some(e);
                        break;
                    }
                },
                Ok(status) => {
                    self.conn = None;
                    out.error = Some(io::Error::other(format!(
                        "journal-remote answered HTTP {status}"
                    )));
                    break;
                }
                Err(e) => {
                    self.conn = None;
                    out.error = Some(e);
                    break;
                }
            }
        }
        out
    }

    fn finish(&mut self) {
        self.conn = None;
    }
}

/// Reads one HTTP/1.1 response: its status, and whether the connection stays open. Its body is
/// read (by its Content-Length, or to the end) and dropped.
fn read_response(conn: &mut impl Read) -> io::Result<(u16, bool)> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_RESPONSE {
            return Err(bad("an answer header over 64 KiB"));
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "journal-remote closed the connection without an answer",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("an answer not in ASCII"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.split(' ');
    let version = words.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(bad("an answer that is not HTTP/1.x"));
    }
    let status: u16 = words
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("an answer without a status"))?;
    let mut length = None;
    let mut keep = version == "HTTP/1.1";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| bad("a bad Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("connection") {
            keep = !value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Never journal-remote's way: read to the end and start afresh.
            keep = false;
        }
    }
    let mut body = buf.len() - head_end;
    match length {
        Some(length) if length > MAX_RESPONSE => return Err(bad("an answer over 64 KiB")),
        Some(length) => {
            while body < length {
                let n = conn.read(&mut chunk)?;
                if n == 0 {
                    return Err(bad("an answer cut short"));
                }
                body += n;
            }
        }
        None => {
            keep = false;
            loop {
                let n = conn.read(&mut chunk)?;
                body += n;
                if n == 0 {
                    break;
                }
                if body > MAX_RESPONSE {
                    return Err(bad("an answer over 64 KiB"));
                }
            }
        }
    }
    Ok((status, keep))
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("journal-remote sent {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that answers each request with `answers`, in turn, and counts the entries it got.
    fn server(answers: Vec<&'static str>) -> (u16, std::thread::JoinHandle<Vec<usize>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            let mut got = Vec::new();
            let (mut conn, _) = listener.accept().unwrap();
            for answer in answers {
                let mut buf = Vec::new();
                let mut byte = [0u8; 1];
                while !buf.ends_with(b"\r\n\r\n") {
                    conn.read_exact(&mut byte).unwrap();
                    buf.push(byte[0]);
                }
                let head = String::from_utf8(buf).unwrap();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                let mut body = vec![0; length];
                conn.read_exact(&mut body).unwrap();
                got.push(body.windows(2).filter(|w| w == b"\n\n").count());
                conn.write_all(answer.as_bytes()).unwrap();
            }
            got
        });
        (port, handle)
    }

    fn output(port: u16, n: usize) -> JournalRemoteOutput {
        let mut o = JournalRemoteOutput::new(JournalRemote {
            host: "127.0.0.1".into(),
            port,
            tls: false,
        });
        for i in 0..n {
            let msg = syslog::parse::parse(
                format!("<13>1 - h app - - - entry {i}").as_bytes(),
                syslog::message::Origin::new(syslog::message::Transport::Tcp),
                std::time::SystemTime::now(),
                false,
            );
            o.accept(&msg);
        }
        o
    }

    const OK: &str = "HTTP/1.1 202 Accepted\r\nContent-Length: 3\r\n\r\nOK\n";
    const BAD: &str = "HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\n\r\nBad message\n";

    #[test]
    fn entries_leave_only_when_journal_remote_accepted_them() {
        let (port, server) = server(vec![OK]);
        let mut o = output(port, 5);
        let out = o.write_out();
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(
            (out.written, o.backlog_messages(), o.backlog_bytes()),
            (5, 0, 0)
        );
        assert_eq!(server.join().unwrap(), [5], "one request of five entries");
    }

    #[test]
    fn a_bad_message_is_found_alone_and_only_it_is_left_out() {
        // The batch is refused; then one by one: the second entry is the bad one.
        let (port, server) = server(vec![BAD, OK, BAD, OK]);
        let mut o = output(port, 3);
        let out = o.write_out();
        assert_eq!((out.written, out.rejected), (2, 1), "{:?}", out.error);
        assert_eq!(o.backlog_messages(), 0);
        assert_eq!(server.join().unwrap(), [3, 1, 1, 1]);
    }

    #[test]
    fn a_collector_that_refuses_everything_is_an_error_not_a_loss() {
        let (port, server) = server(vec![BAD, BAD, BAD, BAD]);
        let mut o = output(port, 3);
        let out = o.write_out();
        // The batch, then each entry alone: none taken, so none is called bad.
        assert_eq!((out.written, out.rejected), (0, 0));
        assert!(out.error.is_some());
        assert_eq!(o.backlog_messages(), 3, "kept for the next attempt");
        assert_eq!(server.join().unwrap(), [3, 1, 1, 1]);
    }

    #[test]
    fn a_run_of_bad_entries_is_left_out_and_the_output_goes_on() {
        // Entries 1 and 2 are bad: found alone, proven bad by entry 3 being taken.
        let (port, server) = server(vec![BAD, OK, BAD, BAD, OK]);
        let mut o = output(port, 4);
        let out = o.write_out();
        assert_eq!((out.written, out.rejected), (2, 2), "{:?}", out.error);
        assert_eq!(o.backlog_messages(), 0);
        assert_eq!(server.join().unwrap(), [4, 1, 1, 1, 1]);
    }

    #[test]
    fn a_hostile_answer_is_refused_at_its_header_and_keeps_everything() {
        for answer in [
            "HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX: y\r\n",
            "SSH-2.0-OpenSSH_9.2\r\n\r\n",
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let sent = answer.to_owned();
            let server = std::thread::spawn(move || {
                let (mut conn, _) = listener.accept().unwrap();
                let mut request = [0u8; 65536];
                let _ = conn.read(&mut request);
                conn.write_all(sent.as_bytes()).unwrap();
                // Then an endless header: never a blank line.
                let junk = vec![b'x'; 16 * 1024];
                for _ in 0..8 {
                    if conn.write_all(&junk).is_err() {
                        break;
                    }
                }
            });
            let mut o = output(port, 2);
            let started = std::time::Instant::now();
            let out = o.write_out();
            assert!(out.error.is_some(), "{answer:?} taken as an answer");
            assert_eq!((out.written, o.backlog_messages()), (0, 2), "{answer:?}");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{answer:?} read for long"
            );
            drop(o);
            server.join().unwrap();
        }
    }

    #[test]
    fn a_collector_that_is_down_keeps_everything() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut o = output(port, 4);
        let out = o.write_out();
        assert!(out.error.is_some());
        assert_eq!((out.written, o.backlog_messages()), (0, 4));
    }
}
