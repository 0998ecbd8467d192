//! The feed in the benchmark: one all-changes subscriber (a receiver in this process that
//! answers 204 at once), and how long delivering each extract's change set takes after its
//! import completed: until the receiver holds the extract's last page (or, for an extract
//! with nothing to send, until the subscription says it is delivered).

use kbo_import::client::RestateClient;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// When a page arrived, and its extract, page and pages.
type Arrival = (Instant, u64, u64, u64);

/// A receiver that answers every request 204 and counts them.
struct Sink {
    /// Its URL.
    pub url: String,
    /// Requests received.
    pub requests: Arc<AtomicU64>,
    /// The pages of changes received.
    pub arrivals: Arc<Mutex<Vec<Arrival>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink {
    /// Starts the receiver on a loopback port.
    pub async fn start() -> anyhow::Result<Sink> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr()?.port());
        let requests = Arc::new(AtomicU64::new(0));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let (counter, log) = (Arc::clone(&requests), Arc::clone(&arrivals));
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer(socket, Arc::clone(&counter), Arc::clone(&log)));
            }
        });
        Ok(Sink {
            url,
            requests,
            arrivals,
            task,
        })
    }
}

/// Reads each request of a connection whole, notes a page of changes' arrival, and answers
/// 204.
async fn answer(
    mut socket: tokio::net::TcpStream,
    counter: Arc<AtomicU64>,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
) {
    let mut data = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while data.len() < end + 4 + length {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
        }
        let body: serde_json::Value =
            serde_json::from_slice(&data[end + 4..end + 4 + length]).unwrap_or_default();
        if body["type"] == "changes" {
            let field = |v: &serde_json::Value| v.as_u64().unwrap_or_default();
            arrivals.lock().expect("not poisoned").push((
                Instant::now(),
                field(&body["extract"]["number"]),
                field(&body["page"]),
                field(&body["pages"]),
            ));
        }
        data.drain(..end + 4 + length);
        counter.fetch_add(1, Ordering::Relaxed);
        if socket
            .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    }
}

/// One all-changes subscription and its receiver, with the pages counted so far.
pub(super) struct Subscriber {
    name: String,
    sink: Sink,
    pages: u64,
}

impl Subscriber {
    /// Subscribes `name` to every change from extract `from` on, delivered to a new [`Sink`].
    pub async fn start(
        client: &RestateClient,
        name: &str,
        from: u32,
    ) -> anyhow::Result<Subscriber> {
        let sink = Sink::start().await?;
        let body = serde_json::json!({"url": sink.url, "all": true, "from": from});
        client
            .ingress
            .feed(Some(name), "subscribe", Some(body))
            .await?;
        Ok(Subscriber {
            name: name.to_string(),
            sink,
            pages: 0,
        })
    }

    /// Waits until extract `n` is delivered; the seconds from the call (made when its import
    /// has completed) until the receiver held its last page (until the subscription said it
    /// was delivered when it had none), and the pages it took.
    pub async fn delivered(
        &mut self,
        client: &RestateClient,
        n: u32,
    ) -> anyhow::Result<(f64, u64)> {
        let started = Instant::now();
        let recorded = delivered(client, &self.name, n).await?;
        let last_page = self
            .sink
            .arrivals
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|a| a.1 == u64::from(n) && a.2 == a.3)
            .map(|a| a.0)
            .max();
        let seconds = match last_page {
            Some(at) => at.saturating_duration_since(started).as_secs_f64(),
            None => recorded,
        };
        let sent = self.sink.requests.load(Ordering::Relaxed);
        let pages = sent - self.pages;
        self.pages = sent;
        Ok((seconds, pages))
    }
}

/// Waits until subscription `name` has delivered extract `n`; the seconds waited.
async fn delivered(client: &RestateClient, name: &str, n: u32) -> anyhow::Result<f64> {
    let started = Instant::now();
    loop {
        let view = client.ingress.feed(Some(name), "get", None).await?;
        if view["status"] != "active" {
            anyhow::bail!("subscription {name} stopped: {view}");
        }
        if view["deliveredThrough"].as_u64() >= Some(n.into()) && view["delivering"].is_null() {
            return Ok(started.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "{name} did not deliver {n} in an hour: {view}"
        );
        // Each look reads the register: often enough, not so often that it slows delivery.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
