//! What a forward output is configured with: the remotes it sends to (`to = "relp://h:p"` or a
//! list, tried in order), how messages go on the wire, how the remote is authenticated, and the
//! disk queue in front of it. Pure: parsing, printing and the checks across these keys.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::input::Fingerprint;

/// How a forward output reaches its remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// One datagram per message: no delivery guarantee at all.
    Udp,
    /// RFC 6587 over TCP: what the socket took is considered delivered.
    Tcp,
    /// RFC 5425: TCP inside TLS.
    Tls,
    /// RELP (librelp's protocol): every message acknowledged by the receiver.
    Relp,
    /// RELP inside TLS.
    RelpTls,
}

impl Scheme {
    /// The scheme's name in a `to` address.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Udp => "udp",
            Scheme::Tcp => "tcp",
            Scheme::Tls => "tls",
            Scheme::Relp => "relp",
            Scheme::RelpTls => "relp+tls",
        }
    }

    /// True if the connection is inside TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Tls | Scheme::RelpTls)
    }

    /// True for RELP: a message leaves the queue only once acknowledged.
    pub fn is_relp(self) -> bool {
        matches!(self, Scheme::Relp | Scheme::RelpTls)
    }
}

/// One remote of a forward output: `tcp://collector.example.net:514`, `relp://[2001:db8::1]:2514`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Remote {
    /// How.
    pub scheme: Scheme,
    /// A host name or an IP address (without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl FromStr for Remote {
    type Err = String;
    fn from_str(s: &str) -> Result<Remote, String> {
        let bad = |why: &str| format!("invalid remote '{s}': {why}");
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| bad("expected SCHEME://HOST:PORT"))?;
        let scheme = match scheme {
            "udp" => Scheme::Udp,
            "tcp" => Scheme::Tcp,
            "tls" => Scheme::Tls,
            "relp" => Scheme::Relp,
            "relp+tls" => Scheme::RelpTls,
            _ => return Err(bad("the scheme is one of udp, tcp, tls, relp, relp+tls")),
        };
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("the port is missing (HOST:PORT)"))?;
        let host = match host.strip_prefix('[') {
            Some(v6) => v6
                .strip_suffix(']')
                .ok_or_else(|| bad("an IPv6 address is written [ADDRESS]:PORT"))?,
            None if host.contains(':') => {
                return Err(bad("an IPv6 address is written [ADDRESS]:PORT"));
            }
            None => host,
        };
        let valid_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:_".contains(&b));
        if !valid_host {
            return Err(bad("the host is a name or an IP address"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port is a number from 1 to 65535"))?;
        Ok(Remote {
            scheme,
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme.name(), self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme.name(), self.host, self.port)
        }
    }
}

/// How frames are delimited on a TCP or TLS connection (RFC 6587).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// `LEN SP MSG`: any byte may be in a message.
    #[default]
    OctetCounting,
    /// `MSG LF`, for old receivers: newlines inside a message are escaped.
    Lf,
}

impl FromStr for Framing {
    type Err = String;
    fn from_str(s: &str) -> Result<Framing, String> {
        match s {
            "octet-counting" => Ok(Framing::OctetCounting),
            "lf" => Ok(Framing::Lf),
            _ => Err(format!("'{s}' is not a framing: octet-counting or lf")),
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Framing::OctetCounting => "octet-counting",
            Framing::Lf => "lf",
        })
    }
}

/// When the disk queue asks the kernel to put what it wrote on the disk. Whatever the policy,
/// what was written survives the death of logger itself (it is in the page cache); the policy
/// is about power loss and kernel crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// After every write of a batch (fdatasync), before the messages count as queued.
    #[default]
    Batch,
    /// At most this long after a write.
    Every(Duration),
    /// Never: the kernel writes back when it will.
    Off,
}

