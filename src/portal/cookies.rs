//! The portal session's cookies: kept from `Set-Cookie` answers, sent back in `Cookie`.
//!
//! One site, one session: names and values are enough (paths, domains and expiry dates are
//! the portal's business; an expired session is detected by its answers and replaced).

use reqwest::header::{HeaderMap, SET_COOKIE};

/// Cookie names and values, in the order first seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cookies(Vec<(String, String)>);

impl Cookies {
    /// Takes in the `Set-Cookie` headers of an answer; a cookie set again replaces its value,
    /// one set to expire is dropped.
    pub fn absorb(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() {
                continue;
            }
            let expired = parts.any(|attr| {
                let attr = attr.trim().to_ascii_lowercase();
                attr == "max-age=0" || attr.starts_with("max-age=-")
            });
            self.0.retain(|(n, _)| n != name);
            if !expired {
                self.0.push((name.to_string(), value.to_string()));
            }
        }
    }

    /// The `Cookie` header to send, if there is any cookie.
    pub fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(set_cookies: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for c in set_cookies {
            map.append(SET_COOKIE, HeaderValue::from_str(c).unwrap());
        }
        map
    }

    #[test]
    fn keeps_names_and_values_and_replaces_or_drops_them() {
        let mut jar = Cookies::default();
        assert_eq!(jar.header(), None);
        jar.absorb(&headers(&[
            "JSESSIONID=abc123; Path=/kbo-open-data; HttpOnly; Secure",
            "lang=en",
            "broken",
        ]));
        assert_eq!(jar.header().unwrap(), "JSESSIONID=abc123; lang=en");
        jar.absorb(&headers(&["JSESSIONID=def456; Path=/", "lang=; Max-Age=0"]));
        assert_eq!(jar.header().unwrap(), "JSESSIONID=def456");
    }
}
