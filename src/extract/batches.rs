//! The batches of an extract: how its chunks become workflow steps, in which order.

use super::archive::{Chunk, Unpacked};
use super::meta::ExtractType;
use super::tables::{Member, Table};
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
    /// The chunk file this batch applies; `None` for retiring a whole table (Full).
    pub chunk: Option<Chunk>,
    /// Lines this batch covers, for progress (0 for retiring a whole table).
    pub estimated_rows: u64,
    /// An Update's first delete batch of a table whose insert file has lines: it also retires
    /// the current rows whose key the insert file brings again while the delete file does not
    /// name their entity (one scan of the table finds both), and the table's insert batches
    /// leave those rows to it. False in plans journaled before it existed, whose insert
    /// batches look for them themselves.
    #[serde(default)]
    pub retires_replaced: bool,
}

impl Batch {
    /// The step's name, as the Restate UI shows it: `insert-activities-12`.
    pub fn step_name(&self) -> String {
        format!(
            "{}-{}-{}",
            self.op.as_str(),
            self.table.table_name(),
            self.number
        )
    }

    /// The phase the batch's time counts towards in the progress: `insert-activities`.
    pub fn phase(&self) -> String {
        format!("{}-{}", self.op.as_str(), self.table.table_name())
    }

    /// The member the batch's lines come from.
    pub fn member(&self, kind: ExtractType) -> Member {
        match (self.op, kind) {
            (Op::Delete, _) => Member::Delete(self.table),
            (Op::Insert, ExtractType::Full) => Member::Full(self.table),
            (Op::Insert, ExtractType::Update) => Member::Insert(self.table),
        }
    }
}

impl fmt::Display for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.step_name())
    }
}

/// The order a Full applies its tables in: denominations first, so that enterprises and
/// establishments are named as they are inserted.
pub const FULL_ORDER: [Table; 7] = [
    Table::Denomination,
    Table::Enterprise,
    Table::Establishment,
    Table::Branch,
    Table::Address,
    Table::Contact,
    Table::Activity,
];

/// One batch per chunk, deletes of a table before its inserts; an Update takes the tables in
/// [`Table::ALL`] order, a Full in [`FULL_ORDER`] and first retires each table in one step.
/// An Update's first delete batch of a table also retires the rows its insert file replaces
/// ([`Batch::retires_replaced`]).
pub fn batches(extract: &Unpacked) -> Vec<Batch> {
    let kind = extract.meta.extract_type;
    let order = match kind {
        ExtractType::Full => FULL_ORDER,
        ExtractType::Update => Table::ALL,
    };
    let mut batches = Vec::new();
    for table in order {
        if kind == ExtractType::Full {
            batches.push(Batch {
                table,
                op: Op::Delete,
                number: 1,
                chunk: None,
                estimated_rows: 0,
                retires_replaced: false,
            });
        }
        let has_inserts =
            kind == ExtractType::Update && !extract.chunks(Member::Insert(table)).is_empty();
        for op in [Op::Delete, Op::Insert] {
            let member = match (op, kind) {
                (Op::Delete, ExtractType::Full) => continue,
                (Op::Delete, ExtractType::Update) => Member::Delete(table),
                (Op::Insert, ExtractType::Full) => Member::Full(table),
                (Op::Insert, ExtractType::Update) => Member::Insert(table),
            };
            for (i, chunk) in extract.chunks(member).iter().enumerate() {
                batches.push(Batch {
                    table,
                    op,
                    number: i as u32 + 1,
                    chunk: Some(chunk.clone()),
                    estimated_rows: chunk.lines,
                    retires_replaced: op == Op::Delete && i == 0 && has_inserts,
                });
            }
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::date::{Date, Timestamp};
    use crate::extract::{Meta, Unpacked};
    use std::collections::BTreeMap;

    fn extract(kind: ExtractType, members: &[(Member, &[u64])]) -> Unpacked {
        let date = Date::new(2025, 10, 4).unwrap();
        let meta = Meta {
            snapshot_date: date,
            extract_timestamp: Timestamp {
                date,
                hour: 0,
                minute: 0,
                second: 0,
            },
            extract_type: kind,
            extract_number: 140,
            version: "1".into(),
        };
        let mut files = BTreeMap::new();
        for t in Table::ALL {
            let empty = Vec::new();
            match kind {
                ExtractType::Full => files.insert(Member::Full(t), empty),
                ExtractType::Update => {
                    files.insert(Member::Delete(t), empty.clone());
                    files.insert(Member::Insert(t), empty)
                }
            };
        }
        for (member, sizes) in members {
            let mut line = 2;
            let chunks = sizes
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let c = Chunk {
                        file: format!("{member}.{}", i + 1),
                        first_line: line,
                        lines: *n,
                        any_order: false,
                        tail: None,
                    };
                    line += n;
                    c
                })
                .collect();
            files.insert(*member, chunks);
        }
        Unpacked {
            dir: "x".into(),
            meta,
            files,
        }
    }

    #[test]
    fn update_batches_follow_the_chunks_deletes_first() {
        let e = extract(
            ExtractType::Update,
            &[
                (Member::Insert(Table::Activity), &[10, 10, 5]),
                (Member::Delete(Table::Activity), &[3]),
                (Member::Insert(Table::Enterprise), &[10]),
            ],
        );
        let batches = batches(&e);
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
        assert_eq!(batches.iter().map(|b| b.estimated_rows).sum::<u64>(), 38);
        assert_eq!(batches[4].chunk.as_ref().unwrap().first_line, 22);
        assert_eq!(
            batches[2].member(ExtractType::Update),
            Member::Insert(Table::Activity)
        );
    }

    #[test]
    fn an_updates_first_delete_batch_of_a_table_with_inserts_retires_the_replaced_keys() {
        let e = extract(
            ExtractType::Update,
            &[
                (Member::Delete(Table::Activity), &[3, 3]),
                (Member::Insert(Table::Activity), &[10]),
                (Member::Delete(Table::Address), &[2]),
                (Member::Insert(Table::Contact), &[4]),
            ],
        );
        let retiring: Vec<String> = batches(&e)
            .iter()
            .filter(|b| b.retires_replaced)
            .map(|b| b.step_name())
            .collect();
        // Not the second delete batch, not a table without inserts, never an insert batch: a
        // table without a delete file leaves the search to its insert batches.
        assert_eq!(retiring, ["delete-activities-1"]);
        let full = batches(&extract(
            ExtractType::Full,
            &[(Member::Full(Table::Activity), &[4])],
        ));
        assert!(full.iter().all(|b| !b.retires_replaced));
    }

    #[test]
    fn a_plan_journaled_before_the_flag_reads_as_insert_batches_searching_themselves() {
        let old =
            r#"{"table":"activity","op":"delete","number":1,"chunk":null,"estimated_rows":0}"#;
        let batch: Batch = serde_json::from_str(old).unwrap();
        assert!(!batch.retires_replaced);
    }

    #[test]
    fn full_retires_each_table_before_inserting() {
        let batches = batches(&extract(
            ExtractType::Full,
            &[(Member::Full(Table::Branch), &[4])],
        ));
        assert_eq!(batches.len(), 8);
        assert!(
            batches
                .iter()
                .filter(|b| b.op == Op::Delete)
                .all(|b| b.chunk.is_none())
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
        assert!(batches(&extract(ExtractType::Update, &[])).is_empty());
    }
}
