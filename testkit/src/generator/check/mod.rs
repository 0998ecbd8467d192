//! An independent check of a generated chain: Full(N) + Update(N+1) = Full(N+1).
//!
//! It shares no code with the importer (no `kbo_import::extract` reading, no DuckDB) nor with
//! the generator's writing: it opens the three ZIP files with the `zip` crate, reads their CSV
//! members with its own small reader of the dialect in docs/format.md (quotes, `""` inside a
//! quoted value, unquoted values, empty and `""` both NULL, a byte-order mark, CRLF), and applies
//! the format's rules to an in-memory model, one table at a time: load Full(N) as a map key ->
//! line (the last line of a key counts), delete every line of every entity named in
//! `<table>_delete.csv`, insert every line of `<table>_insert.csv`, then compare with Full(N+1)
//! loaded the same way.
//!
//! The key of each table is the one of SCHEMA.md, except that denominations and contacts use
//! the full value (`Denomination`, `Value`) where SCHEMA.md's ids hold an md5 prefix of it: the
//! same identity, without the hash.
//!
//! Besides the differences it reports, as inconsistencies of the generator, any key that one
//! Full or insert file gives twice with different lines (identical repeated lines are fine: the
//! generator repeats lines on purpose) and any establishment whose `EnterpriseNumber` differs
//! between two lines anywhere in the chain (the generator never moves an establishment).
//!
//! Memory: a map of key -> (entity, hash of the line) for two versions of one table at a time,
//! keys held as 128-bit hashes (their text read again for the samples of a report): about
//! 750 MB at scale 0.1, some 7 GB at 1.0.

mod csv;
mod report;

use super::Chain;
use anyhow::Context;
use csv::each_record;
pub use report::{Finding, Report, TableReport};
use std::borrow::Cow;
use std::collections::hash_map::DefaultHasher;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use std::path::{Path, PathBuf};

/// How many sample keys a finding keeps (the smallest ones, so a report is deterministic).
pub(super) const SAMPLES: usize = 5;

/// A data table as the check sees it: its file, key and delete column (FORMAT.md, SCHEMA.md).
struct Spec {
    /// The file's stem: `enterprise` for `enterprise.csv`, `enterprise_delete.csv`, ...
    file: &'static str,
    /// The columns of the table's key.
    key: &'static [&'static str],
    /// The one column of `<file>_delete.csv`, matched against the same column of the lines.
    entity: &'static str,
}

const TABLES: [Spec; 7] = [
    Spec {
        file: "enterprise",
        key: &["EnterpriseNumber"],
        entity: "EnterpriseNumber",
    },
    Spec {
        file: "establishment",
        key: &["EstablishmentNumber"],
        entity: "EstablishmentNumber",
    },
    Spec {
        file: "branch",
        key: &["Id"],
        entity: "Id",
    },
    Spec {
        file: "denomination",
        key: &[
            "EntityNumber",
            "TypeOfDenomination",
            "Language",
            "Denomination",
        ],
        entity: "EntityNumber",
    },
    Spec {
        file: "address",
        key: &["EntityNumber", "TypeOfAddress"],
        entity: "EntityNumber",
    },
    Spec {
        file: "activity",
        key: &[
            "EntityNumber",
            "ActivityGroup",
            "NaceVersion",
            "NaceCode",
            "Classification",
        ],
        entity: "EntityNumber",
    },
    Spec {
        file: "contact",
        key: &["EntityNumber", "EntityContact", "ContactType", "Value"],
        entity: "EntityNumber",
    },
];

/// Finds the chain in `dir`: its one Update and the Full before and after it.
pub fn find_chain(dir: &Path) -> anyhow::Result<Chain> {
    let mut fulls: HashMap<u32, PathBuf> = HashMap::new();
    let mut updates: Vec<(u32, PathBuf)> = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read folder {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(number) = name
            .strip_prefix("KboOpenData_")
            .and_then(|rest| rest.get(..4))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if name.ends_with("_Full.zip") {
            fulls.insert(number, path);
        } else if name.ends_with("_Update.zip") {
            updates.push((number, path));
        }
    }
    let [(number, update)] = <[_; 1]>::try_from(updates).map_err(|found| {
        anyhow::anyhow!(
            "{} holds {} Update ZIP files: a chain has exactly one (KboOpenData_<N+1>_..._Update.zip)",
            dir.display(),
            found.len()
        )
    })?;
    let mut full = |n: u32| {
        fulls.remove(&n).with_context(|| {
            format!(
                "{} holds no Full ZIP file number {n:04} for Update {number:04}: generate the chain again",
                dir.display()
            )
        })
    };
    Ok(Chain {
        full: full(number - 1)?,
        next_full: full(number)?,
        update,
    })
}

