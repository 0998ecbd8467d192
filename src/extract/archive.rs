//! Opening an extract ZIP: member names, size limits, streaming unpack, header and meta checks.

use super::dialect::split_line;
use super::meta::{ExtractType, Meta, MetaError};
use super::tables::{Member, Table};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
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

/// One piece of a data member: a CSV file of its own, header first, then whole lines.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Chunk {
    /// File name in the unpack folder, e.g. `activity.3.csv`.
    pub file: String,
    /// Line number, in the member, of the chunk's first line after the header (the member's
    /// header is line 1).
    pub first_line: u64,
    /// Lines in the chunk after the header.
    pub lines: u64,
}

/// An extract unpacked to disk and checked: its meta data and every member, data members cut
/// into chunks of at most `chunk_lines` lines.
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
    /// A member's first line is not the header FORMAT.md gives.
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
    /// Whether trying again may succeed (local I/O), as opposed to bad input.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ArchiveError::Write { .. })
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
    chunk_lines: u64,
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
        let declared = entry.size();
        let too_large = |reason: String| ArchiveError::TooLarge {
            member: raw_name.clone(),
            reason,
        };
        if declared > limits.max_member_bytes {
            return Err(too_large(format!(
                "it declares {declared} bytes, more than the bound of {}",
                limits.max_member_bytes
            )));
        }
        let compressed = entry.compressed_size().max(1);
        if declared > (1 << 20) && declared / compressed > limits.max_ratio {
            return Err(too_large(format!(
                "it expands {}-fold, more than the bound of {}",
                declared / compressed,
                limits.max_ratio
            )));
        }

        let budget = limits
            .max_member_bytes
            .min(limits.max_total_bytes.saturating_sub(total));
        let whole = matches!(member, Member::Meta | Member::Code);
        let mut out = ChunkWriter::new(
            dest,
            member,
            if whole { u64::MAX } else { chunk_lines.max(1) },
        );
        let copied = copy_bounded(&mut entry, &mut out, budget).map_err(|e| match e {
            CopyError::Read(e) => ArchiveError::Corrupt {
                member: raw_name.clone(),
                reason: e.to_string(),
            },
            CopyError::Write(e) => out.write_error(e),
        })?;
        if copied > budget {
            return Err(too_large(format!(
                "it expands beyond {budget} bytes, past the member or total bound"
            )));
        }
        total += copied;
        let (header, chunks) = out.finish().map_err(|e| ArchiveError::Write {
            path: dest.to_path_buf(),
            source: e,
        })?;
        headers.insert(member, header);
        files.insert(member, chunks);
    }

    if ignored > NAMED_IGNORED {
        tracing::warn!(
            ignored,
            "ignored {ignored} ZIP members that are not part of the KBO format (the first {NAMED_IGNORED} are named above)"
        );
    }
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
    for (member, header) in &headers {
        check_header(*member, header)?;
    }
    Ok(Unpacked {
        dir: dest.to_path_buf(),
        meta,
        files,
    })
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

/// Copies at most `budget + 1` bytes, so that the caller can tell an overflow from a fit.
fn copy_bounded(from: &mut impl Read, to: &mut impl Write, budget: u64) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut copied: u64 = 0;
    loop {
        let n = from.read(&mut buf).map_err(CopyError::Read)?;
        if n == 0 {
            return Ok(copied);
        }
        copied += n as u64;
        if copied > budget {
            return Ok(copied);
        }
        to.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
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

/// Checks that the member's first line is exactly the header FORMAT.md gives.
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

/// Where the CSV reader stands within a field, as DuckDB's reader sees it: a quote opens a
/// quoted value only at the start of a field (`"O'Brien"`), and is an ordinary character
/// inside an unquoted one (`O"Brien`); inside a quoted value, `""` is a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// At the start of a field (after a comma or a line end).
    Start,
    /// Inside a value that did not start with a quote.
    Unquoted,
    /// Inside a quoted value.
    Quoted,
    /// Just after a quote inside a quoted value: the value's end, or the first of `""`.
    QuoteInQuoted,
}

impl Field {
    /// The state after byte `b` (a line end is the caller's business).
    fn next(self, b: u8) -> Field {
        match (self, b) {
            (Field::Quoted, b'"') => Field::QuoteInQuoted,
            (Field::Quoted, _) => Field::Quoted,
            (Field::QuoteInQuoted, b'"') => Field::Quoted,
            (Field::Start, b'"') => Field::Quoted,
            (_, b',') => Field::Start,
            (state, b'\r') => state,
            _ => Field::Unquoted,
        }
    }
}

