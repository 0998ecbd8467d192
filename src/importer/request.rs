//! What the caller of `run` asks for, read from the handler's typed body ([`RunBody`]).

use crate::download;
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::extract::file_name::ExtractFileName;
use crate::wire::{RunBody, UrlBody};
use url::Url;

/// What the caller asked for: an extract by URL or by its name on the KBO portal, optionally
/// with its SHA-256 and its file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRequest {
    /// Where the extract ZIP is.
    pub source: ExtractSource,
    /// Lowercase hex SHA-256 the download must have, if given.
    pub sha256: Option<String>,
    /// What the extract's file name says it is (the request's `filename`, the portal file,
    /// or the URL's last segment), checked against its `meta.csv`.
    pub file_name: Option<ExtractFileName>,
    /// The old app's uploaded blob (`blobUrl`), deleted once the import has ended.
    pub blob: Option<Url>,
}

/// Where an extract comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractSource {
    /// An `http`, `https` (or allowed `file`) URL.
    Url(Url),
    /// A file of the KBO Open Data portal (`KBO_PORTAL_URL`), fetched with the portal account.
    Portal(ExtractFileName),
}

/// The shapes of a body that names an extract, for messages.
const SHAPES: &str = "send a JSON string (the extract's URL), {\"url\": \"…\", \"sha256\": \"…\"}, {\"blobUrl\": \"…\", \"filename\": \"KboOpenData_…zip\"} or {\"portalFile\": \"KboOpenData_…zip\"}";

/// The form of a KBO file name, for messages.
const FILE_NAME_FORM: &str = "KboOpenData_<nnnn>_<yyyy>_<mm>[_<dd>]_<Full|Update>.zip";

impl ImportRequest {
    /// Reads the `run` handler's body: a JSON string (the URL), or an object with one of
    /// `url`, `blobUrl`, `fileUrl` (a URL) or `portalFile` (a portal file name), and optional
    /// `sha256` and `filename` (`KboOpenData_…zip`). Other keys are ignored.
    pub fn from_body(body: RunBody, allow_file_urls: bool) -> ImportResult<ImportRequest> {
        let body = match body {
            RunBody::Url(url) => {
                let url = download::parse_url(&url, allow_file_urls)?;
                return Ok(ImportRequest {
                    file_name: ExtractFileName::parse(url.path()),
                    source: ExtractSource::Url(url),
                    sha256: None,
                    blob: None,
                });
            }
            RunBody::Named(body) => body,
            other => return Err(refused(&other)),
        };
        let sha256 = body
            .sha256
            .as_deref()
            .map(download::parse_sha256)
            .transpose()?;
        let filename = body.filename.as_deref().map(file_name).transpose()?;
        let (key, value) = the_one_name(&body)?;
        let (source, name_in_source) = if key == "portalFile" {
            let name = portal_file(value)?;
            (ExtractSource::Portal(name.clone()), Some(name))
        } else {
            let url = download::parse_url(value, allow_file_urls)?;
            let name = ExtractFileName::parse(url.path());
            (ExtractSource::Url(url), name)
        };
        let blob = match (&source, key) {
            (ExtractSource::Url(url), "blobUrl") => Some(url.clone()),
            _ => None,
        };
        Ok(ImportRequest {
            source,
            sha256,
            file_name: filename.or(name_in_source),
            blob,
        })
    }
}

/// Why a body that is neither a string nor an object of strings is refused.
fn refused(body: &RunBody) -> ImportError {
    if let RunBody::Other(serde_json::Value::Object(map)) = body {
        let key = map
            .iter()
            .find(|(_, v)| !v.is_string() && !v.is_null())
            .map(|(k, _)| crate::redact::capped(k, 100));
        return ImportError::new(
            ErrorCode::BadRequest,
            format!("\"{}\" must be a string: {SHAPES}", key.unwrap_or_default()),
        );
    }
    let found = serde_json::to_string(body).unwrap_or_default();
    ImportError::new(
        ErrorCode::BadRequest,
        format!(
            "the request must name the extract: {SHAPES}; found {}",
            crate::redact::capped(&found, 200)
        ),
    )
}

