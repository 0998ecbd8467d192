//! Realistic synthetic KBO extracts: a chain Full(N), Update(N+1), Full(N+1) as real ZIP files
//! in the exact dialect of docs/format.md, deterministic for a seed, sized by a scale factor
//! (1.0 = the row counts of a real extract, ~47 M rows), streamed to disk.
//!
//! The dialect is exercised on purpose: values quoted but dates not, NULL written both as
//! nothing and as `""`, names with commas, quotes, apostrophes, accents and SQL fragments,
//! CRLF line ends and a byte-order mark in `code.csv` and `meta.csv`, repeated lines in Full
//! and insert files, deletes of entities the register does not hold.

pub mod check;
mod data;
mod draw;
pub mod model;

use kbo_import::extract::date::{Date, Timestamp};
use kbo_import::extract::dialect::push_quoted;
use kbo_import::extract::file_name::ExtractFileName;
use kbo_import::extract::{ExtractType, Member, Meta, Table};
use model::{Change, Line, Model, Rng, Value, nace_code, table_index, unknown_enterprise_number};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use zip::write::SimpleFileOptions;

/// Enterprises in a real Full extract (docs/format.md, October 2025).
pub const REAL_ENTERPRISES: u64 = 1_938_239;

/// The largest scale whose establishment numbers keep the shape `2.ddd.ddd.ddd` (about 1.03).
pub const MAX_SCALE: f64 = model::MAX_ENTERPRISES as f64 / REAL_ENTERPRISES as f64;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// 1.0 = a real extract's row counts; 0.001 = about 47 000 rows.
    pub scale: f64,
    /// Seed of every random choice: the same options give the same bytes.
    pub seed: u64,
    /// N: the number of the first Full; the Update and the second Full are N+1.
    pub extract_number: u32,
    /// SnapshotDate of Full(N); N+1 is the next day.
    pub snapshot: Date,
    /// Share of enterprises that change between N and N+1 (a real day: about 0.001).
    pub change_rate: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scale: 0.001,
            seed: 42,
            extract_number: 140,
            snapshot: Date::new(2025, 10, 4).expect("a valid date"),
            change_rate: 0.02,
        }
    }
}

impl Options {
    /// Fails for a scale whose establishment numbers would leave the shape `2.ddd.ddd.ddd`.
    fn room(&self) -> io::Result<()> {
        if self.scale <= MAX_SCALE {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "scale {} is above {MAX_SCALE:.3}: the generator's establishment numbers have \
                 room for {} enterprises; generate at a lower scale",
                self.scale,
                model::MAX_ENTERPRISES
            ),
        ))
    }

    fn model(&self) -> Model {
        Model {
            seed: self.seed,
            enterprises: ((REAL_ENTERPRISES as f64 * self.scale).round() as u64).max(1),
            change_rate: self.change_rate,
        }
    }

    fn meta(&self, version: u8, kind: ExtractType) -> Meta {
        let snapshot = if version == 0 {
            self.snapshot
        } else {
            self.snapshot.next_day()
        };
        Meta {
            snapshot_date: snapshot,
            extract_timestamp: Timestamp {
                date: snapshot.next_day(),
                hour: 7,
                minute: 31,
                second: 2,
            },
            extract_type: kind,
            extract_number: self.extract_number + u32::from(version),
            version: "1.0.0".into(),
        }
    }
}

/// The three ZIP files of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Full(N).
    pub full: PathBuf,
    /// Update(N+1).
    pub update: PathBuf,
    /// Full(N+1).
    pub next_full: PathBuf,
}

/// Writes Full(N), Update(N+1) and Full(N+1) into `dir`.
pub fn chain(dir: &Path, options: &Options) -> io::Result<Chain> {
    Ok(Chain {
        full: full(dir, options, 0)?,
        update: update(dir, options)?,
        next_full: full(dir, options, 1)?,
    })
}

/// Writes Full(N) (`version` 0) or Full(N+1) (`version` 1) into `dir`.
pub fn full(dir: &Path, options: &Options, version: u8) -> io::Result<PathBuf> {
    options.room()?;
    let meta = options.meta(version, ExtractType::Full);
    let model = options.model();
    let zip = ExtractWriter::new(dir, &meta, version == 1)?;
    let mut files = zip.table_files(Member::Full)?;
    for i in 0..model.enterprises {
        let rec = model.record(i, version);
        let mut rng = Rng::new(options.seed, i, 9 + u64::from(version));
        for (t, file) in Table::ALL.iter().zip(files.iter_mut()) {
            for line in rec.table(*t) {
                file.line(&line.values)?;
                // Real extracts now and then repeat a line.
                if rng.chance(0.0005) {
                    file.line(&line.values)?;
                }
            }
        }
    }
    zip.finish(&meta, version, files)
}

