//! Opening an extract ZIP: member names, size limits, streaming unpack, header and meta checks.

pub use super::chunker::Chunk;
use super::chunker::{ChunkWriter, Cut};
use super::dialect::split_line;
use super::meta::{ExtractType, Meta, MetaError};
use super::tables::{Member, Table};
use crate::error::ErrorCode;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use thiserror::Error;

/// Bounds that protect the service from hostile archives (zip bombs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest uncompressed size of one member, in bytes.
    pub max_member_bytes: u64,
    /// Largest uncompressed size of all members together, in bytes.
    pub max_total_bytes: u64,
    /// Largest ratio of uncompressed to compressed size of a member larger than 1 MiB.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_member_bytes: 8 << 30,
            max_total_bytes: 32 << 30,
            max_ratio: 200,
        }
    }
}

/// An extract unpacked to disk and checked: its meta data and every member, data members cut
/// as `cut` says.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// The folder the files are in.
    pub dir: PathBuf,
    /// The content of `meta.csv`.
    pub meta: Meta,
    /// Every known member: one chunk for `meta.csv` and `code.csv`, none for an empty file.
    pub files: BTreeMap<Member, Vec<Chunk>>,
}

impl Unpacked {
    /// The chunks of a member the extract must hold (checked by [`unpack`]).
    pub fn chunks(&self, member: Member) -> &[Chunk] {
        &self.files[&member]
    }

    /// The path of `meta.csv` or `code.csv` (kept whole).
    pub fn path(&self, member: Member) -> PathBuf {
        self.dir.join(member.file_name())
    }
}

/// Why an archive was refused. All but [`ArchiveError::Write`] are faults of the input.
#[derive(Debug, Error)]
pub enum ArchiveError {
    /// The file is not a readable ZIP archive (or is truncated).
    #[error(
        "the extract is not a valid ZIP archive ({0}); check that the URL serves a KBO Open Data ZIP file and that the download is complete"
    )]
    NotZip(String),
    /// A member could not be decompressed (corrupt data, bad checksum, truncated).
    #[error("ZIP member {member} is corrupt: {reason}")]
    Corrupt {
        /// The member's name in the archive.
        member: String,
        /// What the decompressor said.
        reason: String,
    },
    /// A member name could escape the work directory.
    #[error("ZIP member name {0:?} is unsafe (absolute path or '..'); the extract is refused")]
    UnsafeName(String),
    /// Two members have the same file name.
    #[error("ZIP holds {0} twice")]
    Duplicate(String),
    /// A member or the whole archive exceeds the configured bounds.
    #[error(
        "ZIP member {member} is refused: {reason} (a zip bomb or not a KBO extract; the bounds are KBO_MAX_MEMBER_BYTES, KBO_MAX_TOTAL_BYTES and KBO_MAX_COMPRESSION_RATIO)"
    )]
    TooLarge {
        /// The member's name in the archive.
        member: String,
        /// Which bound it exceeds.
        reason: String,
    },
    /// A file the extract's kind requires is absent.
    #[error("the extract has no {member} (meta.csv says ExtractType {kind}, which requires it)")]
    Missing {
        /// The missing member.
        member: Member,
        /// The kind of extract.
        kind: ExtractType,
    },
    /// `meta.csv` is absent.
    #[error("the extract has no meta.csv; every KBO extract starts with one")]
    NoMeta,
    /// `meta.csv` is unusable.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// A member's first line is not the header docs/format.md gives.
    #[error("{member}: the header is {found:?} but a KBO extract has {expected:?}")]
    Header {
        /// The member.
        member: Member,
        /// The header as found.
        found: String,
        /// The header it must have.
        expected: String,
    },
    /// A member is not UTF-8 text where the service reads it itself.
    #[error("{member}: {reason}")]
    Text {
        /// The member.
        member: Member,
        /// What is wrong.
        reason: String,
    },
    /// Writing the unpacked file failed (disk full, permissions): worth retrying.
    #[error("could not write {path}: {source}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ArchiveError {
    /// What went wrong, as the import's error code says it; only a failed write (local I/O)
    /// may succeed when tried again.
    pub fn code(&self) -> ErrorCode {
        match self {
            ArchiveError::NotZip(_) => ErrorCode::NotZip,
            ArchiveError::Corrupt { .. }
            | ArchiveError::UnsafeName(_)
            | ArchiveError::Duplicate(_)
            | ArchiveError::TooLarge { .. } => ErrorCode::BadArchive,
            ArchiveError::Missing { .. } => ErrorCode::MissingFile,
            ArchiveError::NoMeta | ArchiveError::Meta(_) => ErrorCode::BadMeta,
            ArchiveError::Header { .. } => ErrorCode::BadHeader,
            ArchiveError::Text { .. } => ErrorCode::BadLine,
            ArchiveError::Write { .. } => ErrorCode::LocalIo,
        }
    }
}

