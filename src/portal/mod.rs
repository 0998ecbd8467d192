//! The KBO Open Data portal: logging in, listing the extracts it offers, downloading one.
//!
//! The portal is a Spring web application: a form login (`j_username`, `j_password`) answers
//! with session cookies, a visit of the sign-up page completes the session, the listing is an
//! HTML page and files download with the cookies. Sessions expire without notice: a stale one
//! gets an empty listing or HTTP 401, so every call that meets one logs in again once.
//! Credentials come from the configuration and never appear in messages or logs.
//!
//! [`cookies`] keeps the session's cookies; [`listing`] reads the extracts the listing page
//! offers.

pub mod cookies;
pub mod listing;

use crate::download::{self, Downloaded};
use crate::error::{ErrorCode, ImportError, ImportResult};
use crate::extract::file_name::ExtractFileName;
use crate::net::{redacted, without_url};
use crate::redact::Secret;
use cookies::Cookies;
use reqwest::StatusCode;
use std::path::Path;
use std::time::Duration;

/// The real KBO Open Data portal.
pub const DEFAULT_PORTAL_URL: &str = "https://kbopub.economie.fgov.be/kbo-open-data";

/// Where the KBO Open Data portal is and who logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSettings {
    /// `KBO_PORTAL_URL`: the portal's base URL, without a trailing slash (default the real portal).
    pub url: String,
    /// `KBO_USERNAME`.
    pub username: Option<String>,
    /// `KBO_PASSWORD` (never shown by `Debug`).
    pub password: Option<Secret>,
}

/// A client of the portal, keeping one session for the whole process.
pub struct Portal {
    settings: PortalSettings,
    max_download_bytes: u64,
    http: reqwest::Client,
    session: tokio::sync::Mutex<Option<Cookies>>,
}

/// What one call with a session gave: its result, or a sign that the session is stale.
enum Attempt<T> {
    Done(T),
    Stale(String),
}

impl Portal {
    /// A client for the portal of `settings`, refusing downloads past `max_download_bytes`;
    /// nothing is sent before the first call.
    pub fn new(settings: PortalSettings, max_download_bytes: u64) -> Portal {
        let http = crate::net::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .read_timeout(Duration::from_secs(120))
            .build()
            .expect("the HTTP client's settings are valid");
        Portal {
            settings,
            max_download_bytes,
            http,
            session: tokio::sync::Mutex::new(None),
        }
    }

