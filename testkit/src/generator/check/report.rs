//! What the chain check reports: per table, the keys missing, extra and different after
//! applying the Update, and the generator's own inconsistencies.

use super::SAMPLES;
use std::collections::BTreeSet;
use std::fmt;

/// A count of keys with a few of them as samples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finding {
    /// How many keys.
    pub count: u64,
    /// The smallest few, as text.
    pub samples: BTreeSet<String>,
}

impl Finding {
    pub(super) fn add(&mut self, sample: String) {
        self.count += 1;
        self.samples.insert(sample);
        if self.samples.len() > SAMPLES {
            self.samples.pop_last();
        }
    }
}

/// What the check found for one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableReport {
    /// The table's file stem (`enterprise`, `establishment`, ...).
    pub table: &'static str,
    /// Keys in Full(N+1) = lines of Full(N+1) once the last of each key counts.
    pub expected: u64,
    /// Keys in Full(N+1) that Full(N) + Update(N+1) lacks.
    pub missing: Finding,
    /// Keys of Full(N) + Update(N+1) that Full(N+1) lacks.
    pub extra: Finding,
    /// Keys in both with other values.
    pub different: Finding,
    /// Keys that one Full or insert file gives twice with different lines (`file: key`).
    pub duplicates: Finding,
    /// Establishments given with two different `EnterpriseNumber`s in the chain.
    pub owners: Finding,
}

impl TableReport {
    /// Whether nothing was found.
    pub fn is_consistent(&self) -> bool {
        [
            &self.missing,
            &self.extra,
            &self.different,
            &self.duplicates,
            &self.owners,
        ]
        .iter()
        .all(|f| f.count == 0)
    }
}

/// What the check found for a chain: one report per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// In the order enterprise, establishment, branch, denomination, address, activity, contact.
    pub tables: Vec<TableReport>,
}

impl Report {
    /// Whether Full(N) + Update(N+1) = Full(N+1) and the generator gave no key two lines.
    pub fn is_consistent(&self) -> bool {
        self.tables.iter().all(TableReport::is_consistent)
    }

    /// The report of `table` (a file stem such as `address`).
    pub fn table(&self, table: &str) -> Option<&TableReport> {
        self.tables.iter().find(|t| t.table == table)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_consistent() {
            let counts: Vec<String> = self
                .tables
                .iter()
                .map(|t| format!("{} {}", t.table, t.expected))
                .collect();
            return write!(
                f,
                "chain consistent: Full(N) + Update(N+1) = Full(N+1) ({})",
                counts.join(", ")
            );
        }
        writeln!(f, "chain INCONSISTENT: Full(N) + Update(N+1) != Full(N+1)")?;
        for t in &self.tables {
            for (finding, what) in [
                (
                    &t.missing,
                    "keys of Full(N+1) missing from Full(N) + Update(N+1)",
                ),
                (&t.extra, "keys of Full(N) + Update(N+1) not in Full(N+1)"),
                (&t.different, "keys with other values than in Full(N+1)"),
                (
                    &t.duplicates,
                    "keys given twice with different lines in one file",
                ),
                (&t.owners, "establishments with two owners"),
            ] {
                if finding.count > 0 {
                    let samples: Vec<&str> = finding.samples.iter().map(String::as_str).collect();
                    writeln!(
                        f,
                        "  {}: {} {what}, e.g. {}",
                        t.table,
                        finding.count,
                        samples.join("; ")
                    )?;
                }
            }
        }
        Ok(())
    }
}
