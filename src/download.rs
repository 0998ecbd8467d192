//! Fetching an extract to the work directory: streamed to disk, hashed on the way.

use crate::error::{ImportError, ImportResult};
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
        ImportError::terminal(format!("the extract URL {raw:?} is not a valid URL ({e})"))
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        "file" if allow_file_urls => Ok(url),
        "file" => Err(ImportError::terminal(format!(
            "the extract URL {:?} is a file:// URL, which this service refuses unless KBO_ALLOW_FILE_URLS=true",
            redacted(&url)
        ))),
        other => Err(ImportError::terminal(format!(
            "the extract URL {:?} has scheme {other:?}; only http and https are accepted",
            redacted(&url)
        ))),
    }
}

/// Checks a SHA-256 given by the caller: 64 hex digits, returned in lowercase.
pub fn parse_sha256(raw: &str) -> ImportResult<String> {
    let hex = raw.trim().to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(ImportError::terminal(format!(
            "sha256 {raw:?} is not 64 hexadecimal digits"
        )))
    }
}

/// The URL without the user name and password it may carry, for messages and logs.
pub fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// Fetches `url` to `dest`, hashing as it streams; checks `expected_sha256` when given.
///
/// Terminal: the URL answers 4xx (the file is not there), or the hash differs.
/// Retryable: connection failures, resets, timeouts, 5xx, 429, local disk errors.
pub async fn fetch(
    client: &reqwest::Client,
    url: &Url,
    dest: &Path,
    expected_sha256: Option<&str>,
) -> ImportResult<Downloaded> {
    let shown = redacted(url);
    if url.scheme() == "file" {
        let source = url
            .to_file_path()
            .map_err(|_| ImportError::terminal(format!("{shown} is not a local file path")))?;
        let mut file = tokio::fs::File::open(&source).await.map_err(|e| {
            ImportError::terminal(format!("cannot open the extract {}: {e}", source.display()))
        })?;
        let mut part = Part::create(dest).await?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).await.map_err(|e| {
                ImportError::retryable(format!("cannot read {}: {e}", source.display()))
            })?;
            if n == 0 {
                break;
            }
            part.write(&buf[..n]).await?;
        }
        return part.finish(&shown, dest, expected_sha256).await;
    }
    let response = client.get(url.clone()).send().await.map_err(|e| {
        ImportError::retryable(format!("cannot reach {shown}: {}", without_url(&e)))
    })?;
    let status = response.status();
    if !status.is_success() {
        let message = format!("downloading {shown} answered HTTP {status}");
        return Err(
            if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
                ImportError::terminal(format!(
                    "{message}; check the URL (the portal keeps only the last few extracts)"
                ))
            } else {
                ImportError::retryable(message)
            },
        );
    }
    save_response(response, &shown, dest, expected_sha256).await
}

/// Streams the body of a successful `response` (from `shown`, a URL fit for messages) to
/// `dest`, hashing it; checks `expected_sha256` when given.
pub async fn save_response(
    response: reqwest::Response,
    shown: &str,
    dest: &Path,
    expected_sha256: Option<&str>,
) -> ImportResult<Downloaded> {
    let mut part = Part::create(dest).await?;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ImportError::retryable(format!(
                "download of {shown} broke off: {}",
                without_url(&e)
            ))
        })?;
        part.write(&chunk).await?;
    }
    part.finish(shown, dest, expected_sha256).await
}

/// A download in progress: a `.part` file next to its destination, hashed as it is written,
/// renamed into place once complete and checked.
struct Part {
    path: PathBuf,
    file: tokio::fs::File,
    hasher: Sha256,
    bytes: u64,
}

impl Part {
    async fn create(dest: &Path) -> ImportResult<Part> {
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                ImportError::retryable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let path = dest.with_extension("part");
        let file = tokio::fs::File::create(&path).await.map_err(|e| {
            ImportError::retryable(format!("cannot create {}: {e}", path.display()))
        })?;
        Ok(Part {
            path,
            file,
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    fn write_error(&self, e: std::io::Error) -> ImportError {
        ImportError::retryable(format!("cannot write {}: {e}", self.path.display()))
    }

    async fn write(&mut self, chunk: &[u8]) -> ImportResult<()> {
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
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
        } = self;
        drop(file);
        let sha256 = hex::encode(hasher.finalize());
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(&sha256)
        {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(ImportError::terminal(format!(
                "the extract from {shown} has sha256 {sha256}, but {expected} was expected; the file is not the one requested"
            )));
        }
        tokio::fs::rename(&path, dest).await.map_err(|e| {
            ImportError::retryable(format!(
                "cannot move the download to {}: {e}",
                dest.display()
            ))
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
        assert_eq!(redacted(&url), "https://portal.example/x.zip?a=1");
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
        let dest = dir.path().join("out/extract.zip");
        let got = fetch(&client, &url, &dest, None).await.unwrap();
        assert_eq!(got.bytes, 5);
        assert_eq!(
            got.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(sha256_of(&dest).await.as_deref(), Some(got.sha256.as_str()));
        let err = fetch(&client, &url, &dest, Some(&"00".repeat(32)))
            .await
            .unwrap_err();
        assert!(
            err.is_terminal() && err.message.contains("was expected"),
            "{err}"
        );
    }
}