    /// The portal's base URL, for messages.
    pub fn base_url(&self) -> String {
        url::Url::parse(&self.settings.url)
            .map(|u| redacted(&u))
            .unwrap_or_else(|_| self.settings.url.clone())
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.settings.url)
    }

    /// The extracts the portal offers now, in extract order.
    pub async fn list(&self) -> ImportResult<Vec<ExtractFileName>> {
        self.with_session("the file listing", |cookies| async move {
            let url = self.url("affiliation/xml/?files");
            let response = self.get(&url, &cookies).await?;
            let status = response.status();
            if let Some(stale) = stale_answer(&response) {
                return Ok(Attempt::Stale(stale));
            }
            if !status.is_success() {
                return Err(self.unexpected("the file listing", status));
            }
            let page = response.text().await.map_err(|e| {
                ImportError::new(
                    ErrorCode::DownloadBroke,
                    format!("the portal's file listing broke off: {}", without_url(&e)),
                )
            })?;
            let found = listing::extracts(&page);
            Ok(if found.is_empty() {
                Attempt::Stale("an empty file listing".into())
            } else {
                Attempt::Done(found)
            })
        })
        .await
    }

    /// Downloads the portal file `name` to `dest`, checking `expected_sha256` when given.
    pub async fn download(
        &self,
        name: &ExtractFileName,
        dest: &Path,
        expected_sha256: Option<&str>,
    ) -> ImportResult<Downloaded> {
        let what = format!("the download of {name}");
        self.with_session(&what, |cookies| async move {
            let url = self.url(&format!("affiliation/xml/files/{name}"));
            let response = self.get(&url, &cookies).await?;
            let status = response.status();
            if let Some(stale) = stale_answer(&response) {
                return Ok(Attempt::Stale(stale));
            }
            if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                return Err(ImportError::new(ErrorCode::DownloadRefused, format!(
                    "{name} is not on the KBO portal (HTTP {status}); the portal keeps only the last few extracts"
                )));
            }
            if !status.is_success() {
                return Err(self.unexpected(&format!("the download of {name}"), status));
            }
            let html = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/html"));
            if html {
                return Ok(Attempt::Stale("a web page instead of the ZIP file".into()));
            }
            let shown = format!("the KBO portal ({name})");
            download::save_response(response, &shown, dest, expected_sha256, self.max_download_bytes)
                .await
                .map(Attempt::Done)
        })
        .await
    }

    /// Runs `call` with the current session (logging in first if there is none); when it
    /// meets a stale session, logs in again once and repeats it.
    async fn with_session<T, F, Fut>(&self, what: &str, call: F) -> ImportResult<T>
    where
        F: Fn(Cookies) -> Fut,
        Fut: Future<Output = ImportResult<Attempt<T>>>,
    {
        let kept = self.session.lock().await.clone();
        let (cookies, fresh) = match kept {
            Some(cookies) => (cookies, false),
            None => (self.login().await?, true),
        };
        let why = match call(cookies).await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Stale(why) => why,
        };
        if fresh {
            return Err(self.refused_after_login(what, &why));
        }
        tracing::info!(portal = %self.base_url(), %why, "the portal session expired; logging in again");
        match call(self.login().await?).await? {
            Attempt::Done(value) => Ok(value),
            Attempt::Stale(why) => Err(self.refused_after_login(what, &why)),
        }
    }

    fn refused_after_login(&self, what: &str, why: &str) -> ImportError {
        ImportError::new(
            ErrorCode::CredentialsRefused,
            format!(
                "the KBO portal at {} answered {what} with {why} right after logging in: \
             check KBO_USERNAME and KBO_PASSWORD, and that the account may download the open data files",
                self.base_url()
            ),
        )
    }

    /// Logs in and completes the session; keeps and returns its cookies.
    async fn login(&self) -> ImportResult<Cookies> {
        let (Some(username), Some(password)) = (&self.settings.username, &self.settings.password)
        else {
            return Err(ImportError::new(
                ErrorCode::CredentialsRefused,
                "KBO_USERNAME and KBO_PASSWORD are not set: the KBO Open Data portal needs the \
                 account you registered for the open data files",
            ));
        };
        let url = self.url("static/j_spring_security_check");
        let response = self
            .http
            .post(&url)
            .form(&[
                ("j_username", username.as_str()),
                ("j_password", password.expose()),
            ])
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let mut cookies = Cookies::default();
        cookies.absorb(response.headers());
        let refused = ImportError::new(
            ErrorCode::CredentialsRefused,
            format!(
                "the KBO portal at {} refused the login: check KBO_USERNAME and KBO_PASSWORD",
                self.base_url()
            ),
        );
        if status.is_redirection() {
            let location = location(&response).to_ascii_lowercase();
            if ["error", "fail", "denied", "invalid"]
                .iter()
                .any(|w| location.contains(w))
            {
                return Err(refused);
            }
        } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(refused);
        } else if status.is_success() {
            // Some portals answer a failed login with the login form again.
            let page = response.text().await.unwrap_or_default();
            if page.contains("j_password") {
                return Err(refused);
            }
        } else {
            return Err(self.unexpected("the login", status));
        }

        let signup = self
            .get(&self.url("signup?form=&lang=en"), &cookies)
            .await?;
        if signup.status().is_server_error() {
            return Err(self.unexpected("the session's sign-up page", signup.status()));
        }
        cookies.absorb(signup.headers());
        tracing::info!(portal = %self.base_url(), "logged in to the KBO portal");
        *self.session.lock().await = Some(cookies.clone());
        Ok(cookies)
    }

    async fn get(&self, url: &str, cookies: &Cookies) -> ImportResult<reqwest::Response> {
        let mut request = self.http.get(url);
        if let Some(header) = cookies.header() {
            request = request.header(reqwest::header::COOKIE, header);
        }
        request.send().await.map_err(|e| self.unreachable(&e))
    }

    fn unreachable(&self, e: &reqwest::Error) -> ImportError {
        ImportError::new(
            ErrorCode::Unreachable,
            format!(
                "cannot reach the KBO portal at {}: {}",
                self.base_url(),
                without_url(e)
            ),
        )
    }

    /// An answer none of the portal's observed behaviours explains: retried when it is the
    /// server's fault (5xx, 429), terminal otherwise.
    fn unexpected(&self, what: &str, status: StatusCode) -> ImportError {
        let message = format!(
            "the KBO portal at {} answered {what} with HTTP {status}",
            self.base_url()
        );
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            ImportError::new(ErrorCode::Unreachable, message)
        } else {
            ImportError::new(
                ErrorCode::DownloadRefused,
                format!("{message}; check KBO_PORTAL_URL"),
            )
        }
    }
}

/// Why an answer means the session is stale: HTTP 401/403, or a redirect (to the login page).
fn stale_answer(response: &reqwest::Response) -> Option<String> {
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        Some(format!("HTTP {status}"))
    } else if status.is_redirection() {
        Some(format!("a redirect to {}", location(response)))
    } else {
        None
    }
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}
