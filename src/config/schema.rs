//! Every key of the configuration file, declared once: its name, how its value is read into the
//! configuration (with its range and its error), and how the configuration shows it back.
//! `merge` reads the file and the flags through these tables, `show` prints through them, and
//! a test holds `--help` and the shipped file to the same names: a key added here is a key
//! everywhere. Defaults are `Config::defaults`.

use std::ops::RangeInclusive;
use std::path::PathBuf;

use super::document::{
    Fault, Table, Value, boolean, duration, integer, positive_duration, size, string, strings,
};
use super::forward::Remote;
use super::input::InputSpec;
use super::values::{LineFormat, Output, OutputSpec, QUEUE_SIZE_RANGE, QueuePolicy, fmt_duration};
use super::{Config, Limits};
use crate::allow::{AllowList, Network};
use crate::listen::ListenAddr;
use syslog::message::Transport;

/// One key of a table whose values end up in a `T`.
pub(super) struct Key<T: 'static> {
    /// Its name in the file, and the flag's without `--` where there is one.
    pub name: &'static str,
    /// What it means, for logger.toml(5): one paragraph, generated into the man page.
    pub doc: &'static str,
    /// Reads its value into `T`, checking it.
    pub read: fn(&mut T, &Value<'_>) -> Result<(), Fault>,
    /// Its value in `T` as TOML; None when it is unset and printed not at all.
    pub show: fn(&T) -> Option<String>,
}

