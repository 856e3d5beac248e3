//! One connection of a forward output to one remote: a UDP socket, or a TCP stream with or
//! without TLS. Connecting resolves the host (each address in turn), with a deadline for the
//! connect and one for the TLS handshake.
//!
//! Writes never block the output's thread for long: [`Link::write`] gives up after
//! [`WRITE_SLICE`] without room in the socket (the thread goes back to queueing what arrives,
//! and comes back), and the caller decides when a remote that takes nothing is dead
//! (`remote-timeout`, a [`Stall`]). The send buffer is fixed at [`SEND_BUFFER`], which bounds what the
//! kernel holds unacknowledged and so the copy `tail` keeps of it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::config::Remote;

/// How long a connect may take, per address.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A remote that takes nothing for this long is gone, where no `remote-timeout` applies (a RELP
/// open or close).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one write waits for room in the socket before it returns.
pub const WRITE_SLICE: Duration = Duration::from_millis(100);
/// The socket's send buffer (the kernel doubles it for its bookkeeping): enough for a remote
/// 10 ms away at 50 MB/s, small enough that a copy of what it holds costs little.
pub const SEND_BUFFER: usize = 256 * 1024;
/// What rustls buffers of TLS records not yet written to the socket, at most.
const TLS_BUFFER: usize = 64 * 1024;

/// An open connection.
pub enum Link {
    /// A connected UDP socket.
    Udp(UdpSocket),
    /// A TCP stream.
    Tcp(TcpStream),
    /// TLS on a TCP stream, and the plaintext given to it since its records were last all
    /// written to the socket.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>, u64),
}

