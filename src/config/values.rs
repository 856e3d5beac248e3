//! The values keys hold that are more than a number or a path: where an output writes, its
//! line format and queue policy, an output as a whole, and durations. Each parses from the
//! text an operator writes and prints back to it. Pure.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::forward::{ForwardSpec, Remote};
use crate::route::Route;
use crate::timestamp::Zone;

/// Where relayed messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Journal if its socket exists, else stderr in the foreground, else the file.
    Auto,
    /// The systemd journal, native protocol.
    Journal,
    /// Readable lines on stderr.
    Stderr,
    /// Readable lines appended to a file.
    File(PathBuf),
    /// Sent to remote collectors, tried in order (`to = ["relp://a:2514", "relp://b:2514"]`).
    Forward(Vec<Remote>),
    /// Uploaded to systemd-journal-remote in the Journal Export Format
    /// (`journal-remote+http://HOST:PORT`).
    JournalRemote(JournalRemote),
    /// Produced to a Kafka topic (`kafka://HOST:PORT[,HOST:PORT…]/TOPIC`).
    Kafka(Kafka),
}

/// Where a Kafka output produces: `kafka://HOST:PORT[,HOST:PORT…]/TOPIC`, or `kafka+tls://…`
/// (TLS with the output's `tls-*` keys). The brokers are where it bootstraps; the cluster's
/// metadata says the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kafka {
    /// The bootstrap brokers, as written (names or addresses) with their ports.
    pub brokers: Vec<(String, u16)>,
    /// The topic.
    pub topic: String,
    /// TLS.
    pub tls: bool,
}

impl std::str::FromStr for Kafka {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid output '{s}': {why}");
        let (tls, rest) = match (s.strip_prefix("kafka://"), s.strip_prefix("kafka+tls://")) {
            (Some(rest), _) => (false, rest),
            (None, Some(rest)) => (true, rest),
            (None, None) => return Err(bad("expected kafka://HOST:PORT[,HOST:PORT...]/TOPIC")),
        };
        let (brokers, topic) = rest
            .split_once('/')
            .ok_or_else(|| bad("the topic is missing: kafka://HOST:PORT/TOPIC"))?;
        // Kafka's own rule for a topic name.
        if topic.is_empty()
            || topic.len() > 249
            || topic == "."
            || topic == ".."
            || !topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(bad(
                "a topic is 1 to 249 of letters, digits, '.', '_' and '-'",
            ));
        }
        let brokers = brokers
            .split(',')
            .map(|b| host_port(b, "Kafka's is 9092").map_err(|e| bad(&format!("a broker: {e}"))))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Kafka {
            brokers,
            topic: topic.to_owned(),
            tls,
        })
    }
}

impl fmt::Display for Kafka {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.tls { "kafka+tls://" } else { "kafka://" })?;
        for (i, (host, port)) in self.brokers.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            if host.contains(':') {
                write!(f, "{sep}[{host}]:{port}")?;
            } else {
                write!(f, "{sep}{host}:{port}")?;
            }
        }
        write!(f, "/{}", self.topic)
    }
}

/// Where a journal-remote output uploads: `journal-remote+http://HOST:PORT`, or
/// `journal-remote+https://HOST:PORT` (TLS with the output's `tls-*` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRemote {
    /// The host, as written (a name or an address).
    pub host: String,
    /// The port (journal-remote's is 19532).
    pub port: u16,
    /// HTTPS.
    pub tls: bool,
}

impl std::str::FromStr for JournalRemote {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid output '{s}': {why}");
        let expected =
            "expected journal-remote+http://HOST:PORT or journal-remote+https://HOST:PORT";
        let (tls, rest) = match s.strip_prefix("journal-remote+") {
            Some(r) => match (r.strip_prefix("https://"), r.strip_prefix("http://")) {
                (Some(rest), _) => (true, rest),
                (None, Some(rest)) => (false, rest),
                (None, None) => return Err(bad(expected)),
            },
            None => return Err(bad(expected)),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) =
            host_port(rest, "journal-remote listens on 19532").map_err(|e| bad(&e))?;
        Ok(JournalRemote { host, port, tls })
    }
}

