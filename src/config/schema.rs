//! Every key of the configuration file, declared once: its name, how its value is read into the
//! configuration (with its range and its error), and how the configuration shows it back.
//! `merge` reads the file and the flags through these tables, `show` prints through them, and
//! a test holds `--help` and the shipped file to the same names: a key added here is a key
//! everywhere. Defaults are `Config::defaults`.

use std::ops::RangeInclusive;
use std::path::PathBuf;

use super::Config;
use super::document::{
    Fault, Table, Value, boolean, duration, integer, positive_duration, size, string, strings,
};
use super::values::{LineFormat, Output, OutputSpec, QUEUE_SIZE_RANGE, fmt_duration};
use crate::listen::ListenAddr;
use crate::message::Transport;

/// One key of a table whose values end up in a `T`.
pub struct Key<T: 'static> {
    /// Its name in the file, and the flag's without `--` where there is one.
    pub name: &'static str,
    /// Reads its value into `T`, checking it.
    pub read: fn(&mut T, &Value<'_>) -> Result<(), Fault>,
    /// Its value in `T` as TOML; None when it is unset and printed not at all.
    pub show: fn(&T) -> Option<String>,
}

/// The key of `keys` called `name`.
pub fn find<T>(keys: &'static [Key<T>], name: &str) -> Option<&'static Key<T>> {
    keys.iter().find(|k| k.name == name)
}

/// The names of `keys`, for messages.
pub fn names<T>(keys: &[Key<T>]) -> String {
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
pub const KEYS: &[Key<Config>] = &[
    Key {
        name: "listen",
        read: |c, v| {
            c.listen = strings(v)?
                .iter()
                .map(|u| u.parse::<ListenAddr>())
                .collect::<Result<_, _>>()?;
            c.listen_is_default = false;
            Ok(())
        },
        show: |c| Some(list(c.listen.iter().map(ToString::to_string))),
    },
    Key {
        name: "pidfile",
        read: |c, v| {
            c.pidfile = Some(absolute(v)?);
            Ok(())
        },
        show: |c| c.pidfile.as_ref().map(|p| quote(&p.display().to_string())),
    },
    Key {
        name: "user",
        read: |c, v| {
            c.user = Some(string(v)?.to_owned());
            Ok(())
        },
        show: |c| c.user.as_deref().map(quote),
    },
    Key {
        name: "group",
        read: |c, v| {
            c.group = Some(string(v)?.to_owned());
            Ok(())
        },
        show: |c| c.group.as_deref().map(quote),
    },
    Key {
        name: "umask",
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
        read: |c, v| {
            c.log_file = absolute(v)?;
            Ok(())
        },
        show: |c| Some(quote(&c.log_file.display().to_string())),
    },
    Key {
        name: "heartbeat",
        read: |c, v| {
            c.heartbeat = duration(v)?;
            Ok(())
        },
        show: |c| Some(quote(&fmt_duration(c.heartbeat))),
    },
    Key {
        name: "max-message-size",
        read: |c, v| {
            c.limits.max_message_size = size(v, MESSAGE_SIZE_RANGE)?;
            Ok(())
        },
        show: |c| Some(c.limits.max_message_size.to_string()),
    },
    Key {
        name: "max-connections",
        read: |c, v| {
            c.limits.max_connections = connections(v)?;
            Ok(())
        },
        show: |c| Some(c.limits.max_connections.to_string()),
    },
    Key {
        name: "max-connections-per-source",
        read: |c, v| {
            c.limits.max_connections_per_source = connections(v)?;
            Ok(())
        },
        show: |c| Some(c.limits.max_connections_per_source.to_string()),
    },
    Key {
        name: "frame-timeout",
        read: |c, v| {
            c.limits.frame_timeout = positive_duration(v)?;
            Ok(())
        },
        show: |c| Some(quote(&fmt_duration(Some(c.limits.frame_timeout)))),
    },
    Key {
        name: "idle-timeout",
        read: |c, v| {
            c.limits.idle_timeout = positive_duration(v)?;
            Ok(())
        },
        show: |c| Some(quote(&fmt_duration(Some(c.limits.idle_timeout)))),
    },
    Key {
        name: "receive-buffer",
        read: |c, v| {
            c.limits.receive_buffer = size(v, RECEIVE_BUFFER_RANGE)?;
            Ok(())
        },
        show: |c| Some(c.limits.receive_buffer.to_string()),
    },
    Key {
        name: "rate-limit",
        read: |c, v| {
            c.rate_limit.per_second = count(v)?;
            Ok(())
        },
        show: |c| Some(c.rate_limit.per_second.to_string()),
    },
    Key {
        name: "rate-limit-burst",
        read: |c, v| {
            c.rate_limit.burst = count(v)?;
            Ok(())
        },
        show: |c| Some(c.rate_limit.burst.to_string()),
    },
    Key {
        name: "escape-control-characters",
        read: |c, v| {
            c.escape_control_characters = boolean(v)?;
            Ok(())
        },
        show: |c| Some(c.escape_control_characters.to_string()),
    },
    Key {
        name: "journal-socket",
        read: |c, v| {
            c.journal_socket = PathBuf::from(string(v)?);
            Ok(())
        },
        show: |c| Some(quote(&c.journal_socket.display().to_string())),
    },
    Key {
        name: "stop-timeout",
        read: |c, v| {
            c.stop_timeout = positive_duration(v)?;
            Ok(())
        },
        show: |c| Some(quote(&fmt_duration(Some(c.stop_timeout)))),
    },
    Key {
        name: "output",
        read: |c, v| {
            c.outputs = outputs(v)?;
            Ok(())
        },
        // Printed as [[output]] tables by `show`.
        show: |_| None,
    },
];

/// The keys of an `[[output]]` table, in the order `--check-config` prints them.
pub const OUTPUT_KEYS: &[Key<OutputSpec>] = &[
    Key {
        name: "to",
        read: |o, v| {
            o.target = string(v)?.parse()?;
            Ok(())
        },
        show: |o| Some(quote(&o.target.to_string())),
    },
    Key {
        name: "match",
        read: |o, v| {
            o.route.selector = string(v)?.parse()?;
            Ok(())
        },
        show: |o| Some(quote(&o.route.selector.to_string())),
    },
    Key {
        name: "format",
        read: |o, v| {
            o.format = string(v)?.parse()?;
            Ok(())
        },
        show: |o| Some(quote(&o.format.to_string())),
    },
    Key {
        name: "queue-policy",
        read: |o, v| {
            o.policy = string(v)?.parse()?;
            Ok(())
        },
        show: |o| Some(quote(&o.policy.to_string())),
    },
    Key {
        name: "queue-size",
        read: |o, v| {
            o.queue_size = size(v, QUEUE_SIZE_RANGE)?;
            Ok(())
        },
        show: |o| Some(o.queue_size.to_string()),
    },
    Key {
        name: "transport",
        read: |o, v| {
            o.route.transports = strings(v)?
                .iter()
                .map(|t| {
                    Transport::from_name(t).ok_or_else(|| {
                        format!("'{t}' is not a transport: unix, unix-stream, udp or tcp")
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(())
        },
        show: |o| some_list(o.route.transports.iter().map(|t| t.name())),
    },
    Key {
        name: "program",
        read: |o, v| {
            o.route.programs = strings(v)?;
            Ok(())
        },
        show: |o| some_list(o.route.programs.iter()),
    },
    Key {
        name: "hostname",
        read: |o, v| {
            o.route.hostnames = strings(v)?;
            Ok(())
        },
        show: |o| some_list(o.route.hostnames.iter()),
    },
    Key {
        name: "source",
        read: |o, v| {
            o.route.sources = strings(v)?
                .iter()
                .map(|n| n.parse())
                .collect::<Result<_, _>>()?;
            Ok(())
        },
        show: |o| some_list(o.route.sources.iter()),
    },
];

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
    let mut to = false;
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
    }
    if !to {
        return Err("'to' is missing: journal, stderr or file:PATH".into());
    }
    if spec.format != LineFormat::Traditional
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
    let path = PathBuf::from(string(v)?);
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
pub fn quote(s: &str) -> String {
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
