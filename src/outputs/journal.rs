//! The journal output: one entry per relayed message over journald's native protocol.
//!
//! `encode` turns a `Message` into a native-protocol datagram (pure). `JournalWriter` sends it to
//! the journal socket; an entry too large for a datagram goes through a sealed memfd, as
//! sd_journal_send(3) does. Field names follow journald's syslog ones (SYSLOG_IDENTIFIER,
//! SYSLOG_PID, SYSLOG_FACILITY, SYSLOG_TIMESTAMP, PRIORITY, MESSAGE); what syslog carries beyond
//! those goes in `LOGGER_*` fields (see ARCHITECTURE.md), never `_*`, which journald reserves.

use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};

use super::records::Records;
use syslog::message::{Format, Message};

/// Appends one field: `KEY=value\n`, or the length-prefixed binary form when the value holds a
/// newline or is not UTF-8.
pub fn put_field(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    out.extend_from_slice(key.as_bytes());
    // ASCII (the common case) is one quick pass; UTF-8 is checked only beyond it.
    let binary = value.contains(&b'\n') || !value.is_ascii() && std::str::from_utf8(value).is_err();
    if binary {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Appends one field whose value is a number: `KEY=digits\n`, with no string made for it.
pub fn put_number(out: &mut Vec<u8>, key: &str, value: impl std::fmt::Display) {
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    let _ = write!(out, "{value}");
    out.push(b'\n');
}

/// Encodes a message as one native-protocol entry.
pub fn encode(out: &mut Vec<u8>, msg: &Message) {
    encode_fields(out, msg, Trusted::AsOrigin);
}

/// What becomes of the fields journald reserves (`_SYSTEMD_UNIT`, `_HOSTNAME`, ...) that a
/// message read from another journal carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trusted {
    /// Written as `ORIGIN_X`: journald overwrites `_X` with what it sees of us.
    AsOrigin,
    /// Written as they are: systemd-journal-remote stores an uploaded entry's fields whole.
    Kept,
}

/// The fields of `msg` as journald's native protocol and the Journal Export Format write them
/// (one `NAME=value` line each, or the length-prefixed binary form).
pub fn encode_fields(out: &mut Vec<u8>, msg: &Message, trusted: Trusted) {
    // A message read from a journal brings its own fields: those stand for themselves, and the
    // header's copies of them are not written twice.
    let own = |name: &str| msg.fields().get(name).is_some();
    put_field(out, "MESSAGE", msg.text());
    put_field(out, "PRIORITY", &[b'0' + msg.journal_priority()]);
    if !own("SYSLOG_FACILITY") {
        put_number(out, "SYSLOG_FACILITY", msg.facility);
    }
    if let Some(app) = msg.app_name().filter(|_| !own("SYSLOG_IDENTIFIER")) {
        put_field(out, "SYSLOG_IDENTIFIER", app.as_bytes());
    }
    if let Some(pid) = msg.pid().filter(|_| !own("SYSLOG_PID")) {
        put_field(out, "SYSLOG_PID", pid.as_bytes());
    }
    if let Some(ts) = msg.timestamp() {
        put_field(out, "SYSLOG_TIMESTAMP", ts.as_bytes());
    }
    if let Some(host) = msg.hostname() {
        put_field(out, "LOGGER_HOSTNAME", host.as_bytes());
    }
    if let Some(id) = msg.msgid() {
        put_field(out, "LOGGER_MSGID", id.as_bytes());
    }
    if let Some(sd) = msg.structured_data() {
        put_field(out, "LOGGER_STRUCTURED_DATA", sd.as_bytes());
    }
    put_field(
        out,
        "LOGGER_TRANSPORT",
        msg.origin.transport.name().as_bytes(),
    );
    if let Some(peer) = msg.origin.peer {
        put_field(out, "LOGGER_PEER", peer.to_string().as_bytes());
    }
    if let Some(peer) = &msg.origin.tls_peer {
        put_field(out, "LOGGER_TLS_PEER", peer.as_bytes());
    }
    if let Some(c) = msg.origin.credentials {
        put_number(out, "LOGGER_PEER_PID", c.pid);
        put_number(out, "LOGGER_PEER_UID", c.uid);
        put_number(out, "LOGGER_PEER_GID", c.gid);
    }
    for (name, value) in msg.fields() {
        // Never a name the native protocol cannot carry, and never our own origin fields: a
        // remote sender's `[fields@32473 LOGGER_TRANSPORT="unix"]` must not pass for local.
        if !syslog::message::is_field_name(name) || name.starts_with("LOGGER_") {
            continue;
        }
        match name.strip_prefix('_') {
            // Never the export format's own `__` fields (cursor, timestamps): those are ours.
            Some(rest) if rest.starts_with('_') => {}
            Some(_) if trusted == Trusted::Kept => put_field(out, name, value),
            // journald sets the trusted fields itself, for the sender it sees (us): the
            // origin's are kept as ORIGIN_SYSTEMD_UNIT, ORIGIN_HOSTNAME, ORIGIN_PID, ...
            Some(trusted) => {
                let name = format!("ORIGIN_{trusted}");
                if syslog::message::is_field_name(&name) {
                    put_field(out, &name, value);
                }
            }
            None if matches!(name, "PRIORITY" | "MESSAGE") => {}
            None => put_field(out, name, value),
        }
    }
    let format = match msg.format {
        Format::Rfc5424 => "rfc5424",
        Format::Rfc3164 => "rfc3164",
        Format::Unparsed => "unparsed",
    };
    put_field(out, "LOGGER_FORMAT", format.as_bytes());
    if msg.truncated {
        put_field(out, "LOGGER_TRUNCATED", b"1");
    }
    if msg.escaped {
        put_field(out, "LOGGER_ESCAPED", b"1");
    }
    if msg.text_was_invalid_utf8() {
        put_field(out, "LOGGER_INVALID_UTF8", b"1");
    }
}

/// A sender to the journal socket: connected once, so a send does not resolve the path again, and
/// reconnected when journald restarts (its new socket is a new inode; the old peer is gone).
/// Non-blocking: a full journal queue is the caller's to wait out (see `Sink::write_out`).
#[derive(Debug)]
pub struct JournalWriter {
    socket: UnixDatagram,
    path: PathBuf,
    addr: UnixAddr,
    connected: bool,
}

impl JournalWriter {
    /// Opens a datagram socket for `path` (which need not exist yet: journald may be restarting;
    /// sends are retried).
    pub fn open(path: &Path) -> io::Result<JournalWriter> {
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        // journald's own clients raise the send buffer so bursts do not block at once; the kernel
        // caps this at wmem_max, which is fine.
        let _ = nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::SndBuf,
            &(8 * 1024 * 1024),
        );
        let addr = UnixAddr::new(path).map_err(io::Error::from)?;
        let mut writer = JournalWriter {
            socket,
            path: path.to_owned(),
            addr,
            connected: false,
        };
        let _ = writer.connect();
        Ok(writer)
    }

    /// Waits up to `timeout` for journald's queue to have room; true once it has. The kernel
    /// wakes a connected datagram sender when its peer reads (`unix_dgram_poll`), so this
    /// returns as soon as journald takes an entry, not at the next tick of a timer.
    pub fn wait_writable(&self, timeout: Duration) -> bool {
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLOUT)];
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        matches!(poll(&mut fds, timeout), Ok(n) if n > 0)
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&mut self) -> io::Result<()> {
        self.connected = false;
        self.socket.connect(&self.path)?;
        self.connected = true;
        Ok(())
    }

    /// Sends one encoded entry. Errors mean "not delivered"; the caller keeps the entry.
    /// EAGAIN means journald's queue is full.
    pub fn send(&mut self, entry: &[u8]) -> io::Result<()> {
        if !self.connected {
            self.connect()?;
        }
        match self.send_connected(entry) {
            // journald restarted: its socket is a new one. Once, at once; later, by the retry.
            Err(e) if peer_gone(&e) => {
                self.connect()?;
                self.send_connected(entry)
            }
            other => other,
        }
    }

    fn send_connected(&self, entry: &[u8]) -> io::Result<()> {
        match self.socket.send(entry) {
            Ok(_) => Ok(()),
            Err(e) if too_large_for_a_datagram(&e) => self.send_via_memfd(entry),
            Err(e) => Err(e),
        }
    }

    /// journald accepts an entry of any size as a sealed memfd passed with SCM_RIGHTS.
    fn send_via_memfd(&self, entry: &[u8]) -> io::Result<()> {
        let fd = memfd_create(
            c"logger-journal",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )?;
        let mut file = std::fs::File::from(fd);
        file.write_all(entry)?;
        fcntl(
            &file,
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SHRINK
                    | SealFlag::F_SEAL_GROW
                    | SealFlag::F_SEAL_WRITE
                    | SealFlag::F_SEAL_SEAL,
            ),
        )?;
        let fds = [file.as_raw_fd()];
        let iov: [IoSlice<'_>; 0] = [];
        sendmsg(
            self.socket.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            Some(&self.addr),
        )?;
        Ok(())
    }
}