/// Checks the chain in `dir` (see [`find_chain`] and [`check_chain`]).
pub fn check_dir(dir: &Path) -> anyhow::Result<Report> {
    check_chain(&find_chain(dir)?)
}

/// Checks that Full(N) + Update(N+1) = Full(N+1) and that the generator gave no key two
/// different lines nor an establishment two owners. Fails only when a file cannot be read.
pub fn check_chain(chain: &Chain) -> anyhow::Result<Report> {
    let mut owners = HashMap::new();
    let tables = TABLES
        .iter()
        .map(|spec| check_table(chain, spec, &mut owners))
        .collect::<anyhow::Result<_>>()?;
    Ok(Report { tables })
}

/// One line of a table: the entity a delete matches and a hash of all its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    entity: u64,
    values: u64,
}

/// Lines by key: the key as a 128-bit hash ([`key_id`]), its text read again for samples only.
type Lines = HashMap<u128, Row>;

/// The first owner seen of each establishment, and whether a second one was reported.
struct Owner {
    first: Box<str>,
    reported: bool,
}

type Owners = HashMap<Box<str>, Owner>;

fn check_table(chain: &Chain, spec: &Spec, owners: &mut Owners) -> anyhow::Result<TableReport> {
    let mut report = TableReport {
        table: spec.file,
        ..TableReport::default()
    };
    let file = format!("{}.csv", spec.file);
    let mut model = load(&chain.full, &file, spec, &mut report, owners)?;
    let mut deleted = HashSet::new();
    each_record(
        &chain.update,
        &format!("{}_delete.csv", spec.file),
        |header, record| {
            let column = column(header, spec.entity)?;
            deleted.insert(hash(&record[column]));
            Ok(())
        },
    )?;
    model.retain(|_, row| !deleted.contains(&row.entity));
    let insert = format!("{}_insert.csv", spec.file);
    model.extend(load(&chain.update, &insert, spec, &mut report, owners)?);
    let next = load(&chain.next_full, &file, spec, &mut report, owners)?;
    report.expected = next.len() as u64;
    let (mut extra, mut different, mut missing) = Default::default();
    for (key, row) in &model {
        match next.get(key) {
            None => sample(&mut extra, *key),
            Some(other) if other.values != row.values => sample(&mut different, *key),
            Some(_) => {}
        }
    }
    for key in next.keys().filter(|k| !model.contains_key(*k)) {
        sample(&mut missing, *key);
    }
    drop((model, next));
    let texts = key_texts(chain, spec, [&extra, &different, &missing])?;
    for (finding, hashed) in [
        (&mut report.extra, extra),
        (&mut report.different, different),
        (&mut report.missing, missing),
    ] {
        finding.count = hashed.0;
        finding.samples = hashed.1.iter().map(|k| texts[k].clone()).collect();
    }
    Ok(report)
}

/// A count of hashed keys and the smallest few hashes.
type Hashed = (u64, BTreeSet<u128>);

fn sample(finding: &mut Hashed, key: u128) {
    finding.0 += 1;
    finding.1.insert(key);
    if finding.1.len() > SAMPLES {
        finding.1.pop_last();
    }
}