impl FromStr for Fsync {
    type Err = String;
    fn from_str(s: &str) -> Result<Fsync, String> {
        match s {
            "batch" => Ok(Fsync::Batch),
            "off" => Ok(Fsync::Off),
            _ => match super::parse_duration(s) {
                Ok(Some(d)) => Ok(Fsync::Every(d)),
                _ => Err(format!(
                    "'{s}' is not an fsync policy: batch, off or a duration like 1s"
                )),
            },
        }
    }
}

impl fmt::Display for Fsync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fsync::Batch => f.write_str("batch"),
            Fsync::Off => f.write_str("off"),
            Fsync::Every(d) => f.write_str(&super::values::fmt_duration(Some(*d))),
        }
    }
}

/// How a forward output authenticates its remote and itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsClientSpec {
    /// The CA bundle the remote's certificate must chain to (`tls-ca`).
    pub ca: Option<PathBuf>,
    /// Or the remote's certificate itself, pinned by SHA-256 (`tls-fingerprint`).
    pub fingerprints: Vec<Fingerprint>,
    /// The name the remote's certificate must carry (`tls-name`); the host of `to` if unset.
    pub name: Option<String>,
    /// Our own certificate chain, for mutual TLS (`tls-cert`).
    pub cert: Option<PathBuf>,
    /// Its key (`tls-key`).
    pub key: Option<PathBuf>,
}

impl TlsClientSpec {
    /// True if no TLS key was given.
    pub fn is_empty(&self) -> bool {
        *self == TlsClientSpec::default()
    }
}

/// The default bound of a disk queue.
pub(super) const DEFAULT_QUEUE_MAX_BYTES: u64 = 1 << 30;
/// How long a remote may leave what was sent unacknowledged before it is declared dead, by
/// default: librelp's RELP timeout.
pub(super) const DEFAULT_REMOTE_TIMEOUT: Duration = Duration::from_secs(90);

/// Everything a forward output is configured with beyond its remotes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForwardSpec {
    /// How frames are delimited on TCP and TLS.
    pub framing: Framing,
    /// RFC 3164 on the wire instead of RFC 5424 (`format = "rfc3164"`).
    pub rfc3164: bool,
    /// How the remote is authenticated.
    pub tls: TlsClientSpec,
    /// The disk queue's directory (`queue-dir`); none: the queue is in memory.
    pub queue_dir: Option<PathBuf>,
    /// Its bound (`queue-max-bytes`); 0 means the default.
    pub queue_max_bytes: u64,
    /// When it syncs (`queue-fsync`).
    pub fsync: Fsync,
    /// How long the remote may leave what was sent unanswered (RELP) or untaken (TCP, TLS)
    /// before the connection is declared dead (`remote-timeout`); none means the default.
    pub remote_timeout: Option<Duration>,
}

impl ForwardSpec {
    /// The disk queue's bound.
    pub fn queue_max_bytes(&self) -> u64 {
        if self.queue_max_bytes == 0 {
            DEFAULT_QUEUE_MAX_BYTES
        } else {
            self.queue_max_bytes
        }
    }

    /// How long a remote may leave what was sent unacknowledged.
    pub fn remote_timeout(&self) -> Duration {
        self.remote_timeout.unwrap_or(DEFAULT_REMOTE_TIMEOUT)
    }

    /// The checks across keys, given the remotes (empty: not a forward output).
    pub fn check(&self, remotes: &[Remote]) -> Result<(), String> {
        let Some(first) = remotes.first() else {
            let set = [
                (self.framing != Framing::default(), "framing"),
                (!self.tls.is_empty(), "tls-*"),
                (self.remote_timeout.is_some(), "remote-timeout"),
            ];
            if let Some((_, key)) = set.iter().find(|(is_set, _)| *is_set) {
                return Err(format!(
                    "'{key}' applies to forward outputs (to = \"tcp://HOST:PORT\", ...)"
                ));
            }
            return self.check_queue();
        };
        let tls = remotes.iter().any(|r| r.scheme.is_tls());
        if !tls && !self.tls.is_empty() {
            return Err("tls-* keys apply to tls:// and relp+tls:// remotes".into());
        }
        if tls {
            self.check_tls_client()?;
        }
        if first.scheme == Scheme::Udp && remotes.len() > 1 {
            return Err("a UDP remote cannot fail over: nothing tells it is down".into());
        }
        if remotes.iter().any(|r| r.scheme.is_relp()) && self.framing != Framing::default() {
            return Err("'framing' applies to tcp:// and tls://; RELP frames itself".into());
        }
        self.check_queue()
    }

