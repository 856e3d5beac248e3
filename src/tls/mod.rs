//! TLS for `tls://` inputs (RFC 5425), with rustls: what a listener's certificates, keys and
//! client CAs become (a `rustls::ServerConfig`), read at start and again on every reload.
//!
//! The crypto provider is *ring*: it builds with the C compiler every Debian has (no cmake, Go
//! or clang, which aws-lc-rs's build wants), it is what rustls is most tested with after
//! aws-lc-rs, and it has every algorithm syslog peers use (ECDSA, RSA, Ed25519; AES-GCM and
//! ChaCha20-Poly1305). TLS 1.2 and 1.3 are offered (RFC 9662 requires 1.2; rsyslog and
//! syslog-ng speak both).
//!
//! Sessions are not resumed: no session cache or tickets, so a connection costs only itself
//! and nothing a client does grows state beyond its connection. A log sender reconnects
//! rarely; a full handshake then is cheap next to what it sends.
//!
//! - [`identity`](self::identity): the verified peer as text, and fingerprints.
//! - [`verify`](self::verify): client verification narrowed to names or fingerprints.

pub(crate) mod client;
pub(crate) mod identity;
mod verify;

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, ServerConfig, WebPkiClientVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use crate::config::TlsSpec;

/// The crypto provider every TLS endpoint uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// True for a name `tls-client-names` can hold: a DNS name, or `*.` and one.
pub(crate) fn valid_name_pattern(pattern: &str) -> bool {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    rustls_pki_types::DnsName::try_from(name).is_ok() && !name.contains('*')
}

/// A TLS listener's configuration, ready for connections.
#[derive(Clone)]
pub(crate) struct Server {
    /// What every new connection is started with.
    pub config: Arc<ServerConfig>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tls::Server")
    }
}

impl Server {
    /// Reads the files `spec` names and builds the configuration; the error names the file
    /// and what is wrong with it.
    pub(crate) fn load(spec: &TlsSpec) -> Result<Server, String> {
        let provider = provider();
        let (Some(cert), Some(key)) = (&spec.cert, &spec.key) else {
            return Err("tls-cert and tls-key are required".into());
        };
        let chain = certificates(cert)?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("tls-key {}: {}", key.display(), pem_error(&e)))?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match client_verifier(spec, &provider)? {
            Some(verifier) => builder.with_client_cert_verifier(verifier),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("tls-cert {} with tls-key: {e}", cert.display()))?;
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(Server {
            config: Arc::new(config),
        })
    }
}

/// How clients are verified: by the CA (with CRLs), narrowed to names or fingerprints; None
/// when they are not asked for a certificate.
fn client_verifier(
    spec: &TlsSpec,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, String> {
    let ca = match &spec.client_ca {
        None => None,
        Some(path) => {
            let roots = roots(path, "tls-client-ca")?;
            let mut crls = Vec::new();
            for crl in &spec.crls {
                let found = CertificateRevocationListDer::pem_file_iter(crl)
                    .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("tls-crl {}: {}", crl.display(), pem_error(&e)))?;
                if found.is_empty() {
                    return Err(format!(
                        "tls-crl {}: no X509 CRL in the file",
                        crl.display()
                    ));
                }
                crls.extend(found);
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                .with_crls(crls)
                .build()
                .map_err(|e| format!("tls-client-ca {}: {e}", path.display()))?;
            Some(verifier)
        }
    };
    if spec.client_names.is_empty() && spec.client_fingerprints.is_empty() {
        return Ok(ca);
    }
    Ok(Some(Arc::new(verify::Narrowed {
        ca,
        names: spec.client_names.clone(),
        fingerprints: spec.client_fingerprints.clone(),
        provider: provider.clone(),
    })))
}

/// Every certificate of a PEM file; at least one.
/// The CA bundle at `path` (named `key` in errors) as a root store.
fn roots(path: &Path, key: &str) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{key} {}: {e}", path.display()))?;
    }
    Ok(Arc::new(roots))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {}", path.display(), pem_error(&e)))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no CERTIFICATE in the file (PEM expected)",
            path.display()
        ));
    }
    Ok(certs)
}

fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::Io(e) => e.to_string(),
        Error::NoItemsFound => "no PEM item of the kind expected in the file".into(),
        other => format!("not valid PEM ({other:?})"),
    }
}