/// The key of `keys` called `name`.
pub(super) fn find<T>(keys: &'static [Key<T>], name: &str) -> Option<&'static Key<T>> {
    keys.iter().find(|k| k.name == name)
}

/// The names of `keys`, for messages.
pub(super) fn names<T>(keys: &[Key<T>]) -> String {
    let names: Vec<&str> = keys.iter().map(|k| k.name).collect();
    names.join(", ")
}

/// RFC 5424 requires receivers to take 2048 bytes; RFC 5426 says UDP receivers should take
/// 8 KiB. Below that we would truncate conforming senders.
const MESSAGE_SIZE_RANGE: RangeInclusive<usize> = 8192..=16 * 1024 * 1024;
const RECEIVE_BUFFER_RANGE: RangeInclusive<usize> = 4096..=1 << 30;
const CONNECTIONS_RANGE: RangeInclusive<i64> = 1..=65536;

/// The top-level keys, in the order `--check-config` prints them. `output` comes last: its
/// tables are printed after every plain key, since TOML puts the keys that follow a table
/// header into that table.
pub(super) const KEYS: &[Key<Config>] = &[
    Key {
        name: "listen",
        doc: "Addresses to receive on, replacing the defaults (udp://127.0.0.1:5514, tcp://127.0.0.1:5514, unix://RUNTIME/log): unix:///PATH, unix-stream:///PATH, udp://, tcp://, tls://, relp://, relp+tls://, journal-remote://, journal-remote+https:// with ADDR:PORT. tls://, relp+tls:// and journal-remote+https:// need an [[input]] table for their certificate.",
        read: |c, v| {
            let listen: Vec<ListenAddr> = strings(v)?
                .iter()
                .map(|u| u.parse::<ListenAddr>())
                .collect::<Result<_, _>>()?;
            c.take_over_inputs();
            let limits = c.limits.clone();
            c.inputs
                .extend(listen.into_iter().map(|a| InputSpec::plain(a, &limits)));
            Ok(())
        },
        show: |c| {
            let plain: Vec<String> = c
                .inputs
                .iter()
                .filter(|i| i.is_plain(&c.limits))
                .map(|i| i.listen.to_string())
                .collect();
            // With only [[input]] tables, they say it; `listen = []` alone says "only what
            // the service manager passes".
            (!plain.is_empty() || c.inputs.is_empty()).then(|| list(plain.iter()))
        },
    },
    Key {
        name: "pidfile",
        doc: "With --fork, the PID file to write (default /run/logger.pid as root, none otherwise). An existing file must be our own regular file.",
        read: |c, v| {
            c.pidfile = Some(absolute(v)?);
            Ok(())
        },
        show: |c| c.pidfile.as_ref().map(|p| quote(&p.display().to_string())),
    },
    Key {
        name: "user",
        doc: "The user to run as once sockets are bound and outputs opened.",
        read: |c, v| {
            c.user = Some(string(v)?.to_owned());
            Ok(())
        },
        show: |c| c.user.as_deref().map(quote),
    },
    Key {
        name: "group",
        doc: "The group to run as once sockets are bound and outputs opened.",
        read: |c, v| {
            c.group = Some(string(v)?.to_owned());
            Ok(())
        },
        show: |c| c.group.as_deref().map(quote),
    },
    Key {
        name: "umask",
        doc: "With --fork, the file-creation mask, in octal.",
        read: |c, v| {
            let s = string(v)?;
            c.umask =
                (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| matches!(b, b'0'..=b'7')))
                    .then(|| u32::from_str_radix(s, 8).ok())
                    .flatten()
                    .filter(|m| *m <= 0o777)
                    .ok_or_else(|| format!("'{s}' is not an octal mask like 027"))?;
            Ok(())
        },
        show: |c| Some(quote(&format!("{:03o}", c.umask))),
    },
    Key {
        name: "log-level",
        doc: "How much of its own activity logger logs: error, warn, info, debug or trace.",
        read: |c, v| {
            let s = string(v)?;
            c.log_level = s
                .parse()
                .map_err(|_| format!("'{s}' is not one of error, warn, info, debug, trace"))?;
            Ok(())
        },
        show: |c| Some(quote(&c.log_level.to_string().to_lowercase())),
    },
    Key {
        name: "log-file",
        doc: "Where logger's own log goes instead of the journal or standard error (an absolute path, opened without following links).",
        read: |c, v| {
            c.log_file = absolute(v)?;
            Ok(())
        },
        show: |c| Some(quote(&c.log_file.display().to_string())),
    },
    Key {
        name: "heartbeat",
        doc: "How often a line of counters is logged (a duration such as \"1h\"; \"0\" for never).",
        read: |c, v| {
            c.heartbeat = duration(v)?;
            Ok(())
        },
        show: |c| Some(quote(&fmt_duration(c.heartbeat))),
    },
    Key {
        name: "rate-limit",
        doc: "Messages per second accepted from one source over datagram transports (0: no limit); stream senders are held back by TCP instead, and the journal and kernel log inputs by reading no further.",
        read: |c, v| {
            c.rate_limit.per_second = count(v)?;
            Ok(())
        },
        show: |c| Some(c.rate_limit.per_second.to_string()),
    },
    Key {
        name: "rate-limit-burst",
        doc: "How many messages over the rate a source may send at once.",
        read: |c, v| {
            c.rate_limit.burst = count(v)?;
            Ok(())
        },
        show: |c| Some(c.rate_limit.burst.to_string()),
    },
    Key {
        name: "escape-control-characters",
        doc: "Escape control characters of every accepted message before any output sees it (true), or pass them on as sent (false; file lines are escaped anyway).",
        read: |c, v| {
            c.escape_control_characters = boolean(v)?;
            Ok(())
        },
        show: |c| Some(c.escape_control_characters.to_string()),
    },
    Key {
        name: "journal-socket",
        doc: "journald's native socket, for the journal output.",
        read: |c, v| {
            c.journal_socket = PathBuf::from(string(v)?);
            Ok(())
        },
        show: |c| Some(quote(&c.journal_socket.display().to_string())),
    },
    Key {
        name: "stop-timeout",
        doc: "At a stop, how long outputs may take to write out what they hold; what is still queued then is logged and counted as lost.",
        read: |c, v| {
            c.stop_timeout = positive_duration(v)?;
            Ok(())
        },
        show: |c| Some(quote(&fmt_duration(Some(c.stop_timeout)))),
    },
    Key {
        name: "state-dir",
        doc: "Where read positions are kept (the kernel log's, kmsg.position), so that a restart reads on where the last one stopped. Default: $STATE_DIRECTORY (the unit's StateDirectory=logger), else /var/lib/logger.",
        read: |c, v| {
            c.state_dir = absolute(v)?;
            Ok(())
        },
        show: |c| Some(quote(&c.state_dir.display().to_string())),
    },
    Key {
        name: "control-socket",
        doc: "The control socket `logger --status` and `logger --reload` talk to (a unix stream socket; \"\" for none). Default: control in the runtime directory (RUNTIME_DIRECTORY, else /run/logger as root, else $XDG_RUNTIME_DIR/logger).",
        read: |c, v| {
            let s = string(v)?;
            c.control_socket = match s {
                "" => None,
                path => Some(absolute_path(path)?),
            };
            Ok(())
        },
        show: |c| {
            Some(quote(
                &c.control_socket
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string()),
            ))
        },
    },
    Key {
        name: "control-mode",
        doc: "The control socket's mode: \"0600\" (root and the daemon's user only) or \"0660\" (its group too). Connections are also checked by their peer credentials.",
        read: |c, v| {
            c.control_mode = match string(v)? {
                "0600" | "600" => 0o600,
                "0660" | "660" => 0o660,
                other => {
                    return Err(format!("'{other}' is not a control-mode: 0600 or 0660").into());
                }
            };
            Ok(())
        },
        show: |c| Some(quote(&format!("{:04o}", c.control_mode))),
    },
    Key {
        name: "metrics-listen",
        doc: "Serve metrics in the Prometheus text format at GET /metrics on this address (\"127.0.0.1:9327\"); off by default. Read at start: a reload keeps the running endpoint.",
        read: |c, v| {
            let s = string(v)?;
            c.metrics_listen =
                Some(s.parse().map_err(|_| {
                    format!("'{s}' is not an address and port like 127.0.0.1:9327")
                })?);
            Ok(())
        },
        show: |c| c.metrics_listen.map(|a| quote(&a.to_string())),
    },
    Key {
        name: "metrics-allow",
        doc: "Networks allowed to scrape the metrics; others are closed before anything is read (default: everyone who can reach metrics-listen).",
        read: |c, v| {
            let networks = strings(v)?
                .iter()
                .map(|n| n.parse::<Network>())
                .collect::<Result<Vec<_>, _>>()?;
            c.metrics_allow = AllowList::new(networks);
            Ok(())
        },
        show: |c| {
            (!c.metrics_allow.is_everyone())
                .then(|| some_list(c.metrics_allow.networks().iter()))
                .flatten()
        },
    },
    Key {
        name: "output",
        doc: "Outputs, each taking every message: auto, journal, stderr, file:PATH or a forward URL. [[output]] tables choose with rules instead.",
        read: |c, v| {
            c.outputs = outputs(v)?;
            Ok(())
        },
        // Printed as [[output]] tables by `show`.
        show: |_| None,
    },
    Key {
        name: "input",
        doc: "An [[input]] table: one listener with its own allow-list, TLS files and limits.",
        read: |c, v| {
            let tables = inputs(v, &c.limits)?;
            c.take_over_inputs();
            c.inputs.extend(tables);
            Ok(())
        },
        // Printed as [[input]] tables by `show`.
        show: |_| None,
    },
];