/// The kernel refused the datagram for its size: EMSGSIZE beyond the send buffer, ENOBUFS when
/// it cannot allocate a buffer that large. sd_journal_send(3) takes the memfd way on both; taking
/// ENOBUFS for "journald busy" retried the same entry forever and wedged the output.
fn too_large_for_a_datagram(e: &io::Error) -> bool {
    [Errno::EMSGSIZE, Errno::ENOBUFS]
        .iter()
        .any(|code| e.raw_os_error() == Some(*code as i32))
}

/// The connected peer no longer exists (journald stopped or restarted).
fn peer_gone(e: &io::Error) -> bool {
    [Errno::ECONNREFUSED, Errno::ENOTCONN, Errno::ENOENT]
        .iter()
        .any(|code| e.raw_os_error() == Some(*code as i32))
}

/// Decodes a native-protocol entry into (key, value) pairs; the inverse of `encode`, used by
/// tests and the fuzz round-trip.
pub fn decode(mut data: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut fields = Vec::new();
    while !data.is_empty() {
        let line_end = data.iter().position(|&b| b == b'\n')?;
        let line = &data[..line_end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.push((
                String::from_utf8(line[..eq].to_vec()).ok()?,
                line[eq + 1..].to_vec(),
            ));
            data = &data[line_end + 1..];
        } else {
            let key = String::from_utf8(line.to_vec()).ok()?;
            let rest = &data[line_end + 1..];
            let len = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?) as usize;
            let value = rest.get(8..8usize.checked_add(len)?)?.to_vec();
            if rest.get(8 + len) != Some(&b'\n') {
                return None;
            }
            fields.push((key, value));
            data = &rest[8 + len + 1..];
        }
    }
    Some(fields)
}