/// How many ignored ZIP members are named one by one in the log; the rest are counted.
const NAMED_IGNORED: u64 = 10;

/// Unpacks the known members of `zip_path` into `dest` (streaming, never the whole archive in
/// memory), then checks `meta.csv`, the set of members its kind requires, and every header.
pub fn unpack(
    zip_path: &Path,
    dest: &Path,
    limits: &Limits,
    cut: Cut,
) -> Result<Unpacked, ArchiveError> {
    let file = File::open(zip_path).map_err(|e| ArchiveError::NotZip(e.to_string()))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
    std::fs::create_dir_all(dest).map_err(|source| ArchiveError::Write {
        path: dest.to_path_buf(),
        source,
    })?;

    let mut files = BTreeMap::new();
    let mut headers = BTreeMap::new();
    let mut total: u64 = 0;
    let mut ignored: u64 = 0;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| ArchiveError::Corrupt {
            member: format!("#{index}"),
            reason: e.to_string(),
        })?;
        let raw_name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let base = safe_base_name(&raw_name)?;
        if entry.is_dir() {
            continue;
        }
        let Some(member) = Member::from_file_name(&base) else {
            ignored += 1;
            if ignored <= NAMED_IGNORED {
                let member = crate::redact::capped(&raw_name, 200);
                tracing::warn!(%member, "ignoring a ZIP member that is not part of the KBO format");
            }
            continue;
        };
        if files.contains_key(&member) {
            return Err(ArchiveError::Duplicate(base));
        }
        let budget = limits
            .max_member_bytes
            .min(limits.max_total_bytes.saturating_sub(total));
        let cut = MemberCut {
            dest,
            member,
            name: &raw_name,
            limits,
            budget,
            cut,
        };
        let (declared, compressed) = (entry.size(), entry.compressed_size());
        let (copied, header, chunks) = cut.run(declared, compressed, &mut entry)?;
        total += copied;
        headers.insert(member, header);
        files.insert(member, chunks);
    }

    if ignored > NAMED_IGNORED {
        tracing::warn!(
            ignored,
            "ignored {ignored} ZIP members that are not part of the KBO format (the first {NAMED_IGNORED} are named above)"
        );
    }
    let meta = check_members(dest, &files, &headers)?;
    // Every file was renamed into place: the folder's entries go to the disk too.
    super::sealed::sync_dir(dest).map_err(|source| ArchiveError::Write {
        path: dest.to_path_buf(),
        source,
    })?;
    Ok(Unpacked {
        dir: dest.to_path_buf(),
        meta,
        files,
    })
}

/// Reads `meta.csv` and checks that every member its kind requires is there, each with its
/// header.
fn check_members(
    dest: &Path,
    files: &BTreeMap<Member, Vec<Chunk>>,
    headers: &BTreeMap<Member, Vec<u8>>,
) -> Result<Meta, ArchiveError> {
    if !files.contains_key(&Member::Meta) {
        return Err(ArchiveError::NoMeta);
    }
    let meta_text = read_small_text(&dest.join(Member::Meta.file_name()), Member::Meta)?;
    let meta = Meta::parse(&meta_text)?;
    for member in required_members(meta.extract_type) {
        if !files.contains_key(&member) {
            return Err(ArchiveError::Missing {
                member,
                kind: meta.extract_type,
            });
        }
    }
    for (member, header) in headers {
        check_header(*member, header)?;
    }
    Ok(meta)
}