impl Link {
    /// Connects to `remote`; `tls` is the client configuration for TLS schemes.
    pub fn connect(
        remote: &Remote,
        tls: Option<&Arc<ClientConfig>>,
        name: &str,
    ) -> io::Result<Link> {
        let addrs: Vec<SocketAddr> = (remote.host.as_str(), remote.port)
            .to_socket_addrs()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {}: {e}", remote.host)))?
            .collect();
        if remote.scheme == crate::config::Scheme::Udp {
            let addr = addrs
                .first()
                .ok_or_else(|| io::Error::other(format!("{} has no address", remote.host)))?;
            let local: SocketAddr = if addr.is_ipv4() {
                "0.0.0.0:0".parse().expect("valid")
            } else {
                "[::]:0".parse().expect("valid")
            };
            let socket = UdpSocket::bind(local)?;
            socket.connect(addr)?;
            return Ok(Link::Udp(socket));
        }
        let mut last = io::Error::other(format!("{} has no address", remote.host));
        let mut stream = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let stream = stream.ok_or(last)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_SLICE))?;
        nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::SndBuf, &SEND_BUFFER)?;
        let Some(config) = tls else {
            return Ok(Link::Tcp(stream));
        };
        let server_name = crate::tls::client::server_name(name).map_err(io::Error::other)?;
        let mut conn =
            ClientConnection::new(config.clone(), server_name).map_err(io::Error::other)?;
        conn.set_buffer_limit(Some(TLS_BUFFER));
        let mut tls = StreamOwned::new(conn, stream);
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        tls.sock.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        while tls.conn.is_handshaking() {
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the TLS handshake timed out",
                ));
            }
            match tls.conn.complete_io(&mut tls.sock) {
                Ok(_) => {}
                Err(e) if timed_out(&e) => {}
                Err(e) => {
                    return Err(io::Error::new(e.kind(), format!("TLS handshake: {e}")));
                }
            }
        }
        Ok(Link::Tls(Box::new(tls), 0))
    }

    /// Writes what the connection takes of `bytes` within [`WRITE_SLICE`]: how much, or a
    /// timed-out error if it took nothing. TLS takes plaintext into its records, which
    /// [`Link::flush`] writes out. A datagram goes whole or not at all.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Link::Udp(s) => s.send(bytes),
            Link::Tcp(s) => s.write(bytes),
            Link::Tls(s, unflushed) => {
                // Records waiting go first: rustls then takes up to its buffer's worth.
                if !flush_tls(s, unflushed)? {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let n = s.conn.writer().write(bytes)?;
                *unflushed += n as u64;
                flush_tls(s, unflushed)?;
                Ok(n)
            }
        }
    }

    /// TLS: writes the records waiting; true once none wait. Always true for UDP and TCP.
    pub fn flush(&mut self) -> io::Result<bool> {
        match self {
            Link::Tls(s, unflushed) => flush_tls(s, unflushed),
            _ => Ok(true),
        }
    }

    /// Writes `bytes[*written..]` as far as the connection takes it within [`WRITE_SLICE`],
    /// moving `written`; true once all of it is out of our hands (TLS: its records too). An
    /// error once the connection took nothing for the limit of `stall`, counted in it across
    /// calls.
    pub fn write_from(
        &mut self,
        bytes: &[u8],
        written: &mut usize,
        stall: &mut Stall,
    ) -> io::Result<bool> {
        while *written < bytes.len() {
            match self.write(&bytes[*written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    *written += n;
                    stall.reset();
                }
                Err(e) if not_now(&e) => return stall.check(),
                Err(e) => return Err(e),
            }
        }
        if self.flush()? {
            stall.reset();
            Ok(true)
        } else {
            stall.check()
        }
    }

    /// Writes all of `bytes` (one datagram for UDP), failing only if the remote takes nothing
    /// for [`WRITE_TIMEOUT`].
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let (mut written, mut stall) = (0, Stall::default());
        while !self.write_from(bytes, &mut written, &mut stall)? {}
        Ok(())
    }

    /// Bytes given to the connection that the remote has not acknowledged, as an upper bound:
    /// the kernel's count (for TLS, of record bytes, never fewer than the plaintext they carry)
    /// and, for TLS, the plaintext whose records are not all in the kernel yet. Zero for UDP.
    pub fn unacknowledged(&self) -> io::Result<u64> {
        use std::os::fd::AsFd;
        match self {
            Link::Udp(_) => Ok(0),
            Link::Tcp(s) => crate::sys::unacknowledged_bytes(s.as_fd()),
            Link::Tls(s, unflushed) => {
                Ok(crate::sys::unacknowledged_bytes(s.sock.as_fd())? + *unflushed)
            }
        }
    }

    /// Reads what the remote sent, waiting at most `wait` (RELP responses). `Ok(0)`: closed.
    pub fn receive(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<usize> {
        let wait = Some(wait.max(Duration::from_millis(1)));
        match self {
            Link::Udp(_) => Ok(0),
            Link::Tcp(s) => {
                s.set_read_timeout(wait)?;
                s.read(buf)
            }
            Link::Tls(s, _) => {
                s.sock.set_read_timeout(wait)?;
                s.read(buf)
            }
        }
    }
}

/// Writes the TLS records waiting, within [`WRITE_SLICE`]; true once none wait.
fn flush_tls(
    s: &mut StreamOwned<ClientConnection, TcpStream>,
    unflushed: &mut u64,
) -> io::Result<bool> {
    while s.conn.wants_write() {
        match s.conn.write_tls(&mut s.sock) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if not_now(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    *unflushed = 0;
    Ok(true)
}

/// Since when a connection has taken nothing, across write-outs, and how long it may.
#[derive(Debug)]
pub struct Stall {
    since: Option<Instant>,
    limit: Duration,
}

impl Default for Stall {
    fn default() -> Stall {
        Stall::new(WRITE_TIMEOUT)
    }
}

impl Stall {
    /// A connection that may take nothing for `limit` before it is gone.
    pub fn new(limit: Duration) -> Stall {
        Stall { since: None, limit }
    }

    /// It took something: the clock starts again.
    fn reset(&mut self) {
        self.since = None;
    }

    /// The connection took nothing now: fine for a while (false: not all written), an error
    /// once it has lasted its limit.
    fn check(&mut self) -> io::Result<bool> {
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.limit {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the remote took nothing for {}",
                    crate::config::fmt_duration(Some(self.limit))
                ),
            ))
        } else {
            Ok(false)
        }
    }
}

/// True if a read timed out rather than failed.
pub fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// True for an error that means "not now" rather than "broken".
pub fn not_now(e: &io::Error) -> bool {
    timed_out(e) || e.kind() == io::ErrorKind::Interrupted
}
