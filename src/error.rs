//! The import's error: a code a program reads, a message an operator reads, and whether trying
//! again may help.
//!
//! Every error carries an [`ErrorCode`], and the code alone decides the class: terminal codes
//! are faults of the input or of the request (a bad extract, a wrong URL, a checksum mismatch),
//! where trying again cannot help, so the workflow fails with the message; retryable codes are
//! faults of the moment (network, disk, a locked database), and Restate retries the step with
//! backoff. The code travels through Restate's journal as the terminal error's number
//! ([`ErrorCode::number`]) and ends in `getProgress`'s `error_code`; the message is for people
//! (`error`, `import_jobs.error_message`).

use crate::spelled::spelled_enum;
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

spelled_enum! {
    /// What went wrong, in a word a program can match on (`getProgress`'s `error_code`).
    ///
    /// The numbers are what Restate's journal and UI show as the failure's code; they are part of
    /// the wire contract (docs/contract.md) and never change meaning. This list is the one
    /// definition of the codes, their numbers and their names (`spelled_enum!` in src/spelled.rs).
    #[repr(u16)]
    pub enum ErrorCode {
        /// The request's body or a field of it is not what the service takes.
        BadRequest = 4001 => "bad_request",
        /// The extract's URL is refused by the download policy (scheme, private host, file URL).
        UrlRefused = 4002 => "url_refused",
        /// The extract's server refuses or does not have the file (HTTP 4xx, a redirect elsewhere).
        DownloadRefused = 4003 => "download_refused",
        /// The server ended the file before the length it announced.
        CutShort = 4004 => "cut_short",
        /// The download is larger than `KBO_MAX_DOWNLOAD_BYTES`.
        TooLarge = 4005 => "too_large",
        /// The file's SHA-256 is not the one the request gave.
        ChecksumMismatch = 4006 => "checksum_mismatch",
        /// The file is not a readable ZIP archive.
        NotZip = 4007 => "not_zip",
        /// The archive is unsafe or inconsistent (a member corrupt, twice, unsafe, over the bounds).
        BadArchive = 4008 => "bad_archive",
        /// A file the extract's kind requires is absent.
        MissingFile = 4009 => "missing_file",
        /// `meta.csv` is absent, unreadable, or implausible.
        BadMeta = 4010 => "bad_meta",
        /// A CSV file's header is not the one of docs/format.md.
        BadHeader = 4011 => "bad_header",
        /// A CSV line breaks the dialect or the contract (its file and line are in the message).
        BadLine = 4012 => "bad_line",
        /// The extract does not follow the register's last one (an Update before its Full, a gap).
        OutOfOrder = 4013 => "out_of_order",
        /// The extract is already completed in `import_jobs`.
        AlreadyImported = 4014 => "already_imported",
        /// Another import is recorded as running in this database.
        JobRunning = 4015 => "job_running",
        /// The database refused the data or the statement (a constraint of the old system, say).
        DatabaseRefused = 4016 => "database_refused",
        /// The database file was written by a newer DuckDB than the service's.
        DatabaseTooNew = 4017 => "database_too_new",
        /// DuckDB's `motherduck` extension is neither installed nor downloadable.
        MissingExtension = 4018 => "missing_extension",
        /// A setting is refused (by DuckDB, or as a schedule).
        BadSetting = 4019 => "bad_setting",
        /// A credential is refused (the portal's login, the blob token).
        CredentialsRefused = 4020 => "credentials_refused",
        /// The job's ledger rows changed under it while it ran.
        LedgerChanged = 4021 => "ledger_changed",
        /// The journaled plan cannot be replayed (a newer version of the service wrote it).
        BadPlan = 4022 => "bad_plan",
        /// The run was killed through Restate's admin API.
        Killed = 4023 => "killed",
        /// The job is no longer this run's: an operator rolled it back, or a later run of the same
        /// workflow took it over; the attempt changed nothing.
        NotHolder = 4024 => "not_holder",
        /// The extract or job asked about has no change set: not applied, not completed, or
        /// applied before this service recorded change sets.
        NoChangeSet = 4025 => "no_change_set",
        /// An operator removed the import's extract after it completed (`kbo-import rollback
        /// <id> --completed`): the register no longer holds it; import it again to apply it.
        RolledBack = 4026 => "rolled_back",
        /// A subscription of that name exists already.
        SubscriptionExists = 4027 => "subscription_exists",
        /// No subscription has that name.
        NoSubscription = 4028 => "no_subscription",
        /// The extract's server cannot be reached, or answers with a passing error.
        Unreachable = 4501 => "unreachable",
        /// The download broke off.
        DownloadBroke = 4502 => "download_broke",
        /// The database cannot be opened now (locked by another process, MotherDuck unreachable).
        DatabaseBusy = 4503 => "database_busy",
        /// DuckDB failed for a passing reason (I/O, memory).
        DatabaseFailed = 4504 => "database_failed",
        /// A local file or folder cannot be read or written (disk full, permissions).
        LocalIo = 4505 => "local_io",
        /// The service itself failed (a task that panicked).
        Internal = 4506 => "internal",
        /// Another writer changed the same rows at the same moment (another process, replica or
        /// command on the same database): the transaction did nothing and is tried again.
        WriteConflict = 4507 => "write_conflict",
        /// A chunk file is not whole as the plan wrote it (torn by a crash, damaged on disk) or
        /// gave other rows than the plan counted: the batch did nothing and is cut again.
        TornChunk = 4508 => "torn_chunk",
        /// The run was cancelled (Restate's code for a cancellation).
        Cancelled = 409 => "cancelled",
        /// A step's retries ran out on a passing error (Restate's code for a failure it made
        /// terminal); the message is the last error's.
        RetriesExhausted = 500 => "retries_exhausted",
    }
}

