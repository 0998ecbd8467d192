//! The plan of an import: its batches, in order, each a typed step that says what it reads and
//! what it does. Pure: the plan is made from the unpacked extract's chunks and journaled by the
//! workflow's `prepare` step; `db::apply` does each step.
//!
//! # The Update's rule
//!
//! An Update brings, per table, a delete file (entities whose rows end) and an insert file (rows
//! that begin). Applied, every current row of a listed entity is retired, and every current row
//! whose key the insert file brings again is retired too (replaced, not doubled), whether or not
//! the delete file names its entity. Finding either kind of row is a scan of the table, most of a
//! daily Update's time on a large register, so:
//!
//! - the table's first delete batch, when the table has inserts, finds both kinds in one scan:
//!   [`Step::RetireListed`] with `also_replaced`, reading its chunk, every delete chunk of the
//!   table (their entities are retired whole, not key by key) and every insert chunk;
//! - the table's insert batches then only replace keys this extract itself inserted in an earlier
//!   batch (a line repeated in the insert file): [`Replace::OwnExtract`];
//! - a table without a delete file leaves the search to its insert batches, each for its own
//!   lines: [`Replace::Earlier`].
//!
//! A Full retires every current row of a table ([`Step::RetireAll`]) before inserting its lines
//! ([`Replace::Nothing`]); finalize keeps the last line of a key repeated within the extract.
//!
//! # Versions
//!
//! The plan is journaled: an import in flight when the service is upgraded replays the plan the
//! earlier version wrote. [`Journaled::plan`] reads every version this code knows (the untyped
//! plans of versions 1 and 2 are turned into steps by the rule above, as those versions applied
//! them) and refuses any other with a message that says what to do, never guessing.

use super::archive::{Chunk, Unpacked};
use super::meta::ExtractType;
use super::tables::{Member, Table};
use crate::error::{ErrorCode, ImportError, ImportResult};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The version of the plan this code writes, and the newest it replays.
pub const PLAN_VERSION: u32 = 3;

/// The oldest plan version this code replays: version 1 is the plan of the versions before the
/// plan carried a version.
pub const OLDEST_PLAN_VERSION: u32 = 1;

/// The import's batches, in the order they are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The batches.
    pub batches: Vec<Batch>,
    /// Lines per chunk the extract was cut into (to cut it again the same way if needed).
    pub chunk_lines: u64,
}

/// What a batch does, and the files it reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// Full: retires every current row of the table that earlier extracts wrote. Reads no file.
    RetireAll,
    /// Update: retires the current rows of the entities its delete chunk lists. With
    /// `also_replaced` (the table's first delete batch, when the table has inserts) it also
    /// retires, in the same scan, the current rows whose key one of the table's insert chunks
    /// brings again while no delete chunk names their entity; it then reads every delete and
    /// insert chunk of the table.
    RetireListed {
        /// The delete chunk.
        chunk: Chunk,
        /// Whether the rows the insert file replaces are retired here.
        also_replaced: bool,
    },
    /// Inserts its chunk's lines as current rows, after taking out the rows they replace.
    Insert {
        /// The insert (Update) or data (Full) chunk.
        chunk: Chunk,
        /// Which rows its lines replace.
        replace: Replace,
    },
}

/// Which current rows an insert batch's lines replace, before they are inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replace {
    /// None (a Full: the table's current rows were retired whole).
    Nothing,
    /// Rows with its keys that this extract inserted in an earlier batch (deleted, not retired:
    /// retiring would leave one key, snapshot and extract twice in the history). The table's
    /// first delete batch retired the earlier extracts' rows.
    OwnExtract,
    /// As [`Replace::OwnExtract`], and the current rows of earlier extracts with its keys,
    /// outside the entities the table's delete chunks list (retired whole already). Reads the
    /// table's delete chunks.
    Earlier,
}

/// The ledger's name of a batch's kind (`import_job_batches.operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A step that retires rows.
    Delete,
    /// A step that inserts rows.
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
    /// 1-based number within (table, op).
    pub number: u32,
    /// Lines this batch covers, for progress (0 for retiring a whole table).
    pub estimated_rows: u64,
    /// What it does.
    pub step: Step,
}

impl Batch {
    /// Delete or insert, as the ledger and the step's name say.
    pub fn op(&self) -> Op {
        match self.step {
            Step::RetireAll | Step::RetireListed { .. } => Op::Delete,
            Step::Insert { .. } => Op::Insert,
        }
    }

