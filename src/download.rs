//! Fetching an extract to the work directory: streamed to disk, hashed on the way.

use crate::error::{ErrorCode, ImportError, ImportResult};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

/// A downloaded extract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downloaded {
    /// Where it is on disk.
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of its bytes.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Checks that `raw` is a URL the service may fetch: `http`/`https`, or `file` when allowed.
pub fn parse_url(raw: &str, allow_file_urls: bool) -> ImportResult<Url> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        ImportError::new(
            ErrorCode::BadRequest,
            format!("the extract URL {raw:?} is not a valid URL ({e})"),
        )
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        "file" if allow_file_urls => Ok(url),
        "file" => Err(ImportError::new(
            ErrorCode::UrlRefused,
            format!(
                "the extract URL {:?} is a file:// URL, which this service refuses unless KBO_ALLOW_FILE_URLS=true",
                redacted(&url)
            ),
        )),
        other => Err(ImportError::new(
            ErrorCode::UrlRefused,
            format!(
                "the extract URL {:?} has scheme {other:?}; only http and https are accepted",
                redacted(&url)
            ),
        )),
    }
}

/// Checks a SHA-256 given by the caller: 64 hex digits, returned in lowercase.
pub fn parse_sha256(raw: &str) -> ImportResult<String> {
    let hex = raw.trim().to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(ImportError::new(
            ErrorCode::BadRequest,
            format!("sha256 {raw:?} is not 64 hexadecimal digits"),
        ))
    }
}

/// What an extract URL may reach, and how much it may bring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadPolicy {
    /// `KBO_MAX_DOWNLOAD_BYTES`: a download larger than this is refused (default 8 GiB; a
    /// real Full is about 300 MB).
    pub max_bytes: u64,
    /// `KBO_ALLOW_PRIVATE_HOSTS`: extract URLs may reach loopback and private addresses
    /// (10/8, 172.16/12, 192.168/16, fc00::/7). Link-local addresses (169.254/16, fe80::/10,
    /// where cloud metadata services answer) are refused always.
    pub allow_private_hosts: bool,
}

impl Default for DownloadPolicy {
    fn default() -> Self {
        DownloadPolicy {
            max_bytes: 8 << 30,
            allow_private_hosts: false,
        }
    }
}

/// An extract URL that leads where the policy forbids: terminal, retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl DownloadPolicy {
    /// Why the address `ip` may not be reached, if it may not.
    pub fn refuses(&self, ip: std::net::IpAddr) -> Option<&'static str> {
        use std::net::IpAddr;
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
        let private = match ip {
            IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_unspecified(),
            IpAddr::V6(v6) => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00
                    || v6
                        .to_ipv4_mapped()
                        .is_some_and(|v4| v4.is_private() || v4.is_loopback())
            }
        };
        if link_local {
            Some(
                "a link-local address (where cloud metadata services answer), which is never fetched",
            )
        } else if private && !self.allow_private_hosts {
            Some(
                "a loopback or private address, which is fetched only with KBO_ALLOW_PRIVATE_HOSTS=true",
            )
        } else {
            None
        }
    }

    /// Checks a URL's scheme and, when its host is an IP address, that address (host names
    /// are checked when they resolve, by [`DownloadPolicy::client`]'s resolver).
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused(format!(
                "{} leads to a {}: URL; only http and https are followed",
                redacted(url),
                url.scheme()
            )));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        match ip.and_then(|ip| self.refuses(ip).map(|why| (ip, why))) {
            Some((ip, why)) => Err(Refused(format!("{} is {ip}, {why}", redacted(url)))),
            None => Ok(()),
        }
    }

    /// The HTTP client for extract URLs: host names resolve only to addresses the policy
    /// allows, and every redirect is checked again (scheme and address).
    pub fn client(&self) -> reqwest::Client {
        let policy = *self;
        client_builder()
            .read_timeout(STALL)
            .dns_resolver(std::sync::Arc::new(PolicyResolver(policy)))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 10 {
                    return attempt.error(Refused("more than 10 redirects".into()));
                }
                match policy.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(refused) => attempt.error(refused),
                }
            }))
            .build()
            .expect("the HTTP client's settings are valid")
    }
}