impl ErrorCode {
    /// Terminal or retryable: the one place that decides it.
    pub fn kind(self) -> ErrorKind {
        use ErrorCode::*;
        match self {
            Unreachable | DownloadBroke | DatabaseBusy | DatabaseFailed | LocalIo | Internal
            | WriteConflict | TornChunk => ErrorKind::Retryable,
            BadRequest | UrlRefused | DownloadRefused | CutShort | TooLarge | ChecksumMismatch
            | NotZip | BadArchive | MissingFile | BadMeta | BadHeader | BadLine | OutOfOrder
            | AlreadyImported | JobRunning | DatabaseRefused | DatabaseTooNew
            | MissingExtension | BadSetting | CredentialsRefused | LedgerChanged | BadPlan
            | Killed | NotHolder | NoChangeSet | RolledBack | Cancelled | RetriesExhausted
            | SubscriptionExists | NoSubscription => ErrorKind::Terminal,
        }
    }

    /// The code's number in Restate's journal.
    pub fn number(self) -> u16 {
        self as u16
    }

    /// The code of a terminal failure Restate journaled with `number`: one of ours, or
    /// [`ErrorCode::Internal`] for a number the service never writes.
    pub fn from_number(number: u16) -> ErrorCode {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.number() == number)
            .unwrap_or(ErrorCode::Internal)
    }

    /// The HTTP status a caller gets through Restate's ingress when a handler answers with
    /// this code: Restate's ingress answers a terminal error's code as the HTTP status when
    /// it is one (100 to 999), and 500 otherwise, so a handler answers with this status and
    /// names the code in its message ([`ErrorCode::tagged`]). 4xx: the caller's request or
    /// extract (400 a malformed request, 404 nothing of that name, 409 the register's state
    /// refuses it, 422 the extract itself); 500: the service, its database or the network.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            BadRequest | UrlRefused => 400,
            NoChangeSet | NoSubscription => 404,
            OutOfOrder | AlreadyImported | JobRunning | LedgerChanged | Killed | NotHolder
            | RolledBack | Cancelled | SubscriptionExists => 409,
            DownloadRefused | TooLarge | ChecksumMismatch | NotZip | BadArchive | MissingFile
            | BadMeta | BadHeader | BadLine => 422,
            // Never 502-504: proxies, and the operator's client, take those for a node or
            // gateway that is down, and would try elsewhere instead of reading the answer.
            DatabaseRefused | DatabaseTooNew | MissingExtension | BadSetting | BadPlan
            | DatabaseFailed | LocalIo | Internal | RetriesExhausted | CredentialsRefused
            | Unreachable | DownloadBroke | CutShort | DatabaseBusy | WriteConflict | TornChunk => {
                500
            }
        }
    }

    /// `message` as a handler answers it to callers: led by the code's name in brackets
    /// (`[no_change_set] import … is failed: …`), which [`ErrorCode::of_answer`] reads back.
    pub fn tagged(self, message: &str) -> String {
        format!("[{self}] {message}")
    }

    /// The code of a terminal failure with the code `number` and the message `message`: the
    /// name a handler's answer leads with ([`ErrorCode::tagged`]), else the number as the
    /// journal holds it ([`ErrorCode::from_number`]; journals of earlier versions hold only
    /// numbers).
    pub fn of_answer(number: u16, message: &str) -> ErrorCode {
        ErrorCode::of_tag(message).unwrap_or_else(|| ErrorCode::from_number(number))
    }

    /// `message` without the code's name a handler's answer leads with, if it has one.
    pub fn untagged(message: &str) -> &str {
        match ErrorCode::of_tag(message) {
            Some(code) => message[code.as_str().len() + 2..].trim_start(),
            None => message,
        }
    }

    /// The code named by the tag `message` leads with, if any.
    fn of_tag(message: &str) -> Option<ErrorCode> {
        let (name, _) = message.strip_prefix('[')?.split_once(']')?;
        name.parse().ok()
    }
}

