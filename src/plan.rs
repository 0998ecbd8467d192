//! The batch plan: how an extract's staged rows are cut into workflow steps.

use crate::db::schema::table_name;
use crate::extract::{ExtractType, Table};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a batch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Retire rows: those of the entities in a `_delete.csv` (Update), or every current row (Full).
    Delete,
    /// Insert staged lines as current rows.
    Insert,
}

impl Op {
    /// `delete` or `insert`, as the batch ledger writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Delete => "delete",
            Op::Insert => "insert",
        }
    }
}

/// One workflow step's share of the work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The data table.
    pub table: Table,
    /// Delete or insert.
    pub op: Op,
    /// 1-based number within (table, op).
    pub number: u32,
    /// Staging rows `[start, end)` by rowid; `None` for retiring a whole table (Full).
    pub rows: Option<(u64, u64)>,
    /// Rows this batch covers, for progress (0 when unknown in advance).
    pub estimated_rows: u64,
}

impl Batch {
    /// The step's name, as the Restate UI shows it: `insert-activities-12`.
    pub fn step_name(&self) -> String {
        format!(
            "{}-{}-{}",
            self.op.as_str(),
            table_name(self.table),
            self.number
        )
    }
}

impl fmt::Display for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.step_name())
    }
}

/// What staging found for one staged file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageStats {
    /// The data table.
    pub table: Table,
    /// Delete file or insert/full file.
    pub op: Op,
    /// Rows staged (after removing repeated lines).
    pub rows: u64,
    /// One past the largest rowid; rowids are below this.
    pub rowid_end: u64,
}

/// Cuts staged files into batches of about `batch_rows` rows, tables in [`Table::ALL`] order,
/// deletes of a table before its inserts. A Full retires each table in one step first.
pub fn plan(kind: ExtractType, stages: &[StageStats], batch_rows: u64) -> Vec<Batch> {
    let batch_rows = batch_rows.max(1);
    let mut batches = Vec::new();
    for table in Table::ALL {
        for op in [Op::Delete, Op::Insert] {
            if kind == ExtractType::Full && op == Op::Delete {
                batches.push(Batch {
                    table,
                    op,
                    number: 1,
                    rows: None,
                    estimated_rows: 0,
                });
                continue;
            }
            let Some(stage) = stages.iter().find(|s| s.table == table && s.op == op) else {
                continue;
            };
            let mut start = 0;
            let mut number = 1;
            let mut covered = 0;
            while start < stage.rowid_end {
                let end = (start + batch_rows).min(stage.rowid_end);
                // Repeated lines removed from staging leave gaps in the rowids: spread the
                // staged rows over the batches so that they add up exactly.
                let until = stage.rows * end / stage.rowid_end;
                let estimated_rows = until - covered;
                covered = until;
                batches.push(Batch {
                    table,
                    op,
                    number,
                    rows: Some((start, end)),
                    estimated_rows,
                });
                start = end;
                number += 1;
            }
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(table: Table, op: Op, rows: u64) -> StageStats {
        StageStats {
            table,
            op,
            rows,
            rowid_end: rows,
        }
    }

    #[test]
    fn update_batches_cover_every_row_once_deletes_first() {
        let stages = [
            stage(Table::Activity, Op::Insert, 25),
            stage(Table::Activity, Op::Delete, 3),
            stage(Table::Enterprise, Op::Insert, 10),
        ];
        let batches = plan(ExtractType::Update, &stages, 10);
        let names: Vec<String> = batches.iter().map(|b| b.step_name()).collect();
        assert_eq!(
            names,
            [
                "insert-enterprises-1",
                "delete-activities-1",
                "insert-activities-1",
                "insert-activities-2",
                "insert-activities-3"
            ]
        );
        let act: Vec<_> = batches
            .iter()
            .filter(|b| b.table == Table::Activity && b.op == Op::Insert)
            .map(|b| b.rows.unwrap())
            .collect();
        assert_eq!(act, [(0, 10), (10, 20), (20, 25)]);
        assert_eq!(batches.iter().map(|b| b.estimated_rows).sum::<u64>(), 38);
    }

    #[test]
    fn full_retires_each_table_before_inserting() {
        let batches = plan(
            ExtractType::Full,
            &[stage(Table::Branch, Op::Insert, 4)],
            100,
        );
        assert_eq!(batches.len(), 8);
        assert!(
            batches
                .iter()
                .filter(|b| b.op == Op::Delete)
                .all(|b| b.rows.is_none())
        );
        let branch: Vec<String> = batches
            .iter()
            .filter(|b| b.table == Table::Branch)
            .map(|b| b.step_name())
            .collect();
        assert_eq!(branch, ["delete-branches-1", "insert-branches-1"]);
    }

    #[test]
    fn empty_files_make_no_batches() {
        assert!(
            plan(
                ExtractType::Update,
                &[stage(Table::Contact, Op::Insert, 0)],
                10
            )
            .is_empty()
        );
    }
}
