//! The import's error: a message for the operator, classified as terminal or retryable.
//!
//! Terminal errors are faults of the input or of the request (a bad extract, a wrong URL, a
//! checksum mismatch): trying again cannot help, so the workflow fails with the message.
//! Retryable errors are faults of the moment (network, disk, a locked database): Restate
//! retries the step with backoff.

use restate_sdk::errors::{HandlerError, TerminalError};
use std::fmt;
use std::sync::Arc;

/// Whether trying again may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input or request: fail the import with this message.
    Terminal,
    /// A passing fault: retry the step.
    Retryable,
}

/// An error of the import: the message an operator reads, whether a retry may help, and the
/// error that caused it (DuckDB's, the file system's, the network's), kept for the logs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ImportError {
    /// Terminal or retryable, decided where the cause is known.
    pub kind: ErrorKind,
    /// What failed, for which file/line/extract, and what to do.
    pub message: String,
    /// The underlying error.
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl PartialEq for ImportError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for ImportError {}

/// The longest message an error carries: messages quote input (a header line, a value, a
/// DuckDB error that quotes a line), and they are kept in Restate's journal, `getProgress` and
/// `import_jobs`.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// A message as it may be shown: secrets masked ([`crate::redact`]) and its length capped.
fn clean(message: String) -> String {
    crate::redact::capped(&crate::redact::scrub(&message), MAX_MESSAGE_BYTES)
}

impl ImportError {
    /// A fault of the input or request.
    pub fn terminal(message: impl Into<String>) -> Self {
        ImportError::new(ErrorKind::Terminal, message)
    }

    /// A passing fault.
    pub fn retryable(message: impl Into<String>) -> Self {
        ImportError::new(ErrorKind::Retryable, message)
    }

    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ImportError {
            kind,
            message: clean(message.into()),
            source: None,
        }
    }

    /// The same error, caused by `source`.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// True for terminal errors.
    pub fn is_terminal(&self) -> bool {
        self.kind == ErrorKind::Terminal
    }

    /// The same error with `context` in front of its message.
    pub fn context(self, context: impl fmt::Display) -> Self {
        ImportError {
            message: clean(format!("{context}: {}", self.message)),
            ..self
        }
    }
}

impl ImportError {
    /// The error as Restate's handler error: terminal stays terminal, retryable is retried.
    pub fn into_handler_error(self) -> HandlerError {
        match self.kind {
            ErrorKind::Terminal => TerminalError::new(self.message).into(),
            ErrorKind::Retryable => HandlerError::from(RetryableError(self.message)),
        }
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

/// Shorthand for results of import steps.
pub type ImportResult<T> = Result<T, ImportError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_scrubbed_and_capped_when_made() {
        let e = ImportError::retryable(
            "cannot open the database md:kbo?motherduck_token=eyJfake.token: IO Error",
        );
        assert_eq!(
            e.message,
            "cannot open the database md:kbo?motherduck_token=***: IO Error"
        );
        let header = "x".repeat(30 << 20);
        let e = ImportError::terminal(format!("enterprise.csv: the header is {header}"));
        assert!(
            e.message.len() < MAX_MESSAGE_BYTES + 100,
            "{}",
            e.message.len()
        );
        assert!(e.message.ends_with("more bytes not shown)"));
        let e = e.context("prepare");
        assert!(e.message.starts_with("prepare: enterprise.csv"));
        assert!(e.is_terminal());
    }

    #[test]
    fn an_error_keeps_its_cause() {
        use std::error::Error;
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left");
        let e = ImportError::retryable("could not write activity.3.csv").caused_by(io);
        assert_eq!(e.to_string(), "could not write activity.3.csv");
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("no space left")
        );
        let e = e.context("prepare");
        assert!(e.source().is_some(), "context keeps the cause");
    }
}
