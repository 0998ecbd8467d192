//! Where one of Restate's APIs is: one base URL, or a cluster's nodes tried in turn, and which
//! answers send a call to the next node.

use std::sync::atomic::{AtomicUsize, Ordering};

/// One of Restate's APIs (ingress or admin), reached at one of several base URLs: the nodes
/// of a cluster, in the order given. The node that answered last is asked first.
#[derive(Debug)]
pub(super) struct Endpoints {
    pub(super) urls: Vec<String>,
    pub(super) preferred: AtomicUsize,
}

impl Endpoints {
    /// The base URLs in `urls`, separated by commas.
    pub(super) fn parse(urls: &str) -> Endpoints {
        Endpoints {
            urls: urls
                .split(',')
                .map(|u| u.trim().trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty())
                .collect(),
            preferred: AtomicUsize::new(0),
        }
    }

    /// The base URLs, the one to try first first.
    pub(super) fn in_turn(&self) -> impl Iterator<Item = (usize, &str)> {
        let first = self.preferred.load(Ordering::Relaxed);
        let n = self.urls.len();
        (0..n).map(move |k| {
            let i = (first + k) % n;
            (i, self.urls[i].as_str())
        })
    }

    /// All base URLs, for messages.
    pub(super) fn list(&self) -> String {
        self.urls.join(", ")
    }
}

impl Clone for Endpoints {
    fn clone(&self) -> Endpoints {
        Endpoints {
            urls: self.urls.clone(),
            preferred: AtomicUsize::new(self.preferred.load(Ordering::Relaxed)),
        }
    }
}

/// Whether an answer says that this node cannot serve the call now, while another may: a
/// proxy's or the node's own "unavailable" during a leader change.
pub(super) fn node_unavailable(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

/// Whether `e` is a TLS handshake that refused the server's certificate: no other node and no
/// later try changes that (rustls's own error, found in the chain of causes).
pub(super) fn untrusted_certificate(e: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = cause {
        let inner = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for candidate in [Some(error), inner].into_iter().flatten() {
            if let Some(rustls::Error::InvalidCertificate(_)) = candidate.downcast_ref() {
                return true;
            }
        }
        cause = inner.or_else(|| error.source());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_urls_are_tried_in_turn_from_the_one_that_answered_last() {
        let endpoints = Endpoints::parse(" http://a:8080/, http://b:8080 ,,http://c:8080");
        let first: Vec<&str> = endpoints.in_turn().map(|(_, u)| u).collect();
        assert_eq!(first, ["http://a:8080", "http://b:8080", "http://c:8080"]);
        endpoints.preferred.store(2, Ordering::Relaxed);
        let later: Vec<&str> = endpoints.in_turn().map(|(_, u)| u).collect();
        assert_eq!(later, ["http://c:8080", "http://a:8080", "http://b:8080"]);
        assert_eq!(Endpoints::parse("http://one/").urls, ["http://one"]);
    }

    #[test]
    fn only_gateway_answers_send_the_call_to_another_node() {
        for (code, other_node) in [
            (502, true),
            (503, true),
            (504, true),
            (500, false),
            (404, false),
            (409, false),
        ] {
            let status = reqwest::StatusCode::from_u16(code).unwrap();
            assert_eq!(node_unavailable(status), other_node, "{code}");
        }
    }
}