    /// The checks for an output that is not a forward one: `https` says whether it speaks TLS
    /// (journal-remote+https), which then needs the `tls-*` keys a TLS remote needs.
    pub fn check_other(&self, https: bool) -> Result<(), String> {
        if !https {
            return self.check(&[]);
        }
        for (set, key) in [
            (self.framing != Framing::default(), "framing"),
            (self.remote_timeout.is_some(), "remote-timeout"),
        ] {
            if set {
                return Err(format!(
                    "'{key}' applies to forward outputs (to = \"tcp://HOST:PORT\", ...)"
                ));
            }
        }
        self.check_tls_client()?;
        self.check_queue()
    }

    /// What a TLS client needs: a way to verify the server, and both halves of its own
    /// certificate or neither.
    fn check_tls_client(&self) -> Result<(), String> {
        if self.tls.ca.is_none() && self.tls.fingerprints.is_empty() {
            return Err(
                "a TLS remote needs tls-ca (a CA bundle) or tls-fingerprint (the remote's \
                 certificate, pinned): logger never sends to an unauthenticated TLS peer"
                    .into(),
            );
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err("tls-cert and tls-key go together (the client certificate)".into());
        }
        Ok(())
    }

    /// The disk queue's keys, which every output may have.
    fn check_queue(&self) -> Result<(), String> {
        if self.queue_dir.is_none() && (self.queue_max_bytes != 0 || self.fsync != Fsync::default())
        {
            return Err("queue-max-bytes and queue-fsync apply with queue-dir".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_parse_and_print_back() {
        for s in [
            "udp://10.0.0.1:514",
            "tcp://collector.example.net:514",
            "tls://[2001:db8::1]:6514",
            "relp://h:2514",
            "relp+tls://collector.example.net:2514",
        ] {
            assert_eq!(s.parse::<Remote>().unwrap().to_string(), s);
        }
        for bad in [
            "collector:514",
            "http://h:80",
            "tcp://h",
            "tcp://h:0",
            "tcp://h:65536",
            "tcp://2001:db8::1:514",
            "tcp://:514",
            "tcp://h h:514",
        ] {
            assert!(bad.parse::<Remote>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn a_tls_remote_must_be_authenticated() {
        let remotes = vec!["tls://h:6514".parse().unwrap()];
        let spec = ForwardSpec::default();
        assert!(spec.check(&remotes).unwrap_err().contains("tls-ca"));
        let mut spec = ForwardSpec::default();
        spec.tls.ca = Some("/ca.pem".into());
        assert_eq!(spec.check(&remotes), Ok(()));
    }

    #[test]
    fn forward_keys_on_other_outputs_are_refused_but_the_disk_queue_is_for_any() {
        let spec = ForwardSpec {
            remote_timeout: Some(Duration::from_secs(5)),
            ..ForwardSpec::default()
        };
        assert!(spec.check(&[]).unwrap_err().contains("remote-timeout"));
        let spec = ForwardSpec {
            queue_dir: Some("/var/lib/logger/q".into()),
            queue_max_bytes: 1 << 30,
            ..ForwardSpec::default()
        };
        assert_eq!(spec.check(&[]), Ok(()));
        let spec = ForwardSpec {
            queue_max_bytes: 1 << 30,
            ..ForwardSpec::default()
        };
        assert!(spec.check(&[]).unwrap_err().contains("with queue-dir"));
    }
}
