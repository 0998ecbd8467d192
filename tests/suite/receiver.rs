//! A webhook receiver on loopback that records every request and answers as the test
//! scripts it: 2xx, any status (with a `Retry-After`), the connection closed mid-request, or
//! an answer only after the sender's timeout. Once the script is used up it answers 204.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This HTTP status, with a `Retry-After` of so many seconds if given.
    Status(u16, Option<u64>),
    /// The connection is closed once half the body is read, without an answer.
    Close,
    /// 204, but only after this long (longer than the sender's timeout: a page it gave up on).
    Late(Duration),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: i64,
    /// `webhook-signature`.
    pub signature: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a page is JSON")
    }
}

/// The running receiver.
pub struct Receiver {
    /// Its URL (`http://127.0.0.1:<port>/hook`).
    pub url: String,
    log: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Starts a receiver that answers `script` in order, then 204.
    pub async fn start(script: Vec<Reply>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/hook",
            listener.local_addr().unwrap().port()
        );
        let script = Arc::new(Mutex::new(script));
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = Arc::clone(&log);
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(socket, Arc::clone(&script), Arc::clone(&l)));
            }
        });
        Receiver { url, log, task }
    }

    /// Every request so far, in the order received.
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
}

/// Serves one connection (HTTP/1.1, one request after the other).
async fn serve(
    mut socket: tokio::net::TcpStream,
    script: Arc<Mutex<Vec<Reply>>>,
    log: Arc<Mutex<Vec<Received>>>,
) {
    loop {
        let mut data = Vec::new();
        let mut buf = [0u8; 8192];
        let head_end = loop {
            if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
        };
        let head = String::from_utf8_lossy(&data[..head_end]).to_string();
        let header = |name: &str| -> String {
            head.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let length: usize = header("content-length").parse().unwrap_or(0);
        let reply = {
            let mut script = script.lock().unwrap();
            (!script.is_empty()).then(|| script.remove(0))
        };
        if let Some(Reply::Close) = reply {
            // Half the body, then the connection is dropped.
            while data.len() < head_end + length / 2 {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                }
            }
            return;
        }
        while data.len() < head_end + length {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
        }
        let (status, retry_after) = match &reply {
            Some(Reply::Status(s, after)) => (*s, *after),
            Some(Reply::Late(wait)) => {
                tokio::time::sleep(*wait).await;
                (204, None)
            }
            _ => (204, None),
        };
        log.lock().unwrap().push(Received {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp").parse().unwrap_or(0),
            signature: header("webhook-signature"),
            body: data[head_end..head_end + length].to_vec(),
        });
        let after = retry_after
            .map(|s| format!("retry-after: {s}\r\n"))
            .unwrap_or_default();
        let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n{after}\r\n");
        if socket.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}
