//! The metrics a monitoring system scrapes: every counter `logger --status` shows, in the
//! Prometheus text exposition format (0.0.4), at `GET /metrics` on `metrics-listen`.
//!
//! Names follow Prometheus' conventions: a `logger_` prefix, `_total` on counters, units in
//! the name (`_bytes`, `_seconds`), labels for the input or output (`input="udp://..."`,
//! `output="file:/var/log/auth.log"`) and for a refusal's reason. Counters never go back: an
//! input a reload restarts keeps its counts, and totals include inputs that stopped.
//!
//! The responder is a thread of its own with a blocking listener, off by default: one
//! connection at a time, the allow-list checked before anything is read, a request read for at
//! most [`CLIENT_TIMEOUT`] and [`MAX_REQUEST`] bytes. Its numbers come from the service loop
//! (a `Request::Report`), so the loop never waits on a scraper; a scraper waits on the loop.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, UNIX_EPOCH};

use crate::allow::AllowList;
use crate::event::{Event, Request};
use crate::report::{InputReport, OutputReport, Report};
use crate::stats::Snapshot;

/// How long a scraper may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request head read.
const MAX_REQUEST: usize = 8192;
/// How long the loop may take to answer.
const REPORT_WAIT: Duration = Duration::from_secs(10);

/// The exposition of `report`: the daemon's families, then each input's, then each output's.
pub(crate) fn render(report: &Report) -> String {
    let mut out = Exposition(String::with_capacity(4096));
    daemon_families(&mut out, report);
    input_families(&mut out, report);
    output_families(&mut out, report);
    out.0
}

/// The text being written.
struct Exposition(String);

impl Exposition {
    /// One metric family: its HELP and TYPE lines, then a sample per label set.
    fn family(&mut self, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(self.0, "{name}{labels} {value}");
        }
    }

    /// A family of one sample without labels.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help, &[(String::new(), value)]);
    }
}

fn seconds_since_epoch(t: std::time::SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// The build, the configuration and the totals.
fn daemon_families(out: &mut Exposition, report: &Report) {
    let version = format!("{{version=\"{}\"}}", label(report.version));
    out.family(
        "logger_build_info",
        "gauge",
        "The running build, as a label.",
        &[(version, 1)],
    );
    out.single(
        "logger_start_time_seconds",
        "gauge",
        "When the daemon started, in seconds since the epoch.",
        seconds_since_epoch(report.started),
    );
    let reload_ok = report
        .last_reload
        .as_ref()
        .is_none_or(|r| r.error.is_none());
    out.single(
        "logger_config_last_reload_successful",
        "gauge",
        "1 if the last reload applied (or none was asked), 0 if it was refused.",
        u64::from(reload_ok),
    );
    out.single(
        "logger_config_loaded_time_seconds",
        "gauge",
        "When the running configuration was loaded, in seconds since the epoch.",
        seconds_since_epoch(report.loaded),
    );
    let t = &report.totals;
    out.single(
        "logger_received_total",
        "counter",
        "Messages received by every input, stopped ones included.",
        t.received,
    );
    out.single(
        "logger_rate_limited_total",
        "counter",
        "Messages dropped by the per-source rate limit.",
        t.rate_limited,
    );
    out.single(
        "logger_unrouted_total",
        "counter",
        "Messages no output's rules took.",
        t.unrouted,
    );
}

/// An input's label set.
fn input_label(i: &InputReport) -> String {
    format!("input=\"{}\"", label(&i.listen))
}

/// An output's label set.
fn output_label(o: &OutputReport) -> String {
    format!("output=\"{}\"", label(&o.name))
}

/// Each input's counters.
fn input_families(out: &mut Exposition, report: &Report) {
    let each = |f: fn(&Snapshot) -> u64| -> Vec<(String, u64)> {
        let sample = |i: &InputReport| (format!("{{{}}}", input_label(i)), f(&i.stats));
        report.inputs.iter().map(sample).collect()
    };
    out.family(
        "logger_input_received_total",
        "counter",
        "Messages an input received.",
        &each(|s| s.received),
    );
    out.family(
        "logger_input_truncated_total",
        "counter",
        "Datagrams an input cut at max-message-size (delivered, marked).",
        &each(|s| s.truncated),
    );
    out.family(
        "logger_input_missed_total",
        "counter",
        "Records an input knows it missed (kernel messages the ring buffer overwrote unread).",
        &each(|s| s.missed),
    );
    let refused: Vec<(String, u64)> = report
        .inputs
        .iter()
        .flat_map(|i| {
            let input = input_label(i);
            i.stats
                .refusals()
                .into_iter()
                .map(move |(reason, n)| (format!("{{{input},reason=\"{reason}\"}}"), n))
        })
        .collect();
    out.family(
        "logger_input_refused_total",
        "counter",
        "Senders, connections or frames an input refused or closed, by reason.",
        &refused,
    );
    out.family(
        "logger_input_connections",
        "gauge",
        "Stream connections open now.",
        &each(|s| s.connections),
    );
}

/// Each output's counters, queues and link.
fn output_families(out: &mut Exposition, report: &Report) {
    let each = |f: fn(&OutputReport) -> u64| -> Vec<(String, u64)> {
        let sample = |o: &OutputReport| (format!("{{{}}}", output_label(o)), f(o));
        report.outputs.iter().map(sample).collect()
    };
    out.family(
        "logger_output_written_total",
        "counter",
        "Messages an output wrote (sent and acknowledged, for a forward output).",
        &each(|o| o.written),
    );
    out.family(
        "logger_output_dropped_total",
        "counter",
        "Messages dropped for an output because its queue was full.",
        &each(|o| o.dropped),
    );
    out.family(
        "logger_output_rejected_total",
        "counter",
        "Messages an output refused for good.",
        &each(|o| o.rejected),
    );
    out.family(
        "logger_output_errors_total",
        "counter",
        "Failed writes of an output (each retried).",
        &each(|o| o.errors),
    );
    out.family(
        "logger_output_queued_messages",
        "gauge",
        "Messages an output holds, not yet written.",
        &each(|o| o.queued),
    );
    out.family(
        "logger_output_queued_bytes",
        "gauge",
        "Bytes an output's queue holds.",
        &each(|o| o.queued_bytes),
    );
    out.family(
        "logger_output_disk_queued_messages",
        "gauge",
        "Messages an output holds on its disk queue.",
        &each(|o| o.disk_queued),
    );
    let connected: Vec<(String, u64)> = report
        .outputs
        .iter()
        .filter_map(|o| {
            let link = o.link.as_ref()?;
            let up = u64::from(link.remote.is_some());
            Some((format!("{{{}}}", output_label(o)), up))
        })
        .collect();
    out.family(
        "logger_output_connected",
        "gauge",
        "1 while a forward output is connected to a remote.",
        &connected,
    );
}

/// A label value: backslash, double quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `listener` on a thread of its own until the process exits.
pub(crate) fn spawn(
    listener: TcpListener,
    allow: AllowList,
    events: Sender<Event>,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let allowed = conn.peer_addr().is_ok_and(|p| allow.allows(p.ip()));
                if allowed {
                    serve(conn, &events);
                }
            }
        })
        .map(|_| ())
}