/// `HOST:PORT` as a `to` names a server (IPv6 in brackets): the host as written, the port from
/// 1 to 65535; `usual` says which port is usual when it is missing.
fn host_port(text: &str, usual: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("the port is missing ({usual})"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return Err("the host is missing or not a host name or address".into());
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or("the port is not a number from 1 to 65535")?;
    Ok((host.to_owned(), port))
}

impl fmt::Display for JournalRemote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "journal-remote+{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "journal-remote+{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl std::str::FromStr for Output {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Output::Auto),
            "journal" => Ok(Output::Journal),
            "stderr" => Ok(Output::Stderr),
            _ => match s.strip_prefix("file:") {
                Some(p) if p.starts_with('/') => {
                    let path = PathBuf::from(p);
                    if crate::template::Template::is_template(&path) {
                        crate::template::Template::parse(&path)
                            .map_err(|e| format!("invalid output '{s}': {e}"))?;
                    }
                    Ok(Output::File(path))
                }
                Some(_) => Err(format!(
                    "invalid output '{s}': the file path must be absolute"
                )),
                None if s.starts_with("journal-remote+") => Ok(Output::JournalRemote(s.parse()?)),
                None if s.starts_with("kafka://") || s.starts_with("kafka+tls://") => {
                    Ok(Output::Kafka(s.parse()?))
                }
                None if s.contains("://") => Ok(Output::Forward(vec![s.parse()?])),
                None => Err(format!(
                    "invalid output '{s}': expected auto, journal, stderr, file:PATH, \
                     SCHEME://HOST:PORT (udp, tcp, tls, relp, relp+tls), \
                     journal-remote+http://HOST:PORT or kafka://HOST:PORT/TOPIC"
                )),
            },
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Auto => f.write_str("auto"),
            Output::Journal => f.write_str("journal"),
            Output::Stderr => f.write_str("stderr"),
            Output::File(p) => write!(f, "file:{}", p.display()),
            Output::JournalRemote(r) => write!(f, "{r}"),
            Output::Kafka(k) => write!(f, "{k}"),
            Output::Forward(remotes) => {
                for (i, r) in remotes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{r}")?;
                }
                Ok(())
            }
        }
    }
}

/// How a file or stderr output writes each message (one line each, whatever the format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineFormat {
    /// `TIME HOST TAG[PID] FACILITY.SEVERITY: TEXT`, the receive time in UTC with microseconds
    /// and every control character escaped reversibly: the default.
    #[default]
    Detailed,
    /// rsyslog's `RSYSLOG_TraditionalFileFormat` (Debian's default up to 11), byte for byte.
    Traditional,
    /// rsyslog's `RSYSLOG_FileFormat` (Debian's default since 12), byte for byte.
    Rfc3339,
    /// RFC 5424 with MSGID and structured data kept, and our origin as an SD-ELEMENT.
    Rfc5424,
    /// One JSON object per line, Elastic Common Schema names (`log.syslog.*`).
    Json,
}

impl std::str::FromStr for LineFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "detailed" => Ok(LineFormat::Detailed),
            "traditional" => Ok(LineFormat::Traditional),
            "rfc3339" => Ok(LineFormat::Rfc3339),
            "rfc5424" => Ok(LineFormat::Rfc5424),
            "json" => Ok(LineFormat::Json),
            _ => Err(format!(
                "'{s}' is not a format: detailed, traditional, rfc3339, rfc5424 or json"
            )),
        }
    }
}

impl fmt::Display for LineFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LineFormat::Detailed => "detailed",
            LineFormat::Traditional => "traditional",
            LineFormat::Rfc3339 => "rfc3339",
            LineFormat::Rfc5424 => "rfc5424",
            LineFormat::Json => "json",
        })
    }
}

/// What an output does with a message when its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueuePolicy {
    /// Stop taking messages from the inputs until it has room: nothing is lost, TCP senders
    /// are pushed back and datagrams wait in the kernel. The default of local outputs.
    #[default]
    Block,
    /// Drop the message for this output (counted); the other outputs and the inputs go on.
    Drop,
    /// A full disk queue drops its oldest segment (counted) to take the new messages.
    DropOldest,
    /// Block while the output moves (a slow remote pushes back, nothing is lost); once it has
    /// taken nothing for `outputs::set::STUCK_AFTER` with its queue full (a dead remote), drop
    /// for it alone until it has room: a stuck output holds the inputs back for a bounded
    /// time only. A full disk queue drops. The default of outputs to a remote (forward,
    /// journal-remote, Kafka).
    BlockBounded,
}

impl QueuePolicy {
    /// What an output does when its queue is full unless `queue-policy` says: a local output
    /// blocks (nothing is lost, senders are pushed back), a forward output blocks only while
    /// it moves (a remote that stays dead must not hold back the journal, the files and local
    /// syslog(3) callers).
    pub fn default_for(target: &Output) -> QueuePolicy {
        match target {
            Output::Forward(_) | Output::JournalRemote(_) | Output::Kafka(_) => {
                QueuePolicy::BlockBounded
            }
            _ => QueuePolicy::Block,
        }
    }
}

impl std::str::FromStr for QueuePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "block" => Ok(QueuePolicy::Block),
            "drop" => Ok(QueuePolicy::Drop),
            "drop-oldest" => Ok(QueuePolicy::DropOldest),
            "block-bounded" => Ok(QueuePolicy::BlockBounded),
            _ => Err(format!(
                "'{s}' is not a queue policy: block, block-bounded, drop or drop-oldest"
            )),
        }
    }
}

