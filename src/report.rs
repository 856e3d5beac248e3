//! What `logger --status` shows and the metrics expose: a picture of the running daemon that
//! the service loop takes on request (reading counters, copying names), and its renderings as
//! the documented JSON of `logger --status --json` and as text for a person. Pure.
//!
//! The JSON schema (stable; fields are added, never renamed or removed):
//!
//! ```text
//! { "version": "0.1.0", "pid": 123, "started": RFC3339, "uptime_seconds": 12,
//!   "configuration": { "file": PATH | null, "loaded": RFC3339 },
//!   "last_reload": null | { "at": RFC3339, "ok": bool, "error": TEXT | null },
//!   "totals": { "received", "written", "dropped", "rate_limited", "unrouted", "oversized",
//!               "rejected", "queue_dropped", "lost", "truncated", "missed": N },
//!   "inputs": [ { "listen": URL, "bound": URL, "connections": N, "received": N,
//!                 "truncated": N, "missed": N, "refused": { REASON: N, ... } } ],
//!   "outputs": [ { "output": NAME, "written", "queued", "queued_bytes", "disk_queued",
//!                  "dropped", "rejected", "errors": N,
//!                  "connection": null | { "connected": bool, "remote": URL | null,
//!                                         "error": TEXT | null } } ] }
//! ```
//!
//! REASON is one of `not_allowed`, `oversized`, `max_connections`, `evicted`, `idle`, `slow`,
//! `tls_failed`, `not_tls`, `relp_error`, `read_error` ([`Snapshot::refusals`]).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::outputs::formats::json::string;
use crate::outputs::formats::line::push_rfc3339;
use crate::outputs::forward::LinkState;
use crate::stats::Snapshot;

/// The daemon as the loop saw it when asked.
#[derive(Debug, Clone)]
pub struct Report {
    /// This build's version.
    pub version: &'static str,
    /// The daemon's process id.
    pub pid: u32,
    /// When it started serving.
    pub started: SystemTime,
    /// How long it has served.
    pub uptime: Duration,
    /// The configuration file it read, if any.
    pub config_file: Option<PathBuf>,
    /// When the running configuration was loaded (start or the last reload that applied).
    pub loaded: SystemTime,
    /// The last reload asked for, and how it went.
    pub last_reload: Option<ReloadOutcome>,
    /// Every counter, summed over inputs (running and stopped), the loop and the outputs.
    pub totals: Snapshot,
    /// Every running input.
    pub inputs: Vec<InputReport>,
    /// Every running output.
    pub outputs: Vec<OutputReport>,
}

/// How a reload went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// When it was asked for.
    pub at: SystemTime,
    /// Why it was refused (the running configuration kept), or None if it applied.
    pub error: Option<String>,
}

/// One input.
#[derive(Debug, Clone)]
pub struct InputReport {
    /// As configured.
    pub listen: String,
    /// As bound (port 0 resolved).
    pub bound: String,
    /// Its own counters, with what it counted before a reload restarted it.
    pub stats: Snapshot,
}

/// One output.
#[derive(Debug, Clone, Default)]
pub struct OutputReport {
    /// What it writes to (`journal`, `file:/var/log/auth.log`, `relp://a:2514`).
    pub name: String,
    /// Messages written (sent and acknowledged, for a forward output).
    pub written: u64,
    /// Messages held, not yet written.
    pub queued: u64,
    /// Bytes its queue holds.
    pub queued_bytes: u64,
    /// Of `queued`, the messages on its disk queue.
    pub disk_queued: u64,
    /// Messages dropped for it (a full queue).
    pub dropped: u64,
    /// Messages it refused for good.
    pub rejected: u64,
    /// Failed writes (each retried).
    pub errors: u64,
    /// A forward output's connection.
    pub link: Option<LinkState>,
}

impl InputReport {
    /// This input's object in `--status --json`.
    fn push_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"listen\":");
        string(out, &self.listen);
        out.extend_from_slice(b",\"bound\":");
        string(out, &self.bound);
        let s = &self.stats;
        let _ = write!(Text(out), ",\"connections\":{}", s.connections);
        json_num(out, "received", s.received);
        json_num(out, "truncated", s.truncated);
        json_num(out, "missed", s.missed);
        out.extend_from_slice(b",\"refused\":{");
        for (j, (reason, n)) in s.refusals().into_iter().enumerate() {
            let _ = write!(
                Text(out),
                "{}\"{reason}\":{n}",
                if j > 0 { "," } else { "" }
            );
        }
        out.extend_from_slice(b"}}");
    }
}

