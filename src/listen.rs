//! Listen addresses: the `listen` URL syntax (`udp://ADDR:PORT`, `tls://ADDR:PORT`,
//! `unix:///path`, ...), parsed and printed.
//!
//! Pure: parsing validates the form (scheme, absolute path, address and port) and never touches a
//! socket. A listen address is a transport (what the scheme names, the same `Transport` a
//! message records) and an endpoint (a path or an IP address and port). Binding lives in
//! `inputs::bind`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use syslog::message::Transport;

/// Where a socket lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// An AF_UNIX socket file.
    Path(PathBuf),
    /// An IP address and port.
    Inet(SocketAddr),
}

/// Where `logger` receives messages, and over what.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenAddr {
    /// The scheme: `unix` (datagrams, what syslog(3) and `logger -u` send to), `unix-stream`,
    /// `udp`, `tcp` (RFC 6587 framing), `tls` (RFC 5425: TCP under TLS, octet-counted), `relp`
    /// or `relp+tls` (RELP: each message acknowledged), `journal-remote` or
    /// `journal-remote+https` (what systemd-journal-upload POSTs, each request answered).
    pub transport: Transport,
    /// The socket's path or address.
    pub endpoint: Endpoint,
}

impl ListenAddr {
    /// An AF_UNIX listen address (`transport` is `UnixDatagram` or `UnixStream`).
    pub fn path(transport: Transport, path: impl Into<PathBuf>) -> ListenAddr {
        ListenAddr {
            transport,
            endpoint: Endpoint::Path(path.into()),
        }
    }

    /// An IP listen address (`transport` is `Udp`, `Tcp` or `Tls`).
    pub fn inet(transport: Transport, addr: SocketAddr) -> ListenAddr {
        ListenAddr {
            transport,
            endpoint: Endpoint::Inet(addr),
        }
    }

    /// True for the stream kinds (RFC 6587 framing applies).
    pub fn is_stream(&self) -> bool {
        self.transport.is_stream()
    }

    /// The endpoint alone, for messages: the path, or ADDR:PORT.
    pub fn endpoint_text(&self) -> String {
        match &self.endpoint {
            Endpoint::Path(p) => p.display().to_string(),
            Endpoint::Inet(a) => a.to_string(),
        }
    }

    /// The IP address and port, for network addresses.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.endpoint {
            Endpoint::Inet(a) => Some(a),
            Endpoint::Path(_) => None,
        }
    }
}

const FORMS: &str = "unix:///path, unix-stream:///path, udp://ADDR:PORT, tcp://ADDR:PORT, \
                     tls://ADDR:PORT, relp://ADDR:PORT, relp+tls://ADDR:PORT, \
                     journal-remote://ADDR:PORT or journal-remote+https://ADDR:PORT";

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("invalid listen address '{url}': expected {FORMS}"))?;
        let transport = Transport::from_name(scheme).ok_or_else(|| {
            format!(
                "invalid listen address '{url}': unknown scheme '{scheme}' (use unix, \
                 unix-stream, udp, tcp, tls, relp, relp+tls, journal-remote or \
                 journal-remote+https)"
            )
        })?;
        if transport.is_local() || transport.is_read() {
            if !rest.starts_with('/') {
                return Err(format!(
                    "invalid listen address '{url}': the socket path must be absolute"
                ));
            }
            // sun_path holds 108 bytes including the terminating NUL.
            if rest.len() > 107 {
                return Err(format!(
                    "invalid listen address '{url}': the socket path is longer than 107 bytes"
                ));
            }
            return Ok(ListenAddr::path(transport, rest));
        }
        let addr = rest.parse().map_err(|_| {
            format!(
                "invalid listen address '{url}': expected ADDR:PORT with a numeric address \
                 (IPv6 as [::1]:PORT)"
            )
        })?;
        Ok(ListenAddr::inet(transport, addr))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.transport.name();
        match &self.endpoint {
            Endpoint::Path(p) => write!(f, "{scheme}://{}", p.display()),
            Endpoint::Inet(a) => write!(f, "{scheme}://{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme_and_prints_it_back() {
        for url in [
            "unix:///run/logger/log",
            "unix-stream:///run/logger/stream",
            "udp://127.0.0.1:5514",
            "tcp://[::1]:0",
            "tcp://0.0.0.0:514",
            "tls://0.0.0.0:6514",
            "relp://0.0.0.0:2514",
            "relp+tls://[::]:2514",
            "journal-remote://0.0.0.0:19532",
            "journal-remote+https://[::]:19532",
        ] {
            let addr: ListenAddr = url.parse().unwrap();
            assert_eq!(addr.to_string(), url);
        }
        let tls: ListenAddr = "tls://[::]:6514".parse().unwrap();
        assert!(tls.is_stream());
        assert_eq!(tls.transport, Transport::Tls);
    }

    #[test]
    fn rejects_bad_forms_with_a_reason() {
        for (url, reason) in [
            ("udp:127.0.0.1:1", "expected unix://"),
            ("unix://relative/path", "must be absolute"),
            ("tcp://localhost:514", "numeric address"),
            ("tls://127.0.0.1", "numeric address"),
            ("tls:///run/x", "numeric address"),
            ("http://127.0.0.1:80", "unknown scheme 'http'"),
        ] {
            let err = url.parse::<ListenAddr>().unwrap_err();
            assert!(err.contains(reason), "{url}: {err}");
        }
        let long = format!("unix:///{}", "x".repeat(120));
        assert!(
            long.parse::<ListenAddr>()
                .unwrap_err()
                .contains("107 bytes")
        );
    }
}
