//! Routing: which outputs take a message, by the rules operators know from syslog.conf.
//!
//! A [`Selector`] is syslog.conf's `facility.severity` list (`*.*;auth,authpriv.none`), read as
//! sysklogd and rsyslog read it: selectors apply left to right, each one setting or clearing, for
//! the facilities it names, the severities it names, so a later one overrides an earlier one for
//! its facilities. A [`Route`] adds optional matches on the program (SYSLOG_IDENTIFIER), the
//! hostname the message carries, the transport it came by and the network it came from.
//! Pure: parsing reports errors as text; matching never fails and does no I/O.

use std::fmt;

use crate::allow::Network;
use syslog::message::{FACILITY_NAMES, Message, SEVERITY_NAMES, Transport};

/// A facility, 0..=23 (RFC 5424 table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Facility(u8);

impl Facility {
    /// The facility numbered `n`, if there is one.
    pub fn new(n: u8) -> Option<Facility> {
        (usize::from(n) < FACILITY_NAMES.len()).then_some(Facility(n))
    }

    /// Its number.
    pub fn number(self) -> u8 {
        self.0
    }

    /// Reads a name as syslog.conf writes it (`kern`, `authpriv`, `local7`).
    pub fn from_name(name: &str) -> Option<Facility> {
        let n = FACILITY_NAMES.iter().position(|f| *f == name)?;
        Facility::new(n as u8)
    }
}

/// A severity, 0 (emerg) ..= 7 (debug); a lower number is more severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Severity(u8);

impl Severity {
    /// The severity numbered `n`, if there is one.
    pub fn new(n: u8) -> Option<Severity> {
        (n < 8).then_some(Severity(n))
    }

    /// Reads a name, with syslog.conf's aliases (`panic`, `error`, `warn`).
    pub fn from_name(name: &str) -> Option<Severity> {
        let name = match name {
            "panic" => "emerg",
            "error" => "err",
            "warn" => "warning",
            other => other,
        };
        let n = SEVERITY_NAMES.iter().position(|s| *s == name)?;
        Severity::new(n as u8)
    }
}

/// syslog.conf's selector list: for each facility, the set of severities it takes.
#[derive(Clone, PartialEq, Eq)]
pub struct Selector {
    /// Bit `s` of `takes[f]`: facility `f` at severity `s` is taken.
    takes: [u8; 24],
    text: String,
}

impl Selector {
    /// Everything (`*.*`).
    pub fn all() -> Selector {
        "*.*".parse().expect("a valid selector")
    }

    /// True if a message of this facility and severity is taken.
    pub fn takes(&self, facility: Facility, severity: Severity) -> bool {
        self.takes[usize::from(facility.0)] & (1 << severity.0) != 0
    }
}

impl std::str::FromStr for Selector {
    type Err = String;

    fn from_str(text: &str) -> Result<Selector, String> {
        let mut takes = [0u8; 24];
        for part in text.split(';').map(str::trim) {
            let Some((facilities, severity)) = part.rsplit_once('.') else {
                return Err(format!(
                    "'{part}' is not FACILITY.SEVERITY (like mail.err or *.info)"
                ));
            };
            let (set, mask) = severity_mask(severity)
                .ok_or_else(|| format!("'{severity}' in '{part}' is not a severity"))?;
            for name in facilities.split(',').map(str::trim) {
                let chosen: Vec<usize> = if name == "*" {
                    (0..takes.len()).collect()
                } else {
                    let f = Facility::from_name(name)
                        .ok_or_else(|| format!("'{name}' in '{part}' is not a facility"))?;
                    vec![usize::from(f.0)]
                };
                for f in chosen {
                    if set {
                        takes[f] |= mask;
                    } else {
                        takes[f] &= !mask;
                    }
                }
            }
        }
        Ok(Selector {
            takes,
            text: text.to_owned(),
        })
    }
}

/// What a severity part does: (true, bits) sets the bits, (false, bits) clears them.
/// `*` all; `none` clears all; `sev` that or more severe; `=sev` exactly; `!sev` clears that
/// or more severe; `!=sev` clears exactly that.
fn severity_mask(text: &str) -> Option<(bool, u8)> {
    let at_or_above = |s: Severity| (((1u16 << (s.0 + 1)) - 1) & 0xff) as u8;
    match text {
        "*" => Some((true, 0xff)),
        "none" => Some((false, 0xff)),
        _ => {
            let (negated, rest) = match text.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, text),
            };
            let (exactly, name) = match rest.strip_prefix('=') {
                Some(name) => (true, name),
                None => (false, rest),
            };
            let s = Severity::from_name(name)?;
            let mask = if exactly { 1 << s.0 } else { at_or_above(s) };
            Some((!negated, mask))
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Selector({:?})", self.text)
    }
}

/// Which messages an output takes: a selector and optional narrower matches. An empty list
/// means "any".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// syslog.conf selectors.
    pub selector: Selector,
    /// Programs (SYSLOG_IDENTIFIER / APP-NAME / TAG), exactly.
    pub programs: Vec<String>,
    /// Hostnames the message carries, exactly (case-insensitively).
    pub hostnames: Vec<String>,
    /// Transports the message came by.
    pub transports: Vec<Transport>,
    /// Networks the sender is in (network transports only).
    pub sources: Vec<Network>,
}

