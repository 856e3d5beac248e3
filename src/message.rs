//! The message model every input produces and every output consumes.
//!
//! A `Message` is owned data: the parsed syslog header fields, the text as bytes (non-UTF-8 is kept,
//! never replaced here), and where it came from. Nothing in this module does I/O.

use std::net::SocketAddr;
use std::time::SystemTime;

/// Default priority of a message without a valid `<PRI>`: user.notice (RFC 3164 section 4.3.3).
pub const DEFAULT_PRIORITY: u8 = 13;

/// Facility names, indexed by facility number (RFC 5424 table 1).
pub const FACILITY_NAMES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severity names, indexed by severity number.
pub const SEVERITY_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Which syntax the header was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`).
    Rfc5424,
    /// RFC 3164 / BSD, with or without hostname; syslog(3)'s local form is this without a host.
    Rfc3164,
    /// No usable header: default priority, the whole input is the text.
    Unparsed,
}

/// How the message reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// AF_UNIX datagram.
    UnixDatagram,
    /// AF_UNIX stream.
    UnixStream,
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl Transport {
    /// The name used in the `LOGGER_TRANSPORT` journal field.
    pub fn name(self) -> &'static str {
        match self {
            Transport::UnixDatagram => "unix",
            Transport::UnixStream => "unix-stream",
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }

    /// True for AF_UNIX transports, whose messages follow syslog(3)'s host-less form.
    pub fn is_local(self) -> bool {
        matches!(self, Transport::UnixDatagram | Transport::UnixStream)
    }
}

/// Credentials of a local sender (SCM_CREDENTIALS / SO_PEERCRED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// Process id.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// Where a message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The transport.
    pub transport: Transport,
    /// The remote address for network transports.
    pub peer: Option<SocketAddr>,
    /// The sender's credentials for local transports, when the kernel gave them.
    pub credentials: Option<Credentials>,
}

impl Origin {
    /// An origin with no peer information.
    pub fn new(transport: Transport) -> Origin {
        Origin {
            transport,
            peer: None,
            credentials: None,
        }
    }
}

/// One syslog message, parsed as far as its form allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Facility, 0..=23.
    pub facility: u8,
    /// Severity, 0..=7.
    pub severity: u8,
    /// The sender's timestamp, as sent.
    pub timestamp: Option<String>,
    /// The sender's hostname.
    pub hostname: Option<String>,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164).
    pub app_name: Option<String>,
    /// PROCID or the `[pid]` of a tag.
    pub procid: Option<String>,
    /// MSGID (RFC 5424).
    pub msgid: Option<String>,
    /// STRUCTURED-DATA as sent (RFC 5424).
    pub structured_data: Option<String>,
    /// The message text, exactly the bytes sent (minus framing and a trailing newline).
    pub text: Vec<u8>,
    /// The syntax the header was read as.
    pub format: Format,
    /// The datagram was longer than the limit and was cut.
    pub truncated: bool,
    /// Where it came from.
    pub origin: Origin,
    /// When we received it.
    pub received: SystemTime,
}

impl Message {
    /// The journal's PRIORITY: the severity alone.
    pub fn priority(&self) -> u8 {
        self.severity
    }

    /// The facility's name (`local3`).
    pub fn facility_name(&self) -> &'static str {
        FACILITY_NAMES[usize::from(self.facility.min(23))]
    }

    /// The severity's name (`warning`).
    pub fn severity_name(&self) -> &'static str {
        SEVERITY_NAMES[usize::from(self.severity.min(7))]
    }

    /// True if the text is not valid UTF-8.
    pub fn text_is_utf8(&self) -> bool {
        std::str::from_utf8(&self.text).is_ok()
    }

    /// The process id to report: the sender's own claim, else the kernel's credentials.
    pub fn pid(&self) -> Option<String> {
        self.procid.clone().or_else(|| {
            self.origin
                .credentials
                .map(|c| c.pid)
                .filter(|p| *p > 0)
                .map(|p| p.to_string())
        })
    }
}
