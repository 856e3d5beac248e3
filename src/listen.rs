//! Listen addresses: the `--listen` URL syntax, parsed and printed.
//!
//! Pure: parsing validates the form (scheme, absolute path, address and port) and never touches a
//! socket. Binding lives in `sources::bind`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// Where `logger` receives messages.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListenAddr {
    /// `unix:///path`: a datagram socket, what syslog(3) and `logger -u` send to.
    UnixDatagram(PathBuf),
    /// `unix-stream:///path`: a stream socket, framed like TCP.
    UnixStream(PathBuf),
    /// `udp://ADDR:PORT`.
    Udp(SocketAddr),
    /// `tcp://ADDR:PORT`, framed per RFC 6587.
    Tcp(SocketAddr),
}

impl ListenAddr {
    /// True for the two stream kinds (TCP framing applies).
    pub fn is_stream(&self) -> bool {
        matches!(self, ListenAddr::UnixStream(_) | ListenAddr::Tcp(_))
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!(
                "invalid listen address '{url}': expected unix:///path, unix-stream:///path, \
                 udp://ADDR:PORT or tcp://ADDR:PORT"
            )
        })?;
        let path = |rest: &str| -> Result<PathBuf, String> {
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
            Ok(PathBuf::from(rest))
        };
        let inet = |rest: &str| -> Result<SocketAddr, String> {
            rest.parse().map_err(|_| {
                format!(
                    "invalid listen address '{url}': expected ADDR:PORT with a numeric address \
                     (IPv6 as [::1]:PORT)"
                )
            })
        };
        match scheme {
            "unix" => path(rest).map(ListenAddr::UnixDatagram),
            "unix-stream" => path(rest).map(ListenAddr::UnixStream),
            "udp" => inet(rest).map(ListenAddr::Udp),
            "tcp" => inet(rest).map(ListenAddr::Tcp),
            other => Err(format!(
                "invalid listen address '{url}': unknown scheme '{other}' (use unix, unix-stream, \
                 udp or tcp)"
            )),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::UnixDatagram(p) => write!(f, "unix://{}", p.display()),
            ListenAddr::UnixStream(p) => write!(f, "unix-stream://{}", p.display()),
            ListenAddr::Udp(a) => write!(f, "udp://{a}"),
            ListenAddr::Tcp(a) => write!(f, "tcp://{a}"),
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
        ] {
            let addr: ListenAddr = url.parse().unwrap();
            assert_eq!(addr.to_string(), url);
        }
    }

    #[test]
    fn rejects_bad_forms_with_a_reason() {
        for (url, reason) in [
            ("udp:127.0.0.1:1", "expected unix://"),
            ("unix://relative/path", "must be absolute"),
            ("tcp://localhost:514", "numeric address"),
            ("tcp://127.0.0.1", "numeric address"),
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