fn serve(mut conn: TcpStream, events: &Sender<Event>) {
    let _ = conn.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = conn.set_write_timeout(Some(CLIENT_TIMEOUT));
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, body) = match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => match ask(events) {
            Some(report) => ("200 OK", render(&report)),
            None => ("503 Service Unavailable", "the daemon is stopping\n".into()),
        },
        (b"GET" | b"HEAD", _) => ("404 Not Found", "metrics are at /metrics\n".into()),
        _ => ("405 Method Not Allowed", "GET /metrics\n".into()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    if method != b"HEAD" {
        let _ = conn.write_all(body.as_bytes());
    }
}

fn ask(events: &Sender<Event>) -> Option<Report> {
    let (tx, rx) = channel();
    events.send(Event::Request(Request::Report(tx))).ok()?;
    rx.recv_timeout(REPORT_WAIT).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{InputReport, OutputReport};
    use crate::stats::Snapshot;

    #[test]
    fn every_family_is_typed_and_labels_are_escaped() {
        let stats = Snapshot {
            received: 5,
            ..Snapshot::default()
        };
        let report = Report {
            version: "0.1.0",
            pid: 1,
            started: UNIX_EPOCH,
            uptime: Duration::ZERO,
            config_file: None,
            loaded: UNIX_EPOCH,
            last_reload: None,
            totals: stats,
            inputs: vec![InputReport {
                listen: "unix:///run/a \"b\"".into(),
                bound: String::new(),
                stats,
            }],
            outputs: vec![OutputReport {
                name: "file:/var/log/x\\y".into(),
                written: 5,
                ..OutputReport::default()
            }],
        };
        let text = render(&report);
        assert!(text.contains("logger_input_received_total{input=\"unix:///run/a \\\"b\\\"\"} 5"));
        assert!(text.contains("logger_output_written_total{output=\"file:/var/log/x\\\\y\"} 5"));
        assert!(text.contains(
            "logger_input_refused_total{input=\"unix:///run/a \\\"b\\\"\",reason=\"not_allowed\"} 0"
        ));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} untyped");
        }
    }
}
