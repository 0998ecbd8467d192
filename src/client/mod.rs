//! Clients of Restate's APIs, each apart: [`Ingress`] (starting, following and asking imports,
//! the sync) for the operator's commands, [`Admin`] (registering, the imports' runs) for the
//! commands and for the service's `getProgress`; both reach a cluster's nodes in turn through
//! one transport (`nodes`: token, timeouts, what a refusal means) over `endpoints` (one base
//! URL or a cluster's nodes, the one that answered last asked first). `ingress` and `admin`
//! hold the two clients.

use std::time::Duration;

mod admin;
mod endpoints;
mod ingress;
mod nodes;

pub use admin::{
    Admin, Deployment, ImportRun, RunState, ServiceRevision, Unfinished, WorkflowService,
};
pub use ingress::Ingress;

/// Restate's admin API, as the service may ask it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestateAdmin {
    /// Its base URL, or several separated by commas (the nodes of a cluster).
    pub url: String,
    /// A bearer token (Restate Cloud).
    pub token: Option<crate::redact::Secret>,
}

impl RestateAdmin {
    /// A client of this admin API for the service's own questions: a node that does not answer
    /// within 3 s is skipped (`getProgress` waits for the answer); made once, so that it
    /// remembers which node answered last.
    pub fn client(&self) -> Admin {
        Admin::new(
            &self.url,
            self.token.as_ref().map(|t| t.expose().to_string()),
        )
        .impatient(Duration::from_secs(3))
    }
}

/// How long a short call (getProgress, starting an import, the admin API) may take on one
/// node before the next node is tried: a paused node holds a connection and answers nothing.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a call keeps trying the nodes while none answers (a cluster electing leaders
/// after a node's loss takes up to about 15 s).
pub const FAILOVER_WINDOW: Duration = Duration::from_secs(60);

/// Where Restate is, and how to authenticate (Restate Cloud): its ingress and its admin API,
/// each a client of its own.
#[derive(Debug, Clone)]
pub struct RestateClient {
    /// Starting, following and asking imports; calling the sync.
    pub ingress: Ingress,
    /// Registering the service; listing the imports' runs.
    pub admin: Admin,
}

impl RestateClient {
    /// A client for the given ingress and admin URLs (each one URL, or several separated by
    /// commas: the nodes of a cluster, tried in turn when one does not answer); `token` is
    /// sent as a bearer token to both.
    pub fn new(ingress: &str, admin: &str, token: Option<String>) -> RestateClient {
        RestateClient {
            ingress: Ingress::new(ingress, token.clone()),
            admin: Admin::new(admin, token),
        }
    }
}

/// What starting an import found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Restate accepted a new run.
    New,
    /// A run of that workflow id was already under way (or ended): its progress tells.
    AlreadyRunning,
}

/// What a failed ingress call most often means.
const NOT_REGISTERED: &str = "; is the service registered (kbo-import register)?";

fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
