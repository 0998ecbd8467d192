//! Cutting a member into chunk files of whole lines, as DuckDB's CSV reader sees lines, and
//! noting on the way whether a chunk can hold a key twice.

use super::tables::{Member, Table};
use std::collections::HashSet;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

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
    /// True when no two lines of the chunk can have the same key in the register (see
    /// [`Table::key_columns`]): its rows may then be inserted in any order. False when two
    /// lines may (or the cutter could not tell: an older journal, a member without keys).
    #[serde(default)]
    pub keys_unique: bool,
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
pub(super) struct ChunkWriter {
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
    /// The keys of the chunk in hand, for a data member of a Full.
    keys: Option<Keys>,
}

impl ChunkWriter {
    pub(super) fn new(dir: &Path, member: Member, lines_per_chunk: u64) -> ChunkWriter {
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
            keys: match member {
                Member::Full(table) => Some(Keys::new(table)),
                _ => None,
            },
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

    /// The chunk file being written (for an error message).
    pub(super) fn current_path(&self) -> PathBuf {
        self.dir.join(self.file_name(self.chunks.len()))
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
                keys_unique: self.keys.is_some(),
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
        if let Some(keys) = &mut self.keys
            && !keys.line_end()
        {
            chunk.keys_unique = false;
        }
        if chunk.lines >= self.lines_per_chunk
            && let Some(mut out) = self.out.take()
        {
            out.flush()?;
            if let Some(keys) = &mut self.keys {
                keys.next_chunk();
            }
        }
        Ok(())
    }

    /// Closes the last chunk; returns the header line and the chunks.
    pub(super) fn finish(mut self) -> std::io::Result<(Vec<u8>, Vec<Chunk>)> {
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
                keys_unique: false,
            });
        }
        Ok((self.header, self.chunks))
    }
}

/// The keys of a Full's data member, fingerprinted line by line as it is cut: whether a key
/// comes twice within the chunk in hand. A fingerprint is built from the values of the table's
/// [key columns](Table::key_columns) as DuckDB reads them (quotes removed, `""` as `"`), minus
/// spaces, tabs and carriage returns outside quotes; lines with equal keys in the register
/// have equal fingerprints, so a chunk said to have unique keys has them. (The converse need
/// not hold: an equal fingerprint only makes the chunk keep its order.)
struct Keys {
    /// Bit `i` set: column `i` is part of the key.
    columns: u64,
    /// The column of the byte in hand.
    column: u32,
    /// The line's fingerprint so far (FNV-1a).
    hash: u64,
    /// The fingerprints of the chunk's lines so far.
    seen: HashSet<u64, BuildHasherDefault<Prehashed>>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;
/// Mixed in after each key value, so that `"ab","c"` and `"a","bc"` differ.
const VALUE_END: u64 = 0x100;

impl Keys {
    pub(super) fn new(table: Table) -> Keys {
        Keys {
            columns: table.key_columns().iter().map(|c| 1u64 << c).sum(),
            column: 0,
            hash: FNV_OFFSET,
            seen: HashSet::default(),
        }
    }

    fn mix(&mut self, value: u64) {
        self.hash = (self.hash ^ value).wrapping_mul(FNV_PRIME);
    }

    fn in_key(&self) -> bool {
        self.column < 64 && self.columns & (1 << self.column) != 0
    }

    /// Byte `b` of a data line, read in state `state` (the state before it).
    fn byte(&mut self, state: Field, b: u8) {
        let value = match (state, b) {
            // The closing quote, or the first of `""`.
            (Field::Quoted, b'"') => None,
            (Field::Quoted, _) | (Field::QuoteInQuoted, b'"') => Some(b),
            // The opening quote.
            (Field::Start, b'"') => None,
            (_, b',') => {
                if self.in_key() {
                    self.mix(VALUE_END);
                }
                self.column += 1;
                None
            }
            (_, b'\r' | b' ' | b'\t') => None,
            _ => Some(b),
        };
        if let Some(value) = value
            && self.in_key()
        {
            self.mix(u64::from(value));
        }
    }

