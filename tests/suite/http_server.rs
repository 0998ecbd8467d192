//! A small HTTP/1.1 file server on loopback whose answers the test scripts: 404s, 500s,
//! connections reset before any answer, bodies cut short, redirects, then the file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the server answers one request for a path.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `500 Internal Server Error`.
    ServerError,
    /// The connection is closed without an answer.
    Reset,
    /// `200 OK` with the file's bytes.
    File(PathBuf),
    /// `200 OK` announcing the file's length, then half of its bytes, then the end.
    Short(PathBuf),
    /// `302 Found` to this location.
    Redirect(String),
    /// `200 OK` with the file's bytes, sent in ten pieces spread over the duration (a slow
    /// server: the download step takes that long).
    Slow(PathBuf, std::time::Duration),
}

/// The running server: paths map to scripted answers, consumed in order; the last one repeats.
/// Unknown paths answer 404.
pub struct FileServer {
    /// Its port.
    pub port: u16,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FileServer {
    /// Starts serving `script`.
    pub async fn start(script: HashMap<String, Vec<Answer>>) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let script = Arc::new(Mutex::new(script));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let request = String::from_utf8_lossy(&head);
                    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let answer = {
                        let mut script = script.lock().unwrap();
                        match script.get_mut(&path) {
                            Some(answers) if answers.len() > 1 => Some(answers.remove(0)),
                            Some(answers) => answers.first().cloned(),
                            None => None,
                        }
                    };
                    let _ = match answer {
                        None => socket.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot found").await,
                        Some(Answer::ServerError) => socket.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\noops").await,
                        Some(Answer::Reset) => return,
                        Some(Answer::Redirect(to)) => {
                            let head = format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                            socket.write_all(head.as_bytes()).await
                        }
                        Some(Answer::Short(path)) => {
                            let bytes = tokio::fs::read(&path).await.unwrap();
                            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/zip\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", bytes.len());
                            match socket.write_all(head.as_bytes()).await {
                                Ok(()) => socket.write_all(&bytes[..bytes.len() / 2]).await,
                                Err(e) => Err(e),
                            }
                        }
                        Some(Answer::Slow(path, over)) => {
                            let bytes = tokio::fs::read(&path).await.unwrap();
                            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/zip\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", bytes.len());
                            let mut sent = socket.write_all(head.as_bytes()).await;
                            for piece in bytes.chunks(bytes.len().div_ceil(10).max(1)) {
                                tokio::time::sleep(over / 10).await;
                                sent = sent.and(socket.write_all(piece).await);
                            }
                            sent
                        }
                        Some(Answer::File(path)) => {
                            let bytes = tokio::fs::read(&path).await.unwrap();
                            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/zip\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", bytes.len());
                            match socket.write_all(head.as_bytes()).await {
                                Ok(()) => socket.write_all(&bytes).await,
                                Err(e) => Err(e),
                            }
                        }
                    };
                    let _ = socket.shutdown().await;
                });
            }
        });
        FileServer {
            port,
            requests,
            task,
        }
    }

    /// The URL of a path on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Connections accepted so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