    /// The chunk the batch applies (none for retiring a whole table).
    pub fn chunk(&self) -> Option<&Chunk> {
        match &self.step {
            Step::RetireAll => None,
            Step::RetireListed { chunk, .. } | Step::Insert { chunk, .. } => Some(chunk),
        }
    }

    /// The step's name, as the Restate UI shows it: `insert-activities-12`.
    pub fn step_name(&self) -> String {
        format!("{}-{}", self.phase(), self.number)
    }

    /// The phase the batch's time counts towards in the progress: `insert-activities`.
    pub fn phase(&self) -> String {
        format!("{}-{}", self.op().as_str(), self.table.table_name())
    }

    /// The member the batch's lines come from.
    pub fn member(&self, kind: ExtractType) -> Member {
        match (self.op(), kind) {
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

/// The chunks a batch reads, by their role in the step (`C` is a chunk of the plan, or the path
/// the importer found it at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reads<C> {
    /// The batch's own chunk.
    pub chunk: Option<C>,
    /// The table's delete chunks, whose entities' rows are retired whole.
    pub listed: Vec<C>,
    /// The table's insert batches, with their chunks.
    pub inserted: Vec<(Batch, C)>,
}

impl<C> Reads<C> {
    /// The same reads, each chunk turned into `f`'s answer.
    pub fn map<D>(self, f: impl Fn(C) -> D) -> Reads<D> {
        Reads {
            chunk: self.chunk.map(&f),
            listed: self.listed.into_iter().map(&f).collect(),
            inserted: self.inserted.into_iter().map(|(b, c)| (b, f(c))).collect(),
        }
    }

    /// Every chunk read.
    pub fn all(&self) -> impl Iterator<Item = &C> {
        let inserted = self.inserted.iter().map(|(_, c)| c);
        self.chunk.iter().chain(&self.listed).chain(inserted)
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

impl Plan {
    /// The plan of an extract cut into chunks of `chunk_lines` lines: one batch per chunk,
    /// deletes of a table before its inserts; an Update takes the tables in [`Table::ALL`]
    /// order, a Full in [`FULL_ORDER`] and first retires each table in one step.
    pub fn new(extract: &Unpacked, chunk_lines: u64) -> Plan {
        let mut batches = Vec::new();
        for table in Plan::order(extract.meta.extract_type) {
            batches.extend(table_batches(extract, table));
        }
        Plan {
            batches,
            chunk_lines,
        }
    }

    fn order(kind: ExtractType) -> [Table; 7] {
        match kind {
            ExtractType::Full => FULL_ORDER,
            ExtractType::Update => Table::ALL,
        }
    }

    /// Lines over all batches: the work the batches will do.
    pub fn rows_total(&self) -> u64 {
        self.batches.iter().map(|b| b.estimated_rows).sum()
    }

    /// The chunks `batch` (one of the plan's) reads, by role.
    pub fn reads<'a>(&'a self, batch: &'a Batch) -> Reads<&'a Chunk> {
        let of_table = |op: Op| {
            self.batches
                .iter()
                .filter(move |b| b.table == batch.table && b.op() == op)
                .filter_map(|b| Some((b, b.chunk()?)))
        };
        let listed = || of_table(Op::Delete).map(|(_, c)| c).collect();
        let (listed, inserted) = match &batch.step {
            Step::RetireListed {
                also_replaced: true,
                ..
            } => (
                listed(),
                of_table(Op::Insert).map(|(b, c)| (b.clone(), c)).collect(),
            ),
            Step::Insert {
                replace: Replace::Earlier,
                ..
            } => (listed(), Vec::new()),
            _ => (Vec::new(), Vec::new()),
        };
        Reads {
            chunk: batch.chunk(),
            listed,
            inserted,
        }
    }
}

/// The batches of one table: a Full's retiring of the table, then the delete chunks, then the
/// insert chunks.
fn table_batches(extract: &Unpacked, table: Table) -> Vec<Batch> {
    let batch = |number: usize, chunk: &Chunk, step: Step| Batch {
        table,
        number: number as u32 + 1,
        estimated_rows: chunk.lines,
        step,
    };
    match extract.meta.extract_type {
        ExtractType::Full => {
            let retire = Batch {
                table,
                number: 1,
                estimated_rows: 0,
                step: Step::RetireAll,
            };
            let chunks = extract.chunks(Member::Full(table)).iter().enumerate();
            let inserts = chunks.map(|(i, chunk)| {
                let replace = Replace::Nothing;
                batch(
                    i,
                    chunk,
                    Step::Insert {
                        chunk: chunk.clone(),
                        replace,
                    },
                )
            });
            std::iter::once(retire).chain(inserts).collect()
        }
        ExtractType::Update => {
            let (deletes, inserts) = (
                extract.chunks(Member::Delete(table)),
                extract.chunks(Member::Insert(table)),
            );
            // The first delete batch retires the replaced rows, when there is one and there
            // are inserts to replace rows with.
            let searched_by_a_delete = !deletes.is_empty() && !inserts.is_empty();
            let replace = match searched_by_a_delete {
                true => Replace::OwnExtract,
                false => Replace::Earlier,
            };
            let deletes = deletes.iter().enumerate().map(|(i, chunk)| {
                let also_replaced = i == 0 && searched_by_a_delete;
                batch(
                    i,
                    chunk,
                    Step::RetireListed {
                        chunk: chunk.clone(),
                        also_replaced,
                    },
                )
            });
            let inserts = inserts.iter().enumerate().map(|(i, chunk)| {
                batch(
                    i,
                    chunk,
                    Step::Insert {
                        chunk: chunk.clone(),
                        replace,
                    },
                )
            });
            deletes.chain(inserts).collect()
        }
    }
}

/// A plan as the journal holds it, of whichever version wrote it: read without judging, so
/// that a plan this code cannot replay is refused by [`Journaled::plan`] with a message (a
/// journaled value that fails to decode would be retried by Restate for ever).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journaled {
    /// The plan's version (1 when absent).
    #[serde(default = "first_version")]
    pub version: u32,
    /// The batches, as the version wrote them.
    pub batches: Vec<serde_json::Value>,
    /// Lines per chunk.
    pub chunk_lines: u64,
}

fn first_version() -> u32 {
    1
}

impl From<&Plan> for Journaled {
    fn from(plan: &Plan) -> Journaled {
        Journaled {
            version: PLAN_VERSION,
            batches: plan
                .batches
                .iter()
                .map(|b| serde_json::to_value(b).expect("a batch serializes"))
                .collect(),
            chunk_lines: plan.chunk_lines,
        }
    }
}

impl Journaled {
    /// The plan, for an extract of kind `kind`: this version's steps as written, an earlier
    /// version's batches as that version applied them, any other version refused.
    pub fn plan(&self, kind: ExtractType) -> ImportResult<Plan> {
        let batches = match self.version {
            PLAN_VERSION => self
                .batches
                .iter()
                .map(|b| serde_json::from_value(b.clone()))
                .collect::<Result<Vec<Batch>, _>>(),
            OLDEST_PLAN_VERSION..PLAN_VERSION => legacy::upgrade(&self.batches, kind),
            _ => return Err(self.refused("whose plans are version")),
        };
        let batches =
            batches.map_err(|e| self.refused(&format!("that does not read ({e}) as version")))?;
        Ok(Plan {
            batches,
            chunk_lines: self.chunk_lines,
        })
    }

    fn refused(&self, what: &str) -> ImportError {
        ImportError::new(
            ErrorCode::BadPlan,
            format!(
                "the import's plan was journaled by a version of kbo-import {what} {}, and this \
                 one replays versions {OLDEST_PLAN_VERSION} to {PLAN_VERSION}: register the \
                 version that started the import again and let it finish (or cancel the import \
                 and start it again on this version)",
                self.version
            ),
        )
    }
}

/// The plans of versions 1 and 2: untyped batches, `op` and an optional chunk, and (version 2)
/// the first delete batch's `retires_replaced`.
mod legacy {
    use super::*;

    #[derive(Deserialize)]
    struct Batch {
        table: Table,
        op: String,
        number: u32,
        chunk: Option<serde_json::Value>,
        estimated_rows: u64,
        /// Absent in version 1, whose insert batches searched for the replaced rows.
        #[serde(default)]
        retires_replaced: bool,
    }

    /// Version 1 and 2 batches as typed steps, meaning what those versions did with them.
    pub(super) fn upgrade(
        batches: &[serde_json::Value],
        kind: ExtractType,
    ) -> Result<Vec<super::Batch>, serde_json::Error> {
        let old: Vec<Batch> = batches
            .iter()
            .map(|b| serde_json::from_value(b.clone()))
            .collect::<Result<_, _>>()?;
        let searched = |t: Table| old.iter().any(|b| b.table == t && b.retires_replaced);
        old.iter()
            .map(|b| {
                let chunk = b.chunk.clone().map(chunk).transpose()?;
                let step = match (b.op.as_str(), chunk, kind) {
                    ("delete", None, _) => Step::RetireAll,
                    ("delete", Some(chunk), _) => Step::RetireListed {
                        chunk,
                        also_replaced: b.retires_replaced,
                    },
                    ("insert", Some(chunk), ExtractType::Full) => Step::Insert {
                        chunk,
                        replace: Replace::Nothing,
                    },
                    ("insert", Some(chunk), ExtractType::Update) => Step::Insert {
                        chunk,
                        replace: match searched(b.table) {
                            true => Replace::OwnExtract,
                            false => Replace::Earlier,
                        },
                    },
                    (op, _, _) => {
                        return Err(serde::de::Error::custom(format!(
                            "batch {op} {} {} without the chunk it needs",
                            b.table.table_name(),
                            b.number
                        )));
                    }
                };
                Ok(super::Batch {
                    table: b.table,
                    number: b.number,
                    estimated_rows: b.estimated_rows,
                    step,
                })
            })
            .collect()
    }

    /// A chunk as versions 1 and 2 wrote it: version 1's may lack `any_order` (written before
    /// the cutter knew keys: its rows keep the file's order).
    fn chunk(mut value: serde_json::Value) -> Result<Chunk, serde_json::Error> {
        if let Some(fields) = value.as_object_mut() {
            fields.entry("any_order").or_insert(false.into());
        }
        serde_json::from_value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::date::{Date, Timestamp};
    use crate::extract::{Meta, Unpacked};
    use std::collections::BTreeMap;

    /// An unpacked extract of kind `kind` whose members are cut into chunks of the given sizes.
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
            let members = match kind {
                ExtractType::Full => vec![Member::Full(t)],
                ExtractType::Update => vec![Member::Delete(t), Member::Insert(t)],
            };
            for member in members {
                files.insert(member, Vec::new());
            }
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
                        blank: 0,
                        any_order: false,
                        tail: None,
                        seal: None,
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

    fn plan(kind: ExtractType, members: &[(Member, &[u64])]) -> Plan {
        Plan::new(&extract(kind, members), 10)
    }

    fn names(batches: &[Batch]) -> Vec<String> {
        batches.iter().map(Batch::step_name).collect()
    }

    #[test]
    fn update_batches_follow_the_chunks_deletes_first() {
        let plan = plan(
            ExtractType::Update,
            &[
                (Member::Insert(Table::Activity), &[10, 10, 5]),
                (Member::Delete(Table::Activity), &[3]),
                (Member::Insert(Table::Enterprise), &[10]),
            ],
        );
        assert_eq!(
            names(&plan.batches),
            [
                "insert-enterprises-1",
                "delete-activities-1",
                "insert-activities-1",
                "insert-activities-2",
                "insert-activities-3"
            ]
        );
        assert_eq!(plan.rows_total(), 38);
        assert_eq!(plan.batches[4].chunk().unwrap().first_line, 22);
        assert_eq!(
            plan.batches[2].member(ExtractType::Update),
            Member::Insert(Table::Activity)
        );
    }

    #[test]
    fn an_updates_first_delete_batch_retires_the_replaced_keys_and_its_inserts_leave_them() {
        let plan = plan(
            ExtractType::Update,
            &[
                (Member::Delete(Table::Activity), &[3, 3]),
                (Member::Insert(Table::Activity), &[10, 10]),
                (Member::Delete(Table::Address), &[2]),
                (Member::Insert(Table::Contact), &[4]),
            ],
        );
        let steps: Vec<(String, &Step)> = plan
            .batches
            .iter()
            .map(|b| (b.step_name(), &b.step))
            .collect();
        let also =
            |s: &Step| matches!(s, Step::RetireListed { also_replaced, .. } if *also_replaced);
        let replace = |s: &Step| match s {
            Step::Insert { replace, .. } => Some(*replace),
            _ => None,
        };
        let by_name = |n: &str| steps.iter().find(|(name, _)| name == n).unwrap().1;
        assert!(also(by_name("delete-activities-1")));
        assert!(!also(by_name("delete-activities-2")), "the first one only");
        assert!(
            !also(by_name("delete-addresses-1")),
            "no inserts to replace with"
        );
        assert_eq!(
            replace(by_name("insert-activities-2")),
            Some(Replace::OwnExtract)
        );
        assert_eq!(
            replace(by_name("insert-contacts-1")),
            Some(Replace::Earlier),
            "no delete batch searched for them"
        );
    }

    #[test]
    fn each_step_reads_what_it_needs_and_no_more() {
        let plan = plan(
            ExtractType::Update,
            &[
                (Member::Delete(Table::Activity), &[3, 3]),
                (Member::Insert(Table::Activity), &[10, 10]),
                (Member::Insert(Table::Contact), &[4]),
            ],
        );
        let files = |r: Reads<&Chunk>| r.map(|c| c.file.clone());
        let first = files(plan.reads(&plan.batches[1]));
        assert_eq!(first.chunk.as_deref(), Some("activity_delete.csv.1"));
        assert_eq!(
            first.listed,
            ["activity_delete.csv.1", "activity_delete.csv.2"]
        );
        let inserted: Vec<String> = first.inserted.iter().map(|(b, _)| b.step_name()).collect();
        assert_eq!(inserted, ["insert-activities-1", "insert-activities-2"]);
        let second = files(plan.reads(&plan.batches[2]));
        assert_eq!(second.all().count(), 1, "{second:?}");
        let own = files(plan.reads(&plan.batches[3]));
        assert_eq!(own.all().count(), 1, "{own:?}");
        // The contacts' insert searches itself, outside listed entities: none here.
        let contacts = plan
            .batches
            .iter()
            .find(|b| b.table == Table::Contact)
            .unwrap();
        let searching = files(plan.reads(contacts));
        assert!(searching.listed.is_empty() && searching.inserted.is_empty());
        assert_eq!(searching.chunk.as_deref(), Some("contact_insert.csv.1"));
    }

    /// The Update's rule, whatever the cut: every insert chunk's replaced rows are retired once,
    /// by an earlier batch that read that chunk or by the insert batch itself, and every delete
    /// chunk's entities are left out of a search.
    #[test]
    fn every_cut_of_an_update_retires_each_insert_chunks_replaced_rows_exactly_once() {
        for deletes in 0..4usize {
            for inserts in 0..4usize {
                let d = vec![5; deletes];
                let i = vec![7; inserts];
                let plan = plan(
                    ExtractType::Update,
                    &[
                        (Member::Delete(Table::Branch), &d),
                        (Member::Insert(Table::Branch), &i),
                    ],
                );
                for (at, batch) in plan.batches.iter().enumerate() {
                    let Step::Insert { chunk, replace } = &batch.step else {
                        continue;
                    };
                    let searched_before = plan.batches[..at]
                        .iter()
                        .filter(|b| plan.reads(b).inserted.iter().any(|(_, c)| *c == chunk))
                        .count();
                    let searches_itself = usize::from(*replace == Replace::Earlier);
                    assert_eq!(
                        searched_before + searches_itself,
                        1,
                        "{deletes}/{inserts}: {batch}"
                    );
                    if *replace == Replace::Earlier {
                        assert_eq!(plan.reads(batch).listed.len(), deletes);
                    }
                }
                let searching = plan
                    .batches
                    .iter()
                    .filter(|b| !plan.reads(b).inserted.is_empty());
                for batch in searching {
                    assert_eq!(plan.reads(batch).listed.len(), deletes, "{batch}");
                }
            }
        }
    }

    #[test]
    fn full_retires_each_table_before_inserting() {
        let plan = plan(ExtractType::Full, &[(Member::Full(Table::Branch), &[4])]);
        assert_eq!(plan.batches.len(), 8);
        assert!(plan.batches.iter().all(|b| matches!(
            b.step,
            Step::RetireAll
                | Step::Insert {
                    replace: Replace::Nothing,
                    ..
                }
        )));
        let branch: Vec<Batch> = plan
            .batches
            .iter()
            .filter(|b| b.table == Table::Branch)
            .cloned()
            .collect();
        assert_eq!(names(&branch), ["delete-branches-1", "insert-branches-1"]);
        assert_eq!(plan.reads(&branch[0]).all().count(), 0);
    }

    #[test]
    fn empty_files_make_no_batches() {
        assert!(plan(ExtractType::Update, &[]).batches.is_empty());
    }

    fn journaled(json: serde_json::Value) -> Journaled {
        serde_json::from_value(json).unwrap()
    }

    fn a_busy_update() -> Plan {
        plan(
            ExtractType::Update,
            &[
                (Member::Delete(Table::Activity), &[3, 3]),
                (Member::Insert(Table::Activity), &[10, 10]),
                (Member::Insert(Table::Contact), &[4]),
                (Member::Delete(Table::Address), &[2]),
            ],
        )
    }

    /// `plan`'s batches as version 2 wrote them: `op`, `chunk` and the first delete batch's
    /// `retires_replaced` (`also_replaced: false` written as absent when `v1`).
    fn written_by_an_earlier_version(plan: &Plan, v1: bool) -> serde_json::Value {
        let batches: Vec<serde_json::Value> = plan
            .batches
            .iter()
            .map(|b| {
                let mut chunk = serde_json::to_value(b.chunk()).unwrap();
                let retires = matches!(
                    b.step,
                    Step::RetireListed {
                        also_replaced: true,
                        ..
                    }
                );
                let mut old = serde_json::json!({
                    "table": b.table, "op": b.op().as_str(), "number": b.number,
                    "chunk": chunk.clone(), "estimated_rows": b.estimated_rows,
                });
                if v1 {
                    chunk.as_object_mut().map(|c| c.remove("any_order"));
                    old["chunk"] = chunk;
                } else {
                    old["retires_replaced"] = retires.into();
                }
                old
            })
            .collect();
        let mut json = serde_json::json!({ "batches": batches, "chunk_lines": 10 });
        if !v1 {
            json["version"] = 2.into();
        }
        json
    }

    #[test]
    fn this_versions_plan_reads_back_from_its_journal_as_it_was() {
        let plan = a_busy_update();
        let text = serde_json::to_string(&Journaled::from(&plan)).unwrap();
        let back: Journaled = serde_json::from_str(&text).unwrap();
        assert_eq!(back.version, PLAN_VERSION);
        assert_eq!(back.plan(ExtractType::Update).unwrap(), plan);
    }

    #[test]
    fn a_version_2_plan_is_replayed_as_version_2_applied_it() {
        let plan = a_busy_update();
        let old = journaled(written_by_an_earlier_version(&plan, false));
        assert_eq!(old.version, 2);
        assert_eq!(old.plan(ExtractType::Update).unwrap(), plan);
    }

    #[test]
    fn a_version_1_plan_leaves_the_search_for_replaced_rows_to_its_insert_batches() {
        let old = journaled(written_by_an_earlier_version(&a_busy_update(), true));
        assert_eq!(old.version, 1, "no version field is version 1");
        let plan = old.plan(ExtractType::Update).unwrap();
        for b in &plan.batches {
            match &b.step {
                Step::RetireListed { also_replaced, .. } => assert!(!also_replaced, "{b}"),
                Step::Insert { chunk, replace } => {
                    assert_eq!(*replace, Replace::Earlier, "{b}");
                    assert!(!chunk.any_order, "{b}: rows keep the file's order");
                }
                Step::RetireAll => panic!("an Update retires no table whole"),
            }
        }
        let full = plan_of_a_full();
        let old_full = journaled(written_by_an_earlier_version(&full, true));
        assert_eq!(
            old_full.plan(ExtractType::Full).unwrap().batches,
            full.batches
        );
    }

    fn plan_of_a_full() -> Plan {
        plan(ExtractType::Full, &[(Member::Full(Table::Branch), &[4, 4])])
    }

    #[test]
    fn a_plan_of_another_version_or_unreadable_is_refused_saying_what_to_do() {
        let mut json = serde_json::to_value(Journaled::from(&a_busy_update())).unwrap();
        for version in [0, PLAN_VERSION + 1] {
            json["version"] = version.into();
            let e = journaled(json.clone())
                .plan(ExtractType::Update)
                .unwrap_err();
            assert_eq!(e.code, ErrorCode::BadPlan);
            assert!(e.is_terminal());
            assert!(
                e.message.contains(&format!("version {version}")),
                "{}",
                e.message
            );
            assert!(
                e.message
                    .contains("register the version that started the import"),
                "{}",
                e.message
            );
        }
        json["version"] = PLAN_VERSION.into();
        json["batches"][0]["step"] = serde_json::json!({"kind": "shred"});
        let e = journaled(json).plan(ExtractType::Update).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadPlan, "{}", e.message);
        assert!(e.message.contains("does not read"), "{}", e.message);
    }
}
