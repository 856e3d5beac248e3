//! Who a verified TLS peer is, as text for the journal and the formats: the subject's common
//! name and the certificate's DNS names (`CN=web1.example.net, DNS:web1.example.net`), and the
//! certificate's SHA-256 fingerprint.
//!
//! The certificate was verified before this runs; the walk below reads the subject's DER
//! defensively all the same (every length checked, any surprise gives no CN), since a
//! certificate's text is the sender's.

use rustls_pki_types::CertificateDer;

use crate::config::Fingerprint;

/// The SHA-256 fingerprint of a DER certificate.
pub(crate) fn fingerprint(der: &[u8]) -> Fingerprint {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    Fingerprint(out)
}

/// The names a certificate presents: its DNS subject-alternative names and its subject's
/// common name (what rsyslog's permitted-peer names match too).
pub(crate) fn names(der: &CertificateDer<'_>) -> (Option<String>, Vec<String>) {
    let Ok(cert) = webpki::EndEntityCert::try_from(der) else {
        return (None, Vec::new());
    };
    let dns = cert.valid_dns_names().map(str::to_owned).collect();
    (common_name(cert.subject()).map(str::to_owned), dns)
}

/// `CN=..., DNS:..., DNS:...`, or the fingerprint when the certificate names nothing.
/// Control and invisible characters a CA let into a name are escaped (`\xNN`), as in
/// messages, so the identity cannot forge a line anywhere it is written.
pub(crate) fn describe(der: &CertificateDer<'_>) -> String {
    let (cn, dns) = names(der);
    let parts: Vec<String> = cn
        .map(|cn| format!("CN={cn}"))
        .into_iter()
        .chain(dns.iter().map(|d| format!("DNS:{d}")))
        .collect();
    if parts.is_empty() {
        return fingerprint(der).to_string();
    }
    let mut out = Vec::new();
    syslog::escape::escape_into(&mut out, parts.join(", ").as_bytes(), syslog::escape::LINE);
    String::from_utf8_lossy(&out).into_owned()
}

const SET: u8 = 0x31;
const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
/// 2.5.4.3, id-at-commonName.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// The string types a DirectoryString may be: UTF8String, PrintableString, TeletexString
/// (taken as Latin-1-ish ASCII), IA5String.
const STRING_TAGS: &[u8] = &[0x0c, 0x13, 0x14, 0x16];

/// The first common name of a DER Name's contents (the RDNSequence without its outer
/// SEQUENCE header, as webpki gives it), if it is text.
pub(crate) fn common_name(subject: &[u8]) -> Option<&str> {
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (tag, set, rest) = tlv(rdns)?;
        rdns = rest;
        if tag != SET {
            return None;
        }
        let mut attributes = set;
        while !attributes.is_empty() {
            let (tag, attribute, rest) = tlv(attributes)?;
            attributes = rest;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = tlv(attribute)?;
            if tag != OID || oid != COMMON_NAME {
                continue;
            }
            let (tag, text, _) = tlv(value)?;
            if !STRING_TAGS.contains(&tag) {
                return None;
            }
            return std::str::from_utf8(text).ok();
        }
    }
    None
}

/// Splits one DER tag-length-value off `input`: (tag, value, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 3 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((tag, value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SET { SEQUENCE { OID 2.5.4.6, PrintableString "DE" } },
    /// SET { SEQUENCE { OID 2.5.4.3, UTF8String "web1" } }
    const SUBJECT: &[u8] = &[
        0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'D', b'E', //
        0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x04, b'w', b'e', b'b', b'1',
    ];

    #[test]
    fn finds_the_common_name_after_other_attributes() {
        assert_eq!(common_name(SUBJECT), Some("web1"));
        assert_eq!(common_name(&SUBJECT[..13]), None);
        assert_eq!(common_name(&[]), None);
    }

    #[test]
    fn every_cut_or_corrupted_subject_is_refused_without_a_panic() {
        for cut in 0..SUBJECT.len() {
            let _ = common_name(&SUBJECT[..cut]);
        }
        for i in 0..SUBJECT.len() {
            for b in [0x00, 0x7f, 0x80, 0x81, 0x84, 0xff] {
                let mut bad = SUBJECT.to_vec();
                bad[i] = b;
                let _ = common_name(&bad);
            }
        }
        // A length that claims more than there is.
        assert_eq!(common_name(&[0x31, 0x82, 0xff, 0xff]), None);
    }
}
