//! The endpoint's connections: HTTP/2, in cleartext or behind TLS ([`crate::tls`]), each sending
//! keep-alive pings.
//!
//! While a step works (a Full's download, a long batch), nothing flows on Restate's stream to
//! the service. A proxy between them (Fly.io's, a load balancer) may close a connection that
//! carries nothing for a while, which aborts the step. An HTTP/2 PING every
//! `KBO_HTTP2_KEEPALIVE_SECS` keeps the connection busy, and a connection whose peer no longer
//! answers pings is closed instead of waited on. The SDK's own server sends no pings; this one
//! serves the same endpoint ([`restate_sdk::hyper::HyperEndpoint`]).

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use restate_sdk::endpoint::Endpoint;
use restate_sdk::hyper::HyperEndpoint;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// How the connections are served.
pub struct Options {
    /// `rustls`' server side, when the endpoint speaks TLS.
    pub tls: Option<rustls::ServerConfig>,
    /// Seconds between keep-alive pings on a connection; `None`: no pings.
    pub keepalive: Option<Duration>,
}

/// How long the TLS handshake of a new connection may take.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// How long open streams may go on after the shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `endpoint` on `listener` until `shutdown` completes, then lets the open streams end
/// (10 s at most).
pub async fn serve(
    endpoint: Endpoint,
    options: Options,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = options
        .tls
        .map(|config| tokio_rustls::TlsAcceptor::from(Arc::new(config)));
    let endpoint = HyperEndpoint::new(endpoint);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, remote)) = accepted else { continue };
                let endpoint = endpoint.clone();
                let (acceptor, keepalive) = (acceptor.clone(), options.keepalive);
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let served = match acceptor {
                        None => watcher.watch(connection(stream, endpoint, keepalive)).await,
                        Some(acceptor) => {
                            let Some(tls) = handshake(&acceptor, stream, remote).await else {
                                return;
                            };
                            watcher.watch(connection(tls, endpoint, keepalive)).await
                        }
                    };
                    if let Err(e) = served {
                        tracing::debug!(%remote, error = ?e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => {
            tracing::warn!("timed out waiting for the open streams to end");
        }
    }
}

/// The TLS side of a new connection, or `None` (logged) when its handshake fails or stalls.
async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    remote: std::net::SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::warn!(%remote, error = %e, "TLS handshake refused");
            None
        }
        Err(_) => {
            tracing::warn!(%remote, "TLS handshake timed out");
            None
        }
    }
}

/// One HTTP/2 connection on `io`, pinging its peer every `keepalive`.
fn connection<I>(
    io: I,
    endpoint: HyperEndpoint,
    keepalive: Option<Duration>,
) -> http2::Connection<TokioIo<I>, HyperEndpoint, TokioExecutor>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    if let Some(every) = keepalive {
        // A peer that answers no ping within one interval is gone: close the connection.
        builder.keep_alive_interval(every).keep_alive_timeout(every);
    }
    builder.serve_connection(TokioIo::new(io), endpoint)
}