impl fmt::Display for QueuePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueuePolicy::Block => "block",
            QueuePolicy::Drop => "drop",
            QueuePolicy::DropOldest => "drop-oldest",
            QueuePolicy::BlockBounded => "block-bounded",
        })
    }
}

/// The default bound of one output's queue, in bytes of messages: one full input batch.
pub const DEFAULT_QUEUE_SIZE: usize = 256 << 10;
/// The range `queue-size` accepts: from one largest message to 1 GiB.
pub(super) const QUEUE_SIZE_RANGE: std::ops::RangeInclusive<usize> = 64 * 1024..=1 << 30;

/// One output: where messages go, which of them, how they are written, and how much may wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// Where.
    pub target: Output,
    /// Which messages (`match`, `transport`, `program`, `hostname`, `source`).
    pub route: Route,
    /// How, for files and stderr.
    pub format: LineFormat,
    /// The zone of the times a line writes without the sender's own (`time-zone`).
    pub zone: Zone,
    /// What a full queue does (`queue-policy`).
    pub policy: QueuePolicy,
    /// The queue's bound in bytes (`queue-size`).
    pub queue_size: usize,
    /// For a forward output: the wire, TLS and disk queue.
    pub forward: ForwardSpec,
    /// For a Kafka output: each record keyed by the message's hostname (`kafka-key =
    /// "hostname"`), so that one host's messages stay in order in one partition.
    pub kafka_key_hostname: bool,
    /// For a Kafka output: its batches compressed with Snappy (`kafka-compression = "snappy"`).
    pub kafka_snappy: bool,
}

impl OutputSpec {
    /// Every message, in the detailed format: what `--output` and `output = "..."` mean.
    pub fn everything(target: Output) -> OutputSpec {
        OutputSpec {
            policy: QueuePolicy::default_for(&target),
            target,
            route: Route::all(),
            format: LineFormat::Detailed,
            zone: Zone::Local,
            queue_size: DEFAULT_QUEUE_SIZE,
            forward: ForwardSpec::default(),
            kafka_key_hostname: false,
            kafka_snappy: false,
        }
    }
}

/// Parses `"0"` (off), `"250ms"`, `"30s"`, `"5m"`, `"1h"` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 250ms, 30s, 5m or 1h"))?;
    // Minutes and hours saturate; each key's range (MAX_DURATION) then bounds the result, so
    // no deadline computed from it can overflow the clock.
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("'{s}' has an unknown unit (use ms, s, m or h)")),
    };
    Ok((!d.is_zero()).then_some(d))
}

/// A duration as the configuration writes it (`"0"` for none, `"90s"`, `"250ms"`).
pub fn fmt_duration(d: Option<Duration>) -> String {
    match d {
        None => "0".into(),
        Some(d) if d.subsec_millis() != 0 => format!("{}ms", d.as_millis()),
        Some(d) => format!("{}s", d.as_secs()),
    }
}

#[cfg(test)]
mod journal_remote_tests {
    use super::*;

    #[test]
    fn a_journal_remote_target_reads_and_prints_back() {
        let out: Output = "journal-remote+http://collector.example:19532"
            .parse()
            .unwrap();
        assert_eq!(
            out,
            Output::JournalRemote(JournalRemote {
                host: "collector.example".into(),
                port: 19532,
                tls: false,
            })
        );
        assert_eq!(
            out.to_string(),
            "journal-remote+http://collector.example:19532"
        );
        let v6: Output = "journal-remote+http://[::1]:19532".parse().unwrap();
        assert_eq!(v6.to_string(), "journal-remote+http://[::1]:19532");
        let https: Output = "journal-remote+https://c:19532".parse().unwrap();
        assert_eq!(https.to_string(), "journal-remote+https://c:19532");
        for bad in [
            "journal-remote+http://c",
            "journal-remote+http://:1",
            "journal-remote+http://c:0",
            "journal-remote+ftp://c:1",
        ] {
            assert!(bad.parse::<Output>().is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod kafka_tests {
    use super::*;

    #[test]
    fn a_kafka_target_reads_and_prints_back() {
        let k: Kafka = "kafka://b1:9092,[::1]:9093/syslog.all".parse().unwrap();
        assert_eq!(
            k.brokers,
            vec![("b1".to_owned(), 9092), ("::1".to_owned(), 9093)]
        );
        assert_eq!(k.topic, "syslog.all");
        assert!(!k.tls);
        assert_eq!(k.to_string(), "kafka://b1:9092,[::1]:9093/syslog.all");
        let k: Kafka = "kafka+tls://b1:9093/logs".parse().unwrap();
        assert!(k.tls);
        for bad in [
            "kafka://b1:9092",
            "kafka://b1/logs",
            "kafka://b1:0/logs",
            "kafka://b1:9092/",
            "kafka://b1:9092/a b",
            "kafka://b1:9092/..",
        ] {
            assert!(bad.parse::<Kafka>().is_err(), "{bad}");
        }
    }
}
