//! The endpoint's TLS: the rustls server configuration for a Restate that reaches the service
//! over HTTPS only (Restate Cloud). Its handshake offers `h2` alone, so that Restate keeps its
//! bidirectional stream (a fallback to HTTP/1.1 would put the service in request/response
//! mode). [`crate::connections`] serves the connections.

use crate::config::TlsFiles;
use anyhow::Context;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use std::sync::Arc;

/// The server side of TLS from `files`; errors name the file and what is wrong with it.
pub fn server_config(files: &TlsFiles) -> anyhow::Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "KBO_TLS_CERT_FILE={}: not a readable PEM certificate chain",
                files.cert.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!(
            "KBO_TLS_CERT_FILE={} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)",
            files.cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).with_context(|| {
        format!(
            "KBO_TLS_KEY_FILE={}: not a readable PEM private key (PKCS#8, PKCS#1 or SEC1)",
            files.key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS 1.2 and 1.3 are available")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "KBO_TLS_KEY_FILE={} is not the private key of KBO_TLS_CERT_FILE={}",
                files.key.display(),
                files.cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}
