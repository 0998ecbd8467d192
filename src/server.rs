//! The Restate endpoint: the `restate-sdk` crate's own HTTP server, serving `KboImport` and
//! `KboSync`.

use crate::config::Config;
use crate::importer::Importer;
use crate::sync::KboSync;
use crate::workflow::KboImport;
use restate_sdk::prelude::{Endpoint, HttpServer};
use std::net::SocketAddr;
use std::sync::Arc;

/// Serves the endpoint on `PORT` until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([0, 0, 0, 0], config.port));
    let mut builder = Endpoint::builder();
    for key in &config.identity_keys {
        builder = builder.identity_key(key).map_err(|e| {
            anyhow::anyhow!(
                "RESTATE_IDENTITY_KEYS holds a key that is not a Restate public key ({e:?})"
            )
        })?;
    }
    tracing::info!(
        %addr,
        database = %config.database,
        work_dir = %config.work_dir.display(),
        batch_rows = config.batch_rows,
        request_identity = !config.identity_keys.is_empty(),
        portal = %config.portal.url,
        portal_account = config.portal.username.is_some(),
        sync_schedule = %config.sync.schedule,
        "serving the KboImport workflow and the KboSync object"
    );
    let schedule = config.sync.schedule;
    let importer = Arc::new(Importer::new(config.importer()));
    let endpoint = builder
        .bind(KboImport::new(Arc::clone(&importer)))
        .bind(KboSync::new(importer, schedule))
        .build();
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr}: {e}; is another process using PORT?")
    })?;
    HttpServer::new(endpoint).serve(listener).await;
    Ok(())
}
