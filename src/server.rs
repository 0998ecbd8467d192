//! The Restate endpoint serving `KboImport`, `KboVerify` and `KboSync`: the `restate-sdk` crate's own HTTP
//! server (cleartext HTTP/2), or the same endpoint over TLS ([`crate::tls`]) when
//! `KBO_TLS_CERT_FILE` and `KBO_TLS_KEY_FILE` are set.

use crate::config::Config;
use crate::feed::{KboFeed, KboSubscription};
use crate::importer::Importer;
use crate::sync::KboSync;
use crate::workflow::{KboImport, KboVerify, RunWatch};
use restate_sdk::prelude::Endpoint;
use std::net::SocketAddr;
use std::sync::Arc;

/// Serves the endpoint on `PORT` until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([0, 0, 0, 0], config.server.port));
    let mut builder = Endpoint::builder();
    for key in &config.server.identity_keys {
        builder = builder.identity_key(key).map_err(|e| {
            anyhow::anyhow!(
                "RESTATE_IDENTITY_KEYS holds a key that is not a Restate public key ({e:?})"
            )
        })?;
    }
    tracing::info!(
        %addr,
        database = %config.import.database,
        work_dir = %config.import.work_dir.display(),
        batch_rows = config.import.batch_rows,
        request_identity = !config.server.identity_keys.is_empty(),
        tls = config.server.tls.is_some(),
        portal = %config.import.portal.url,
        portal_account = config.import.portal.username.is_some(),
        sync_schedule = %config.sync.schedule,
        "serving the KboImport and KboVerify workflows and the KboSync object"
    );
    // A certificate that cannot serve is refused before anything listens.
    let tls = config
        .server
        .tls
        .as_ref()
        .map(crate::tls::server_config)
        .transpose()?;
    let schedule = config.sync.schedule;
    let importer = Arc::new(Importer::new(config.import.clone()));
    // The sync reads the register and the portal only; its imports are KboImport's.
    let register = importer.register();
    // The feed reads the register through the same database handle, one step at a time.
    let feed = crate::feed::Feed::new(importer.database(), config.import.download, config.feed);
    let retries = config.import.retries;
    let endpoint = builder
        .bind(KboImport::new(
            Arc::clone(&importer),
            RunWatch::new(config.import.restate_admin.as_ref()),
        ))
        .bind(KboVerify::new(
            importer,
            RunWatch::new(config.import.restate_admin.as_ref()),
        ))
        .bind(KboSync::new(register, schedule, config.sync.verify))
        .bind(KboSubscription::new(feed.clone(), retries))
        .bind(KboFeed::new(feed, retries))
        .build();
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr}: {e}; is another process using PORT?")
    })?;
    let options = crate::connections::Options {
        tls,
        keepalive: config.server.keepalive,
    };
    crate::connections::serve(endpoint, options, listener, shutdown()).await;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM (how a container platform stops the service).
async fn shutdown() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: letting open streams end");
}