impl OutputReport {
    /// This output's object in `--status --json`.
    fn push_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"output\":");
        string(out, &self.name);
        for (key, n) in [
            ("written", self.written),
            ("queued", self.queued),
            ("queued_bytes", self.queued_bytes),
            ("disk_queued", self.disk_queued),
            ("dropped", self.dropped),
            ("rejected", self.rejected),
            ("errors", self.errors),
        ] {
            json_num(out, key, n);
        }
        out.extend_from_slice(b",\"connection\":");
        match &self.link {
            None => out.extend_from_slice(b"null"),
            Some(link) => {
                let _ = write!(
                    Text(out),
                    "{{\"connected\":{},\"remote\":",
                    link.remote.is_some()
                );
                json_opt(out, link.remote.as_deref());
                out.extend_from_slice(b",\"error\":");
                json_opt(out, link.error.as_deref());
                out.push(b'}');
            }
        }
        out.push(b'}');
    }
}

/// A time as a JSON string (RFC 3339, UTC).
fn json_time(out: &mut Vec<u8>, t: SystemTime) {
    out.push(b'"');
    push_rfc3339(out, t);
    out.push(b'"');
}

/// A JSON string, or `null`.
fn json_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// `,"key":n`.
fn json_num(out: &mut Vec<u8>, key: &str, n: u64) {
    let _ = write!(Text(out), ",\"{key}\":{n}");
}

impl Report {
    /// The JSON of `logger --status --json` (the schema in the module documentation), one line.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(b"{\"version\":");
        string(&mut out, self.version);
        let _ = write!(Text(&mut out), ",\"pid\":{},\"started\":", self.pid);
        json_time(&mut out, self.started);
        let _ = write!(
            Text(&mut out),
            ",\"uptime_seconds\":{},\"configuration\":{{\"file\":",
            self.uptime.as_secs()
        );
        let file = self.config_file.as_ref().map(|f| f.display().to_string());
        json_opt(&mut out, file.as_deref());
        out.extend_from_slice(b",\"loaded\":");
        json_time(&mut out, self.loaded);
        out.extend_from_slice(b"},\"last_reload\":");
        match &self.last_reload {
            None => out.extend_from_slice(b"null"),
            Some(r) => {
                out.extend_from_slice(b"{\"at\":");
                json_time(&mut out, r.at);
                let _ = write!(Text(&mut out), ",\"ok\":{},\"error\":", r.error.is_none());
                json_opt(&mut out, r.error.as_deref());
                out.push(b'}');
            }
        }
        let t = &self.totals;
        let _ = write!(Text(&mut out), ",\"totals\":{{\"received\":{}", t.received);
        for (key, n) in [
            ("written", t.written),
            ("dropped", t.dropped()),
            ("rate_limited", t.rate_limited),
            ("unrouted", t.unrouted),
            ("oversized", t.oversized),
            ("rejected", t.rejected),
            ("queue_dropped", t.queue_dropped),
            ("lost", t.lost),
            ("truncated", t.truncated),
            ("missed", t.missed),
        ] {
            json_num(&mut out, key, n);
        }
        out.extend_from_slice(b"},\"inputs\":[");
        for (i, input) in self.inputs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            input.push_json(&mut out);
        }
        out.extend_from_slice(b"],\"outputs\":[");
        for (i, output) in self.outputs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            output.push_json(&mut out);
        }
        out.extend_from_slice(b"]}");
        String::from_utf8(out).unwrap_or_default()
    }

    /// The text of `logger --status`: what runs, for a person.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let mut stamp = Vec::new();
        push_rfc3339(&mut stamp, self.loaded);
        let _ = writeln!(
            s,
            "logger {}, pid {}, up {}",
            self.version,
            self.pid,
            human_duration(self.uptime)
        );
        let _ = writeln!(
            s,
            "configuration: {}, loaded {}",
            self.config_file
                .as_ref()
                .map_or("built-in defaults".into(), |f| f.display().to_string()),
            String::from_utf8_lossy(&stamp)
        );
        if let Some(r) = &self.last_reload {
            let mut at = Vec::new();
            push_rfc3339(&mut at, r.at);
            let at = String::from_utf8_lossy(&at);
            let _ = match &r.error {
                None => writeln!(s, "last reload: {at}, applied"),
                Some(e) => writeln!(
                    s,
                    "last reload: {at}, REFUSED (running configuration kept): {e}"
                ),
            };
        }
        let t = &self.totals;
        let _ = writeln!(
            s,
            "totals: received {}, written {}, dropped {} (rate-limited {}, unrouted {}, \
             oversized {}, rejected {}, queue full {}), lost at stop {}",
            t.received,
            t.written,
            t.dropped(),
            t.rate_limited,
            t.unrouted,
            t.oversized,
            t.rejected,
            t.queue_dropped,
            t.lost
        );
        let _ = writeln!(s, "inputs:");
        for i in &self.inputs {
            let refused: Vec<String> = i
                .stats
                .refusals()
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            let _ = writeln!(
                s,
                "  {}  received {}, connections {}{}",
                i.bound,
                i.stats.received,
                i.stats.connections,
                match refused.is_empty() {
                    true => String::new(),
                    false => format!(", refused: {}", refused.join(", ")),
                }
            );
        }
        let _ = writeln!(s, "outputs:");
        for o in &self.outputs {
            let _ = write!(
                s,
                "  {}  written {}, queued {} ({} bytes{}), dropped {}, rejected {}, errors {}",
                o.name,
                o.written,
                o.queued,
                o.queued_bytes,
                match o.disk_queued {
                    0 => String::new(),
                    n => format!(", {n} on disk"),
                },
                o.dropped,
                o.rejected,
                o.errors
            );
            if let Some(link) = &o.link {
                let _ = write!(s, "; {link}");
            }
            s.push('\n');
        }
        s
    }
}