/// The limits, top-level keys that an `[[input]]` table may set for itself.
pub(super) const LIMIT_KEYS: &[Key<Limits>] = &[
    Key {
        name: "max-message-size",
        doc: "The longest message accepted, in bytes; a longer datagram is cut (and marked truncated), a longer stream frame dropped and counted.",
        read: |l, v| {
            l.max_message_size = size(v, MESSAGE_SIZE_RANGE)?;
            Ok(())
        },
        show: |l| Some(l.max_message_size.to_string()),
    },
    Key {
        name: "max-connections",
        doc: "Stream connections open at once per listener; beyond it the most idle one is closed.",
        read: |l, v| {
            l.max_connections = connections(v)?;
            Ok(())
        },
        show: |l| Some(l.max_connections.to_string()),
    },
    Key {
        name: "max-connections-per-source",
        doc: "Stream connections open at once from one address.",
        read: |l, v| {
            l.max_connections_per_source = connections(v)?;
            Ok(())
        },
        show: |l| Some(l.max_connections_per_source.to_string()),
    },
    Key {
        name: "frame-timeout",
        doc: "A stream frame, a TLS handshake or a TLS record begun and not finished this long closes its connection.",
        read: |l, v| {
            l.frame_timeout = positive_duration(v)?;
            Ok(())
        },
        show: |l| Some(quote(&fmt_duration(Some(l.frame_timeout)))),
    },
    Key {
        name: "idle-timeout",
        doc: "A stream connection that sends nothing this long is closed (\"0\": never).",
        read: |l, v| {
            l.idle_timeout = positive_duration(v)?;
            Ok(())
        },
        show: |l| Some(quote(&fmt_duration(Some(l.idle_timeout)))),
    },
    Key {
        name: "receive-buffer",
        doc: "The kernel receive buffer asked for on datagram sockets logger binds, in bytes (beyond net.core.rmem_max it needs CAP_NET_ADMIN).",
        read: |l, v| {
            l.receive_buffer = size(v, RECEIVE_BUFFER_RANGE)?;
            Ok(())
        },
        show: |l| Some(l.receive_buffer.to_string()),
    },
];

