//! TLS as a forward output's client: the remote verified against `tls-ca` (and its name, the
//! host of `to` or `tls-name`), or pinned by `tls-fingerprint` (then its chain and name are not
//! consulted: the pin is the stronger statement), or both; our own certificate for mutual TLS
//! if `tls-cert` and `tls-key` are given. No session resumption, as on the server side.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, Resumption, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};
use rustls_pki_types::pem::PemObject;

use super::{certificates, identity, pem_error, provider, roots};
use crate::config::{Fingerprint, TlsClientSpec};

/// Builds the client configuration from the files `spec` names.
pub(crate) fn load(spec: &TlsClientSpec) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let ca = match &spec.ca {
        None => None,
        Some(path) => {
            let verifier = WebPkiServerVerifier::builder_with_provider(
                roots(path, "tls-ca")?,
                provider.clone(),
            )
            .build()
            .map_err(|e| format!("tls-ca {}: {e}", path.display()))?;
            Some(verifier)
        }
    };
    let verifier = Arc::new(Pinned {
        ca,
        fingerprints: spec.fingerprints.clone(),
        provider: provider.clone(),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&spec.cert, &spec.key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("tls-key {}: {}", key.display(), pem_error(&e)))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("tls-cert {} with tls-key: {e}", cert.display()))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// The name to ask for and verify: an IP address or a DNS name.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string()).map_err(|_| format!("'{host}' is not a host name"))
}

/// The CA's verdict, the pin's, or both.
#[derive(Debug)]
struct Pinned {
    ca: Option<Arc<WebPkiServerVerifier>>,
    fingerprints: Vec<Fingerprint>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if let Some(ca) = &self.ca {
            ca.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        }
        if !self.fingerprints.is_empty()
            && !self
                .fingerprints
                .contains(&identity::fingerprint(end_entity))
        {
            return Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ServerCertVerified::assertion())
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
