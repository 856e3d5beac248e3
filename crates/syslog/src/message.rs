//! The message model every input produces and every output consumes.
//!
//! A `Message` is owned data: the bytes as received, where each parsed syslog header field and
//! the text lie in them (non-UTF-8 is kept, never replaced), and where it came from. Nothing in
//! this module does I/O.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

/// Messages longer than this are measured before they are escaped (see `escape_controls`).
const ESCAPE_MEASURED_FROM: usize = 4096;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// AF_UNIX datagram.
    UnixDatagram,
    /// AF_UNIX stream.
    UnixStream,
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TCP under TLS (RFC 5425).
    Tls,
    /// RELP over TCP: every message acknowledged once the outputs took it.
    Relp,
    /// RELP under TLS.
    RelpTls,
    /// What systemd-journal-upload POSTs (the Journal Export Format over HTTP): every entry
    /// answered, as RELP's messages are.
    JournalRemote,
    /// The same over HTTPS.
    JournalRemoteTls,
    /// The kernel's log, read from /dev/kmsg.
    Kmsg,
    /// The local journal, read with sd-journal.
    Journal,
}

impl Transport {
    /// A connection-oriented transport: its sender can be held back (TCP's window, a full
    /// socket buffer), so it needs no rate limit to be fair.
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            Transport::UnixStream
                | Transport::Tcp
                | Transport::Tls
                | Transport::Relp
                | Transport::RelpTls
                | Transport::JournalRemote
                | Transport::JournalRemoteTls
        )
    }

    /// A sender that waits when logger is busy: a stream's (its window, a full socket buffer)
    /// or a log logger reads at its own pace (the journal, the kernel log). These need no
    /// rate limit to be fair, and a limit would only drop what nobody can send again.
    pub fn is_held_back(self) -> bool {
        self.is_stream() || self.is_read()
    }

    /// Under TLS: the input needs a certificate.
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            Transport::Tls | Transport::RelpTls | Transport::JournalRemoteTls
        )
    }

    /// RELP: frames are commands, and messages are answered.
    pub fn is_relp(self) -> bool {
        matches!(self, Transport::Relp | Transport::RelpTls)
    }

    /// systemd-journal-upload's HTTP uploads: the body is journal entries, each answered.
    pub fn is_journal_upload(self) -> bool {
        matches!(self, Transport::JournalRemote | Transport::JournalRemoteTls)
    }

    /// A sender that learns when its messages were taken (RELP's answers, HTTP's 2xx).
    pub fn is_answered(self) -> bool {
        self.is_relp() || self.is_journal_upload()
    }

    /// The name used in the `LOGGER_TRANSPORT` journal field.
    pub fn name(self) -> &'static str {
        match self {
            Transport::UnixDatagram => "unix",
            Transport::UnixStream => "unix-stream",
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Relp => "relp",
            Transport::RelpTls => "relp+tls",
            Transport::JournalRemote => "journal-remote",
            Transport::JournalRemoteTls => "journal-remote+https",
            Transport::Kmsg => "kmsg",
            Transport::Journal => "journal",
        }
    }

    /// The transport named as `name` gives it.
    pub fn from_name(name: &str) -> Option<Transport> {
        [
            Transport::UnixDatagram,
            Transport::UnixStream,
            Transport::Udp,
            Transport::Tcp,
            Transport::Tls,
            Transport::Relp,
            Transport::RelpTls,
            Transport::JournalRemote,
            Transport::JournalRemoteTls,
            Transport::Kmsg,
            Transport::Journal,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }

    /// True for AF_UNIX transports, whose messages follow syslog(3)'s host-less form.
    pub fn is_local(self) -> bool {
        matches!(self, Transport::UnixDatagram | Transport::UnixStream)
    }

    /// True for a log logger reads from a file of the host's (the kernel's), not a socket.
    pub fn is_read(self) -> bool {
        matches!(self, Transport::Kmsg | Transport::Journal)
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
    /// The verified TLS peer (`tls::identity::describe`), for TLS with client certificates.
    pub tls_peer: Option<Arc<str>>,
}

impl Origin {
    /// An origin with no peer information.
    pub fn new(transport: Transport) -> Origin {
        Origin {
            transport,
            peer: None,
            credentials: None,
            tls_peer: None,
        }
    }
}

/// One syslog message, parsed as far as its form allowed.
///
/// The bytes as received are kept in one allocation, and every header field and the text are
/// spans of them: parsing copies the input once (or keeps the buffer a reader assembled,
/// `parse::parse_owned`) and allocates nothing else. Header fields are
/// read as text (ASCII by specification; other bytes are shown with U+FFFD, never rejected);
/// the text is bytes, exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Facility, 0..=23.
    pub facility: u8,
    /// Severity, 0..=7.
    pub severity: u8,
    /// The syntax the header was read as.
    pub format: Format,
    /// The datagram was longer than the limit and was cut.
    pub truncated: bool,
    /// Its header fields and text were escaped on receive ([`Message::escape_controls`]): they
    /// hold `\xNN`-style escapes and doubled backslashes, and `escape::unescape` gives back what
    /// was sent.
    pub escaped: bool,
    /// Where it came from.
    pub origin: Origin,
    /// When we received it.
    pub received: SystemTime,
    /// The text as sent was not UTF-8 (kept here because escaping makes it so).
    invalid_utf8: bool,
    /// Every byte is printable ASCII and none a backslash, as the receive scan found: every
    /// escaping leaves it as it is, so an output copies it without scanning it again.
    plain: bool,
    raw: Box<[u8]>,
    spans: Spans,
    /// Fields beyond syslog's, as an input that reads a richer log found them (the kernel
    /// log's sequence number and device), with journald-style names (`fields`: empty, no
    /// allocation, without any).
    fields: Box<[u8]>,
}