/// The one key that names the extract, and its value.
fn the_one_name(body: &UrlBody) -> ImportResult<(&'static str, &str)> {
    let named: Vec<(&str, &str)> = [
        ("url", &body.url),
        ("blobUrl", &body.blob_url),
        ("fileUrl", &body.file_url),
        ("portalFile", &body.portal_file),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key, value.as_deref()?)))
    .collect();
    match named.as_slice() {
        [one] => Ok(*one),
        [] => Err(ImportError::new(
            ErrorCode::BadRequest,
            format!(
                "the request has no \"url\", \"blobUrl\", \"fileUrl\" or \"portalFile\" string: {SHAPES}"
            ),
        )),
        several => {
            let keys: Vec<&str> = several.iter().map(|(k, _)| *k).collect();
            Err(ImportError::new(
                ErrorCode::BadRequest,
                format!(
                    "the request names the extract more than once ({}): {SHAPES}",
                    keys.join(", ")
                ),
            ))
        }
    }
}

/// The request's `filename`.
fn file_name(name: &str) -> ImportResult<ExtractFileName> {
    ExtractFileName::parse(name.trim()).ok_or_else(|| {
        ImportError::new(
            ErrorCode::BadRequest,
            format!(
                "\"filename\" {:?} is not a KBO extract file name ({FILE_NAME_FORM})",
                crate::redact::capped(name, 200)
            ),
        )
    })
}

/// The request's `portalFile`: exactly a KBO file name, nothing around it.
fn portal_file(value: &str) -> ImportResult<ExtractFileName> {
    ExtractFileName::parse(value.trim())
        .filter(|f| f.to_string() == value.trim())
        .ok_or_else(|| {
            ImportError::new(
                ErrorCode::BadRequest,
                format!(
                    "\"portalFile\" {:?} is not a KBO extract file name ({FILE_NAME_FORM})",
                    crate::redact::capped(value, 200)
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: serde_json::Value) -> RunBody {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn requests_are_a_url_string_or_an_object() {
        let r = ImportRequest::from_body(
            body(json!("https://x/KboOpenData_0140_2025_10_05_Update.zip")),
            false,
        )
        .unwrap();
        assert_eq!(r.sha256, None);
        assert!(matches!(r.source, ExtractSource::Url(ref u) if u.host_str() == Some("x")));
        let sha = "ab".repeat(32);
        let r = ImportRequest::from_body(
            body(json!({"url": "http://x/a.zip", "sha256": sha.to_uppercase()})),
            false,
        )
        .unwrap();
        assert_eq!(r.sha256.as_deref(), Some(sha.as_str()));
        let r = ImportRequest::from_body(
            body(json!({"portalFile": "KboOpenData_0141_2025_10_05_Update.zip"})),
            false,
        )
        .unwrap();
        assert!(
            matches!(r.source, ExtractSource::Portal(ref f) if f.workflow_id() == "kbo-0141-update"),
            "{r:?}"
        );
        let r = ImportRequest::from_body(body(json!({"blobUrl": "https://b.example/kbo-abc123.zip?sig=1", "filename": "KboOpenData_0141_2025_10_05_Update.zip"})),
            false,
        )
        .unwrap();
        assert_eq!(r.file_name.as_ref().map(|f| f.extract_number), Some(141));
        let r = ImportRequest::from_body(body(json!({"fileUrl": "https://kbo.example/files/KboOpenData_0140_2025_10_Full.zip", "extra": 1})),
            false,
        )
        .unwrap();
        assert_eq!(r.file_name.as_ref().map(|f| f.extract_number), Some(140));
        for bad in [
            json!({"blobUrl": "https://b.example/a.zip", "filename": "notes.txt"}),
            json!({"blobUrl": "https://b.example/a.zip", "url": "https://b.example/b.zip"}),
            json!({"filename": "KboOpenData_0141_2025_10_05_Update.zip"}),
            json!(null),
            json!(42),
            json!({"sha256": sha}),
            json!({"url": "http://x", "sha256": 1}),
            json!("file:///x.zip"),
            json!({"portalFile": "../../etc/KboOpenData_0141_2025_10_05_Update.zip"}),
            json!({"portalFile": "KboOpenData_0141_2025_10_05_Update.zip?x=1"}),
            json!({"portalFile": "secrets.zip"}),
            json!({"portalFile": "KboOpenData_0141_2025_10_05_Update.zip", "url": "http://x/a.zip"}),
        ] {
            let err = ImportRequest::from_body(body(bad.clone()), false).unwrap_err();
            assert!(err.is_terminal(), "{bad}: {err}");
        }
    }
}