/// An error of the import: its code, the message an operator reads, the step it happened in,
/// and the error that caused it (DuckDB's, the file system's, the network's), kept for the logs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ImportError {
    /// What went wrong; it decides whether a retry may help.
    pub code: ErrorCode,
    /// What failed, for which file/line/extract, and what to do.
    pub message: String,
    /// The journaled step it happened in (`insert-activities-12`), once known.
    pub step: Option<String>,
    /// The underlying error.
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl PartialEq for ImportError {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.message == other.message && self.step == other.step
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
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ImportError {
            code,
            message: clean(message.into()),
            step: None,
            source: None,
        }
    }

    /// The same error, caused by `source`.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Terminal or retryable, by its code.
    pub fn kind(&self) -> ErrorKind {
        self.code.kind()
    }

    /// True for terminal errors.
    pub fn is_terminal(&self) -> bool {
        self.kind() == ErrorKind::Terminal
    }

    /// The same error with `context` in front of its message.
    pub fn context(self, context: impl fmt::Display) -> Self {
        ImportError {
            message: clean(format!("{context}: {}", self.message)),
            ..self
        }
    }

    /// The same error, said to have happened in step `step` (named in front of its message),
    /// unless a step was named already.
    pub fn in_step(self, step: &str) -> Self {
        if self.step.is_some() {
            return self;
        }
        let mut e = self.context(step);
        e.step = Some(step.to_string());
        e
    }
}