/// Writes Update(N+1) into `dir`: for every entity whose lines differ between N and N+1, a
/// delete of the entity and all its lines at N+1, per table.
pub fn update(dir: &Path, options: &Options) -> io::Result<PathBuf> {
    options.room()?;
    let meta = options.meta(1, ExtractType::Update);
    let model = options.model();
    let zip = ExtractWriter::new(dir, &meta, true)?;
    let mut deletes = zip.table_files(Member::Delete)?;
    let mut inserts = zip.table_files(Member::Insert)?;
    let mut changed = 0u64;
    for i in 0..model.enterprises {
        if model.change(i) == Change::None {
            continue;
        }
        changed += 1;
        let (before, after) = (model.record(i, 0), model.record(i, 1));
        for t in Table::ALL {
            let (del, ins) = (&mut deletes[table_index(t)], &mut inserts[table_index(t)]);
            for entity in entities(before.table(t), after.table(t)) {
                let old: Vec<&Line> = before
                    .table(t)
                    .iter()
                    .filter(|l| l.entity == entity)
                    .collect();
                let new: Vec<&Line> = after
                    .table(t)
                    .iter()
                    .filter(|l| l.entity == entity)
                    .collect();
                if old == new {
                    continue;
                }
                if !old.is_empty() {
                    del.line(&[Value::Text(entity.clone())])?;
                }
                for (k, line) in new.iter().enumerate() {
                    ins.line(&line.values)?;
                    // An insert file may repeat a line.
                    if k == 0 && changed.is_multiple_of(7) {
                        ins.line(&line.values)?;
                    }
                }
            }
        }
    }
    // A delete may name an entity the register does not hold.
    for k in 0..3 {
        for t in [Table::Enterprise, Table::Denomination, Table::Activity] {
            deletes[table_index(t)].line(&[Value::Text(unknown_enterprise_number(k))])?;
        }
    }
    let mut files = deletes;
    files.extend(inserts);
    zip.finish(&meta, 1, files)
}

/// The entities of a table's lines before and after, each once, in order of appearance.
fn entities(before: &[Line], after: &[Line]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in before.iter().chain(after) {
        if !out.contains(&line.entity) {
            out.push(line.entity.clone());
        }
    }
    out
}

/// A CSV member being written to a scratch file.
struct CsvFile {
    member: Member,
    path: PathBuf,
    out: BufWriter<File>,
    crlf: bool,
    nulls: u64,
    buf: String,
}

impl CsvFile {
    fn create(dir: &Path, member: Member, crlf: bool) -> io::Result<CsvFile> {
        let path = dir.join(member.file_name());
        let out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        let mut file = CsvFile {
            member,
            path,
            out,
            crlf,
            nulls: 0,
            buf: String::new(),
        };
        if member == Member::Code {
            file.out
                .write_all(kbo_import::extract::dialect::BOM.as_bytes())?;
        }
        let header: Vec<Value> = member
            .columns()
            .iter()
            .map(|c| Value::Text((*c).to_string()))
            .collect();
        file.line(&header)?;
        Ok(file)
    }

    fn line(&mut self, values: &[Value]) -> io::Result<()> {
        self.buf.clear();
        for (k, value) in values.iter().enumerate() {
            if k > 0 {
                self.buf.push(',');
            }
            match value {
                Value::Text(s) => push_quoted(&mut self.buf, s),
                Value::Date(d) => self.buf.push_str(&d.kbo()),
                Value::Null => {
                    // Real extracts write NULL both ways.
                    self.nulls += 1;
                    if self.nulls.is_multiple_of(3) {
                        self.buf.push_str("\"\"");
                    }
                }
            }
        }
        self.buf.push_str(if self.crlf { "\r\n" } else { "\n" });
        self.out.write_all(self.buf.as_bytes())
    }
}

/// Writes members to scratch files, then packs them into the ZIP.
struct ExtractWriter {
    scratch: PathBuf,
    target: PathBuf,
}

impl ExtractWriter {
    fn new(dir: &Path, meta: &Meta, with_day: bool) -> io::Result<ExtractWriter> {
        let name = ExtractFileName {
            extract_number: meta.extract_number,
            year: meta.snapshot_date.year,
            month: meta.snapshot_date.month,
            day: (with_day || meta.extract_type == ExtractType::Update)
                .then_some(meta.snapshot_date.day),
            kind: meta.extract_type,
        };
        let scratch = dir.join(format!(".scratch-{}", name.workflow_id()));
        std::fs::create_dir_all(&scratch)?;
        Ok(ExtractWriter {
            scratch,
            target: dir.join(name.to_string()),
        })
    }

    fn table_files(&self, member: fn(Table) -> Member) -> io::Result<Vec<CsvFile>> {
        Table::ALL
            .iter()
            .map(|t| CsvFile::create(&self.scratch, member(*t), false))
            .collect()
    }