/// `5m3s`, `2h1m`, `3d4h`.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{}h", s / 86_400, s / 3600 % 24),
    }
}

/// `fmt::Write` into a byte buffer.
struct Text<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Text<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn sample() -> Report {
        let input = Snapshot {
            received: 7,
            not_allowed: 2,
            connections: 1,
            ..Snapshot::default()
        };
        Report {
            version: "0.1.0",
            pid: 42,
            started: UNIX_EPOCH,
            uptime: Duration::from_secs(305),
            config_file: Some("/etc/logger/logger.toml".into()),
            loaded: UNIX_EPOCH,
            last_reload: Some(ReloadOutcome {
                at: UNIX_EPOCH,
                error: Some("line 3: \"bad\" key".into()),
            }),
            totals: input,
            inputs: vec![InputReport {
                listen: "tcp://127.0.0.1:0".into(),
                bound: "tcp://127.0.0.1:5514".into(),
                stats: input,
            }],
            outputs: vec![OutputReport {
                name: "relp://a:2514".into(),
                queued: 3,
                link: Some(LinkState {
                    remote: None,
                    error: Some("connection refused".into()),
                }),
                ..OutputReport::default()
            }],
        }
    }

    #[test]
    fn the_json_follows_the_documented_schema() {
        let json = sample().to_json();
        for part in [
            "{\"version\":\"0.1.0\",\"pid\":42,\"started\":\"1970-01-01T00:00:00.000000Z\"",
            "\"uptime_seconds\":305",
            "\"configuration\":{\"file\":\"/etc/logger/logger.toml\"",
            "\"last_reload\":{\"at\":\"1970-01-01T00:00:00.000000Z\",\"ok\":false,\"error\":\"line 3: \\\"bad\\\" key\"}",
            "\"inputs\":[{\"listen\":\"tcp://127.0.0.1:0\",\"bound\":\"tcp://127.0.0.1:5514\",\"connections\":1,\"received\":7",
            "\"refused\":{\"not_allowed\":2,\"oversized\":0",
            "\"outputs\":[{\"output\":\"relp://a:2514\",\"written\":0,\"queued\":3",
            "\"connection\":{\"connected\":false,\"remote\":null,\"error\":\"connection refused\"}",
        ] {
            assert!(json.contains(part), "{part} not in {json}");
        }
        assert!(!json.contains('\n'));
    }

    #[test]
    fn the_text_says_what_runs_and_what_was_refused() {
        let text = sample().to_text();
        assert!(text.contains("up 5m5s"), "{text}");
        assert!(text.contains("REFUSED"), "{text}");
        assert!(text.contains("refused: not_allowed 2"), "{text}");
        assert!(text.contains("disconnected: connection refused"), "{text}");
    }
}