/// A UTF-8 byte-order mark, which may open a member and is not part of its first field.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Writes a member as chunk files of at most `lines_per_chunk` lines each, every chunk
/// starting with the member's header. Lines end at a newline outside a quoted value (see
/// [`Field`]), so a quoted value holding a newline stays whole and a stray quote inside an
/// unquoted value changes nothing. Line ends are written as `\n` whether the file has LF, CRLF
/// or both (DuckDB's strict CSV reader refuses a file that mixes them); inside quotes, bytes
/// are kept as they are.
struct ChunkWriter {
    dir: PathBuf,
    member: Member,
    lines_per_chunk: u64,
    header: Vec<u8>,
    header_done: bool,
    field: Field,
    /// Bytes of the member seen so far, up to the length of a byte-order mark.
    seen: usize,
    /// A `\r` outside quotes ended the last buffer: dropped if a `\n` follows.
    pending_cr: bool,
    out: Option<BufWriter<File>>,
    partial: bool,
    chunks: Vec<Chunk>,
    next_line: u64,
}

impl ChunkWriter {
    fn new(dir: &Path, member: Member, lines_per_chunk: u64) -> ChunkWriter {
        ChunkWriter {
            dir: dir.to_path_buf(),
            member,
            lines_per_chunk,
            header: Vec::new(),
            header_done: false,
            field: Field::Start,
            seen: 0,
            pending_cr: false,
            out: None,
            partial: false,
            chunks: Vec::new(),
            next_line: 2,
        }
    }

    fn file_name(&self, number: usize) -> String {
        if self.lines_per_chunk == u64::MAX {
            self.member.file_name()
        } else {
            let name = self.member.file_name();
            let stem = name.trim_end_matches(".csv");
            format!("{stem}.{number}.csv")
        }
    }

    fn write_error(&self, source: std::io::Error) -> ArchiveError {
        ArchiveError::Write {
            path: self.dir.join(self.file_name(self.chunks.len())),
            source,
        }
    }

    /// Writes bytes of the current line, opening a chunk (header first) when none is open.
    fn body(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.out.is_none() {
            let file = self.file_name(self.chunks.len() + 1);
            let mut out = BufWriter::with_capacity(1 << 20, File::create(self.dir.join(&file))?);
            out.write_all(&self.header)?;
            self.chunks.push(Chunk {
                file,
                first_line: self.next_line,
                lines: 0,
            });
            self.out = Some(out);
        }
        self.partial = true;
        self.out.as_mut().expect("opened above").write_all(bytes)
    }

    /// Bytes of the current line (header or data).
    fn push(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.header_done {
            self.body(bytes)
        } else {
            self.header.extend_from_slice(bytes);
            Ok(())
        }
    }

    /// The current line ends (outside quotes): written with `\n`.
    fn line_end(&mut self) -> std::io::Result<()> {
        if self.header_done {
            self.body(b"\n")?;
            self.end_line()
        } else {
            self.header.push(b'\n');
            self.header_done = true;
            Ok(())
        }
    }

    /// A line ended.
    fn end_line(&mut self) -> std::io::Result<()> {
        self.partial = false;
        self.next_line += 1;
        let chunk = self
            .chunks
            .last_mut()
            .expect("a line was written to a chunk");
        chunk.lines += 1;
        if chunk.lines >= self.lines_per_chunk
            && let Some(mut out) = self.out.take()
        {
            out.flush()?;
        }
        Ok(())
    }