pub use crate::fields::{Fields, FieldsRef};

/// The header fields a line writes, as bytes ([`Message::plain_header`]).
#[derive(Debug, Clone, Copy)]
pub struct PlainHeader<'a> {
    /// HOSTNAME, if the message carries one.
    pub hostname: Option<&'a [u8]>,
    /// APP-NAME or TAG.
    pub app_name: Option<&'a [u8]>,
    /// PROCID or the tag's `[pid]`.
    pub procid: Option<&'a [u8]>,
}

/// True for a name journald takes as a field's: 1 to 64 of `A-Z`, `0-9`, `_`, not starting with
/// a digit (a leading `_` marks a trusted field, which a writer cannot set).
pub fn is_field_name(name: &str) -> bool {
    is_field_name_bytes(name.as_bytes())
}

/// [`is_field_name`] for a name read as bytes.
pub fn is_field_name_bytes(name: &[u8]) -> bool {
    /// The bytes a name may hold: one lookup a byte (every journal entry's twenty-odd names
    /// pass here).
    const NAME_BYTE: [bool; 256] = {
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            table[b] = c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_';
            b += 1;
        }
        table
    };
    (1..=64).contains(&name.len())
        && !name[0].is_ascii_digit()
        && name.iter().all(|&b| NAME_BYTE[usize::from(b)])
}

/// The SD-ID under which fields travel in RFC 5424 (a forward output writes it, the parser
/// reads it back): `[fields@32473 _SYSTEMD_UNIT="nginx.service" MY_FIELD="..."]`.
pub const FIELDS_SD_ID: &str = "fields@32473";

/// Appends `fields` as one SD-ELEMENT: names longer than an SD-NAME may be (32) are left out,
/// values escaped as RFC 5424 says (`"`, `\` and `]` after a backslash), bytes that are not
/// UTF-8 with the receive escaping (readable, reversible).
pub fn push_fields_element(out: &mut Vec<u8>, fields: FieldsRef<'_>) {
    out.push(b'[');
    out.extend_from_slice(FIELDS_SD_ID.as_bytes());
    for (name, value) in fields.iter().filter(|(n, _)| n.len() <= 32) {
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"=\"");
        let escaped;
        let value: &[u8] = match std::str::from_utf8(value) {
            Ok(_) => value,
            Err(_) => {
                let mut e = Vec::with_capacity(value.len() * 2);
                crate::escape::escape_into(&mut e, value, crate::escape::RECEIVE);
                escaped = e;
                &escaped
            }
        };
        for &b in value {
            if matches!(b, b'"' | b'\\' | b']') {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    }
    out.push(b']');
}

/// `sd` without its `[fields@32473 ...]` element (the rest as sent).
pub fn sd_without_fields(sd: &str) -> String {
    let open = format!("[{FIELDS_SD_ID}");
    let Some(start) = sd.find(&open) else {
        return sd.to_owned();
    };
    let bytes = sd.as_bytes();
    let (mut i, mut quoted) = (start + 1, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b']' if !quoted => break,
            _ => {}
        }
        i += 1;
    }
    let end = (i + 1).min(sd.len());
    format!("{}{}", &sd[..start], &sd[end..])
}