    fn finish(self, meta: &Meta, version: u8, files: Vec<CsvFile>) -> io::Result<PathBuf> {
        let mut code = CsvFile::create(&self.scratch, Member::Code, true)?;
        write_codes(&mut code, version)?;
        let mut members = vec![code];
        members.extend(files);
        let part = self.target.with_extension("zip.part");
        let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 20, File::create(&part)?));
        let deflate = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        zip.start_file("meta.csv", deflate)?;
        zip.write_all(format!("\u{feff}{}", meta.to_csv()).as_bytes())?;
        for mut member in members {
            member.out.flush()?;
            drop(member.out);
            zip.start_file(member.member.file_name(), deflate)?;
            io::copy(&mut File::open(&member.path)?, &mut zip)?;
            std::fs::remove_file(&member.path)?;
        }
        zip.finish()?.flush()?;
        std::fs::rename(&part, &self.target)?;
        std::fs::remove_dir_all(&self.scratch)?;
        Ok(self.target)
    }
}

/// `code.csv`: the complete code list (about 21 500 lines, whatever the scale); version 1
/// changes one description, so that an Update's code list visibly replaces the old one.
fn write_codes(file: &mut CsvFile, version: u8) -> io::Result<()> {
    let languages = ["NL", "FR", "DE", "EN"];
    let text = |s: String| Value::Text(s);
    for (category, codes) in data::CODES {
        for (code, nl) in *codes {
            for language in languages {
                let mut description = match language {
                    "NL" => nl.to_string(),
                    "FR" => format!("{nl} (FR: libellé « {code} »)"),
                    "DE" => format!("{nl} (DE: Bezeichnung „{code}“)"),
                    _ => format!("{nl} (EN: \"{code}\", description)"),
                };
                if version == 1
                    && *category == "JuridicalForm"
                    && *code == "014"
                    && language == "NL"
                {
                    description.push_str(" (NV)");
                }
                file.line(&[
                    text(category.to_string()),
                    text(code.to_string()),
                    text(language.into()),
                    text(description),
                ])?;
            }
        }
    }
    for category in ["Nace2003", "Nace2008", "Nace2025"] {
        for k in 0..model::NACE_CODES {
            let code = nace_code(k);
            for language in languages {
                let description = match language {
                    "NL" => format!("Vervaardiging van artikel {code}, n.e.g."),
                    "FR" => format!("Fabrication de l'article {code}, n.c.a."),
                    "DE" => format!("Herstellung von Artikel {code}, a.n.g."),
                    _ => format!("Manufacture of \"article {code}\", n.e.c."),
                };
                file.line(&[
                    text(category.into()),
                    text(code.clone()),
                    text(language.into()),
                    text(description),
                ])?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbo_import::extract::{Cut, Limits, archive};

    #[test]
    fn a_generated_chain_unpacks_and_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            scale: 0.0002,
            ..Options::default()
        };
        let chain = chain(dir.path(), &options).unwrap();
        assert!(
            chain.full.ends_with("KboOpenData_0140_2025_10_Full.zip"),
            "{}",
            chain.full.display()
        );
        assert!(
            chain
                .update
                .ends_with("KboOpenData_0141_2025_10_05_Update.zip")
        );
        assert!(
            chain
                .next_full
                .ends_with("KboOpenData_0141_2025_10_05_Full.zip")
        );
        let update = archive::unpack(
            &chain.update,
            &dir.path().join("u"),
            &Limits::default(),
            Cut::Whole,
        )
        .unwrap();
        assert_eq!(update.meta.extract_type, ExtractType::Update);
        assert_eq!(update.meta.extract_number, 141);
        let inserts = std::fs::read_to_string(update.dir.join("denomination_insert.csv")).unwrap();
        assert!(
            inserts.lines().count() > 1,
            "an update at 2% changes renames something"
        );
        let full = archive::unpack(
            &chain.full,
            &dir.path().join("f"),
            &Limits::default(),
            Cut::Whole,
        )
        .unwrap();
        let enterprises = std::fs::read_to_string(full.dir.join("enterprise.csv")).unwrap();
        assert!(
            enterprises
                .lines()
                .nth(1)
                .unwrap()
                .ends_with(|c: char| c.is_ascii_digit()),
            "dates are unquoted"
        );
        // As written in the ZIP (unpacking turns line ends into LF).
        use std::io::Read;
        let mut codes = Vec::new();
        zip::ZipArchive::new(File::open(&chain.full).unwrap())
            .unwrap()
            .by_name("code.csv")
            .unwrap()
            .read_to_end(&mut codes)
            .unwrap();
        assert!(codes.starts_with(b"\xef\xbb\xbf") && codes.windows(2).any(|w| w == b"\r\n"));

        let again = tempfile::tempdir().unwrap();
        let second = full_bytes(&super::full(again.path(), &options, 0).unwrap());
        assert_eq!(full_bytes(&chain.full), second, "same options, same bytes");
    }

    #[test]
    fn a_scale_without_room_for_the_establishment_numbers_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            scale: 1.04,
            ..Options::default()
        };
        let error = full(dir.path(), &options, 0).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("above 1.032"), "{error}");
        assert!(update(dir.path(), &options).is_err());
        assert!((1.0..1.04).contains(&MAX_SCALE));
    }

    fn full_bytes(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }
}
