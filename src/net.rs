//! The service's network policy and HTTP clients: what an extract URL may reach (schemes,
//! addresses, redirects), the client settings every outgoing call shares, and URLs and errors
//! as messages may show them (credentials masked).

use url::Url;

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

impl DownloadPolicy {
    /// Checks a subscriber's URL: `https://` with a host the policy allows (`http://` only
    /// where the operator allows private hosts, a test or a closed network), and no
    /// credentials in it (the signature says who sends).
    pub fn check_webhook_url(&self, raw: &str) -> Result<Url, Refused> {
        let url = Url::parse(raw.trim())
            .map_err(|e| Refused(format!("`{}` is not a URL ({e})", raw.trim())))?;
        self.check_url(&url)?;
        if url.host().is_none() {
            return Err(Refused(format!("{} has no host", redacted(&url))));
        }
        if url.scheme() == "http" && !self.allow_private_hosts {
            return Err(Refused(format!(
                "{} is not https://; pages are sent over HTTPS only (http:// is taken only \
                 with KBO_ALLOW_PRIVATE_HOSTS=true, for a closed network)",
                redacted(&url)
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused(format!(
                "{} holds a user name or password; the signature says who sends",
                redacted(&url)
            )));
        }
        Ok(url)
    }

    /// The HTTP client for subscribers' URLs: host names resolve only to addresses the policy
    /// allows, no redirect is followed (a page is POSTed where the subscription says), and a
    /// request that has no answer after `timeout` is given up (and tried again later).
    pub fn webhook_client(&self, timeout: std::time::Duration) -> reqwest::Client {
        client_builder()
            .timeout(timeout)
            .dns_resolver(std::sync::Arc::new(PolicyResolver(*self)))
            .redirect(reqwest::redirect::Policy::none())
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
pub(crate) fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
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
pub(crate) fn broken_connection(e: &(dyn std::error::Error + 'static)) -> bool {
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

/// Checks a setting that names one HTTP(S) base URL, or several separated by commas (a
/// cluster's nodes); says what is wrong with the first one that is not.
pub fn check_base_urls(urls: &str) -> Result<(), String> {
    let mut any = false;
    for part in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        any = true;
        let url = Url::parse(part).map_err(|e| format!("{part} is not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!(
                "{} is not an http:// or https:// URL with a host",
                redacted(&url)
            ));
        }
    }
    if any {
        Ok(())
    } else {
        Err("no URL given".into())
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

#[cfg(test)]
mod tests {
    #[test]
    fn webhook_urls_are_https_to_allowed_hosts_without_credentials() {
        use super::DownloadPolicy;
        let strict = DownloadPolicy::default();
        assert!(
            strict
                .check_webhook_url("https://hooks.example.com/kbo")
                .is_ok()
        );
        for refused in [
            "http://hooks.example.com/kbo",
            "https://10.0.0.5/hook",
            "https://127.0.0.1/hook",
            "https://169.254.169.254/latest",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "not a url",
        ] {
            assert!(strict.check_webhook_url(refused).is_err(), "{refused}");
        }
        let open = DownloadPolicy {
            allow_private_hosts: true,
            ..DownloadPolicy::default()
        };
        assert!(open.check_webhook_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(open.check_webhook_url("http://169.254.169.254/").is_err());
    }

    #[test]
    fn base_urls_are_http_or_https_with_a_host() {
        use super::check_base_urls;
        assert!(check_base_urls("http://localhost:9070").is_ok());
        assert!(check_base_urls("https://a:9070/, http://10.0.0.2:9070").is_ok());
        for wrong in [
            "",
            " , ",
            "localhost:9070",
            "garbage",
            "ftp://host/",
            "http://a, b",
        ] {
            assert!(check_base_urls(wrong).is_err(), "{wrong:?}");
        }
        let secret = check_base_urls("file:///x?token=SECRET").unwrap_err();
        assert!(!secret.contains("SECRET"), "{secret}");
    }

    use super::*;

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
}