/// The fields of a `[fields@32473 ...]` element in `sd` (STRUCTURED-DATA as sent), if any.
pub fn fields_from_sd(sd: &[u8]) -> Fields {
    let open = format!("[{FIELDS_SD_ID}");
    let Some(start) = sd.windows(open.len()).position(|w| w == open.as_bytes()) else {
        return Fields::new();
    };
    let mut fields = Fields::new();
    let mut rest = &sd[start + open.len()..];
    loop {
        rest = match rest.strip_prefix(b" ") {
            Some(r) => r,
            None => return fields,
        };
        let Some(eq) = rest.iter().position(|&b| b == b'=') else {
            return fields;
        };
        let name = String::from_utf8_lossy(&rest[..eq]).into_owned();
        rest = match rest[eq + 1..].strip_prefix(b"\"") {
            Some(r) => r,
            None => return fields,
        };
        let mut value = Vec::new();
        let mut i = 0;
        loop {
            match rest.get(i) {
                None => return fields,
                Some(b'\\') if matches!(rest.get(i + 1), Some(b'"' | b'\\' | b']')) => {
                    value.push(rest[i + 1]);
                    i += 2;
                }
                Some(b'"') => break,
                Some(&b) => {
                    value.push(b);
                    i += 1;
                }
            }
        }
        // A sender names what it likes here: only what journald would take as a field name
        // becomes one (the rest stays in the structured data, as sent).
        if is_field_name(&name) {
            fields.push(&name, &value);
        }
        rest = &rest[i + 1..];
    }
}

/// A part of a message's bytes; empty means absent for header fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The span `part` occupies inside `whole`; `part` must be a subslice of `whole`.
    pub fn of(whole: &[u8], part: &[u8]) -> Span {
        if part.is_empty() {
            return Span::default();
        }
        let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
        let inside = start <= whole.len() && part.len() <= whole.len() - start;
        debug_assert!(inside, "a span outside its message");
        if !inside {
            return Span::default();
        }
        // Messages are at most max-message-size (16 MiB) long: the offsets fit.
        Span {
            start: start as u32,
            end: (start + part.len()) as u32,
        }
    }

    /// The bytes of `raw` it covers (`raw` the whole message it was made for).
    pub fn slice(self, raw: &[u8]) -> &[u8] {
        self.get(raw)
    }

    fn get(self, raw: &[u8]) -> &[u8] {
        &raw[self.start as usize..self.end as usize]
    }
}

/// Where each field lies in the raw bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spans {
    /// The sender's timestamp, as sent.
    pub timestamp: Span,
    /// The sender's hostname.
    pub hostname: Span,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164).
    pub app_name: Span,
    /// PROCID or the `[pid]` of a tag.
    pub procid: Span,
    /// MSGID (RFC 5424).
    pub msgid: Span,
    /// STRUCTURED-DATA as sent (RFC 5424).
    pub structured_data: Span,
    /// The message text (minus framing and a trailing newline).
    pub text: Span,
    /// An RFC 3164 tag was followed by its `:` (rsyslog's formats write the tag as sent).
    pub tag_colon: bool,
}

/// What a parser found, before it becomes a `Message`.
pub struct Parsed {
    /// Facility, 0..=23.
    pub facility: u8,
    /// Severity, 0..=7.
    pub severity: u8,
    /// The syntax the header was read as.
    pub format: Format,
    /// Where the fields lie in the input.
    pub spans: Spans,
}

impl Message {
    /// A message made of `raw` (copied) and the fields a parser found in it.
    pub fn new(
        raw: &[u8],
        parsed: Parsed,
        origin: Origin,
        received: SystemTime,
        truncated: bool,
    ) -> Message {
        Message::from_vec(raw.to_vec(), parsed, origin, received, truncated)
    }

    /// As [`Message::new`], keeping `raw` as the message's bytes (no copy).
    pub fn from_vec(
        raw: Vec<u8>,
        parsed: Parsed,
        origin: Origin,
        received: SystemTime,
        truncated: bool,
    ) -> Message {
        Message {
            facility: parsed.facility,
            severity: parsed.severity,
            format: parsed.format,
            truncated,
            escaped: false,
            invalid_utf8: false,
            plain: false,
            origin,
            received,
            raw: raw.into_boxed_slice(),
            spans: parsed.spans,
            fields: Box::default(),
        }
    }

    /// The message with `fields` beside its header.
    pub fn with_fields(self, fields: Fields) -> Message {
        Message {
            fields: fields.into_bytes(),
            ..self
        }
    }

