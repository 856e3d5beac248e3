//! Client-certificate verification narrowed beyond the CA: `tls-client-names` and
//! `tls-client-fingerprints`. The CA's verdict (chain, validity dates, revocation, key usage)
//! comes first from rustls' WebPKI verifier; these only take away. Without a CA, fingerprints
//! alone pin the certificates accepted (rsyslog's `x509/fingerprint` mode): the chain is not
//! checked, the handshake signature always is.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::identity;
use crate::config::Fingerprint;

/// A verifier that asks more of a client than its CA does.
#[derive(Debug)]
pub(super) struct Narrowed {
    /// The CA's verifier; None when fingerprints alone decide.
    pub ca: Option<Arc<dyn ClientCertVerifier>>,
    /// Accepted names (DNS SAN or CN); empty: any.
    pub names: Vec<String>,
    /// Accepted fingerprints; empty: any.
    pub fingerprints: Vec<Fingerprint>,
    /// For the handshake signatures.
    pub provider: Arc<CryptoProvider>,
}

/// True if `name` (from a certificate) matches `pattern` (from the configuration): equal but
/// for case, or `*.rest` matching one label followed by `.rest`.
pub(crate) fn name_matches(pattern: &str, name: &str) -> bool {
    if pattern.eq_ignore_ascii_case(name) {
        return true;
    }
    match (pattern.strip_prefix("*."), name.split_once('.')) {
        (Some(rest), Some((label, name_rest))) => {
            !label.is_empty() && label != "*" && rest.eq_ignore_ascii_case(name_rest)
        }
        _ => false,
    }
}

impl ClientCertVerifier for Narrowed {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.ca.as_ref().map_or(&[], |ca| ca.root_hint_subjects())
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if let Some(ca) = &self.ca {
            ca.verify_client_cert(end_entity, intermediates, now)?;
        } else if webpki::EndEntityCert::try_from(end_entity).is_err() {
            return Err(Error::InvalidCertificate(CertificateError::BadEncoding));
        }
        if !self.fingerprints.is_empty()
            && !self
                .fingerprints
                .contains(&identity::fingerprint(end_entity))
        {
            return Err(Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(Refused(
                    "its fingerprint is not in tls-client-fingerprints",
                ))),
            )));
        }
        if !self.names.is_empty() {
            let (cn, dns) = identity::names(end_entity);
            let matched = dns
                .iter()
                .map(String::as_str)
                .chain(cn.as_deref())
                .any(|n| self.names.iter().any(|p| name_matches(p, n)));
            if !matched {
                return Err(Error::InvalidCertificate(CertificateError::Other(
                    rustls::OtherError(Arc::new(Refused(
                        "none of its names is in tls-client-names",
                    ))),
                )));
            }
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why a certificate the CA accepted was refused all the same.
#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Refused {}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn names_match_exactly_or_by_one_wildcard_label() {
        assert!(name_matches("web1.example.net", "WEB1.example.net"));
        assert!(name_matches("*.example.net", "web1.example.net"));
        assert!(!name_matches("*.example.net", "a.web1.example.net"));
        assert!(!name_matches("*.example.net", "example.net"));
        assert!(!name_matches("*.example.net", ".example.net"));
        assert!(!name_matches("*.example.net", "*.example.net.evil"));
        assert!(!name_matches("web1.example.net", "web2.example.net"));
        // A certificate's own wildcard name matches only the same pattern, literally.
        assert!(name_matches("*.example.net", "*.example.net"));
        assert!(!name_matches("web1.example.net", "*.example.net"));
    }
}
