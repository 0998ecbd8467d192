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
        let file = tokio::fs::File::open(&source).await.map_err(|e| {
            ImportError::terminal(format!("cannot open the extract {}: {e}", source.display()))
        })?;
        let chunks = futures_util::stream::try_unfold(file, |mut file| async move {
            let mut buf = vec![0u8; 1 << 20];
            let n = file.read(&mut buf).await?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((n > 0).then_some((buf, file)))
        })
        .map(move |chunk| {
            chunk.map_err(|e| {
                ImportError::retryable(format!("cannot read {}: {e}", source.display()))
            })
        });
        return save(chunks, &shown, dest, expected_sha256).await;
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
    let chunks = response.bytes_stream().map(|chunk| {
        chunk.map_err(|e| {
            ImportError::retryable(format!(
                "download of {shown} broke off: {}",
                without_url(&e)
            ))
        })
    });
    save(chunks, shown, dest, expected_sha256).await
}

/// Writes `chunks` to `dest` through a `.part` file renamed at the end, hashing on the way.
async fn save<B: AsRef<[u8]>>(
    chunks: impl futures_util::Stream<Item = ImportResult<B>>,
    shown: &str,
    dest: &Path,
    expected_sha256: Option<&str>,
) -> ImportResult<Downloaded> {
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| ImportError::retryable(format!("cannot create {}: {e}", dir.display())))?;
    }
    let part = dest.with_extension("part");
    let mut out = tokio::fs::File::create(&part)
        .await
        .map_err(|e| ImportError::retryable(format!("cannot create {}: {e}", part.display())))?;
    let write_err =
        |e: std::io::Error| ImportError::retryable(format!("cannot write {}: {e}", part.display()));
    let mut hasher = Sha256::new();
    let mut bytes: u64 = 0;
    let mut chunks = std::pin::pin!(chunks);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        let chunk = chunk.as_ref();
        hasher.update(chunk);
        out.write_all(chunk).await.map_err(write_err)?;
        bytes += chunk.len() as u64;
    }
    out.flush().await.map_err(write_err)?;
    out.sync_all().await.map_err(write_err)?;
    drop(out);

    let sha256 = hex::encode(hasher.finalize());
    if let Some(expected) = expected_sha256
        && !expected.eq_ignore_ascii_case(&sha256)
    {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(ImportError::terminal(format!(
            "the extract from {shown} has sha256 {sha256}, but {expected} was expected; the file is not the one requested"
        )));
    }
    tokio::fs::rename(&part, dest).await.map_err(|e| {
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