/// A download that brings no byte for this long is broken off (and retried).
pub const STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// The service's HTTP client settings, shared by every client it makes (extract URLs, the KBO
/// portal, Vercel Blob, Restate): a connect timeout and the service's user agent.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .user_agent(concat!("kbo-import/", env!("CARGO_PKG_VERSION")))
}

/// Resolves host names, keeping only the addresses the policy allows.
struct PolicyResolver(DownloadPolicy);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, refused): (Vec<_>, Vec<_>) = found
                .into_iter()
                .partition(|a| policy.refuses(a.ip()).is_none());
            match (allowed.is_empty(), refused.first()) {
                (true, Some(addr)) => Err(Box::new(Refused(format!(
                    "{host} resolves to {}, {}",
                    addr.ip(),
                    policy.refuses(addr.ip()).unwrap_or("refused")
                )))
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// The policy's refusal somewhere in an error's chain of causes.
fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(refused) = c.downcast_ref::<Refused>() {
            return Some(refused.0.clone());
        }
        cause = c.source();
    }
    None
}

/// Whether an error's chain holds an I/O error of a connection that broke (reset, timed out),
/// which trying again may mend.
fn broken_connection(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::*;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | TimedOut | UnexpectedEof
            )
        {
            return io.kind() != UnexpectedEof;
        }
        cause = c.source();
    }
    false
}

/// The URL without the user name, password and query string it may carry (a signed URL's
/// query string is a credential), for messages, logs, `getProgress` and `import_jobs`.
pub fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        shown.set_query(Some(crate::redact::MASK));
    }
    shown.set_fragment(None);
    shown.to_string()
}

/// Fetches `url` to `dest`, hashing as it streams; checks `expected_sha256` when given.
///
/// Terminal: the URL answers 4xx (the file is not there), or the hash differs.
/// Retryable: connection failures, resets, timeouts, 5xx, 429, local disk errors.
pub async fn fetch(
    client: &reqwest::Client,
    policy: &DownloadPolicy,
    url: &Url,
    dest: &Path,
    expected_sha256: Option<&str>,
) -> ImportResult<Downloaded> {
    let shown = redacted(url);
    if url.scheme() == "file" {
        let source = url.to_file_path().map_err(|_| {
            ImportError::new(
                ErrorCode::BadRequest,
                format!("{shown} is not a local file path"),
            )
        })?;
        let mut file = tokio::fs::File::open(&source).await.map_err(|e| {
            ImportError::new(
                ErrorCode::DownloadRefused,
                format!("cannot open the extract {}: {e}", source.display()),
            )
        })?;
        let mut part = Part::create(dest, policy.max_bytes).await?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).await.map_err(|e| {
                ImportError::new(
                    ErrorCode::LocalIo,
                    format!("cannot read {}: {e}", source.display()),
                )
            })?;
            if n == 0 {
                break;
            }
            part.write(&buf[..n]).await?;
        }
        return part.finish(&shown, dest, expected_sha256).await;
    }
    policy.check_url(url).map_err(|refused| {
        ImportError::new(ErrorCode::UrlRefused, format!("the extract URL {refused}"))
    })?;
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| match refusal(&e) {
            Some(refused) => {
                ImportError::new(ErrorCode::UrlRefused, format!("downloading {shown} is refused: {refused}"))
            }
            // A redirect reqwest will not follow (another scheme, such as file://): retrying
            // leads to the same place.
            None if e.is_redirect() => ImportError::new(ErrorCode::DownloadRefused, format!(
                "downloading {shown} is refused: a redirect leads where extracts are not fetched from ({}); only http and https are followed",
                without_url(&e)
            )),
            None => ImportError::new(ErrorCode::Unreachable, format!("cannot reach {shown}: {}", without_url(&e))),
        })?;
    let status = response.status();
    if status.is_redirection() {
        // A redirect the client did not follow: to another scheme (file://, ftp://, …).
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(|l| {
                Url::parse(l)
                    .map(|u| redacted(&u))
                    .unwrap_or_else(|_| l.to_string())
            })
            .unwrap_or_default();
        return Err(ImportError::new(
            ErrorCode::DownloadRefused,
            format!(
                "downloading {shown} is refused: it answers HTTP {status}, a redirect to {}, which is not followed (only http and https are)",
                crate::redact::capped(&location, 200)
            ),
        ));
    }
    if !status.is_success() {
        let message = format!("downloading {shown} answered HTTP {status}");
        return Err(
            if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
                ImportError::new(
                    ErrorCode::DownloadRefused,
                    format!(
                        "{message}; check the URL (the portal keeps only the last few extracts)"
                    ),
                )
            } else {
                ImportError::new(ErrorCode::Unreachable, message)
            },
        );
    }
    save_response(response, &shown, dest, expected_sha256, policy.max_bytes).await
}