/// The keys of an `[[input]]` table besides the limits, in the order `--check-config` prints
/// them.
pub(super) const INPUT_KEYS: &[Key<InputSpec>] = &[
    Key {
        name: "listen",
        doc: "The address this table describes (as listen above); required.",
        read: |i, v| {
            i.listen = string(v)?.parse()?;
            Ok(())
        },
        show: |i| Some(quote(&i.listen.to_string())),
    },
    Key {
        name: "read",
        doc: "Instead of listen: a log of the host's to read, every entry once, its position kept under state-dir and advanced only once every output took it. \"journal\": the local journal (every field of every entry the service may read; journal-match narrows it). \"kmsg\": the kernel's (/dev/kmsg), with each record's priority, sequence number, time and device.",
        read: |i, v| {
            i.listen = match string(v)? {
                "kmsg" => ListenAddr::path(Transport::Kmsg, "/dev/kmsg"),
                "journal" => ListenAddr::path(Transport::Journal, "/var/log/journal"),
                other => {
                    return Err(format!("'{other}' is not a log to read: journal or kmsg").into());
                }
            };
            Ok(())
        },
        show: |_| None,
    },
    Key {
        name: "journal-match",
        doc: "With read = \"journal\": only entries with these fields, as journalctl matches them ([\"_SYSTEMD_UNIT=nginx.service\", \"PRIORITY=3\"]: both; different values of one field: either; \"+\" between groups: either group).",
        read: |i, v| {
            let matches = strings(v)?;
            for m in &matches {
                let field = m.split('=').next().unwrap_or_default();
                let valid = m == "+"
                    || m.contains('=')
                        && !field.is_empty()
                        && field
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
                if !valid {
                    return Err(format!("'{m}' is not FIELD=value or \"+\"").into());
                }
            }
            i.journal_match = matches.iter().map(|m| m.to_string()).collect();
            Ok(())
        },
        show: |i| {
            (!i.journal_match.is_empty())
                .then(|| some_list(i.journal_match.iter()))
                .flatten()
        },
    },
    Key {
        name: "allow",
        doc: "Networks allowed to send (\"10.0.0.0/8\", \"2001:db8::/32\"); others are refused before anything they send is parsed, counted and logged at a bounded rate.",
        read: |i, v| {
            let networks = strings(v)?
                .iter()
                .map(|n| n.parse::<Network>())
                .collect::<Result<Vec<_>, _>>()?;
            if networks.is_empty() {
                return Err(
                    "an empty list would refuse everyone: leave 'allow' out to allow \
                            everyone"
                        .into(),
                );
            }
            i.allow = AllowList::new(networks);
            Ok(())
        },
        show: |i| some_list(i.allow.networks().iter()),
    },
    Key {
        name: "tls-cert",
        doc: "The certificate chain (PEM) of a tls://, relp+tls:// or journal-remote+https:// input; re-read at a reload.",
        read: |i, v| {
            i.tls.cert = Some(absolute(v)?);
            Ok(())
        },
        show: |i| i.tls.cert.as_ref().map(|p| quote(&p.display().to_string())),
    },
    Key {
        name: "tls-key",
        doc: "The private key (PEM) of tls-cert.",
        read: |i, v| {
            i.tls.key = Some(absolute(v)?);
            Ok(())
        },
        show: |i| i.tls.key.as_ref().map(|p| quote(&p.display().to_string())),
    },
    Key {
        name: "tls-client-ca",
        doc: "Ask clients for a certificate and accept those that chain to these CAs (PEM).",
        read: |i, v| {
            i.tls.client_ca = Some(absolute(v)?);
            Ok(())
        },
        show: |i| {
            i.tls
                .client_ca
                .as_ref()
                .map(|p| quote(&p.display().to_string()))
        },
    },
    Key {
        name: "tls-client-names",
        doc: "Accept only client certificates with one of these names (DNS SAN or CN; \"*.example.net\" matches one label).",
        read: |i, v| {
            i.tls.client_names = strings(v)?;
            if let Some(bad) = i
                .tls
                .client_names
                .iter()
                .find(|n| !crate::tls::valid_name_pattern(n))
            {
                return Err(
                    format!("'{bad}' is not a host name or a pattern like *.example.net").into(),
                );
            }
            Ok(())
        },
        show: |i| some_list(i.tls.client_names.iter()),
    },
    Key {
        name: "tls-client-fingerprints",
        doc: "Accept only client certificates with these SHA-256 fingerprints (\"SHA256:AB:CD:..\").",
        read: |i, v| {
            i.tls.client_fingerprints = strings(v)?
                .iter()
                .map(|f| f.parse())
                .collect::<Result<_, _>>()?;
            Ok(())
        },
        show: |i| some_list(i.tls.client_fingerprints.iter()),
    },
    Key {
        name: "tls-crl",
        doc: "Certificate revocation lists (PEM) for tls-client-ca.",
        read: |i, v| {
            i.tls.crls = match v {
                Value::String(_) => vec![absolute(v)?],
                _ => strings(v)?
                    .iter()
                    .map(|p| absolute_path(p))
                    .collect::<Result<_, _>>()?,
            };
            Ok(())
        },
        show: |i| some_list(i.tls.crls.iter().map(|p| p.display().to_string())),
    },
];

