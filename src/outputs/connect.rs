//! A blocking client connection for an output that owns a thread and talks request/response
//! (journal-remote's HTTP, Kafka): TCP or TLS through the rustls client of `tls://`, with
//! deadlines on connect, reads and writes. The forward output's connections are its own
//! (`forward::link`: non-blocking, with RELP's windows).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// A TLS client and the name the server's certificate must carry.
pub(super) type TlsClient = (Arc<ClientConfig>, String);

/// One connection.
pub(super) enum Conn {
    /// Plain TCP.
    Plain(TcpStream),
    /// Under TLS.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    /// Connects to `host:port` (the first address it resolves to), under TLS with `tls` if
    /// given; each connect, read and write may take `timeout`.
    pub(super) fn open(
        host: &str,
        port: u16,
        tls: Option<&TlsClient>,
        timeout: Duration,
    ) -> io::Result<Conn> {
        let addr = (host, port).to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"))
        })?;
        let conn = TcpStream::connect_timeout(&addr, timeout)?;
        conn.set_read_timeout(Some(timeout))?;
        conn.set_write_timeout(Some(timeout))?;
        conn.set_nodelay(true)?;
        Ok(match tls {
            None => Conn::Plain(conn),
            Some((config, name)) => {
                let server = crate::tls::client::server_name(name).map_err(io::Error::other)?;
                let tls =
                    ClientConnection::new(config.clone(), server).map_err(io::Error::other)?;
                Conn::Tls(Box::new(StreamOwned::new(tls, conn)))
            }
        })
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}