    /// The line ended: false when its key came before in the chunk.
    fn line_end(&mut self) -> bool {
        if self.in_key() {
            self.mix(VALUE_END);
        }
        // A final mix spreads FNV's bits before the set takes the hash as it is.
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        self.column = 0;
        self.hash = FNV_OFFSET;
        self.seen.insert(h)
    }

    /// A new chunk begins: keys of earlier chunks no longer count.
    fn next_chunk(&mut self) {
        self.seen.clear();
    }
}

/// A hasher for values that are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
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
                if self.header_done
                    && let Some(keys) = &mut self.keys
                {
                    keys.byte(self.field, b);
                }
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

    /// The chunks' `keys_unique` flags of an activity member cut into chunks of `per` lines,
    /// for every split of the text into two buffers.
    fn unique_flags(member: Member, text: &[u8], per: u64) -> Vec<bool> {
        let mut flags = None;
        for split in 0..text.len() {
            let dir = tempfile::tempdir().unwrap();
            let mut writer = ChunkWriter::new(dir.path(), member, per);
            writer.write_all(&text[..split]).unwrap();
            writer.write_all(&text[split..]).unwrap();
            let (_, chunks) = writer.finish().unwrap();
            let got: Vec<bool> = chunks.iter().map(|c| c.keys_unique).collect();
            match &flags {
                None => flags = Some(got),
                Some(f) => assert_eq!(f, &got, "split at {split}"),
            }
        }
        flags.unwrap()
    }

    const ACTIVITY_HEADER: &str =
        "\"EntityNumber\",\"ActivityGroup\",\"NaceVersion\",\"NaceCode\",\"Classification\"\n";

    #[test]
    fn a_chunk_knows_whether_a_key_comes_twice_in_it() {
        let activity = Member::Full(Table::Activity);
        let distinct = format!(
            "{ACTIVITY_HEADER}\"0200.000.043\",\"003\",\"2008\",\"73402\",\"MAIN\"\n\"0200.000.043\",\"003\",\"2025\",\"73402\",\"MAIN\"\n"
        );
        assert_eq!(unique_flags(activity, distinct.as_bytes(), 10), [true]);
        // The same key written another way: unquoted, with CRLF, with spaces around.
        let again = format!(
            "{ACTIVITY_HEADER}\"0200.000.043\",\"003\",\"2008\",\"73402\",\"MAIN\"\n\"0200.000.097\",\"001\",\"2008\",\"1\",\"SECO\"\r\n0200.000.043, 003,2008,\"73402\",MAIN\r\n"
        );
        assert_eq!(unique_flags(activity, again.as_bytes(), 10), [false]);
        // Across chunks, a key may come again: each chunk alone has unique keys.
        assert_eq!(unique_flags(activity, again.as_bytes(), 2), [true, true]);
        // Values that only join alike are not the same key.
        let joined = format!(
            "{ACTIVITY_HEADER}\"0200.000.043\",\"003\",\"2008\",\"73402\",\"MAIN\"\n\"0200.000.043\",\"00\",\"32008\",\"73402\",\"MAIN\"\n"
        );
        assert_eq!(unique_flags(activity, joined.as_bytes(), 10), [true]);
    }

    #[test]
    fn names_of_one_kind_and_language_keep_their_order() {
        // A denomination's id ends in a digest of the name: two names of one entity, type and
        // language may share it, so their chunk keeps the file's order.
        let text = "\"EntityNumber\",\"Language\",\"TypeOfDenomination\",\"Denomination\"\n\"0200.000.043\",\"2\",\"001\",\"A, \"\"B\"\"\"\n\"0200.000.043\",\"2\",\"001\",\"C\"\n";
        assert_eq!(
            unique_flags(Member::Full(Table::Denomination), text.as_bytes(), 10),
            [false]
        );
        // Members without keys (an Update's files, code.csv) never claim unique keys.
        assert_eq!(
            unique_flags(Member::Insert(Table::Denomination), text.as_bytes(), 10),
            [false]
        );
    }
}