impl Route {
    /// Everything.
    pub fn all() -> Route {
        Route {
            selector: Selector::all(),
            programs: Vec::new(),
            hostnames: Vec::new(),
            transports: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// True if it takes every message (the loop then skips matching).
    pub fn is_all(&self) -> bool {
        self.selector.takes.iter().all(|&t| t == 0xff)
            && self.programs.is_empty()
            && self.hostnames.is_empty()
            && self.transports.is_empty()
            && self.sources.is_empty()
    }

    /// True if this output takes `msg`.
    pub fn matches(&self, msg: &Message) -> bool {
        let (Some(facility), Some(severity)) =
            (Facility::new(msg.facility), Severity::new(msg.severity))
        else {
            return false;
        };
        self.selector.takes(facility, severity)
            && (self.transports.is_empty() || self.transports.contains(&msg.origin.transport))
            && (self.sources.is_empty()
                || msg
                    .origin
                    .peer
                    .is_some_and(|p| self.sources.iter().any(|n| n.contains(p.ip()))))
            && (self.programs.is_empty()
                || msg
                    .app_name()
                    .is_some_and(|a| self.programs.iter().any(|p| *p == a)))
            && (self.hostnames.is_empty()
                || msg
                    .hostname()
                    .is_some_and(|h| self.hostnames.iter().any(|n| n.eq_ignore_ascii_case(&h))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;
    use syslog::message::Origin;
    use syslog::parse::parse;

    fn takes(selector: &str, facility: &str, severity: &str) -> bool {
        let s: Selector = selector.parse().unwrap();
        s.takes(
            Facility::from_name(facility).unwrap(),
            Severity::from_name(severity).unwrap(),
        )
    }

    #[test]
    fn selectors_read_as_syslog_conf_reads_them() {
        // that severity or more severe
        assert!(takes("mail.err", "mail", "crit"));
        assert!(takes("mail.err", "mail", "err"));
        assert!(!takes("mail.err", "mail", "warning"));
        assert!(!takes("mail.err", "kern", "emerg"));
        // exactly, and negations
        assert!(takes("*.=debug", "local3", "debug"));
        assert!(!takes("*.=debug", "local3", "info"));
        assert!(takes("mail.*;mail.!err", "mail", "warning"));
        assert!(!takes("mail.*;mail.!err", "mail", "crit"));
        assert!(takes("mail.*;mail.!=err", "mail", "crit"));
        assert!(!takes("mail.*;mail.!=err", "mail", "err"));
        // lists, none, and a later selector overriding an earlier one for its facilities
        let debian_syslog = "*.*;auth,authpriv.none";
        assert!(takes(debian_syslog, "daemon", "debug"));
        assert!(!takes(debian_syslog, "auth", "emerg"));
        assert!(!takes(debian_syslog, "authpriv", "info"));
        assert!(takes("*.info;mail.none;mail.err", "mail", "err"));
        assert!(!takes("*.info;mail.none;mail.err", "mail", "info"));
        // aliases
        assert!(takes("kern.warn", "kern", "error"));
        assert!(takes("user.panic", "user", "emerg"));
    }

    #[test]
    fn bad_selectors_say_what_is_wrong() {
        for (text, needle) in [
            ("mail", "FACILITY.SEVERITY"),
            ("mial.err", "'mial'"),
            ("mail.erorr", "'erorr'"),
            ("*.=", "severity"),
        ] {
            let err = text.parse::<Selector>().unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn routes_narrow_by_program_hostname_transport_and_source() {
        let msg = parse(
            b"<38>Nov 22 00:00:33 gw1 sshd[5]: Accepted",
            Origin {
                transport: Transport::Udp,
                peer: Some("10.1.2.3:514".parse().unwrap()),
                credentials: None,
                tls_peer: None,
            },
            SystemTime::UNIX_EPOCH,
            false,
        );
        let base = Route {
            selector: "auth,authpriv.*".parse().unwrap(),
            ..Route::all()
        };
        assert!(base.matches(&msg));
        let narrowed = |f: &dyn Fn(&mut Route)| {
            let mut r = base.clone();
            f(&mut r);
            r.matches(&msg)
        };
        assert!(narrowed(&|r| r.programs = vec!["sshd".into()]));
        assert!(!narrowed(&|r| r.programs = vec!["cron".into()]));
        assert!(narrowed(&|r| r.hostnames = vec!["GW1".into()]));
        assert!(!narrowed(&|r| r.hostnames = vec!["gw2".into()]));
        assert!(narrowed(
            &|r| r.transports = vec![Transport::Udp, Transport::Tcp]
        ));
        assert!(!narrowed(&|r| r.transports = vec![Transport::UnixDatagram]));
        assert!(narrowed(
            &|r| r.sources = vec!["10.0.0.0/8".parse().unwrap()]
        ));
        assert!(!narrowed(
            &|r| r.sources = vec!["192.168.0.0/16".parse().unwrap()]
        ));
        assert!(!narrowed(&|r| r.selector = "mail.*".parse().unwrap()));
    }
}
