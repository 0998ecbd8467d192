//! How often a failing step is tried, and how long between tries: the same policies serve the
//! import's steps ([`crate::workflow`]) and the sync's ([`crate::sync`]); and the edge where an
//! [`ImportError`]'s class becomes Restate's ([`IntoRestate`]): the layers below know nothing
//! of Restate's error types.

use crate::error::{ErrorCode, ErrorKind, ImportError};
use restate_sdk::errors::{HandlerError, TerminalError};
use restate_sdk::prelude::RunRetryPolicy;
use std::fmt;
use std::time::Duration;

/// An [`ImportError`] as Restate's errors.
pub trait IntoRestate {
    /// As Restate's handler error: terminal stays terminal (with the code's number), retryable
    /// is retried.
    fn into_handler_error(self) -> HandlerError;
    /// As Restate's terminal error, whatever its class (the run ends with it), with the
    /// code's number: what a step journals, and what the workflow reads back.
    fn into_terminal(self) -> TerminalError;
    /// As the terminal error a handler answers its caller with: the code's HTTP status
    /// ([`ErrorCode::http_status`], which Restate's ingress answers with) and the message led
    /// by the code's name ([`ErrorCode::tagged`]).
    fn into_answer(self) -> TerminalError;
}

/// The terminal error a handler answers its caller with, for `code` and `message` (see
/// [`IntoRestate::into_answer`]).
pub fn answer(code: ErrorCode, message: &str) -> TerminalError {
    TerminalError::new_with_code(code.http_status(), code.tagged(message))
}

impl IntoRestate for ImportError {
    fn into_handler_error(self) -> HandlerError {
        match self.kind() {
            ErrorKind::Terminal => self.into_terminal().into(),
            ErrorKind::Retryable => HandlerError::from(RetryableError(self.message)),
        }
    }

    fn into_terminal(self) -> TerminalError {
        TerminalError::new_with_code(self.code.number(), self.message)
    }

    fn into_answer(self) -> TerminalError {
        answer(self.code, &self.message)
    }
}

/// Carrier for a retryable message into Restate's [`HandlerError`].
#[derive(Debug)]
struct RetryableError(String);

impl fmt::Display for RetryableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RetryableError {}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_survives_the_journal_as_the_terminal_errors_number() {
        for code in ErrorCode::ALL {
            let journaled = ImportError::new(code, "x").into_terminal();
            assert_eq!(ErrorCode::from_number(journaled.code()), code);
            let answered = ImportError::new(code, "x").into_answer();
            assert_eq!(answered.code(), code.http_status());
            assert_eq!(
                ErrorCode::of_answer(answered.code(), answered.message()),
                code
            );
        }
    }
}