    /// Its fields beyond syslog's, if an input gave it any.
    pub fn fields(&self) -> FieldsRef<'_> {
        FieldsRef::from_bytes(&self.fields)
    }

    /// Escapes the control characters a sender put in the header fields or the text (C0 but TAB,
    /// DEL, C1, line separators, bytes that are not UTF-8), as [`crate::escape::RECEIVE`] says.
    /// A message without any is returned as it is, after one scan of its bytes (marked `plain`
    /// if that scan found printable ASCII alone); one with some is rebuilt from its escaped
    /// fields (one allocation) and marked `escaped`.
    pub fn escape_controls(self) -> Message {
        use crate::escape::{RECEIVE, escape_into, escaped_len, is_plain, needs_receive_escape};
        if is_plain(&self.raw) {
            return Message {
                plain: true,
                ..self
            };
        }
        if !needs_receive_escape(&self.raw) {
            return self;
        }
        let old = self.spans;
        // A large message is measured first, so that its escaped copy is allocated once at
        // its size (grown by doubling, 2 MiB of 0xff bytes held 10 MiB for an 8 MiB result).
        let capacity = if self.raw.len() > ESCAPE_MEASURED_FROM {
            escaped_len(&self.raw, RECEIVE)
        } else {
            self.raw.len() + self.raw.len() / 4 + 16
        };
        let mut raw = Vec::with_capacity(capacity);
        let mut escaped = |span: Span| {
            let start = raw.len();
            escape_into(&mut raw, span.get(&self.raw), RECEIVE);
            Span {
                start: start as u32,
                end: raw.len() as u32,
            }
        };
        let spans = Spans {
            timestamp: escaped(old.timestamp),
            hostname: escaped(old.hostname),
            app_name: escaped(old.app_name),
            procid: escaped(old.procid),
            msgid: escaped(old.msgid),
            structured_data: escaped(old.structured_data),
            text: escaped(old.text),
            tag_colon: old.tag_colon,
        };
        Message {
            escaped: true,
            invalid_utf8: std::str::from_utf8(old.text.get(&self.raw)).is_err(),
            raw: raw.into_boxed_slice(),
            spans,
            ..self
        }
    }

    /// HOSTNAME, APP-NAME (TAG) and PROCID as their bytes, for a message known plain
    /// ([`Message::is_plain`]: printable ASCII, so they read as text without a check).
    pub fn plain_header(&self) -> PlainHeader<'_> {
        let get = |span: Span| Some(span.get(&self.raw)).filter(|b| !b.is_empty());
        PlainHeader {
            hostname: get(self.spans.hostname),
            app_name: get(self.spans.app_name),
            procid: get(self.spans.procid),
        }
    }

    fn header(&self, span: Span) -> Option<Cow<'_, str>> {
        let bytes = span.get(&self.raw);
        (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes))
    }

    /// What the message costs in memory while it waits: its bytes and its own record.
    pub fn weight(&self) -> usize {
        self.raw.len() + self.fields().bytes() + std::mem::size_of::<Message>()
    }

    /// True if every byte is printable ASCII and none a backslash (known after
    /// `escape_controls`): no escaping changes it.
    pub fn is_plain(&self) -> bool {
        self.plain
    }

    /// The sender's timestamp, as sent.
    pub fn timestamp(&self) -> Option<Cow<'_, str>> {
        self.header(self.spans.timestamp)
    }

    /// The sender's timestamp as bytes, empty if absent.
    pub fn timestamp_bytes(&self) -> &[u8] {
        self.spans.timestamp.get(&self.raw)
    }

    /// The sender's hostname.
    pub fn hostname(&self) -> Option<Cow<'_, str>> {
        self.header(self.spans.hostname)
    }

    /// APP-NAME (RFC 5424) or TAG (RFC 3164).
    pub fn app_name(&self) -> Option<Cow<'_, str>> {
        self.header(self.spans.app_name)
    }

    /// PROCID or the `[pid]` of a tag.
    pub fn procid(&self) -> Option<Cow<'_, str>> {
        self.header(self.spans.procid)
    }

    /// MSGID (RFC 5424).
    pub fn msgid(&self) -> Option<Cow<'_, str>> {
        self.header(self.spans.msgid)
    }

    /// STRUCTURED-DATA as sent (RFC 5424).
    pub fn structured_data(&self) -> Option<Cow<'_, str>> {
        self.header(self.spans.structured_data)
    }

    /// True if an RFC 3164 tag was followed by its `:`.
    pub fn tag_had_colon(&self) -> bool {
        self.spans.tag_colon
    }

    /// The message text, exactly the bytes sent (minus framing and a trailing newline).
    pub fn text(&self) -> &[u8] {
        self.spans.text.get(&self.raw)
    }

    /// The journal's PRIORITY field: the severity alone (journald keeps the facility apart).
    pub fn journal_priority(&self) -> u8 {
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

    /// True if the text as sent was not valid UTF-8 (it may be escaped by now).
    pub fn text_was_invalid_utf8(&self) -> bool {
        self.invalid_utf8 || std::str::from_utf8(self.text()).is_err()
    }

    /// The process id to report: the sender's own claim, else the kernel's credentials.
    pub fn pid(&self) -> Option<Cow<'_, str>> {
        self.procid().or_else(|| {
            self.origin
                .credentials
                .map(|c| c.pid)
                .filter(|p| *p > 0)
                .map(|p| Cow::Owned(p.to_string()))
        })
    }
}