/// The keys of the sampled hashes as text, from a second reading of the table's files.
fn key_texts(
    chain: &Chain,
    spec: &Spec,
    findings: [&Hashed; 3],
) -> anyhow::Result<HashMap<u128, String>> {
    let wanted: HashSet<u128> = findings.iter().flat_map(|f| f.1.iter().copied()).collect();
    let mut texts = HashMap::new();
    if wanted.is_empty() {
        return Ok(texts);
    }
    let file = format!("{}.csv", spec.file);
    let insert = format!("{}_insert.csv", spec.file);
    for (zip, file) in [
        (&chain.full, &file),
        (&chain.update, &insert),
        (&chain.next_full, &file),
    ] {
        each_record(zip, file, |header, record| {
            let columns = spec
                .key
                .iter()
                .map(|c| column(header, c))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let key = key_of(record, &columns);
            let id = key_id(&key);
            if wanted.contains(&id) {
                texts.insert(id, show(&key));
            }
            Ok(())
        })?;
    }
    Ok(texts)
}

/// Reads one data file into key -> row (the last line of a key counts), noting keys given
/// twice with different lines and establishments with two owners.
fn load(
    zip: &Path,
    file: &str,
    spec: &Spec,
    report: &mut TableReport,
    owners: &mut Owners,
) -> anyhow::Result<Lines> {
    let mut lines = Lines::new();
    let name = zip.file_name().and_then(|n| n.to_str()).unwrap_or("?");
    // The columns' positions: the key's, the entity's and the owner's (establishments).
    let mut columns: Option<(Vec<usize>, usize, Option<usize>)> = None;
    each_record(zip, file, |header, record| {
        let (key_columns, entity, owner) = match &columns {
            Some(found) => found,
            None => columns.insert((
                spec.key
                    .iter()
                    .map(|c| column(header, c))
                    .collect::<anyhow::Result<_>>()?,
                column(header, spec.entity)?,
                (spec.file == "establishment")
                    .then(|| column(header, "EnterpriseNumber"))
                    .transpose()?,
            )),
        };
        let key = key_of(record, key_columns);
        let row = Row {
            entity: hash(&record[*entity]),
            values: hash(record),
        };
        if let Some(owner) = owner {
            let owner = record[*owner].as_deref().unwrap_or("");
            note_owner(owners, &key, owner, name, report);
        }
        match lines.entry(key_id(&key)) {
            Entry::Occupied(mut old) => {
                if *old.get() != row {
                    report
                        .duplicates
                        .add(format!("{name} {file}: {}", show(&key)));
                }
                old.insert(row);
            }
            Entry::Vacant(new) => {
                new.insert(row);
            }
        }
        Ok(())
    })?;
    Ok(lines)
}

/// Notes that `zip` gives establishment `key` to `owner`; reports a second owner once.
fn note_owner(owners: &mut Owners, key: &str, owner: &str, zip: &str, report: &mut TableReport) {
    match owners.get_mut(key) {
        None => {
            owners.insert(
                key.into(),
                Owner {
                    first: owner.into(),
                    reported: false,
                },
            );
        }
        Some(known) if *known.first != *owner && !known.reported => {
            known.reported = true;
            report
                .owners
                .add(format!("{key} under {} and {owner} ({zip})", known.first));
        }
        Some(_) => {}
    }
}

fn column(header: &[String], name: &str) -> anyhow::Result<usize> {
    header
        .iter()
        .position(|h| h == name)
        .with_context(|| format!("no column {name} among {header:?}"))
}

