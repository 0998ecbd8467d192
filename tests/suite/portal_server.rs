//! A stand-in of the KBO Open Data portal on loopback, following its observed behaviour:
//! a form login answering 302 with a session cookie (or a redirect to `?error` for wrong
//! credentials), a sign-up page that completes the session, an HTML listing of the files
//! offered and downloads with the session cookie. Stale sessions get an empty listing (HTTP
//! 200) and HTTP 401 on downloads. The test controls which files are offered and when
//! sessions expire, and reads what happened.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The portal's base path, as on the real site.
pub const BASE_PATH: &str = "/kbo-open-data";

/// The account the stand-in accepts.
pub const USERNAME: &str = "kbo-user@example.be";
/// Its password (with characters a form body must encode).
pub const PASSWORD: &str = "s3cret&p=ss word";

#[derive(Default)]
struct State {
    /// File name → the extract served under it.
    files: BTreeMap<String, PathBuf>,
    /// Session id → completed (visited the sign-up page).
    sessions: HashMap<String, bool>,
    next_session: u64,
    logins: usize,
    failed_logins: usize,
    downloads: usize,
    refused_downloads: usize,
    stale_listings: usize,
    expire_after_listing: bool,
}

/// The running stand-in.
pub struct Portal {
    port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Portal {
    /// Starts the stand-in, offering no files.
    pub async fn start() -> Portal {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, Arc::clone(&shared)));
            }
        });
        Portal { port, state, task }
    }

    /// `KBO_PORTAL_URL` for the service.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{BASE_PATH}", self.port)
    }

    /// The service's environment to use this portal with the right account.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KBO_PORTAL_URL", self.url()),
            ("KBO_USERNAME", USERNAME.to_string()),
            ("KBO_PASSWORD", PASSWORD.to_string()),
        ]
    }

    /// Offers the extract at `path` under its own file name.
    pub fn offer(&self, path: &Path) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        self.offer_as(&name, path);
    }

    /// Offers the extract at `path` under `name`.
    pub fn offer_as(&self, name: &str, path: &Path) {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(name.to_string(), path.to_path_buf());
    }

    /// Stops offering the file `name`, as the portal drops old extracts.
    pub fn withdraw(&self, name: &str) {
        self.state.lock().unwrap().files.remove(name);
    }

    /// Ends every session, as the real portal does without notice.
    pub fn expire_sessions(&self) {
        self.state.lock().unwrap().sessions.clear();
    }

    /// Ends every session right after the next listing is served (so that the download that
    /// follows meets a stale session).
    pub fn expire_after_next_listing(&self) {
        self.state.lock().unwrap().expire_after_listing = true;
    }

    /// Successful logins so far.
    pub fn logins(&self) -> usize {
        self.state.lock().unwrap().logins
    }

    /// Refused logins so far.
    pub fn failed_logins(&self) -> usize {
        self.state.lock().unwrap().failed_logins
    }

    /// Files served so far.
    pub fn downloads(&self) -> usize {
        self.state.lock().unwrap().downloads
    }

    /// Downloads answered 401 (stale session) so far.
    pub fn refused_downloads(&self) -> usize {
        self.state.lock().unwrap().refused_downloads
    }

    /// Empty listings served to stale sessions so far.
    pub fn stale_listings(&self) -> usize {
        self.state.lock().unwrap().stale_listings
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A parsed request: method, path (with query), cookies, body.
struct Request {
    method: String,
    target: String,
    session: Option<String>,
    body: Vec<u8>,
}

async fn read_request(socket: &mut TcpStream) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let mut length = 0;
    let mut session = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "cookie" => {
                session = value
                    .split(';')
                    .filter_map(|c| c.trim().split_once('='))
                    .find(|(n, _)| *n == "JSESSIONID")
                    .map(|(_, v)| v.to_string());
            }
            _ => {}
        }
    }
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Some(Request {
        method,
        target,
        session,
        body,
    })
}