/// Once journald's full queue has room again, how long to let it read before sending again.
const JOURNAL_FULL_PAUSE: Duration = Duration::from_millis(1);
/// How long one write-out waits on a full journal queue before handing back to its thread.
const JOURNAL_FULL_WAIT: Duration = Duration::from_millis(100);

/// The journal output: encoded entries waiting, and the socket they go to.
pub struct JournalOutput {
    writer: JournalWriter,
    entries: Records,
}

impl JournalOutput {
    /// Connects to journald's socket at `socket`.
    pub fn open(socket: &Path) -> io::Result<JournalOutput> {
        Ok(JournalOutput {
            writer: JournalWriter::open(socket)?,
            entries: Records::new(),
        })
    }
}

impl super::Output for JournalOutput {
    fn describe(&self) -> String {
        "journal".into()
    }

    fn accept(&mut self, msg: &Message) {
        // The fields' names and the header fields come on top of the message's weight.
        self.entries
            .push_with(msg.weight() + 512, |data| encode(data, msg));
    }

    fn encode_item(&self, msg: &Message, item: &mut Vec<u8>) {
        encode(item, msg);
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

    fn write_out(&mut self) -> super::WriteOut {
        let mut out = super::WriteOut::default();
        let mut full_since = None;
        while let Some(entry) = self.entries.front() {
            match self.writer.send(entry) {
                Ok(()) => {
                    out.written += 1;
                    full_since = None;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // journald's queue is full: wait until it reads (the kernel wakes
                    // us then, see `wait_writable`), then pause a moment so that one
                    // wake-up sends a run of entries rather than one per entry it read.
                    // A journal that reads nothing for a while hands back to the
                    // thread, which looks at its queue and comes back at once: a full
                    // journal is flow control, not a failure to back off from (a 2 s
                    // backoff let a journal that reads in bursts take a burst per 2 s).
                    let since = *full_since.get_or_insert_with(Instant::now);
                    let left = JOURNAL_FULL_WAIT.saturating_sub(since.elapsed());
                    if !left.is_zero() && self.writer.wait_writable(left) {
                        std::thread::sleep(JOURNAL_FULL_PAUSE);
                        continue;
                    }
                    out.error = Some(e);
                    out.retry_at = Some(Instant::now());
                    break;
                }
                Err(e) if is_transient(&e) => {
                    out.error = Some(e);
                    break;
                }
                Err(e) => {
                    // journald refused this entry itself (e.g. malformed or beyond its
                    // size limit): retrying cannot help, and it must not block the rest.
                    log::error!(
                        "journal {} rejected an entry of {} bytes: {e}",
                        self.writer.path().display(),
                        entry.len()
                    );
                    out.rejected += 1;
                }
            }
            self.entries.pop_front(1);
        }
        out
    }
}

/// Errors after which the same entry may succeed later: the journal is restarting or busy, or
/// a large entry's memfd could not be made for now (descriptors or memory short).
fn is_transient(e: &io::Error) -> bool {
    use nix::errno::Errno;
    let transient = [
        Errno::ENOENT,
        Errno::ECONNREFUSED,
        Errno::EAGAIN,
        Errno::ENOBUFS,
        Errno::ENOMEM,
        Errno::EINTR,
        Errno::EMFILE,
        Errno::ENFILE,
        Errno::ENOSPC,
    ];
    e.raw_os_error()
        .is_some_and(|code| transient.iter().any(|t| *t as i32 == code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;
    use syslog::message::{Credentials, Origin, Transport};
    use syslog::parse::parse;

    #[test]
    fn fields_a_remote_sends_cannot_break_an_entry_or_forge_our_origin() {
        let raw =
            b"<13>1 2026-12-07T15:37:24Z web1 app - - [fields@32473 LOGGER_TRANSPORT=\"unix\" \
                    LOGGER_PEER_UID=\"0\" MESSAGE=\"forged\" bad\nname=\"x\" [t=\"y\" \
                    _SYSTEMD_UNIT=\"nginx.service\" GOOD=\"kept\"] text";
        let msg = parse(
            raw,
            Origin::new(Transport::Udp),
            SystemTime::UNIX_EPOCH,
            false,
        );
        let mut entry = Vec::new();
        encode(&mut entry, &msg);
        let fields = decode(&entry).expect("an entry of ours decodes");
        assert_eq!(field(&fields, "LOGGER_TRANSPORT"), Some(&b"udp"[..]));
        assert_eq!(field(&fields, "LOGGER_PEER_UID"), None);
        assert_eq!(field(&fields, "MESSAGE"), Some(&b"text"[..]));
        assert_eq!(fields.iter().filter(|(k, _)| k == "MESSAGE").count(), 1);
        assert_eq!(
            field(&fields, "ORIGIN_SYSTEMD_UNIT"),
            Some(&b"nginx.service"[..])
        );
        assert_eq!(field(&fields, "GOOD"), Some(&b"kept"[..]));
        assert!(
            fields
                .iter()
                .all(|(k, _)| syslog::message::is_field_name(k))
        );
    }

    fn field<'a>(fields: &'a [(String, Vec<u8>)], key: &str) -> Option<&'a [u8]> {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    #[test]
    fn round_trips_newlines_and_invalid_utf8() {
        let mut origin = Origin::new(Transport::UnixDatagram);
        origin.credentials = Some(Credentials {
            pid: 42,
            uid: 1000,
            gid: 100,
        });
        let msg = parse(
            b"<156>Nov 23 20:21:46 myapp: line1\nline2 \xff",
            origin,
            SystemTime::now(),
            false,
        );
        let mut out = Vec::new();
        encode(&mut out, &msg);
        let fields = decode(&out).expect("decodes");
        assert_eq!(field(&fields, "MESSAGE"), Some(&b"line1\nline2 \xff"[..]));
        assert_eq!(field(&fields, "PRIORITY"), Some(&b"4"[..]));
        assert_eq!(field(&fields, "SYSLOG_FACILITY"), Some(&b"19"[..]));
        assert_eq!(field(&fields, "SYSLOG_IDENTIFIER"), Some(&b"myapp"[..]));
        assert_eq!(field(&fields, "SYSLOG_PID"), Some(&b"42"[..]));
        assert_eq!(
            field(&fields, "SYSLOG_TIMESTAMP"),
            Some(&b"Nov 23 20:21:46"[..])
        );
        assert_eq!(field(&fields, "LOGGER_TRANSPORT"), Some(&b"unix"[..]));
        assert_eq!(field(&fields, "LOGGER_PEER_UID"), Some(&b"1000"[..]));
        assert_eq!(field(&fields, "LOGGER_INVALID_UTF8"), Some(&b"1"[..]));
        assert!(fields.iter().all(|(k, _)| !k.starts_with('_')));
    }

    #[test]
    fn decode_rejects_truncated_binary_fields() {
        let mut out = Vec::new();
        put_field(&mut out, "MESSAGE", b"a\nb");
        assert!(decode(&out[..out.len() - 2]).is_none());
    }
}

#[cfg(test)]
mod transient_tests {
    use super::is_transient;
    use std::io;

    #[test]
    fn a_memfd_that_cannot_be_made_for_now_is_retried_not_rejected() {
        for errno in [
            nix::libc::EMFILE,
            nix::libc::ENFILE,
            nix::libc::ENOSPC,
            nix::libc::ENOMEM,
        ] {
            assert!(
                is_transient(&io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
        // journald refusing the entry itself is final.
        assert!(!is_transient(&io::Error::from_raw_os_error(
            nix::libc::EINVAL
        )));
    }
}