/// One member of the archive, to be checked against the bounds and cut into chunk files.
struct MemberCut<'a> {
    dest: &'a Path,
    member: Member,
    /// Its name in the archive.
    name: &'a str,
    limits: &'a Limits,
    /// The bytes it may expand to: the member bound, or what the total bound leaves.
    budget: u64,
    /// How its data members are cut (meta.csv and code.csv are written whole).
    cut: Cut,
}

impl MemberCut<'_> {
    /// Cuts `entry`, which declares `declared` bytes compressed to `compressed`; returns the
    /// bytes it expanded to, its header line and its chunks.
    fn run(
        &self,
        declared: u64,
        compressed: u64,
        entry: &mut (impl Read + Send),
    ) -> Result<(u64, Vec<u8>, Vec<Chunk>), ArchiveError> {
        let too_large = |reason: String| ArchiveError::TooLarge {
            member: self.name.to_string(),
            reason,
        };
        if declared > self.limits.max_member_bytes {
            return Err(too_large(format!(
                "it declares {declared} bytes, more than the bound of {}",
                self.limits.max_member_bytes
            )));
        }
        let compressed = compressed.max(1);
        if declared > (1 << 20) && declared / compressed > self.limits.max_ratio {
            return Err(too_large(format!(
                "it expands {}-fold, more than the bound of {}",
                declared / compressed,
                self.limits.max_ratio
            )));
        }
        let cut = match self.member {
            Member::Meta | Member::Code => Cut::Whole,
            _ => self.cut,
        };
        let mut out = ChunkWriter::new(self.dest, self.member, cut);
        let copied = copy_bounded(entry, &mut out, self.budget).map_err(|e| match e {
            CopyError::Read(e) => ArchiveError::Corrupt {
                member: self.name.to_string(),
                reason: e.to_string(),
            },
            CopyError::Write(source) => ArchiveError::Write {
                path: out.current_path(),
                source,
            },
        })?;
        if copied > self.budget {
            return Err(too_large(format!(
                "it expands beyond {} bytes, past the member or total bound",
                self.budget
            )));
        }
        let (header, chunks) = out.finish().map_err(|e| ArchiveError::Write {
            path: self.dest.to_path_buf(),
            source: e,
        })?;
        Ok((copied, header, chunks))
    }
}

/// The members an extract of `kind` must hold.
pub fn required_members(kind: ExtractType) -> Vec<Member> {
    let mut members = vec![Member::Meta, Member::Code];
    for table in Table::ALL {
        match kind {
            ExtractType::Full => members.push(Member::Full(table)),
            ExtractType::Update => members.extend([Member::Delete(table), Member::Insert(table)]),
        }
    }
    members
}

/// The last path component of a member name, refusing names that could escape a directory.
fn safe_base_name(name: &str) -> Result<String, ArchiveError> {
    let normalized = name.replace('\\', "/");
    let path = Path::new(&normalized);
    let unsafe_name = normalized.starts_with('/')
        || path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        || normalized.contains(':');
    if unsafe_name {
        return Err(ArchiveError::UnsafeName(name.to_string()));
    }
    Ok(path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default())
}

enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// The size of the pieces a member is read in.
const PIECE: usize = 256 * 1024;

