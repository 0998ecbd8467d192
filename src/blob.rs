//! Deleting the uploaded extract from Vercel Blob once an import has ended, as the old web
//! app's workflow did: its start route uploads each extract (about 300 MB for a Full) and
//! hands `run` the blob's URL as `blobUrl`; nothing else removes it.
//!
//! On only when a token is configured (`BLOB_READ_WRITE_TOKEN`, or the old app's
//! `NEWAGEKBOBLOB_READ_WRITE_TOKEN`) and the request came with a `blobUrl`.

use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::redact::Secret;
use url::Url;

/// The Vercel Blob API, as its SDK calls it.
pub const DEFAULT_API_URL: &str = "https://blob.vercel-storage.com";

/// Where the blob API is and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobSettings {
    /// `BLOB_READ_WRITE_TOKEN` (or `NEWAGEKBOBLOB_READ_WRITE_TOKEN`): without it, blobs are
    /// left alone.
    pub token: Option<Secret>,
    /// `VERCEL_BLOB_API_URL`: the API's base URL (default [`DEFAULT_API_URL`]).
    pub api_url: String,
}

impl Default for BlobSettings {
    fn default() -> Self {
        BlobSettings {
            token: None,
            api_url: DEFAULT_API_URL.to_string(),
        }
    }
}

impl BlobSettings {
    /// Reads the settings through `get`.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> BlobSettings {
        BlobSettings {
            token: get("BLOB_READ_WRITE_TOKEN")
                .or_else(|| get("NEWAGEKBOBLOB_READ_WRITE_TOKEN"))
                .map(Secret::new),
            api_url: get("VERCEL_BLOB_API_URL")
                .unwrap_or_else(|| DEFAULT_API_URL.to_string())
                .trim_end_matches('/')
                .to_string(),
        }
    }
}

/// Deletes the blob at `blob_url` (`POST <api>/delete {"urls": […]}`). A blob already gone
/// counts as deleted. Returns false when no token is configured (nothing was done).
pub async fn delete(
    http: &reqwest::Client,
    settings: &BlobSettings,
    blob_url: &Url,
) -> ImportResult<bool> {
    let Some(token) = &settings.token else {
        return Ok(false);
    };
    let shown = crate::net::redacted(blob_url);
    let response = http
        .post(format!("{}/delete", settings.api_url))
        .bearer_auth(token.expose())
        .header("x-api-version", "11")
        .json(&serde_json::json!({ "urls": [blob_url.as_str()] }))
        .send()
        .await
        .map_err(|e| {
            ImportError::new(
                ErrorCode::Unreachable,
                format!(
                    "deleting the blob {shown}: cannot reach the blob API: {}",
                    crate::net::without_url(&e)
                ),
            )
        })?;
    let status = response.status();
    if status.is_success() || status.as_u16() == 404 {
        return Ok(true);
    }
    let text = response.text().await.unwrap_or_default();
    let message = format!("deleting the blob {shown}: the blob API answered HTTP {status}: {text}");
    if status.is_client_error() && status.as_u16() != 429 {
        Err(ImportError::new(
            ErrorCode::CredentialsRefused,
            format!("{message}; check BLOB_READ_WRITE_TOKEN"),
        ))
    } else {
        Err(ImportError::new(ErrorCode::Unreachable, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn settings_take_either_token_name() {
        let vars = HashMap::from([("NEWAGEKBOBLOB_READ_WRITE_TOKEN", "vercel_blob_rw_x")]);
        let s = BlobSettings::from_lookup(&|k| vars.get(k).map(|v| v.to_string()));
        assert_eq!(
            s.token.as_ref().map(Secret::expose),
            Some("vercel_blob_rw_x")
        );
        assert_eq!(s.api_url, DEFAULT_API_URL);
        let s = BlobSettings::from_lookup(&|_| None);
        assert_eq!(s, BlobSettings::default());
    }

    #[tokio::test]
    async fn without_a_token_nothing_is_sent() {
        let url = Url::parse("http://127.0.0.1:9/kbo-imports/x.zip").unwrap();
        let done = delete(&reqwest::Client::new(), &BlobSettings::default(), &url)
            .await
            .unwrap();
        assert!(!done);
    }
}
