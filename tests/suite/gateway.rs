//! A stand-in for Restate Cloud's front door: an HTTPS server (the test CA's certificate) that
//! requires a bearer token and passes what it lets through to a real Restate's ingress or admin
//! API. No token: 401; another token: 403 (as Restate Cloud answers). Not a mock of Restate:
//! every call it accepts is answered by the real server behind it.

use crate::certs::TestCa;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;

/// The running stand-in.
pub struct Gateway {
    /// Its port on loopback.
    pub port: u16,
    refused: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

struct Upstream {
    url: String,
    token: String,
    http: reqwest::Client,
    refused: Arc<AtomicUsize>,
}

impl Gateway {
    /// Serves HTTPS with `ca`'s certificate, passing requests with `Bearer <token>` to
    /// `upstream` (a base URL).
    pub async fn start(ca: &TestCa, upstream: &str, token: &str) -> Gateway {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(ca.server_config(&[b"http/1.1"])));
        let refused = Arc::new(AtomicUsize::new(0));
        let upstream = Arc::new(Upstream {
            url: upstream.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: reqwest::Client::new(),
            refused: Arc::clone(&refused),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, upstream) = (acceptor.clone(), Arc::clone(&upstream));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(move |request| {
                        let upstream = Arc::clone(&upstream);
                        async move { Ok::<_, hyper::Error>(upstream.pass(request).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Gateway {
            port,
            refused,
            task,
        }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// How many requests it refused for their token.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

impl Upstream {
    /// Checks the token, then passes the request on and its answer back.
    async fn pass(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let token = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        match token {
            None => {
                self.refused.fetch_add(1, Ordering::SeqCst);
                return answer(StatusCode::UNAUTHORIZED, "missing bearer token");
            }
            Some(token) if token != self.token => {
                self.refused.fetch_add(1, Ordering::SeqCst);
                return answer(StatusCode::FORBIDDEN, "this API key may not do that");
            }
            Some(_) => {}
        }
        let (parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut forward = self
            .http
            .request(parts.method.clone(), format!("{}{path}", self.url))
            .body(body);
        for name in ["content-type", "accept"] {
            if let Some(value) = parts.headers.get(name) {
                forward = forward.header(name, value.as_bytes());
            }
        }
        match forward.send().await {
            Ok(response) => {
                let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
                let body = response.bytes().await.unwrap_or_default();
                answer(status, body)
            }
            Err(e) => answer(StatusCode::BAD_GATEWAY, e.to_string()),
        }
    }
}