/// Copies at most `budget + 1` bytes, so that the caller can tell an overflow from a fit.
///
/// Reading (inflating the member) runs on a thread of its own while `to` takes the pieces
/// read before: unpacking a Full is two halves of similar cost, inflating and cutting, which
/// then overlap on two cores. A few pieces are in flight at most (bounded memory).
fn copy_bounded(
    from: &mut (impl Read + Send),
    to: &mut impl Write,
    budget: u64,
) -> Result<u64, CopyError> {
    // A piece travels with the length read into it; spent pieces go back to the reader.
    let (full, pieces) = std::sync::mpsc::sync_channel::<std::io::Result<(Vec<u8>, usize)>>(4);
    let (spent, empties) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        // Reads until the end, a failure, or the writer stops (past the budget, or failed).
        scope.spawn(move || {
            loop {
                let mut piece = empties.try_recv().unwrap_or_else(|_| vec![0; PIECE]);
                let read = match from.read(&mut piece) {
                    Ok(0) => return,
                    Ok(n) => Ok((piece, n)),
                    Err(e) => Err(e),
                };
                let failed = read.is_err();
                if full.send(read).is_err() || failed {
                    return;
                }
            }
        });
        let mut copied: u64 = 0;
        for piece in pieces {
            let (piece, n) = piece.map_err(CopyError::Read)?;
            copied += n as u64;
            if copied > budget {
                return Ok(copied);
            }
            to.write_all(&piece[..n]).map_err(CopyError::Write)?;
            let _ = spent.send(piece);
        }
        Ok(copied)
    })
}

