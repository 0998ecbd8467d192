//! How often a failing step is tried, and how long between tries: the same policies serve the
//! import's steps ([`crate::workflow`]) and the sync's ([`crate::sync`]).

use restate_sdk::prelude::RunRetryPolicy;
use std::time::Duration;

/// How often a failing step is tried before it fails: `KBO_RETRY_NETWORK_ATTEMPTS` for steps
/// that talk to the network, `KBO_RETRY_LOCAL_ATTEMPTS` for those that work on the database
/// and local files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    /// Attempts of a network step (default 15: about five minutes).
    pub network_attempts: u32,
    /// Attempts of a database or file step (default 20: about three minutes).
    pub local_attempts: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            network_attempts: 15,
            local_attempts: 20,
        }
    }
}

/// Retries for steps that talk to the network (the extract's server, the KBO portal): about
/// five minutes by default, then the step fails.
pub fn network_retries(settings: &RetrySettings) -> RunRetryPolicy {
    RunRetryPolicy::new()
        .initial_delay(Duration::from_secs(1))
        .exponentiation_factor(2.0)
        .max_delay(Duration::from_secs(30))
        .max_attempts(settings.network_attempts.max(1))
}

/// Retries for steps that work on the database and local files.
pub fn local_retries(settings: &RetrySettings) -> RunRetryPolicy {
    RunRetryPolicy::new()
        .initial_delay(Duration::from_millis(500))
        .exponentiation_factor(2.0)
        .max_delay(Duration::from_secs(10))
        .max_attempts(settings.local_attempts.max(1))
}
