//! Fetching an extract to the work directory: streamed to disk, hashed on the way, within the
//! network policy of [`crate::net`].

use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::net::{DownloadPolicy, broken_connection, redacted, refusal, without_url};
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
        return copy_local(url, &shown, dest, expected_sha256, policy.max_bytes).await;
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

/// Copies the local file of a `file://` URL (`shown` as messages show it) to `dest`, hashing
/// it, as a download would be.
async fn copy_local(
    url: &Url,
    shown: &str,
    dest: &Path,
    expected_sha256: Option<&str>,
    max_bytes: u64,
) -> ImportResult<Downloaded> {
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
    let mut part = Part::create(dest, max_bytes).await?;
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
    part.finish(shown, dest, expected_sha256).await
}

/// Streams the body of a successful `response` (from `shown`, a URL fit for messages) to
/// `dest`, hashing it; checks `expected_sha256` when given.
///
/// Terminal: a body larger than `max_bytes` (announced or seen), or a server that closes the
/// connection before the bytes it announced (the file there is cut short). Retryable: a
/// connection that breaks (reset, timeout; see [`STALL`](crate::net::STALL)).
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