fn read_small_text(path: &Path, member: Member) -> Result<String, ArchiveError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(1 << 20).read_to_end(&mut bytes))
        .map_err(|source| ArchiveError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    String::from_utf8(bytes).map_err(|e| ArchiveError::Text {
        member,
        reason: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Checks that the member's first line is exactly the header docs/format.md gives.
fn check_header(member: Member, header: &[u8]) -> Result<(), ArchiveError> {
    let text = std::str::from_utf8(header).map_err(|_| ArchiveError::Text {
        member,
        reason: "the header line is not UTF-8 text".into(),
    })?;
    let text = text.trim_end_matches(['\r', '\n']);
    let expected = member.columns();
    let matches = split_line(text)
        .map(|values| {
            values.len() == expected.len()
                && values
                    .iter()
                    .zip(expected)
                    .all(|(v, e)| v.as_deref() == Some(*e))
        })
        .unwrap_or(false);
    if matches {
        Ok(())
    } else {
        Err(ArchiveError::Header {
            member,
            found: text.trim_start_matches('\u{feff}').to_string(),
            expected: expected.join(","),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn zip_with(members: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut zip = zip::ZipWriter::new(File::create(file.path()).unwrap());
        for (name, content) in members {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(content).unwrap();
        }
        zip.finish().unwrap();
        file
    }

    fn meta(kind: &str) -> String {
        format!(
            "\"Variable\",\"Value\"\n\"SnapshotDate\",\"04-10-2025\"\n\"ExtractTimestamp\",\"05-10-2025 07:31:02\"\n\"ExtractType\",\"{kind}\"\n\"ExtractNumber\",\"140\"\n\"Version\",\"1.0.0\"\n"
        )
    }

    fn full_members(meta_text: &str) -> Vec<(String, Vec<u8>)> {
        let mut members = vec![
            ("meta.csv".to_string(), meta_text.as_bytes().to_vec()),
            (
                "code.csv".to_string(),
                b"\xef\xbb\xbf\"Category\",\"Code\",\"Language\",\"Description\"\r\n".to_vec(),
            ),
        ];
        for t in Table::ALL {
            let header: Vec<String> = t.columns().iter().map(|c| format!("\"{c}\"")).collect();
            members.push((
                format!("{t}.csv"),
                format!("{}\n", header.join(",")).into_bytes(),
            ));
        }
        members
    }

    fn unpack_members(members: &[(String, Vec<u8>)]) -> Result<Unpacked, ArchiveError> {
        unpack_into(members, tempfile::tempdir().unwrap().path())
    }

    fn unpack_into(members: &[(String, Vec<u8>)], dir: &Path) -> Result<Unpacked, ArchiveError> {
        let refs: Vec<(&str, &[u8])> = members
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_slice()))
            .collect();
        let zip = zip_with(&refs);
        unpack(zip.path(), dir, &Limits::default(), Cut::Chunks(1000))
    }

    #[test]
    fn unpacks_a_well_formed_full_extract() {
        let dir = tempfile::tempdir().unwrap();
        let unpacked = unpack_into(&full_members(&meta("full")), dir.path()).unwrap();
        assert_eq!(unpacked.meta.extract_number, 140);
        assert_eq!(unpacked.files.len(), 9);
        assert!(
            unpacked.chunks(Member::Full(Table::Activity)).is_empty(),
            "a header alone makes no chunk"
        );
        assert!(unpacked.path(Member::Code).exists());
    }

    #[test]
    fn cuts_data_members_into_chunks_of_whole_lines() {
        let mut members = full_members(&meta("full"));
        for (name, content) in members.iter_mut() {
            if name == "denomination.csv" {
                content.extend_from_slice(b"\"0200.000.097\",\"2\",\"001\",\"A\"\n\"0200.000.097\",\"2\",\"003\",\"two\nlines, \"\"quoted\"\"\"\r\n\"0200.000.097\",\"1\",\"001\",\"C\"\n\"0200.000.196\",\"2\",\"001\",\"D\"");
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let refs: Vec<(&str, &[u8])> = members
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_slice()))
            .collect();
        let unpacked = unpack(
            zip_with(&refs).path(),
            dir.path(),
            &Limits::default(),
            Cut::Chunks(2),
        )
        .unwrap();
        let chunks = unpacked.chunks(Member::Full(Table::Denomination));
        let shape: Vec<(&str, u64, u64)> = chunks
            .iter()
            .map(|c| (c.file.as_str(), c.first_line, c.lines))
            .collect();
        assert_eq!(
            shape,
            [("denomination.1.csv", 2, 2), ("denomination.2.csv", 4, 2)]
        );
        let second = std::fs::read_to_string(dir.path().join("denomination.2.csv")).unwrap();
        assert!(
            second.starts_with("\"EntityNumber\",\"Language\""),
            "every chunk has the header: {second}"
        );
        assert!(
            second.ends_with("\"D\""),
            "the last line needs no newline: {second}"
        );
        let first = std::fs::read_to_string(dir.path().join("denomination.1.csv")).unwrap();
        assert!(
            first.contains("two\nlines"),
            "a quoted newline stays inside its line: {first}"
        );
        assert!(
            !first.contains('\r') && !second.contains('\r'),
            "CRLF line ends become LF: {first:?}"
        );
    }

    #[test]
    fn refuses_a_full_without_meta_or_a_table() {
        let mut members = full_members(&meta("full"));
        members.retain(|(n, _)| n != "meta.csv");
        assert!(matches!(
            unpack_members(&members),
            Err(ArchiveError::NoMeta)
        ));
        let mut members = full_members(&meta("full"));
        members.retain(|(n, _)| n != "branch.csv");
        let err = unpack_members(&members).unwrap_err();
        assert!(err.to_string().contains("branch.csv"), "{err}");
        let err = unpack_members(&full_members(&meta("update"))).unwrap_err();
        assert!(err.to_string().contains("enterprise_delete.csv"), "{err}");
    }

    #[test]
    fn refuses_a_header_that_differs_naming_the_file() {
        let mut members = full_members(&meta("full"));
        for (name, content) in members.iter_mut() {
            if name == "address.csv" {
                *content = b"\"EntityNumber\",\"TypeOfAddress\",\"Zip\"\n".to_vec();
            }
        }
        let err = unpack_members(&members).unwrap_err();
        assert!(matches!(
            err,
            ArchiveError::Header {
                member: Member::Full(Table::Address),
                ..
            }
        ));
        assert!(
            err.to_string().starts_with("address.csv: the header is"),
            "{err}"
        );
    }

    #[test]
    fn refuses_unsafe_member_names() {
        for name in [
            "../meta.csv",
            "/etc/meta.csv",
            "a/../../meta.csv",
            "C:\\meta.csv",
        ] {
            let mut members = full_members(&meta("full"));
            members.push((name.to_string(), b"x".to_vec()));
            let err = unpack_members(&members).unwrap_err();
            assert!(matches!(err, ArchiveError::UnsafeName(_)), "{name}: {err}");
        }
    }

    /// A reader that yields `good` bytes, then fails.
    struct FailsAfter {
        good: usize,
    }

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.good == 0 {
                return Err(std::io::Error::other("inflate failed"));
            }
            let n = buf.len().min(self.good).min(1000);
            buf[..n].fill(b'x');
            self.good -= n;
            Ok(n)
        }
    }

    #[test]
    fn copying_on_two_threads_keeps_every_byte_and_every_failure() {
        // Bytes arrive whole and in order across many pieces.
        let data: Vec<u8> = (0..3 * PIECE + 17).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let copied = copy_bounded(&mut data.as_slice(), &mut out, u64::MAX).ok();
        assert_eq!(copied, Some(data.len() as u64));
        assert_eq!(out, data);
        // Past the budget: the caller sees more than the budget, and nothing past it is written.
        let mut out = Vec::new();
        let copied = copy_bounded(&mut data.as_slice(), &mut out, PIECE as u64).ok();
        assert!(copied.is_some_and(|n| n > PIECE as u64));
        assert!(out.len() <= PIECE);
        // A failing read is the reader's failure, after what came before was written.
        let mut out = Vec::new();
        let failed = copy_bounded(&mut FailsAfter { good: 5000 }, &mut out, u64::MAX);
        assert!(matches!(failed, Err(CopyError::Read(e)) if e.to_string() == "inflate failed"));
        assert_eq!(out.len(), 5000);
        // A failing write stops the reader (the call returns instead of hanging).
        let mut full = [0u8; 10];
        let failed = copy_bounded(&mut data.as_slice(), &mut full.as_mut_slice(), u64::MAX);
        assert!(matches!(failed, Err(CopyError::Write(_))));
    }

    #[test]
    fn refuses_members_past_the_bounds() {
        let mut members = full_members(&meta("full"));
        for (name, content) in members.iter_mut() {
            if name == "activity.csv" {
                content.extend(std::iter::repeat_n(b'a', 4 << 20));
            }
        }
        let refs: Vec<(&str, &[u8])> = members
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_slice()))
            .collect();
        let zip = zip_with(&refs);
        let dir = tempfile::tempdir().unwrap();
        let err = unpack(
            zip.path(),
            dir.path(),
            &Limits::default(),
            Cut::Chunks(1000),
        )
        .unwrap_err();
        assert!(matches!(err, ArchiveError::TooLarge { .. }), "{err}");
        let tight = Limits {
            max_member_bytes: 1000,
            max_total_bytes: 1 << 40,
            max_ratio: 1 << 40,
        };
        let err = unpack(zip.path(), dir.path(), &tight, Cut::Chunks(1000)).unwrap_err();
        assert!(err.to_string().contains("activity.csv"), "{err}");
    }

    #[test]
    fn refuses_what_is_not_a_zip_or_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let not_zip = dir.path().join("x.zip");
        std::fs::write(&not_zip, b"<html>404</html>").unwrap();
        assert!(matches!(
            unpack(&not_zip, dir.path(), &Limits::default(), Cut::Chunks(1000)),
            Err(ArchiveError::NotZip(_))
        ));

        let members = full_members(&meta("full"));
        let refs: Vec<(&str, &[u8])> = members
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_slice()))
            .collect();
        let zip = zip_with(&refs);
        let bytes = std::fs::read(zip.path()).unwrap();
        let truncated = dir.path().join("t.zip");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        assert!(
            unpack(
                &truncated,
                dir.path(),
                &Limits::default(),
                Cut::Chunks(1000)
            )
            .is_err()
        );
    }
}
