//! A connection's TLS: rustls' server side fed from the same reads, the first bytes checked to be
//! a handshake, and record boundaries followed so that a record never finished counts as a frame
//! in progress (under frame-timeout), not as activity.

use super::*;

/// A connection's TLS state: rustls' server connection, fed the bytes read from the socket
/// and drained of the plaintext at once, so that it never holds more than a record.
pub(super) struct TlsSession {
    pub(super) conn: rustls::ServerConnection,
    /// The first bytes were looked at (a TLS handshake starts with a handshake record).
    pub(super) started: bool,
    /// Where the record being received ends: a partial record is a frame in progress.
    pub(super) records: RecordBoundary,
}

/// Follows TLS record boundaries in the bytes a client sends (a 5-byte header whose last two
/// bytes are the length of what follows), so that a record sent a byte at a time and never
/// finished counts as a frame in progress, under frame-timeout, and not as activity.
#[derive(Default)]
pub(super) struct RecordBoundary {
    /// Header bytes read of the next record.
    pub(super) header: [u8; 5],
    pub(super) have: usize,
    /// Bytes of the current record's body still to come.
    pub(super) left: usize,
}

impl RecordBoundary {
    pub(super) fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.left > 0 {
                let n = self.left.min(data.len());
                self.left -= n;
                data = &data[n..];
                continue;
            }
            let n = (self.header.len() - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == self.header.len() {
                self.have = 0;
                self.left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
            }
        }
    }

    /// True while a record is partly received.
    pub(super) fn partial(&self) -> bool {
        self.have > 0 || self.left > 0
    }
}

/// Why a TLS connection was closed before it could send.
pub(super) enum TlsRefusal {
    /// Its first byte was not a TLS handshake record's.
    NotTls,
    /// The handshake or a record failed.
    Failed(rustls::Error),
}

/// The first byte of a TLS handshake record (ContentType handshake).
pub(super) const TLS_HANDSHAKE_RECORD: u8 = 0x16;

impl TlsSession {
    /// Takes `data` read from the socket: handshake records are answered on `stream`,
    /// application data is decrypted into `plain` and handed to `deliver` with `origin`, which
    /// names the verified client from the moment the handshake completes.
    pub(super) fn feed(
        &mut self,
        mut data: &[u8],
        stream: &mut Stream,
        plain: &mut [u8],
        origin: &mut Origin,
        mut deliver: impl FnMut(&[u8], &Origin),
    ) -> Result<(), TlsRefusal> {
        if !self.started && !data.is_empty() {
            self.started = true;
            if data[0] != TLS_HANDSHAKE_RECORD {
                return Err(TlsRefusal::NotTls);
            }
        }
        self.records.feed(data);
        while !data.is_empty() {
            if self.conn.read_tls(&mut data).is_err() {
                // Its buffer is full: only possible if plaintext were left unread, which
                // never happens below; refuse rather than spin.
                return Err(TlsRefusal::Failed(rustls::Error::General(
                    "record buffer full".into(),
                )));
            }
            let was_handshaking = self.conn.is_handshaking();
            let processed = self.conn.process_new_packets();
            // The handshake's answer, or the alert that says why it failed.
            self.flush(stream);
            processed.map_err(TlsRefusal::Failed)?;
            if was_handshaking && !self.conn.is_handshaking() {
                self.established(origin);
            }
            loop {
                match self.conn.reader().read(plain) {
                    Ok(0) => break,
                    Ok(n) => deliver(&plain[..n], origin),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
        }
        Ok(())
    }

    /// The handshake is done: the verified client certificate, if any, names the sender of
    /// every message on this connection.
    pub(super) fn established(&self, origin: &mut Origin) {
        if let Some(cert) = self.conn.peer_certificates().and_then(|c| c.first()) {
            let peer = crate::tls::identity::describe(cert);
            log::debug!("TLS client {} is {peer}", describe(origin));
            origin.tls_peer = Some(peer.into());
        }
    }

    /// Writes what rustls has to send. A socket too full to take a handshake flight (a few
    /// KiB, against a send buffer of 16 KiB at least) is a peer not reading: what is left is
    /// sent at the next wake-up, and the frame-timeout deadline closes a peer that never reads.
    pub(super) fn flush(&mut self, stream: &mut Stream) {
        while self.conn.wants_write() {
            match self.conn.write_tls(stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    pub(super) fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }
}

/// The most plaintext one TLS record carries.
pub(super) const TLS_RECORD: usize = 16 * 1024;
