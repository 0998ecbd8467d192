//! The `run` handler's body and result.

use crate::extract::ExtractType;
use serde::{Deserialize, Serialize};

/// What `run` returns once the extract is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    /// The job id.
    pub job_id: String,
    /// The extract applied.
    pub extract_number: u32,
    /// `full` or `update`.
    pub extract_type: ExtractType,
    /// Enterprises and establishments whose names were derived.
    pub names_resolved: u64,
    /// Rows inserted.
    pub records_inserted: u64,
    /// Rows retired.
    pub records_deleted: u64,
    /// What the extract changed, entity by entity, counted (`getChanges` lists them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<super::ChangeSummary>,
}

/// The body of `KboImport/<id>/run`: the extract's URL as a JSON string, or an object naming it
/// (the old app sends `{"blobUrl", "filename"}`). Anything else is kept as it came, so that
/// the workflow can refuse it with a message saying what to send (and record that failure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RunBody {
    /// The extract's URL.
    Url(String),
    /// A JSON array: refused by the workflow (kept apart, so that it is not read as an object).
    List(Vec<serde_json::Value>),
    /// An object naming the extract by one of its keys.
    Named(UrlBody),
    /// Any other JSON: refused by the workflow.
    Other(serde_json::Value),
}

/// The object form of [`RunBody`]. Exactly one of `url`, `blobUrl`, `fileUrl`, `portalFile`
/// names the extract; other keys are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlBody {
    /// The extract's URL (this service's own key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The old app's uploaded extract on Vercel Blob (its start route), deleted once imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_url: Option<String>,
    /// The old app's seed plan's key for a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    /// A file of the KBO Open Data portal, fetched with the portal account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal_file: Option<String>,
    /// Lowercase or uppercase hex SHA-256 the download must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The extract's file name (`KboOpenData_…zip`): the extract must be what it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

impl RunBody {
    /// A digest of the body (lowercase hex SHA-256 of its JSON, a bare URL read as `{"url"}`):
    /// two runs started with the same request have the same digest, and the URL (which may
    /// carry a token) is not shown.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let json = match self {
            RunBody::Url(url) => serde_json::to_string(&RunBody::Named(UrlBody {
                url: Some(url.clone()),
                ..UrlBody::default()
            })),
            body => serde_json::to_string(body),
        }
        .unwrap_or_default();
        Sha256::digest(json.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: serde_json::Value) -> RunBody {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn every_json_value_is_a_body() {
        assert_eq!(
            body(json!("https://x/a.zip")),
            RunBody::Url("https://x/a.zip".into())
        );
        assert_eq!(
            body(json!({"blobUrl": "https://b/a.zip", "filename": "f", "extra": 1})),
            RunBody::Named(UrlBody {
                blob_url: Some("https://b/a.zip".into()),
                filename: Some("f".into()),
                ..UrlBody::default()
            })
        );
        assert_eq!(body(json!(42)), RunBody::Other(json!(42)));
        assert_eq!(
            body(json!(["https://x/a.zip"])),
            RunBody::List(vec![json!("https://x/a.zip")])
        );
        assert_eq!(body(json!(null)), RunBody::Other(json!(null)));
        // A key of the wrong type is not silently dropped: the body stays as it came.
        assert_eq!(
            body(json!({"url": "http://x", "sha256": 1})),
            RunBody::Other(json!({"url": "http://x", "sha256": 1}))
        );
    }

    #[test]
    fn the_digest_tells_requests_apart_and_survives_the_way_through_json() {
        let named = RunBody::Named(UrlBody {
            url: Some("file:///a/KboOpenData_0141_2025_10_05_Full.zip".into()),
            ..UrlBody::default()
        });
        let sent = serde_json::to_value(&named).unwrap();
        assert_eq!(body(sent).digest(), named.digest());
        let bare = body(json!("file:///a/KboOpenData_0141_2025_10_05_Full.zip"));
        assert_eq!(
            bare.digest(),
            named.digest(),
            "a bare URL is the same request"
        );
        let other = body(json!({"url": "file:///b/KboOpenData_0141_2025_10_05_Full.zip"}));
        assert_ne!(other.digest(), named.digest());
        assert_eq!(named.digest().len(), 64);
    }
}