fn hash(value: &(impl Hash + ?Sized)) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The key's values, joined by a separator no value holds.
fn key_of(record: &[Option<Cow<'_, str>>], columns: &[usize]) -> String {
    let mut key = String::new();
    for (k, c) in columns.iter().enumerate() {
        if k > 0 {
            key.push('\u{1f}');
        }
        key.push_str(record[*c].as_deref().unwrap_or(""));
    }
    key
}

/// A key's identity in memory: two independent 64-bit hashes of its text.
fn key_id(key: &str) -> u128 {
    (u128::from(hash(&(0u8, key))) << 64) | u128::from(hash(&(1u8, key)))
}

fn show(key: &str) -> String {
    key.replace('\u{1f}', " | ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Write;

    const HEADERS: [(&str, &str); 7] = [
        (
            "enterprise",
            "EnterpriseNumber,Status,JuridicalSituation,TypeOfEnterprise,JuridicalForm,JuridicalFormCAC,StartDate",
        ),
        (
            "establishment",
            "EstablishmentNumber,StartDate,EnterpriseNumber",
        ),
        ("branch", "Id,StartDate,EnterpriseNumber"),
        (
            "denomination",
            "EntityNumber,Language,TypeOfDenomination,Denomination",
        ),
        (
            "address",
            "EntityNumber,TypeOfAddress,CountryNL,CountryFR,Zipcode,MunicipalityNL,MunicipalityFR,StreetNL,StreetFR,HouseNumber,Box,ExtraAddressInfo,DateStrikingOff",
        ),
        (
            "activity",
            "EntityNumber,ActivityGroup,NaceVersion,NaceCode,Classification",
        ),
        ("contact", "EntityNumber,EntityContact,ContactType,Value"),
    ];

    fn write_zip(path: &Path, members: &[(String, String)]) {
        let mut zip = zip::ZipWriter::new(File::create(path).unwrap());
        for (name, text) in members {
            zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
    }

    /// The lines given for `file`, after its header (LF ends unless the lines say otherwise).
    fn member(file: &str, header: &str, lines: &[(&str, &str)]) -> (String, String) {
        let mut text = format!("{header}\n");
        for (_, line) in lines.iter().filter(|(f, _)| *f == file) {
            text.push_str(line);
            text.push('\n');
        }
        (format!("{file}.csv"), text)
    }

    fn full(path: &Path, lines: &[(&str, &str)]) {
        let members: Vec<_> = HEADERS
            .iter()
            .map(|(file, header)| member(file, header, lines))
            .collect();
        write_zip(path, &members);
    }

    fn update(path: &Path, deletes: &[(&str, &str)], inserts: &[(&str, &str)]) {
        let mut members = Vec::new();
        for ((file, header), spec) in HEADERS.iter().zip(&TABLES) {
            members.push(member(file, spec.entity, deletes));
            members.last_mut().unwrap().0 = format!("{file}_delete.csv");
            members.push(member(file, header, inserts));
            members.last_mut().unwrap().0 = format!("{file}_insert.csv");
        }
        write_zip(path, &members);
    }

    fn names(dir: &Path) -> [PathBuf; 3] {
        [
            dir.join("KboOpenData_0140_2025_10_Full.zip"),
            dir.join("KboOpenData_0141_2025_10_05_Update.zip"),
            dir.join("KboOpenData_0141_2025_10_05_Full.zip"),
        ]
    }

    fn finding(count: u64, samples: &[&str]) -> Finding {
        Finding {
            count,
            samples: samples.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_consistent_chain_passes_whatever_the_dialect() {
        let dir = tempfile::tempdir().unwrap();
        let [n, u, next] = names(dir.path());
        let a = r#""0200.000.097","AC","000","2","014",,01-01-2000"#;
        let b = r#""0200.000.196","AC","000","2",,"",01-01-2001"#;
        let name_a = r#""0200.000.097","2","001","Bakkerij ""De Zon"", Gent""#;
        full(
            &n,
            &[
                ("enterprise", a),
                ("enterprise", b),
                // Repeated, NULL written the other way: the same line.
                (
                    "enterprise",
                    r#""0200.000.196","AC","000","2","",,01-01-2001"#,
                ),
                (
                    "enterprise",
                    r#""0200.000.295","AC","000","1",,,01-01-2002"#,
                ),
                ("denomination", name_a),
                ("denomination", r#""0200.000.196","1","001","Ancien nom""#),
            ],
        );
        update(
            &u,
            &[
                ("enterprise", r#""0200.000.295""#),
                ("enterprise", r#""1900.000.018""#),
                ("denomination", r#""0200.000.196""#),
            ],
            &[("denomination", r#""0200.000.196","1","001","Nouveau nom""#)],
        );
        full(
            &next,
            &[
                ("enterprise", a),
                ("enterprise", b),
                ("denomination", name_a),
                ("denomination", r#""0200.000.196","1","001","Nouveau nom""#),
            ],
        );
        let report = check_dir(dir.path()).unwrap();
        assert!(report.is_consistent(), "{report}");
        assert_eq!(report.table("enterprise").unwrap().expected, 2);
        assert_eq!(report.table("denomination").unwrap().expected, 2);
        assert!(report.to_string().starts_with("chain consistent"));
    }

    /// The generator's old fault in small: a second owner's establishment under a number
    /// another enterprise already uses; and a missing, an extra and a different key.
    fn write_inconsistent_chain(dir: &Path) {
        let [n, u, next] = names(dir);
        let ent = |number: &str, situation: &str| {
            format!(r#""{number}","AC","{situation}","2","014",,01-01-2000"#)
        };
        let est = |number: &str, owner: &str| format!(r#""{number}",01-01-2010,"{owner}""#);
        let office = |number: &str, house: &str| {
            format!(
                r#""{number}","REGO",,,"1000","Brussel","Bruxelles","Wetstraat","Rue de la Loi","{house}",,,"#
            )
        };
        let (a, b, d) = ("0200.000.097", "0200.000.196", "0200.000.394");
        let (e1, e2) = ("2.000.000.089", "2.000.000.188");
        full(
            &n,
            &[
                ("enterprise", &ent(a, "000")),
                ("enterprise", &ent(b, "000")),
                ("enterprise", &ent(d, "000")),
                ("establishment", &est(e1, a)),
                ("address", &office(a, "1")),
            ],
        );
        update(
            &u,
            &[
                ("enterprise", &format!("\"{b}\"")),
                ("address", &format!("\"{a}\"")),
            ],
            &[
                ("enterprise", &ent(b, "012")),
                ("establishment", &est(e2, a)),
                ("address", &office(a, "2")),
            ],
        );
        full(
            &next,
            &[
                ("enterprise", &ent(a, "000")),
                ("enterprise", &ent(b, "000")),
                ("establishment", &est(e1, a)),
                ("establishment", &est(e2, a)),
                ("establishment", &est(e2, b)),
                ("address", &office(a, "2")),
                ("address", &office("0200.000.295", "1")),
            ],
        );
    }

    #[test]
    fn an_inconsistent_chain_is_reported_table_by_table() {
        let dir = tempfile::tempdir().unwrap();
        write_inconsistent_chain(dir.path());
        let report = check_dir(dir.path()).unwrap();
        assert!(!report.is_consistent());
        let enterprise = report.table("enterprise").unwrap();
        assert_eq!(enterprise.different, finding(1, &["0200.000.196"]));
        assert_eq!(enterprise.extra, finding(1, &["0200.000.394"]));
        assert_eq!(enterprise.missing, Finding::default());
        let establishment = report.table("establishment").unwrap();
        assert_eq!(establishment.different, finding(1, &["2.000.000.188"]));
        assert_eq!(
            establishment.duplicates,
            finding(
                1,
                &["KboOpenData_0141_2025_10_05_Full.zip establishment.csv: 2.000.000.188"]
            )
        );
        assert_eq!(
            establishment.owners,
            finding(
                1,
                &[
                    "2.000.000.188 under 0200.000.097 and 0200.000.196 (KboOpenData_0141_2025_10_05_Full.zip)"
                ]
            )
        );
        assert_eq!(
            (establishment.missing.count, establishment.extra.count),
            (0, 0)
        );
        let address = report.table("address").unwrap();
        assert_eq!(address.missing, finding(1, &["0200.000.295 | REGO"]));
        assert_eq!(
            (
                address.extra.count,
                address.different.count,
                address.duplicates.count
            ),
            (0, 0, 0)
        );
        for table in ["branch", "denomination", "activity", "contact"] {
            assert!(report.table(table).unwrap().is_consistent(), "{table}");
        }
        let text = report.to_string();
        assert!(
            text.contains("  establishment: 1 establishments with two owners, e.g. 2.000.000.188"),
            "{text}"
        );
    }

    #[test]
    fn a_folder_without_a_whole_chain_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let [n, u, _] = names(dir.path());
        full(&n, &[]);
        let none = find_chain(dir.path()).unwrap_err().to_string();
        assert!(none.contains("holds 0 Update ZIP files"), "{none}");
        update(&u, &[], &[]);
        let missing = find_chain(dir.path()).unwrap_err().to_string();
        assert!(
            missing.contains("no Full ZIP file number 0141"),
            "{missing}"
        );
    }
}