/// Shorthand for results of import steps.
pub type ImportResult<T> = Result<T, ImportError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_scrubbed_and_capped_when_made() {
        let e = ImportError::new(
            ErrorCode::DatabaseBusy,
            "cannot open the database md:kbo?motherduck_token=eyJfake.token: IO Error",
        );
        assert_eq!(
            e.message,
            "cannot open the database md:kbo?motherduck_token=***: IO Error"
        );
        let header = "x".repeat(30 << 20);
        let e = ImportError::new(
            ErrorCode::BadHeader,
            format!("enterprise.csv: the header is {header}"),
        );
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
        let e =
            ImportError::new(ErrorCode::LocalIo, "could not write activity.3.csv").caused_by(io);
        assert_eq!(e.to_string(), "could not write activity.3.csv");
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("no space left")
        );
        let e = e.context("prepare");
        assert!(e.source().is_some(), "context keeps the cause");
    }

    #[test]
    fn every_code_has_one_number_and_one_name() {
        let mut numbers = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(numbers.insert(code.number()), "{code} shares its number");
            assert!(names.insert(code.as_str()), "{code} shares its name");
            assert_eq!(ErrorCode::from_number(code.number()), code);
        }
        assert_eq!(ErrorCode::BadLine.as_str(), "bad_line");
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                code.as_str(),
                "getProgress writes {code:?} as as_str says"
            );
        }
        assert_eq!(ErrorCode::from_number(418), ErrorCode::Internal);
    }

    #[test]
    fn an_answer_says_its_code_by_name_and_an_http_status_ingress_keeps() {
        for code in ErrorCode::ALL {
            let status = code.http_status();
            assert!(
                matches!(status, 400 | 404 | 409 | 422 | 500),
                "{code}: {status} (never 502-504: a node down)"
            );
            let caller = matches!(code.kind(), ErrorKind::Terminal)
                && !matches!(
                    code,
                    ErrorCode::DatabaseRefused
                        | ErrorCode::DatabaseTooNew
                        | ErrorCode::MissingExtension
                        | ErrorCode::BadSetting
                        | ErrorCode::BadPlan
                        | ErrorCode::RetriesExhausted
                        | ErrorCode::CredentialsRefused
                        | ErrorCode::CutShort
                );
            assert_eq!(status < 500, caller, "{code}: {status}");
            let message = code.tagged("import x: why");
            assert_eq!(ErrorCode::of_answer(status, &message), code);
            assert_eq!(ErrorCode::untagged(&message), "import x: why");
        }
        assert_eq!(ErrorCode::BadRequest.http_status(), 400);
        assert_eq!(ErrorCode::NoChangeSet.http_status(), 404);
        assert_eq!(ErrorCode::JobRunning.http_status(), 409);
        // What earlier versions journaled: the number alone.
        assert_eq!(
            ErrorCode::of_answer(4025, "import x is failed"),
            ErrorCode::NoChangeSet
        );
        assert_eq!(ErrorCode::of_answer(409, "cancelled"), ErrorCode::Cancelled);
        assert_eq!(
            ErrorCode::of_answer(500, "[nonsense] x"),
            ErrorCode::RetriesExhausted
        );
        assert_eq!(ErrorCode::untagged("[nonsense] x"), "[nonsense] x");
    }

    #[test]
    fn docs_contract_lists_every_code_with_its_number_and_class() {
        let docs = include_str!("../docs/contract.md");
        for code in ErrorCode::ALL {
            let class = match code.kind() {
                ErrorKind::Terminal => "terminal",
                ErrorKind::Retryable => "retryable",
            };
            let row = format!("| `{code}` | {} | {class} |", code.number());
            assert!(docs.contains(&row), "docs/contract.md lacks {row}");
        }
        // And no row names a code the service does not have.
        for line in docs
            .lines()
            .filter(|l| l.ends_with("| terminal |") || l.ends_with("| retryable |"))
        {
            let name = line.split('`').nth(1).unwrap_or_default();
            assert!(
                name.parse::<ErrorCode>().is_ok(),
                "docs/contract.md lists {name:?}, which is no code: {line}"
            );
        }
    }

    #[test]
    fn the_code_alone_decides_whether_a_retry_may_help() {
        for code in [
            ErrorCode::NotZip,
            ErrorCode::ChecksumMismatch,
            ErrorCode::JobRunning,
        ] {
            assert!(ImportError::new(code, "x").is_terminal(), "{code}");
        }
        for code in [
            ErrorCode::DatabaseBusy,
            ErrorCode::Unreachable,
            ErrorCode::LocalIo,
        ] {
            assert!(!ImportError::new(code, "x").is_terminal(), "{code}");
        }
    }

    #[test]
    fn a_step_is_named_once() {
        let e = ImportError::new(ErrorCode::BadLine, "activity.csv line 9: a stray quote")
            .in_step("insert-activities-1")
            .in_step("insert-activities-1");
        assert_eq!(e.step.as_deref(), Some("insert-activities-1"));
        assert_eq!(
            e.message,
            "insert-activities-1: activity.csv line 9: a stray quote"
        );
    }
}