/// `[[input]]` tables, each starting from the top-level `limits`.
fn inputs(v: &Value<'_>, limits: &Limits) -> Result<Vec<InputSpec>, Fault> {
    let Value::Array(tables) = v else {
        return Err("expected [[input]] tables".into());
    };
    tables
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let in_input = |f: Fault| Fault {
                message: format!("input #{}: {}", i + 1, f.message),
                at: f.at.or(Some(t.span())),
            };
            match t.get_ref() {
                Value::Table(table) => input(table, limits).map_err(in_input),
                _ => Err(in_input("expected an [[input]] table".into())),
            }
        })
        .collect()
}

/// One `[[input]]` table.
fn input(table: &Table<'_>, limits: &Limits) -> Result<InputSpec, Fault> {
    let placeholder = ListenAddr::inet(Transport::Udp, ([0, 0, 0, 0], 0).into());
    let mut spec = InputSpec::plain(placeholder, limits);
    let mut listen = false;
    for (name, value) in super::merge::in_file_order(table) {
        let name_text = name.get_ref().as_ref();
        let at = |f: Fault| Fault {
            message: format!("'{name_text}': {}", f.message),
            at: f.at.or(Some(value.span())),
        };
        if let Some(key) = find(INPUT_KEYS, name_text) {
            (key.read)(&mut spec, value.get_ref()).map_err(at)?;
        } else if let Some(key) = find(LIMIT_KEYS, name_text) {
            (key.read)(&mut spec.limits, value.get_ref()).map_err(at)?;
        } else {
            return Err(Fault {
                message: format!(
                    "unknown key '{name_text}' (expected one of {}, {})",
                    names(INPUT_KEYS),
                    names(LIMIT_KEYS)
                ),
                at: Some(name.span()),
            });
        }
        listen |= name_text == "listen" || name_text == "read";
    }
    if !listen {
        return Err(
            "'listen' is missing: the address to serve, like tls://0.0.0.0:6514 (or 'read', \
             a log to read, like \"kmsg\")"
                .into(),
        );
    }
    spec.check()?;
    Ok(spec)
}

