//! Path templates for file outputs on a central collector:
//! `file:/var/log/remote/{hostname}/{program}.log`.
//!
//! Pure: parsing and rendering, no I/O. The part of the path before the first placeholder's
//! directory is fixed and trusted (the operator wrote it); every later component is built from
//! message fields, each value sanitised so that it stays one path component: no `/`, no NUL or
//! control bytes, never `.` or `..`, empty becomes `-`, at most [`MAX_VALUE`] bytes. So a sender
//! chooses a file name under the fixed directory and nothing else; `outputs::templated` opens it
//! without following links.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use syslog::message::Message;

/// The longest a substituted value may be, in bytes (a component is at most 255).
pub(crate) const MAX_VALUE: usize = 64;

/// A field a template may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// The HOSTNAME the message carries, else the sender's address, else ours (a local message),
    /// as rsyslog's `%HOSTNAME%`.
    Hostname,
    /// The sender's address (network) or `local`.
    Peer,
    /// SYSLOG_IDENTIFIER / APP-NAME / TAG.
    Program,
    /// `auth`, `kern`, ...
    Facility,
    /// The day the message was received, UTC: `2026-11-24`.
    Date,
}

impl Field {
    const ALL: [(&'static str, Field); 5] = [
        ("hostname", Field::Hostname),
        ("peer", Field::Peer),
        ("program", Field::Program),
        ("facility", Field::Facility),
        ("date", Field::Date),
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    /// As written.
    text: String,
    /// The fixed directory every file goes under.
    base: PathBuf,
    /// The components under it, each a sequence of text and fields.
    components: Vec<Vec<Piece>>,
}

impl Template {
    /// True if `path` has a placeholder (and so is a template rather than one file).
    pub(crate) fn is_template(path: &Path) -> bool {
        path.to_string_lossy().contains('{')
    }

    /// Parses an absolute path with `{field}` placeholders.
    pub(crate) fn parse(path: &Path) -> Result<Template, String> {
        let text = path
            .to_str()
            .ok_or("a templated path must be valid UTF-8")?;
        let mut base = PathBuf::from("/");
        let mut components = Vec::new();
        for part in text.split('/').filter(|p| !p.is_empty()) {
            let pieces = pieces(part)?;
            if components.is_empty() && pieces.iter().all(|p| matches!(p, Piece::Text(_))) {
                base.push(part);
            } else {
                components.push(pieces);
            }
        }
        // The file name itself is never part of the fixed base.
        if components.is_empty() {
            return Err("no {field} placeholder".into());
        }
        if text.ends_with('/') {
            return Err("a templated path must end in a file name".into());
        }
        if base
            .components()
            .any(|c| c == std::path::Component::ParentDir)
            || components
                .iter()
                .any(|c| matches!(c.as_slice(), [Piece::Text(t)] if t == ".."))
        {
            return Err("'..' is not allowed in an output path".into());
        }
        Ok(Template {
            text: text.to_owned(),
            base,
            components,
        })
    }

    /// The fixed directory.
    pub(crate) fn base(&self) -> &Path {
        &self.base
    }

    /// The path components under the base for `msg`, each one safe as a single component.
    pub(crate) fn render(&self, msg: &Message, local_host: &str) -> Vec<String> {
        self.components
            .iter()
            .map(|pieces| {
                let mut component = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => component.push_str(t),
                        Piece::Field(f) => {
                            component.push_str(&sanitise(&value(*f, msg, local_host)))
                        }
                    }
                }
                component
            })
            .collect()
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "file:{}", self.text)
    }
}

/// `{hostname}.log` → [Field(Hostname), Text(".log")].
fn pieces(part: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = part;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                out.push(Piece::Text(rest.to_owned()));
                break;
            }
            Some(i) if rest.as_bytes()[i] == b'}' => {
                return Err(format!("'}}' without '{{' in '{part}'"));
            }
            Some(i) => {
                if i > 0 {
                    out.push(Piece::Text(rest[..i].to_owned()));
                }
                let close = rest[i..]
                    .find('}')
                    .ok_or_else(|| format!("'{{' without '}}' in '{part}'"))?;
                let name = &rest[i + 1..i + close];
                let field = Field::ALL
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, f)| *f)
                    .ok_or_else(|| {
                        format!(
                            "unknown placeholder {{{name}}}: use {{hostname}}, {{peer}}, \
                             {{program}}, {{facility}} or {{date}}"
                        )
                    })?;
                out.push(Piece::Field(field));
                rest = &rest[i + close + 1..];
            }
        }
    }
    Ok(out)
}

