//! Keep-alive pings through a proxy that closes idle connections (Fly.io's proxy, a load
//! balancer): while a step works nothing flows on Restate's stream, and without pings such a
//! proxy cuts it and the step is aborted and run again.

use crate::fixtures::chain;
use crate::harness::TestApp;
use crate::http_server::{Answer, FileServer};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to `target` that closes a connection on which no byte went either way for
/// `idle`; counts the connections it cut.
struct IdleClosingProxy {
    port: u16,
    cut: Arc<AtomicUsize>,
}

impl IdleClosingProxy {
    async fn start(target: u16, idle: Duration) -> IdleClosingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&cut);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                        return;
                    };
                    if relay(client, server, idle).await {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        IdleClosingProxy { port, cut }
    }

    fn cut(&self) -> usize {
        self.cut.load(Ordering::SeqCst)
    }
}

/// Relays bytes both ways until either side closes (false) or nothing moved for `idle` (true).
async fn relay(mut a: TcpStream, mut b: TcpStream, idle: Duration) -> bool {
    let (mut ar, mut aw) = a.split();
    let (mut br, mut bw) = b.split();
    let (mut x, mut y) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        tokio::select! {
            n = ar.read(&mut x) => match n {
                Ok(0) | Err(_) => return false,
                Ok(n) => if bw.write_all(&x[..n]).await.is_err() { return false },
            },
            n = br.read(&mut y) => match n {
                Ok(0) | Err(_) => return false,
                Ok(n) => if aw.write_all(&y[..n]).await.is_err() { return false },
            },
            () = tokio::time::sleep(idle) => return true,
        }
    }
}

/// An import whose download takes 6 s, through a proxy that cuts a connection silent for 3 s,
/// with the service pinging every `keepalive_secs`; the proxy's cuts and the downloads made.
async fn import_through_proxy(keepalive_secs: &str, id: &str) -> (usize, usize, String) {
    let chain = chain();
    let app = TestApp::build()
        .env(&[("KBO_HTTP2_KEEPALIVE_SECS", keepalive_secs)])
        .unregistered()
        .spawn();
    let proxy = IdleClosingProxy::start(app.service.port, Duration::from_secs(3)).await;
    app.restate.register(proxy.port);
    let path = "/KboOpenData_0140_2025_09_Full.zip";
    let slow = Answer::Slow(chain.full.clone(), Duration::from_secs(6));
    let server = FileServer::start(HashMap::from([(path.to_string(), vec![slow])])).await;
    app.start_import(id, json!({ "url": server.url(path) }))
        .await;
    let done = app.wait_finished(id, Duration::from_secs(180)).await;
    (proxy.cut(), server.requests(), done["status"].to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn pings_keep_a_silent_step_alive_through_a_proxy_that_cuts_idle_connections() {
    let (cut, downloads, status) = import_through_proxy("1", "keepalive-140").await;
    assert_eq!(status, "\"completed\"");
    assert_eq!(
        cut, 0,
        "the proxy cut a connection although the service pinged"
    );
    assert_eq!(downloads, 1, "the download step ran once");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_pings_the_same_proxy_cuts_the_silent_step() {
    // The counterpart that proves the proxy bites: with pings off, the 6 s download is cut.
    let (cut, _downloads, _status) = import_through_proxy("0", "no-keepalive-140").await;
    assert!(
        cut >= 1,
        "the proxy never cut a connection: the test above proves nothing"
    );
}
