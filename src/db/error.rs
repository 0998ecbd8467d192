//! DuckDB's errors, classified by DuckDB's own error type.
//!
//! The `duckdb` crate hands a failed statement back as its message only (its error code is
//! always `Unknown`), but DuckDB opens every message with its exception type, from a fixed
//! table (`EXCEPTION_MAP` in DuckDB's `src/common/exception.cpp`): `Constraint Error: …`,
//! `IO Error: …`. [`ErrorType::of`] reads that prefix, exactly, into an enum, and the code of
//! an import error is decided on the enum, never on other words of the message.

use crate::error::{ErrorCode, ImportError};

/// DuckDB's exception types that decide how the service treats an error; every other type is
/// [`ErrorType::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// A constraint (a primary key, a check) refused a row.
    Constraint,
    /// A value could not be cast (`Conversion Error`).
    Conversion,
    /// The input is invalid (a CSV file's fault, a bad setting value).
    InvalidInput,
    /// A value out of its type's range.
    OutOfRange,
    /// The statement names a column or function that does not exist here.
    Binder,
    /// The statement does not parse.
    Parser,
    /// The statement names a table or schema that does not exist here.
    Catalog,
    /// Reading or writing a file failed.
    Io,
    /// DuckDB ran out of its `memory_limit`.
    OutOfMemory,
    /// A transaction conflicted with another one.
    Transaction,
    /// A network call of an extension (MotherDuck, httpfs) failed.
    Http,
    /// A connection could not be made (MotherDuck).
    Connection,
    /// Any other type (`INTERNAL`, `FATAL`, …): treated as passing, the connection is reopened.
    Other,
}

/// DuckDB's spelling of each type this module tells apart, as it opens a message.
const NAMES: [(&str, ErrorType); 12] = [
    ("Constraint", ErrorType::Constraint),
    ("Conversion", ErrorType::Conversion),
    ("Invalid Input", ErrorType::InvalidInput),
    ("Out of Range", ErrorType::OutOfRange),
    ("Binder", ErrorType::Binder),
    ("Parser", ErrorType::Parser),
    ("Catalog", ErrorType::Catalog),
    ("IO", ErrorType::Io),
    ("Out of Memory", ErrorType::OutOfMemory),
    ("TransactionContext", ErrorType::Transaction),
    ("HTTP", ErrorType::Http),
    ("Connection", ErrorType::Connection),
];

impl ErrorType {
    /// The type DuckDB gave `e`.
    pub fn of(e: &duckdb::Error) -> ErrorType {
        match e {
            duckdb::Error::DuckDBFailure(_, Some(message)) => ErrorType::of_message(message),
            _ => ErrorType::Other,
        }
    }

    /// The type a DuckDB message opens with (`<type> Error: …`).
    fn of_message(message: &str) -> ErrorType {
        let Some((name, _)) = message.split_once(" Error: ") else {
            return ErrorType::Other;
        };
        NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(ErrorType::Other, |(_, t)| *t)
    }

    /// The statement's or the data's fault: the same statement fails the same way again.
    pub fn is_deterministic(self) -> bool {
        use ErrorType::*;
        matches!(
            self,
            Constraint | Conversion | InvalidInput | OutOfRange | Binder | Parser | Catalog
        )
    }

    /// The code of an error of this type in a statement of the service's own: refused by
    /// the database when deterministic, a passing failure otherwise.
    pub fn statement_code(self) -> ErrorCode {
        match self {
            t if t.is_deterministic() => ErrorCode::DatabaseRefused,
            ErrorType::Transaction => ErrorCode::WriteConflict,
            ErrorType::Http | ErrorType::Connection => ErrorCode::DatabaseBusy,
            _ => ErrorCode::DatabaseFailed,
        }
    }

    /// The code of an error of this type while DuckDB reads an extract's CSV file: a
    /// constraint of the database, a passing failure (I/O, memory), or else the file's fault
    /// (DuckDB's CSV reader reports a bad line as an `Invalid Input` or `Conversion` error).
    pub fn reading_code(self) -> ErrorCode {
        match self {
            ErrorType::Constraint => ErrorCode::DatabaseRefused,
            ErrorType::Io | ErrorType::OutOfMemory => ErrorCode::DatabaseFailed,
            ErrorType::Transaction => ErrorCode::WriteConflict,
            ErrorType::Http | ErrorType::Connection => ErrorCode::DatabaseBusy,
            _ => ErrorCode::BadLine,
        }
    }
}

/// Maps a DuckDB error of a statement on the job ledger, which other writers change too (an
/// upgrade's second deployment, a replica, the operator's command): a duplicate key there is
/// another writer's row committed at the same moment, so it is a [`ErrorCode::WriteConflict`]
/// tried again (the next try reads that row), never the attempt's terminal failure.
pub fn ledger_error(context: &'static str) -> impl Fn(duckdb::Error) -> ImportError {
    move |e| {
        let code = match ErrorType::of(&e) {
            ErrorType::Constraint | ErrorType::Transaction => ErrorCode::WriteConflict,
            t => t.statement_code(),
        };
        ImportError::new(code, format!("{context}: {e}")).caused_by(e)
    }
}

/// Maps a DuckDB error of one of the service's statements to an import error: `context` says
/// what the statement was doing.
pub fn db_error(context: &'static str) -> impl Fn(duckdb::Error) -> ImportError {
    move |e| {
        ImportError::new(
            ErrorType::of(&e).statement_code(),
            format!("{context}: {e}"),
        )
        .caused_by(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(message: &str) -> duckdb::Error {
        duckdb::Error::DuckDBFailure(
            duckdb::ffi::Error::new(duckdb::ffi::DuckDBError),
            Some(message.to_string()),
        )
    }

    #[test]
    fn the_type_is_read_from_the_messages_opening_only() {
        let e = failure("IO Error: could not write; the Conversion Error of a value named x");
        assert_eq!(ErrorType::of(&e), ErrorType::Io);
        assert_eq!(
            ErrorType::of(&failure("Constraint Error: Duplicate key \"id: 1\"")),
            ErrorType::Constraint
        );
        assert_eq!(
            ErrorType::of(&failure("INTERNAL Error: something")),
            ErrorType::Other
        );
        assert_eq!(ErrorType::of(&failure("no type at all")), ErrorType::Other);
    }

    #[test]
    fn real_duckdb_errors_get_the_codes_they_deserve() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1)")
            .unwrap();
        let code = |sql: &str| {
            let e = conn.execute_batch(sql).unwrap_err();
            db_error("testing")(e).code
        };
        assert_eq!(code("INSERT INTO t VALUES (1)"), ErrorCode::DatabaseRefused);
        assert_eq!(code("SELECT 'x'::INTEGER"), ErrorCode::DatabaseRefused);
        assert_eq!(code("SELECT * FROM missing"), ErrorCode::DatabaseRefused);
        assert_eq!(code("SELEC 1"), ErrorCode::DatabaseRefused);
        let io = conn
            .execute_batch("COPY t TO '/nonexistent-dir/x.csv'")
            .unwrap_err();
        assert_eq!(ErrorType::of(&io), ErrorType::Io);
        assert!(!db_error("testing")(io).is_terminal());
    }
}