async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    let path = request
        .target
        .strip_prefix(BASE_PATH)
        .unwrap_or("")
        .to_string();
    let answer = match (request.method.as_str(), path.as_str()) {
        ("POST", "/static/j_spring_security_check") => login(&request, &state),
        ("GET", p) if p.starts_with("/signup") => {
            let mut s = state.lock().unwrap();
            let known = request
                .session
                .as_ref()
                .and_then(|id| s.sessions.get_mut(id));
            if let Some(completed) = known {
                *completed = true;
            }
            page(200, "<html><body>Welcome to KBO Open Data</body></html>")
        }
        ("GET", "/affiliation/xml/?files") => listing(&request, &state),
        ("GET", p) if p.starts_with("/affiliation/xml/files/") => {
            let name = p.trim_start_matches("/affiliation/xml/files/");
            return download(socket, &request, name, &state).await;
        }
        _ => page(404, "<html>not found</html>"),
    };
    let _ = socket.write_all(&answer).await;
    let _ = socket.shutdown().await;
}

fn login(request: &Request, state: &Mutex<State>) -> Vec<u8> {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    let mut s = state.lock().unwrap();
    let good = form.get("j_username").map(String::as_str) == Some(USERNAME)
        && form.get("j_password").map(String::as_str) == Some(PASSWORD);
    if !good {
        s.failed_logins += 1;
        return redirect(&format!("{BASE_PATH}/static/login.html?error=true"), None);
    }
    s.logins += 1;
    s.next_session += 1;
    let id = format!("S{:08}", s.next_session);
    s.sessions.insert(id.clone(), false);
    redirect(&format!("{BASE_PATH}/"), Some(&id))
}

fn listing(request: &Request, state: &Mutex<State>) -> Vec<u8> {
    let mut s = state.lock().unwrap();
    let active = request
        .session
        .as_ref()
        .is_some_and(|id| s.sessions.get(id) == Some(&true));
    let mut html = String::from(
        "<html><head><title>KBO Open Data</title></head><body><h1>Files</h1><table>\n",
    );
    if active {
        // Relative and absolute links, as the real page mixes them.
        for (i, name) in s.files.keys().enumerate() {
            let href = if i % 2 == 0 {
                format!("files/{name}")
            } else {
                format!(
                    "http://portal.invalid{BASE_PATH}/affiliation/xml/files/{name}?lang=en&amp;x=1"
                )
            };
            html.push_str(&format!(
                "<tr><td><a href=\"{href}\">{name}</a></td><td>{} KB</td></tr>\n",
                i + 1
            ));
        }
        html.push_str(
            "<tr><td><a href=\"files/KboOpenData_Cookbook_R018.pdf\">cookbook</a></td></tr>\n",
        );
        if s.expire_after_listing {
            s.expire_after_listing = false;
            s.sessions.clear();
        }
    } else {
        s.stale_listings += 1;
    }
    html.push_str("</table></body></html>");
    page(200, &html)
}

async fn download(mut socket: TcpStream, request: &Request, name: &str, state: &Mutex<State>) {
    let (active, file) = {
        let s = state.lock().unwrap();
        let active = request
            .session
            .as_ref()
            .is_some_and(|id| s.sessions.get(id) == Some(&true));
        (active, s.files.get(name).cloned())
    };
    let answer = if !active {
        state.lock().unwrap().refused_downloads += 1;
        page(401, "<html>session expired</html>")
    } else if let Some(file) = file {
        state.lock().unwrap().downloads += 1;
        let bytes = tokio::fs::read(&file).await.unwrap();
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/zip\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            bytes.len()
        )
        .into_bytes();
        answer.extend_from_slice(&bytes);
        answer
    } else {
        page(404, "<html>no such file</html>")
    };
    let _ = socket.write_all(&answer).await;
    let _ = socket.shutdown().await;
}

fn page(status: u16, html: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html;charset=UTF-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
        html.len()
    )
    .into_bytes()
}

fn redirect(location: &str, session: Option<&str>) -> Vec<u8> {
    let cookie = session
        .map(|id| format!("set-cookie: JSESSIONID={id}; Path={BASE_PATH}; HttpOnly\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 302 Found\r\nlocation: {location}\r\n{cookie}content-length: 0\r\nconnection: close\r\n\r\n"
    )
    .into_bytes()
}
