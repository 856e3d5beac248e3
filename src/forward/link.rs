//! One connection of a forward output to one remote: a UDP socket, or a TCP stream with or
//! without TLS. Connecting resolves the host (each address in turn), with a deadline for the
//! connect and one for the TLS handshake; writes that block longer than [`WRITE_TIMEOUT`] count
//! as a dead connection.

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
/// A write that cannot go on for this long means the remote is gone.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// An open connection.
pub enum Link {
    /// A connected UDP socket.
    Udp(UdpSocket),
    /// A TCP stream.
    Tcp(TcpStream),
    /// TLS on a TCP stream.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
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
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let Some(config) = tls else {
            return Ok(Link::Tcp(stream));
        };
        let server_name = crate::tls::client::server_name(name).map_err(io::Error::other)?;
        let conn = ClientConnection::new(config.clone(), server_name).map_err(io::Error::other)?;
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
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake: {e}")))?;
        }
        Ok(Link::Tls(Box::new(tls)))
    }

    /// Writes all of `bytes` (one datagram for UDP).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Link::Udp(s) => s.send(bytes).map(|_| ()),
            Link::Tcp(s) => s.write_all(bytes),
            Link::Tls(s) => s.write_all(bytes).and_then(|()| s.flush()),
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
            Link::Tls(s) => {
                s.sock.set_read_timeout(wait)?;
                s.read(buf)
            }
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
