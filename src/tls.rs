//! The endpoint over TLS: HTTP/2 on a rustls connection, for a Restate that reaches the
//! service over HTTPS only (Restate Cloud). The SDK's own server speaks cleartext HTTP/2; this
//! serves the same endpoint ([`restate_sdk::hyper::HyperEndpoint`]) behind a TLS handshake that
//! offers `h2` alone, so that Restate keeps its bidirectional stream (a fallback to HTTP/1.1
//! would put the service in request/response mode).

use crate::config::TlsFiles;
use anyhow::Context;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use restate_sdk::endpoint::Endpoint;
use restate_sdk::hyper::HyperEndpoint;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

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

/// Serves `endpoint` over TLS with `config` on `listener` until Ctrl-C or SIGTERM, then lets
/// the open streams end (10 s at most).
pub async fn serve(
    endpoint: Endpoint,
    config: rustls::ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let endpoint = HyperEndpoint::new(endpoint);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, remote)) = accepted else { continue };
                let (acceptor, endpoint) = (acceptor.clone(), endpoint.clone());
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::warn!(%remote, error = %e, "TLS handshake refused");
                            return;
                        }
                        Err(_) => {
                            tracing::warn!(%remote, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), endpoint);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%remote, error = ?e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("timed out waiting for the open streams to end");
        }
    }
}