/// Streams the body of a successful `response` (from `shown`, a URL fit for messages) to
/// `dest`, hashing it; checks `expected_sha256` when given.
///
/// Terminal: a body larger than `max_bytes` (announced or seen), or a server that closes the
/// connection before the bytes it announced (the file there is cut short). Retryable: a
/// connection that breaks (reset, timeout; see [`STALL`]).
pub async fn save_response(
    response: reqwest::Response,
    shown: &str,
    dest: &Path,
    expected_sha256: Option<&str>,
    max_bytes: u64,
) -> ImportResult<Downloaded> {
    let announced = response.content_length();
    if let Some(len) = announced.filter(|len| *len > max_bytes) {
        return Err(too_large(shown, Some(len), max_bytes));
    }
    let mut part = Part::create(dest, max_bytes).await?;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| match announced {
            Some(len) if !broken_connection(&e) => ImportError::new(
                ErrorCode::CutShort,
                format!(
                    "the server of {shown} closed the connection after {} of the {len} bytes it \
                 announced ({}): the file there is cut short; check the server, then start the \
                 import again",
                    part.bytes,
                    without_url(&e)
                ),
            ),
            _ => ImportError::new(
                ErrorCode::DownloadBroke,
                format!("download of {shown} broke off: {}", without_url(&e)),
            ),
        })?;
        part.write(&chunk).await.map_err(|e| {
            if part.bytes > max_bytes {
                too_large(shown, None, max_bytes)
            } else {
                e
            }
        })?;
    }
    part.finish(shown, dest, expected_sha256).await
}

/// The refusal of a download past `max_bytes`.
fn too_large(shown: &str, announced: Option<u64>, max_bytes: u64) -> ImportError {
    let size = announced
        .map(|n| format!("announces {n} bytes"))
        .unwrap_or_else(|| format!("goes on past {max_bytes} bytes"));
    ImportError::new(
        ErrorCode::TooLarge,
        format!(
            "the download of {shown} {size}, more than KBO_MAX_DOWNLOAD_BYTES ({max_bytes}); a real \
         Full is about 300 MB: check the URL, or raise the bound if the file is genuine"
        ),
    )
}

/// A download in progress: a `.part` file next to its destination, hashed as it is written,
/// renamed into place once complete and checked.
struct Part {
    path: PathBuf,
    file: tokio::fs::File,
    hasher: Sha256,
    bytes: u64,
    max_bytes: u64,
}

