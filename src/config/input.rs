//! What an input is: its listen address, the networks it serves, its TLS material and its
//! limits (`listen = [...]` entries and `[[input]]` tables both become an [`InputSpec`]).
//!
//! Pure: paths are checked for form here; the files are read when the input is started or
//! reloaded (`tls::Server::load`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::Limits;
use crate::allow::AllowList;
use crate::listen::ListenAddr;
use syslog::message::Transport;

/// One input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// Where it listens.
    pub listen: ListenAddr,
    /// The networks it takes messages and connections from (empty: everyone).
    pub allow: AllowList,
    /// Certificates and client verification, for `tls://`.
    pub tls: TlsSpec,
    /// Its limits: the top-level ones unless the `[[input]]` table sets its own.
    pub limits: Limits,
    /// With read = "journal": journalctl-style matches (`FIELD=value`, `+`).
    pub journal_match: Vec<String>,
}

impl InputSpec {
    /// An input at `listen` with no allow-list, no TLS and `limits`.
    pub fn plain(listen: ListenAddr, limits: &Limits) -> InputSpec {
        InputSpec {
            listen,
            allow: AllowList::default(),
            tls: TlsSpec::default(),
            limits: limits.clone(),
            journal_match: Vec::new(),
        }
    }

    /// True when it says nothing a `listen = [...]` entry cannot (printed there by `show`).
    pub fn is_plain(&self, limits: &Limits) -> bool {
        self.allow.is_everyone()
            && self.tls == TlsSpec::default()
            && self.limits == *limits
            && self.journal_match.is_empty()
    }

    /// The checks across its keys.
    pub fn check(&self) -> Result<(), String> {
        if !self.journal_match.is_empty() && self.listen.transport != Transport::Journal {
            return Err(format!(
                "{}: 'journal-match' applies to read = \"journal\"",
                self.listen
            ));
        }
        if self.listen.transport.is_read() && !self.allow.is_everyone() {
            return Err(format!(
                "{}: 'allow' applies to network inputs, not to a log read from the host",
                self.listen
            ));
        }
        let tls = self.listen.transport.is_tls();
        let t = &self.tls;
        if tls && (t.cert.is_none() || t.key.is_none()) {
            return Err(format!(
                "{}: a TLS input needs 'tls-cert' and 'tls-key'",
                self.listen
            ));
        }
        if !tls && *t != TlsSpec::default() {
            return Err(format!(
                "{}: the tls-* keys apply to tls://, relp+tls:// and journal-remote+https:// inputs only",
                self.listen
            ));
        }
        if t.client_ca.is_none() && !t.crls.is_empty() {
            return Err(format!(
                "{}: 'tls-crl' needs 'tls-client-ca' (revocation applies to verified clients)",
                self.listen
            ));
        }
        if t.client_ca.is_none() && !t.client_names.is_empty() {
            return Err(format!(
                "{}: 'tls-client-names' needs 'tls-client-ca': a name is only worth what the \
                 CA that signed it vouches (or pin certificates with 'tls-client-fingerprints')",
                self.listen
            ));
        }
        if self.listen.transport.is_local() && !self.allow.is_everyone() {
            return Err(format!(
                "{}: 'allow' lists networks; a local socket's access is its file's mode and \
                 directory",
                self.listen
            ));
        }
        Ok(())
    }
}

/// The TLS material of a `tls://` input (all unset for other inputs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSpec {
    /// `tls-cert`: the server's certificate chain, PEM, leaf first.
    pub cert: Option<PathBuf>,
    /// `tls-key`: its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// `tls-client-ca`: set, clients must present a certificate signed by one of these CAs
    /// (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// `tls-client-names`: a verified client must also carry one of these names (DNS SAN or
    /// CN; `*.example.net` matches one label).
    pub client_names: Vec<String>,
    /// `tls-client-fingerprints`: a client certificate must also have one of these SHA-256
    /// fingerprints; without `tls-client-ca`, these pin the certificates accepted.
    pub client_fingerprints: Vec<Fingerprint>,
    /// `tls-crl`: certificate revocation lists (PEM) for the client CA.
    pub crls: Vec<PathBuf>,
}

impl TlsSpec {
    /// True when clients must present a certificate.
    pub fn verifies_clients(&self) -> bool {
        self.client_ca.is_some() || !self.client_fingerprints.is_empty()
    }
}

/// A certificate's SHA-256 fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl FromStr for Fingerprint {
    type Err = String;

    /// `SHA256:AB:CD:...` (what `openssl x509 -fingerprint -sha256` and rsyslog print), with or
    /// without the prefix and the colons, in either case.
    fn from_str(s: &str) -> Result<Fingerprint, String> {
        let hex = s
            .strip_prefix("SHA256:")
            .or_else(|| s.strip_prefix("sha256:"))
            .or_else(|| s.strip_prefix("sha256 Fingerprint="))
            .or_else(|| s.strip_prefix("SHA256 Fingerprint="))
            .unwrap_or(s);
        let digits: Vec<u8> = hex.bytes().filter(|b| *b != b':').collect();
        let bad = || {
            format!(
                "'{s}' is not a SHA-256 fingerprint: expected 32 bytes in hex, as \
                 `openssl x509 -noout -fingerprint -sha256` prints them"
            )
        };
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| bad())?;
            out[i] = u8::from_str_radix(text, 16).map_err(|_| bad())?;
        }
        Ok(Fingerprint(out))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SHA256:")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_read_openssl_and_rsyslog_forms_and_print_rsyslogs() {
        let colons = "SHA256:".to_owned() + &["AB"; 32].join(":");
        let fp: Fingerprint = colons.parse().unwrap();
        assert_eq!(fp.0, [0xAB; 32]);
        assert_eq!(fp.to_string(), colons);
        let openssl = "sha256 Fingerprint=".to_owned() + &["0f"; 32].join(":");
        assert_eq!(openssl.parse::<Fingerprint>().unwrap().0, [0x0F; 32]);
        assert_eq!("ab".repeat(32).parse::<Fingerprint>().unwrap(), fp);
        for bad in ["", "SHA256:AB", &"zz".repeat(32), &"ab".repeat(33)] {
            assert!(bad.parse::<Fingerprint>().unwrap_err().contains("SHA-256"));
        }
    }
}
