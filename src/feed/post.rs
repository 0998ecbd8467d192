//! One POST of a page to a subscriber, and what its answer means: delivered (2xx), try again
//! later (5xx, 408, 429 with its `Retry-After`, a timeout, a broken connection), or stop
//! (another 4xx or 3xx pauses the subscription; 410 Gone ends it).

use super::sign::Secret;
use crate::net::{redacted, refusal, without_url};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What became of one POST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The receiver answered 2xx: the page is delivered.
    Delivered,
    /// A passing failure: try again after `after` (the receiver's `Retry-After`) or the
    /// backoff's next wait.
    Retry {
        /// What happened, for the status and the log.
        reason: String,
        /// The receiver's `Retry-After`, if it sent one.
        after: Option<Duration>,
    },
    /// The receiver refused the page (another 4xx, a redirect, a URL the policy refuses):
    /// the subscription is paused.
    Refused(String),
    /// The receiver answered 410 Gone: the subscription ends.
    Gone(String),
}

/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// POSTs `body` to `url` as message `id`, signed with `secret` at `timestamp` (Unix seconds).
pub async fn post(
    client: &reqwest::Client,
    url: &url::Url,
    secret: &Secret,
    id: &str,
    timestamp: i64,
    body: Vec<u8>,
) -> Outcome {
    let signature = secret.sign(id, timestamp, &body);
    let sent = client
        .post(url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let where_to = redacted(url);
    match sent {
        Ok(answer) => {
            let status = answer.status();
            let after = retry_after(answer.headers().get("retry-after"));
            // Read a little of the answer (a receiver's body is never kept), so that a short
            // one leaves the connection usable again; a longer one is dropped with it.
            let mut answer = answer;
            let mut read = 0usize;
            while read < 64 << 10 {
                match answer.chunk().await {
                    Ok(Some(piece)) => read += piece.len(),
                    _ => break,
                }
            }
            of_status(status.as_u16(), after, &where_to)
        }
        Err(e) => match refusal(&e) {
            Some(why) => Outcome::Refused(why),
            None if e.is_timeout() => Outcome::Retry {
                reason: format!("{where_to} did not answer in time"),
                after: None,
            },
            None => Outcome::Retry {
                reason: format!("{where_to} could not be reached: {}", without_url(&e)),
                after: None,
            },
        },
    }
}

/// What an answer with HTTP `status` means.
pub fn of_status(status: u16, after: Option<Duration>, url: &str) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        410 => Outcome::Gone(format!("{url} answered 410 Gone")),
        408 | 429 | 500..=599 => Outcome::Retry {
            reason: format!("{url} answered {status}"),
            after,
        },
        _ => Outcome::Refused(format!(
            "{url} answered {status}: the receiver refuses the page (fix the receiver, then \
             `kbo-import subscription <name> --resume`)"
        )),
    }
}

/// A `Retry-After` header's wait: seconds, or an HTTP date (its distance from now), at most
/// [`MAX_RETRY_AFTER`].
fn retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    let wait = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(text).ok()?;
            at.duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn answers_are_classified_as_the_convention_says() {
        assert_eq!(of_status(204, None, "u"), Outcome::Delivered);
        assert!(matches!(of_status(410, None, "u"), Outcome::Gone(_)));
        for retried in [408, 429, 500, 503] {
            assert!(
                matches!(of_status(retried, None, "u"), Outcome::Retry { .. }),
                "{retried}"
            );
        }
        for refused in [301, 400, 401, 404, 422] {
            assert!(
                matches!(of_status(refused, None, "u"), Outcome::Refused(_)),
                "{refused}"
            );
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date_and_bounded() {
        let secs = |v: &str| retry_after(Some(&HeaderValue::from_str(v).unwrap()));
        assert_eq!(secs("7"), Some(Duration::from_secs(7)));
        assert_eq!(secs("999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(secs("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(secs("soon"), None);
        assert_eq!(retry_after(None), None);
    }
}