impl Part {
    async fn create(dest: &Path, max_bytes: u64) -> ImportResult<Part> {
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                ImportError::new(
                    ErrorCode::LocalIo,
                    format!("cannot create {}: {e}", dir.display()),
                )
            })?;
        }
        let path = dest.with_extension("part");
        let file = tokio::fs::File::create(&path).await.map_err(|e| {
            ImportError::new(
                ErrorCode::LocalIo,
                format!("cannot create {}: {e}", path.display()),
            )
        })?;
        Ok(Part {
            path,
            file,
            hasher: Sha256::new(),
            bytes: 0,
            max_bytes,
        })
    }

    fn write_error(&self, e: std::io::Error) -> ImportError {
        ImportError::new(
            ErrorCode::LocalIo,
            format!("cannot write {}: {e}", self.path.display()),
        )
    }

    async fn write(&mut self, chunk: &[u8]) -> ImportResult<()> {
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
        if self.bytes > self.max_bytes {
            let _ = tokio::fs::remove_file(&self.path).await;
            return Err(ImportError::new(
                ErrorCode::TooLarge,
                format!(
                    "the download goes on past {} bytes, more than KBO_MAX_DOWNLOAD_BYTES",
                    self.max_bytes
                ),
            ));
        }
        match self.file.write_all(chunk).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.write_error(e)),
        }
    }

    /// Flushes, checks `expected_sha256` (the part is removed if it differs) and moves the
    /// file to `dest`.
    async fn finish(
        mut self,
        shown: &str,
        dest: &Path,
        expected_sha256: Option<&str>,
    ) -> ImportResult<Downloaded> {
        let synced = match self.file.flush().await {
            Ok(()) => self.file.sync_all().await,
            Err(e) => Err(e),
        };
        synced.map_err(|e| self.write_error(e))?;
        let Part {
            path,
            file,
            hasher,
            bytes,
            ..
        } = self;
        drop(file);
        let sha256 = hex::encode(hasher.finalize());
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(&sha256)
        {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(ImportError::new(
                ErrorCode::ChecksumMismatch,
                format!(
                    "the extract from {shown} has sha256 {sha256}, but {expected} was expected; the file is not the one requested"
                ),
            ));
        }
        tokio::fs::rename(&path, dest).await.map_err(|e| {
            ImportError::new(
                ErrorCode::LocalIo,
                format!("cannot move the download to {}: {e}", dest.display()),
            )
        })?;
        Ok(Downloaded {
            path: dest.to_path_buf(),
            sha256,
            bytes,
        })
    }
}

/// A reqwest error's words without the URL it carries (which may hold credentials).
pub fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), &redacted(url));
    }
    text
}