/// The keys of an `[[output]]` table, in the order `--check-config` prints them.
pub(super) const OUTPUT_KEYS: &[Key<OutputSpec>] = &[
    Key {
        name: "to",
        doc: "Where: journal, stderr, file:PATH (PATH may hold {hostname}, {peer}, {program}, {facility}, {date}: one file per value), one or more remotes udp://, tcp://, tls://, relp://, relp+tls:// HOST:PORT (a list fails over in order), or systemd-journal-remote at journal-remote+http:// or journal-remote+https:// HOST:PORT (the Journal Export Format, every field kept; https with the tls-* keys); required.",
        read: |o, v| {
            o.target = match v {
                Value::Array(_) => {
                    let remotes = strings(v)?
                        .iter()
                        .map(|r| r.parse())
                        .collect::<Result<Vec<Remote>, _>>()?;
                    if remotes.is_empty() {
                        return Err("an empty list: name at least one remote".into());
                    }
                    Output::Forward(remotes)
                }
                _ => string(v)?.parse()?,
            };
            Ok(())
        },
        show: |o| match &o.target {
            Output::Forward(remotes) if remotes.len() > 1 => some_list(remotes.iter()),
            target => Some(quote(&target.to_string())),
        },
    },
    Key {
        name: "match",
        doc: "syslog.conf selectors: facility.severity (that severity or more severe), =sev, !sev, none, *, lists with \",\", joined with \";\".",
        read: |o, v| {
            o.route.selector = string(v)?.parse()?;
            Ok(())
        },
        show: |o| Some(quote(&o.route.selector.to_string())),
    },
    Key {
        name: "format",
        doc: "Files and stderr: detailed (TIME HOST TAG[PID] FACILITY.SEVERITY: TEXT, the receive time in UTC, reversible escapes), traditional (rsyslog's RSYSLOG_TraditionalFileFormat, byte for byte), rfc3339 (RSYSLOG_FileFormat), rfc5424 or json. Forward outputs: rfc5424 or rfc3164.",
        read: |o, v| {
            match string(v)? {
                "rfc3164" => o.forward.rfc3164 = true,
                format => o.format = format.parse()?,
            }
            Ok(())
        },
        show: |o| match o.forward.rfc3164 {
            true => Some(quote("rfc3164")),
            false => Some(quote(&o.format.to_string())),
        },
    },
    Key {
        name: "time-zone",
        doc: "The zone of times a line writes that the sender gave no zone for (the receive time in traditional and rfc3339, a BSD timestamp everywhere): local or UTC.",
        read: |o, v| {
            o.zone = string(v)?.parse()?;
            Ok(())
        },
        show: |o| Some(quote(&o.zone.to_string())),
    },
    Key {
        name: "queue-policy",
        doc: "When the output's queue is full: block (hold the inputs back, lose nothing), drop (drop for this output, counted), block-bounded (block while the output moves, drop once it took nothing for 2 s) or drop-oldest (a disk queue's oldest segment).",
        read: |o, v| {
            o.policy = string(v)?.parse()?;
            Ok(())
        },
        show: |o| Some(quote(&o.policy.to_string())),
    },
    Key {
        name: "kafka-key",
        doc: "A Kafka output's record key: \"hostname\" (one host's messages in order in one partition), or \"none\" (the default: records spread over the partitions a batch at a time).",
        read: |o, v| {
            o.kafka_key_hostname = match string(v)? {
                "hostname" => true,
                "none" => false,
                other => return Err(format!("'{other}' is not a key: hostname or none").into()),
            };
            Ok(())
        },
        show: |o| {
            Some(quote(if o.kafka_key_hostname {
                "hostname"
            } else {
                "none"
            }))
        },
    },
    Key {
        name: "kafka-compression",
        doc: "A Kafka output's batches: \"snappy\" (compressed, a pure-Rust codec) or \"none\" (the default).",
        read: |o, v| {
            o.kafka_snappy = match string(v)? {
                "snappy" => true,
                "none" => false,
                other => {
                    return Err(format!("'{other}' is not a compression: snappy or none").into());
                }
            };
            Ok(())
        },
        show: |o| Some(quote(if o.kafka_snappy { "snappy" } else { "none" })),
    },
    Key {
        name: "queue-size",
        doc: "The output's memory queue, in bytes.",
        read: |o, v| {
            o.queue_size = size(v, QUEUE_SIZE_RANGE)?;
            Ok(())
        },
        show: |o| Some(o.queue_size.to_string()),
    },
    Key {
        name: "transport",
        doc: "Only messages that came this way: unix, unix-stream, udp, tcp, tls, relp, relp+tls, journal-remote, journal-remote+https, journal, kmsg.",
        read: |o, v| {
            o.route.transports = strings(v)?
                .iter()
                .map(|t| {
                    Transport::from_name(t).ok_or_else(|| {
                        format!("'{t}' is not a transport: unix, unix-stream, udp, tcp or tls")
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(())
        },
        show: |o| some_list(o.route.transports.iter().map(|t| t.name())),
    },
    Key {
        name: "program",
        doc: "Only messages with one of these tags (SYSLOG_IDENTIFIER).",
        read: |o, v| {
            o.route.programs = strings(v)?;
            Ok(())
        },
        show: |o| some_list(o.route.programs.iter()),
    },
    Key {
        name: "hostname",
        doc: "Only messages that carry one of these HOSTNAMEs (\"*.example.net\" patterns allowed).",
        read: |o, v| {
            o.route.hostnames = strings(v)?;
            Ok(())
        },
        show: |o| some_list(o.route.hostnames.iter()),
    },
    Key {
        name: "source",
        doc: "Only messages from these networks.",
        read: |o, v| {
            o.route.sources = strings(v)?
                .iter()
                .map(|n| n.parse())
                .collect::<Result<_, _>>()?;
            Ok(())
        },
        show: |o| some_list(o.route.sources.iter()),
    },
    Key {
        name: "framing",
        doc: "tcp:// and tls:// remotes: octet-counting (RFC 6587) or lf.",
        read: |o, v| {
            o.forward.framing = string(v)?.parse()?;
            Ok(())
        },
        show: |o| Some(quote(&o.forward.framing.to_string())),
    },
    Key {
        name: "tls-ca",
        doc: "The CA (PEM) a tls:// or relp+tls:// remote's certificate must chain to.",
        read: |o, v| {
            o.forward.tls.ca = Some(absolute(v)?);
            Ok(())
        },
        show: |o| {
            o.forward
                .tls
                .ca
                .as_ref()
                .map(|p| quote(&p.to_string_lossy()))
        },
    },
    Key {
        name: "tls-fingerprint",
        doc: "Or the remote's certificate, pinned by SHA-256 fingerprint.",
        read: |o, v| {
            o.forward.tls.fingerprints = strings(v)?
                .iter()
                .map(|f| f.parse())
                .collect::<Result<_, _>>()?;
            Ok(())
        },
        show: |o| some_list(o.forward.tls.fingerprints.iter()),
    },
    Key {
        name: "tls-name",
        doc: "The name the remote's certificate must carry (default: the host of to).",
        read: |o, v| {
            let name = string(v)?;
            if !crate::tls::valid_name_pattern(name) || name.starts_with('*') {
                return Err(format!("'{name}' is not a host name").into());
            }
            o.forward.tls.name = Some(name.to_string());
            Ok(())
        },
        show: |o| o.forward.tls.name.as_deref().map(quote),
    },
    Key {
        name: "tls-cert",
        doc: "Our certificate chain (PEM), for a remote that asks for one (mutual TLS).",
        read: |o, v| {
            o.forward.tls.cert = Some(absolute(v)?);
            Ok(())
        },
        show: |o| {
            o.forward
                .tls
                .cert
                .as_ref()
                .map(|p| quote(&p.to_string_lossy()))
        },
    },
    Key {
        name: "tls-key",
        doc: "The private key (PEM) of tls-cert.",
        read: |o, v| {
            o.forward.tls.key = Some(absolute(v)?);
            Ok(())
        },
        show: |o| {
            o.forward
                .tls
                .key
                .as_ref()
                .map(|p| quote(&p.to_string_lossy()))
        },
    },
    Key {
        name: "queue-dir",
        doc: "A crash-safe disk queue in this directory (owned by the daemon's user), for any output: messages wait there until the output took them (written to the file, accepted by journald, acknowledged by the remote), across restarts, SIGKILL, full disks and outages.",
        read: |o, v| {
            o.forward.queue_dir = Some(absolute(v)?);
            Ok(())
        },
        show: |o| {
            o.forward
                .queue_dir
                .as_ref()
                .map(|p| quote(&p.to_string_lossy()))
        },
    },
    Key {
        name: "queue-max-bytes",
        doc: "The disk queue's bound (\"1G\"); when full, queue-policy decides.",
        read: |o, v| {
            o.forward.queue_max_bytes = size(v, QUEUE_MAX_BYTES_RANGE)? as u64;
            Ok(())
        },
        show: |o| {
            let bytes = o.forward.queue_max_bytes;
            (bytes != 0).then(|| bytes.to_string())
        },
    },
    Key {
        name: "queue-fsync",
        doc: "When the disk queue syncs: batch (after every write), off, or a period (\"1s\").",
        read: |o, v| {
            o.forward.fsync = string(v)?.parse()?;
            Ok(())
        },
        show: |o| Some(quote(&o.forward.fsync.to_string())),
    },
    Key {
        name: "remote-timeout",
        doc: "A remote that answers nothing (RELP) or takes nothing (TCP, TLS) this long is dead: logged, and the next in to takes over.",
        read: |o, v| {
            o.forward.remote_timeout = Some(positive_duration(v)?);
            Ok(())
        },
        show: |o| {
            o.forward
                .remote_timeout
                .map(|d| quote(&fmt_duration(Some(d))))
        },
    },
];

/// What `queue-max-bytes` accepts: from 1 MiB (a few segments) to 1 TiB.
const QUEUE_MAX_BYTES_RANGE: RangeInclusive<usize> = 1 << 20..=1 << 40;

/// `output = "journal"` (one output taking everything) or `[[output]]` tables.
fn outputs(v: &Value<'_>) -> Result<Vec<OutputSpec>, Fault> {
    match v {
        Value::String(s) => Ok(vec![OutputSpec::everything(s.parse()?)]),
        Value::Array(tables) => tables
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let in_output = |f: Fault| Fault {
                    message: format!("output #{}: {}", i + 1, f.message),
                    at: f.at.or(Some(t.span())),
                };
                match t.get_ref() {
                    Value::Table(table) => output(table).map_err(in_output),
                    _ => Err(in_output("expected an [[output]] table".into())),
                }
            })
            .collect(),
        _ => Err("expected a string (\"journal\") or [[output]] tables".into()),
    }
}

/// One `[[output]]` table.
fn output(table: &Table<'_>) -> Result<OutputSpec, Fault> {
    let mut spec = OutputSpec::everything(Output::Auto);
    let (mut to, mut policy) = (false, false);
    for (name, value) in super::merge::in_file_order(table) {
        let key = find(OUTPUT_KEYS, name.get_ref()).ok_or_else(|| Fault {
            message: format!(
                "unknown key '{}' (expected one of {})",
                name.get_ref(),
                names(OUTPUT_KEYS)
            ),
            at: Some(name.span()),
        })?;
        (key.read)(&mut spec, value.get_ref()).map_err(|f| Fault {
            message: format!("'{}': {}", key.name, f.message),
            at: f.at.or(Some(value.span())),
        })?;
        to |= key.name == "to";
        policy |= key.name == "queue-policy";
    }
    // `to` may come after `queue-policy` or not at all: the default follows the target.
    if !policy {
        spec.policy = QueuePolicy::default_for(&spec.target);
    }
    if !to {
        return Err(
            "'to' is missing: journal, stderr, file:PATH, SCHEME://HOST:PORT (udp, tcp, tls, \
             relp, relp+tls), journal-remote+http(s)://HOST:PORT or \
             kafka://HOST:PORT/TOPIC"
                .into(),
        );
    }
    let remotes = match &spec.target {
        Output::Forward(remotes) => remotes.as_slice(),
        _ => &[],
    };
    match &spec.target {
        Output::JournalRemote(r) => spec.forward.check_other(r.tls)?,
        Output::Kafka(k) => spec.forward.check_other(k.tls)?,
        _ => spec.forward.check(remotes)?,
    }
    if spec.forward.rfc3164 && remotes.is_empty() {
        return Err("format 'rfc3164' applies to forward outputs".into());
    }
    if !remotes.is_empty() && spec.format == LineFormat::Json {
        return Err("a forward output sends rfc5424 (the default) or rfc3164".into());
    }
    if spec.policy == QueuePolicy::DropOldest && spec.forward.queue_dir.is_none() {
        return Err("queue-policy 'drop-oldest' applies to a disk queue (queue-dir)".into());
    }
    let kafka = matches!(spec.target, Output::Kafka(_));
    if (spec.kafka_key_hostname || spec.kafka_snappy) && !kafka {
        return Err("'kafka-key' and 'kafka-compression' apply to kafka:// outputs".into());
    }
    if kafka
        && !matches!(
            spec.format,
            LineFormat::Detailed | LineFormat::Json | LineFormat::Rfc5424
        )
    {
        return Err("a Kafka output's records are json (the default) or rfc5424".into());
    }
    if spec.format != LineFormat::Detailed
        && !spec.forward.rfc3164
        && matches!(spec.target, Output::Journal | Output::Auto)
    {
        return Err(format!(
            "'format' applies to file and stderr outputs, not {}",
            spec.target
        )
        .into());
    }
    Ok(spec)
}

/// An absolute path.
fn absolute(v: &Value<'_>) -> Result<PathBuf, String> {
    absolute_path(string(v)?)
}

/// `text` as a path, which must be absolute.
fn absolute_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if !path.is_absolute() {
        return Err(format!("{} must be an absolute path", path.display()));
    }
    Ok(path)
}

/// A number of connections.
fn connections(v: &Value<'_>) -> Result<usize, String> {
    let n = integer(v)?;
    usize::try_from(n)
        .ok()
        .filter(|_| CONNECTIONS_RANGE.contains(&n))
        .ok_or_else(|| format!("{n} is outside 1..=65536"))
}

/// A count that fits a u32.
fn count(v: &Value<'_>) -> Result<u32, String> {
    let n = integer(v)?;
    u32::try_from(n).map_err(|_| format!("{n} is outside 0..={}", u32::MAX))
}

/// `s` as a TOML basic string: quotes, backslashes and control characters escaped, the rest
/// as it is (TOML strings are UTF-8).
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML list of strings.
fn list<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    let quoted: Vec<String> = items.map(|i| quote(i.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}

/// A TOML list of strings, or None when it is empty (an empty match list matches anything).
fn some_list<S: ToString>(items: impl Iterator<Item = S>) -> Option<String> {
    let items: Vec<String> = items.map(|i| i.to_string()).collect();
    (!items.is_empty()).then(|| list(items.iter()))
}
