//! How a call reaches one of Restate's APIs: its nodes tried in turn, the bearer token, the
//! timeouts, and what a refusal means.

use super::endpoints::{Endpoints, node_unavailable, untrusted_certificate};
use super::{CALL_TIMEOUT, FAILOVER_WINDOW};
use anyhow::bail;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Which of Restate's APIs the nodes serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Api {
    /// Where workflows are started and called.
    Ingress,
    /// Where deployments are registered and invocations listed.
    Admin,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Api::Ingress => "Restate ingress",
            Api::Admin => "the Restate admin API",
        }
    }

    fn role(self) -> &'static str {
        match self {
            Api::Ingress => "ingress access (or full access)",
            Api::Admin => "admin access (or full access)",
        }
    }
}

/// How long a node's answer takes to come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// At once (a call, a question): each try may take the client's call timeout.
    Short,
    /// When something ends (attaching to a run until it ends): no try is timed out.
    AtTheEnd,
}

/// One of Restate's APIs at its base URLs, with the caller's token and patience.
#[derive(Debug, Clone)]
pub(super) struct Nodes {
    api: Api,
    endpoints: Endpoints,
    token: Option<String>,
    pub(super) http: reqwest::Client,
    /// How long one node may take for a short call.
    call_timeout: Duration,
    /// How long a call goes on trying the nodes while none answers.
    failover_window: Duration,
}

impl Nodes {
    /// `api` at `urls` (one URL, or several separated by commas), with `token` as a bearer
    /// token.
    pub(super) fn new(api: Api, urls: &str, token: Option<String>) -> Nodes {
        Nodes {
            api,
            endpoints: Endpoints::parse(urls),
            token,
            http: crate::net::client_builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("the HTTP client's settings are valid"),
            call_timeout: CALL_TIMEOUT,
            failover_window: FAILOVER_WINDOW,
        }
    }

    /// For a caller that must answer soon: each node gets `timeout`, and every node is tried
    /// once.
    pub(super) fn impatient(mut self, timeout: Duration) -> Nodes {
        self.call_timeout = timeout;
        self.failover_window = Duration::ZERO;
        self
    }

    /// Sends the request `build` makes for a base URL (with the bearer token), to
    /// each node in turn until one answers with something else than "unavailable", for up to
    /// the client's failover window ([`FAILOVER_WINDOW`] by default); each try may take the
    /// client's call timeout when the answer is [`Answer::Short`]. The answer, or why no node
    /// gave one.
    pub(super) async fn send(
        &self,
        answer: Answer,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let endpoints = &self.endpoints;
        let started = std::time::Instant::now();
        loop {
            let mut last_error = None;
            // A node started again answers 404 until it has caught up on the registered
            // services: another node may know them, so a 404 is the answer only when every
            // node gives it.
            let mut not_found = None;
            for (i, base) in endpoints.in_turn() {
                let mut request = build(base);
                if let Some(token) = &self.token {
                    request = request.bearer_auth(token);
                }
                if answer == Answer::Short {
                    request = request.timeout(self.call_timeout);
                }
                match request.send().await {
                    Ok(response)
                        if response.status() == reqwest::StatusCode::NOT_FOUND
                            && endpoints.urls.len() > 1 =>
                    {
                        not_found.get_or_insert(response);
                    }
                    Ok(response) if !node_unavailable(response.status()) => {
                        endpoints.preferred.store(i, Ordering::Relaxed);
                        return Ok(response);
                    }
                    Ok(response) => {
                        last_error = Some(anyhow::anyhow!(
                            "{base} answered HTTP {}",
                            response.status()
                        ))
                    }
                    Err(e) if untrusted_certificate(&e) => {
                        return Err(anyhow::Error::new(e).context(format!(
                            "{base} presents a certificate this machine does not trust: set \
                             SSL_CERT_FILE to the certificate of the authority that signed it"
                        )));
                    }
                    Err(e) => last_error = Some(anyhow::Error::new(e).context(base.to_string())),
                }
            }
            if let Some(response) = not_found {
                return Ok(response);
            }
            let error = last_error.unwrap_or_else(|| anyhow::anyhow!("no URL given"));
            if started.elapsed() >= self.failover_window || endpoints.urls.is_empty() {
                return Err(error.context(format!(
                    "cannot reach {} at {} (tried for {} s)",
                    self.api.name(),
                    endpoints.list(),
                    started.elapsed().as_secs()
                )));
            }
            tracing::debug!(error = %error, "no Restate node answered; trying again");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// POSTs `body` as JSON to `path`, asking for JSON back, and returns the answer's text; a
    /// failure says `what` answered which HTTP status and words, followed by `hint`.
    pub(super) async fn call(
        &self,
        path: &str,
        body: &Value,
        what: &str,
        hint: &str,
    ) -> anyhow::Result<String> {
        let response = self
            .send(Answer::Short, |base| {
                self.http
                    .post(format!("{base}{path}"))
                    .header("accept", "application/json")
                    .json(body)
            })
            .await?;
        self.answer(response, what, hint).await
    }

    /// GETs `path`, asking for JSON back, and returns the answer's text; a failure says `what`
    /// answered which HTTP status and words.
    pub(super) async fn get(&self, path: &str, what: &str) -> anyhow::Result<String> {
        let response = self
            .send(Answer::Short, |base| {
                self.http
                    .get(format!("{base}{path}"))
                    .header("accept", "application/json")
            })
            .await?;
        self.answer(response, what, "").await
    }

    /// The text of a successful answer; or why it failed, naming `what` and adding `hint`.
    async fn answer(
        &self,
        response: reqwest::Response,
        what: &str,
        hint: &str,
    ) -> anyhow::Result<String> {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if let Some(refused) = self.refused(status) {
            bail!("{what}: {refused}");
        }
        if !status.is_success() {
            bail!("{what} answered HTTP {status}: {text}{hint}");
        }
        Ok(text)
    }

    /// What to do when Restate refuses the caller (401, 403): one line naming the token.
    pub(super) fn refused(&self, status: reqwest::StatusCode) -> Option<String> {
        let url = self.endpoints.list();
        let role = self.api.role();
        let given = if self.token.is_some() {
            "the RESTATE_AUTH_TOKEN given was refused"
        } else {
            "no RESTATE_AUTH_TOKEN was given"
        };
        match status.as_u16() {
            401 | 403 => Some(format!(
                "{url} answered HTTP {status}: {given}; set RESTATE_AUTH_TOKEN to an API key of \
                 this Restate environment with {role}"
            )),
            _ => None,
        }
    }
}