fn value(field: Field, msg: &Message, local_host: &str) -> String {
    match field {
        // As rsyslog does: a message without a hostname is named by its sender's address;
        // only a local one is ours.
        Field::Hostname => match (msg.hostname(), msg.origin.peer) {
            (Some(h), _) => h.into_owned(),
            (None, Some(peer)) => peer.ip().to_string(),
            (None, None) => local_host.to_owned(),
        },
        Field::Peer => msg
            .origin
            .peer
            .map(|p| p.ip().to_string())
            .unwrap_or_else(|| "local".into()),
        Field::Program => msg.app_name().map(|a| a.into_owned()).unwrap_or_default(),
        Field::Facility => msg.facility_name().to_owned(),
        Field::Date => date(msg.received),
    }
}

fn date(t: SystemTime) -> String {
    let mut text = Vec::with_capacity(32);
    crate::outputs::formats::line::push_rfc3339(&mut text, t);
    String::from_utf8_lossy(&text[..10]).into_owned()
}

/// One value as a safe path component piece: see the module documentation.
pub(crate) fn sanitise(value: &str) -> String {
    let mut out: String = value
        .chars()
        .map(|c| match c {
            '/' | '\\' => '_',
            c if c.is_control() || syslog::escape::is_control_or_invisible(c) => '_',
            c => c,
        })
        .collect();
    if out.len() > MAX_VALUE {
        let mut end = MAX_VALUE;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    match out.as_str() {
        "" => "-".into(),
        "." | ".." => "_".repeat(out.len()),
        _ => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syslog::message::{Origin, Transport};
    use syslog::parse::parse;

    fn msg(raw: &str, peer: Option<&str>) -> Message {
        let mut origin = Origin::new(Transport::Udp);
        origin.peer = peer.map(|p| p.parse().unwrap());
        parse(raw.as_bytes(), origin, SystemTime::UNIX_EPOCH, false)
    }

    #[test]
    fn fields_fill_components_under_the_fixed_base() {
        let t = Template::parse(Path::new(
            "/var/log/remote/{hostname}/{facility}-{program}.log",
        ))
        .unwrap();
        assert_eq!(t.base(), Path::new("/var/log/remote"));
        let m = msg(
            "<38>Nov 24 05:00:00 web1 sshd[12]: hi",
            Some("192.0.2.7:514"),
        );
        assert_eq!(t.render(&m, "here"), ["web1", "auth-sshd.log"]);
        let t = Template::parse(Path::new("/l/{peer}/{date}.log")).unwrap();
        assert_eq!(t.render(&m, "here"), ["192.0.2.7", "1970-01-01.log"]);
    }

    #[test]
    fn a_remote_message_without_a_hostname_is_named_by_its_sender_as_rsyslog_does() {
        let t = Template::parse(Path::new("/l/{hostname}/{program}.log")).unwrap();
        let m = msg("headerless datagram", Some("192.0.2.7:514"));
        assert_eq!(t.render(&m, "here"), ["192.0.2.7", "-.log"]);
        let local = parse(
            b"<13>app: hi",
            Origin::new(Transport::UnixDatagram),
            SystemTime::UNIX_EPOCH,
            false,
        );
        assert_eq!(t.render(&local, "here"), ["here", "app.log"]);
    }

    #[test]
    fn hostile_values_stay_one_component() {
        let t = Template::parse(Path::new("/l/{hostname}/{program}")).unwrap();
        for (host, tag) in [("..", "."), ("a/../../etc", "x\u{1b}[2J"), ("", "")] {
            let raw = format!("<13>Nov 24 05:00:00 {host} {tag}: hi");
            for c in t.render(&msg(&raw, None), "here") {
                assert!(
                    !c.contains('/') && c != "." && c != ".." && !c.is_empty(),
                    "{c:?}"
                );
                assert!(!c.chars().any(|ch| ch.is_control()), "{c:?}");
            }
        }
        assert_eq!(sanitise(".."), "__");
        assert_eq!(sanitise(""), "-");
        assert_eq!(sanitise(&"é".repeat(100)).len(), MAX_VALUE);
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        for (path, why) in [
            ("/l/{host}.log", "unknown placeholder"),
            ("/l/{hostname.log", "without"),
            ("/l/hostname}.log", "without"),
            ("/l/{hostname}/", "file name"),
            ("/l/../{hostname}", "'..'"),
        ] {
            let err = Template::parse(Path::new(path)).unwrap_err();
            assert!(err.contains(why), "{path}: {err}");
        }
    }
}