    /// Closes the last chunk; returns the header line and the chunks.
    fn finish(mut self) -> std::io::Result<(Vec<u8>, Vec<Chunk>)> {
        // A `\r` at the very end ended the last line: dropped.
        self.pending_cr = false;
        if self.partial {
            self.end_line()?;
        }
        if let Some(mut out) = self.out.take() {
            out.flush()?;
        }
        if self.lines_per_chunk == u64::MAX && self.chunks.is_empty() {
            // A whole file (meta.csv, code.csv) exists even when it holds only its header.
            let file = self.file_name(1);
            std::fs::write(self.dir.join(&file), &self.header)?;
            self.chunks.push(Chunk {
                file,
                first_line: 2,
                lines: 0,
            });
        }
        Ok((self.header, self.chunks))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if std::mem::take(&mut self.pending_cr) && buf[0] != b'\n' {
            // A lone `\r`, not a line end: kept.
            self.push(b"\r")?;
        }
        let mut start = 0;
        for (i, &b) in buf.iter().enumerate() {
            if self.seen < BOM.len() {
                let in_bom = b == BOM[self.seen];
                self.seen = if in_bom { self.seen + 1 } else { BOM.len() };
                if in_bom {
                    continue;
                }
            }
            if b == b'\n' && self.field != Field::Quoted {
                let line = &buf[start..i];
                self.push(line.strip_suffix(b"\r").unwrap_or(line))?;
                self.line_end()?;
                self.field = Field::Start;
                start = i + 1;
            } else {
                self.field = self.field.next(b);
            }
        }
        let rest = &buf[start..];
        match rest.strip_suffix(b"\r") {
            Some(before) if self.field != Field::Quoted => {
                self.push(before)?;
                self.pending_cr = true;
            }
            _ => self.push(rest)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
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
        unpack(zip.path(), dir, &Limits::default(), 1000)
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
        let unpacked = unpack(zip_with(&refs).path(), dir.path(), &Limits::default(), 2).unwrap();
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
    fn a_quote_inside_an_unquoted_value_is_a_plain_character() {
        // As DuckDB reads it: `O"Brien` is one value; a quote opens a quoted value only at the
        // start of a field. A BOM opens the member; lines end in CRLF.
        let text: &[u8] = b"\xEF\xBB\xBF\"EntityNumber\",\"Denomination\"\r\n\"0200.000.097\",O\"Brien\r\n\"0200.000.196\",\"a, \"\"b\"\"\r\nc\"\r\n0200.000.295,x\"y\"z\r\n\"0200.000.394\",\"D\"\r\n";
        for split in 0..text.len() {
            let dir = tempfile::tempdir().unwrap();
            let mut writer = ChunkWriter::new(dir.path(), Member::Code, 2);
            writer.write_all(&text[..split]).unwrap();
            writer.write_all(&text[split..]).unwrap();
            let (header, chunks) = writer.finish().unwrap();
            assert_eq!(
                header, b"\xEF\xBB\xBF\"EntityNumber\",\"Denomination\"\n",
                "split at {split}"
            );
            let lines: Vec<(u64, u64)> = chunks.iter().map(|c| (c.first_line, c.lines)).collect();
            assert_eq!(lines, vec![(2, 2), (4, 2)], "split at {split}");
            let second = std::fs::read_to_string(dir.path().join(&chunks[1].file)).unwrap();
            assert!(
                second.ends_with("\n0200.000.295,x\"y\"z\n\"0200.000.394\",\"D\"\n"),
                "split at {split}: {second}"
            );
        }
    }

    #[test]
    fn line_ends_become_lf_wherever_the_buffers_break() {
        let text: &[u8] =
            b"\"A\",\"B\"\r\n\"1\",\"x\r\ny\"\r\n\"2\",\"z\"\n\"3\",\"a\rb\"\r\n\"4\",\"w\"\r";
        for split in 0..text.len() {
            let dir = tempfile::tempdir().unwrap();
            let mut writer = ChunkWriter::new(dir.path(), Member::Code, u64::MAX);
            writer.write_all(&text[..split]).unwrap();
            writer.write_all(&text[split..]).unwrap();
            let (header, chunks) = writer.finish().unwrap();
            assert_eq!(header, b"\"A\",\"B\"\n", "split at {split}");
            assert_eq!(chunks[0].lines, 4, "split at {split}");
            let body = std::fs::read(dir.path().join(&chunks[0].file)).unwrap();
            assert_eq!(
                String::from_utf8(body).unwrap(),
                "\"A\",\"B\"\n\"1\",\"x\r\ny\"\n\"2\",\"z\"\n\"3\",\"a\rb\"\n\"4\",\"w\"",
                "split at {split}: quoted bytes kept, line ends LF"
            );
        }
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
        let err = unpack(zip.path(), dir.path(), &Limits::default(), 1000).unwrap_err();
        assert!(matches!(err, ArchiveError::TooLarge { .. }), "{err}");
        let tight = Limits {
            max_member_bytes: 1000,
            max_total_bytes: 1 << 40,
            max_ratio: 1 << 40,
        };
        let err = unpack(zip.path(), dir.path(), &tight, 1000).unwrap_err();
        assert!(err.to_string().contains("activity.csv"), "{err}");
    }

    #[test]
    fn refuses_what_is_not_a_zip_or_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let not_zip = dir.path().join("x.zip");
        std::fs::write(&not_zip, b"<html>404</html>").unwrap();
        assert!(matches!(
            unpack(&not_zip, dir.path(), &Limits::default(), 1000),
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
        assert!(unpack(&truncated, dir.path(), &Limits::default(), 1000).is_err());
    }
}