/// SHA-256 of a file on disk, or `None` when it is not there.
pub async fn sha256_of(path: &Path) -> Option<String> {
    let mut file = tokio::fs::File::open(path).await.ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).await.ok()?;
        if n == 0 {
            return Some(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_unless_file_urls_are_enabled() {
        assert!(parse_url("https://kbopub.economie.fgov.be/x.zip", false).is_ok());
        assert!(parse_url("http://127.0.0.1:8080/x.zip", false).is_ok());
        let err = parse_url("file:///tmp/x.zip", false).unwrap_err();
        assert!(err.is_terminal() && err.message.contains("KBO_ALLOW_FILE_URLS"));
        assert!(parse_url("file:///tmp/x.zip", true).is_ok());
        assert!(
            parse_url("ftp://host/x.zip", true)
                .unwrap_err()
                .is_terminal()
        );
        assert!(parse_url("not a url", true).unwrap_err().is_terminal());
    }

    #[test]
    fn credentials_never_reach_messages() {
        let url = Url::parse("https://user:secret@portal.example/x.zip?a=1").unwrap();
        assert_eq!(redacted(&url), "https://portal.example/x.zip?***");
        let signed =
            Url::parse("https://blob.example/KboOpenData_0140_2025_10_Full.zip?sig=ab12&se=2026")
                .unwrap();
        assert_eq!(
            redacted(&signed),
            "https://blob.example/KboOpenData_0140_2025_10_Full.zip?***"
        );
        let plain = Url::parse("https://blob.example/KboOpenData_0140_2025_10_Full.zip").unwrap();
        assert_eq!(redacted(&plain), plain.as_str());
    }

    #[test]
    fn link_local_hosts_are_refused_and_private_ones_unless_allowed() {
        let strict = DownloadPolicy::default();
        let open = DownloadPolicy {
            allow_private_hosts: true,
            ..strict
        };
        for url in [
            "http://169.254.169.254/latest/meta-data/x.zip",
            "http://[fe80::1]/x.zip",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(strict.check_url(&url).is_err(), "{url}");
            assert!(open.check_url(&url).is_err(), "{url}: never");
        }
        for url in [
            "http://10.1.2.3/x.zip",
            "http://192.168.0.9/x.zip",
            "http://172.20.0.1/x.zip",
            "http://127.0.0.1:8000/x.zip",
            "http://[::1]/x.zip",
            "http://[fd00::5]/x.zip",
        ] {
            let url = Url::parse(url).unwrap();
            let why = strict.check_url(&url).unwrap_err().0;
            assert!(why.contains("KBO_ALLOW_PRIVATE_HOSTS"), "{url}: {why}");
            assert!(open.check_url(&url).is_ok(), "{url}");
        }
        assert!(
            strict
                .check_url(&Url::parse("https://8.8.8.8/x.zip").unwrap())
                .is_ok()
        );
        assert!(
            strict
                .check_url(&Url::parse("https://kbo.example/x.zip").unwrap())
                .is_ok()
        );
        let file = strict
            .check_url(&Url::parse("file:///etc/passwd").unwrap())
            .unwrap_err();
        assert!(file.0.contains("file: URL"), "{file}");
    }

    #[tokio::test]
    async fn a_host_name_that_resolves_to_a_refused_address_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let policy = DownloadPolicy::default();
        // Not an address in the URL: the name resolves to one, which the resolver refuses.
        let url = Url::parse("http://localhost:9/KboOpenData_0140_2025_10_Full.zip").unwrap();
        let err = fetch(
            &policy.client(),
            &policy,
            &url,
            &dir.path().join("x.zip"),
            None,
        )
        .await
        .unwrap_err();
        assert!(err.is_terminal(), "{err}");
        assert!(err.message.contains("KBO_ALLOW_PRIVATE_HOSTS"), "{err}");
    }

    #[tokio::test]
    async fn a_download_past_its_bound_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("big.zip");
        std::fs::write(&src, vec![7u8; 3000]).unwrap();
        let policy = DownloadPolicy {
            max_bytes: 1000,
            ..DownloadPolicy::default()
        };
        let url = Url::from_file_path(&src).unwrap();
        let err = fetch(
            &policy.client(),
            &policy,
            &url,
            &dir.path().join("x.zip"),
            None,
        )
        .await
        .unwrap_err();
        assert!(
            err.is_terminal() && err.message.contains("KBO_MAX_DOWNLOAD_BYTES"),
            "{err}"
        );
        assert!(
            !dir.path().join("x.part").exists(),
            "the partial file is removed"
        );
    }

    #[test]
    fn sha256_must_be_64_hex_digits() {
        let good = "AB".repeat(32);
        assert_eq!(parse_sha256(&good).unwrap(), "ab".repeat(32));
        assert!(parse_sha256("abc").is_err());
        assert!(parse_sha256(&"zz".repeat(32)).is_err());
    }

    #[tokio::test]
    async fn file_urls_are_copied_and_hashed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.zip");
        std::fs::write(&src, b"hello").unwrap();
        let url = Url::from_file_path(&src).unwrap();
        let client = reqwest::Client::new();
        let policy = DownloadPolicy::default();
        let dest = dir.path().join("out/extract.zip");
        let got = fetch(&client, &policy, &url, &dest, None).await.unwrap();
        assert_eq!(got.bytes, 5);
        assert_eq!(
            got.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(sha256_of(&dest).await.as_deref(), Some(got.sha256.as_str()));
        let err = fetch(&client, &policy, &url, &dest, Some(&"00".repeat(32)))
            .await
            .unwrap_err();
        assert!(
            err.is_terminal() && err.message.contains("was expected"),
            "{err}"
        );
    }
}
