//! What `KboVerify` answers: its progress (`getProgress`) and, at the end, its report: the
//! register compared with the Full of its last extract, table by table.

use serde::{Deserialize, Serialize};

/// The phase of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyStatus {
    /// Not started yet.
    #[default]
    Pending,
    /// Downloading and cutting the Full, checking that it is the register's extract.
    Preparing,
    /// Comparing the tables one by one.
    Comparing,
    /// Done: see `report`.
    Completed,
    /// Failed: see `error`.
    Failed,
}

/// Where a verification stands.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VerifyProgress {
    /// The phase.
    pub status: VerifyStatus,
    /// The verification's id (`verify_runs.id`).
    pub run_id: String,
    /// The Full's extract number, once its `meta.csv` has been read.
    pub extract_number: Option<u32>,
    /// Tables compared.
    pub tables_done: u32,
    /// Tables to compare (the seven data tables).
    pub tables_total: u32,
    /// The table being compared.
    pub current_table: Option<String>,
    /// Differences found so far.
    pub differences: u64,
    /// The report, once completed.
    pub report: Option<VerifyReport>,
    /// Why it failed, for people.
    pub error: Option<String>,
    /// Why it failed, for programs (docs/contract.md lists the codes).
    pub error_code: Option<crate::error::ErrorCode>,
    /// The digest of the body the run was started with ([`super::RunBody::digest`]), once
    /// it runs: `kbo-import verify --id` follows a run it did not start only when it is its
    /// own request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

/// Which kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DifferenceKind {
    /// In the Full, not among the register's current rows.
    Missing,
    /// Among the register's current rows, not in the Full.
    Extra,
    /// Under the same key in both, with other values.
    Different,
}

impl DifferenceKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [DifferenceKind; 3] = [
        DifferenceKind::Missing,
        DifferenceKind::Extra,
        DifferenceKind::Different,
    ];

    /// The kind's name, as `verify_differences.kind` holds it.
    pub fn as_str(self) -> &'static str {
        match self {
            DifferenceKind::Missing => "missing",
            DifferenceKind::Extra => "extra",
            DifferenceKind::Different => "different",
        }
    }
}

/// One difference kept as a sample: the key, and the row as the Full and the register hold it
/// (every column, as JSON objects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    /// Which kind.
    pub kind: DifferenceKind,
    /// The row's key in the register (`enterprise_number`, an `id`).
    pub key: String,
    /// The row as the Full has it (absent for `extra`).
    pub full: Option<serde_json::Value>,
    /// The row as the register has it (absent for `missing`).
    pub register: Option<serde_json::Value>,
}

/// One table compared.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TableReport {
    /// The register's table.
    pub table: String,
    /// Distinct keys in the Full (the last line of a repeated key counts).
    pub full_rows: u64,
    /// Current rows of the register.
    pub register_rows: u64,
    /// Rows of the Full the register lacks.
    pub missing: u64,
    /// Current rows the Full does not have.
    pub extra: u64,
    /// Rows under the same key whose values differ.
    pub different: u64,
    /// A few of the differences, of each kind (at most [`SAMPLES_PER_KIND`]).
    pub samples: Vec<Difference>,
}

impl TableReport {
    /// Every difference in the table.
    pub fn differences(&self) -> u64 {
        self.missing + self.extra + self.different
    }
}

/// The most differences of one kind a table's report keeps as samples.
pub const SAMPLES_PER_KIND: u64 = 10;

/// A verification's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VerifyReport {
    /// The verification's id (`verify_runs.id`).
    pub run_id: String,
    /// The extract compared.
    pub extract_number: u32,
    /// Its snapshot date (`yyyy-mm-dd`).
    pub snapshot_date: String,
    /// Each data table.
    pub tables: Vec<TableReport>,
    /// Differences over all tables.
    pub differences: u64,
    /// What to do about them (or that nothing is to be done).
    pub advice: String,
}

impl VerifyReport {
    /// The advice for a register with `differences` against Full `n`.
    pub fn advice_for(differences: u64, n: u32) -> String {
        if differences == 0 {
            format!(
                "the register equals Full {n} in every column of every table, derived names, ids and \
                 code tables included: nothing to do"
            )
        } else {
            format!(
                "the register differs from Full {n} in {differences} rows (samples in the report, \
                 all in verify_differences): repair it by importing the next Full (it replaces \
                 every current row), or roll back to a good extract (`kbo-import rollback <id> \
                 --completed`, newest first) and import Full {n} again"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_says_what_to_do_only_when_something_differs() {
        assert!(VerifyReport::advice_for(0, 141).contains("nothing to do"));
        let advice = VerifyReport::advice_for(3, 141);
        assert!(
            advice.contains("3 rows") && advice.contains("next Full"),
            "{advice}"
        );
        assert!(advice.contains("rollback"), "{advice}");
    }

    #[test]
    fn kinds_are_spelled_as_the_table_holds_them() {
        for kind in DifferenceKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
    }
}
