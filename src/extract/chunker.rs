//! Cutting a member into chunk files of whole lines, as DuckDB's CSV reader sees lines. A
//! Full's data member is cut with its keys in mind: a line whose key came before within the
//! chunk goes to the chunk's tail file, so that the chunk's main file holds each key once, and
//! so does every later line of a key the tail holds (its last line stays last where its
//! entity's lines come back after others').

use super::dialect::{BOM, Field};
use super::keys::Keys;
use super::sealed::{Seal, SealedWriter};
use super::tables::Member;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One piece of a data member: a CSV file of its own, header first, then whole lines.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Chunk {
    /// File name in the unpack folder, e.g. `activity.3.csv`.
    pub file: String,
    /// Line number, in the member, of the chunk's first line after the header (the member's
    /// header is line 1).
    pub first_line: u64,
    /// Lines in the chunk after the header (its tail's included).
    pub lines: u64,
    /// Of those, the empty ones, which DuckDB's CSV reader skips: a batch reads
    /// `lines - blank` rows from the chunk.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub blank: u64,
    /// True when no key comes twice in `file` (see [`Table::key_columns`](super::Table::key_columns)):
    /// its rows may reach the table in any order. False for members cut without their keys
    /// in mind (an Update's files) and in journals written before the cutter knew keys.
    #[serde(default)]
    pub any_order: bool,
    /// The lines whose key came before within the chunk, in their order, in a file of their
    /// own: applied after `file`, so that the last line of a key still wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<Tail>,
    /// The length and checksum `file` was written with (absent in journals written before
    /// files were sealed): a step proves the file whole with it before applying it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<Seal>,
}

/// The tail of a chunk: its lines whose key came before within the chunk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tail {
    /// File name in the unpack folder, e.g. `activity.3.tail.csv`.
    pub file: String,
    /// The member's line numbers of its lines, in order (for messages naming a line).
    pub lines: Vec<u64>,
    /// The length and checksum `file` was written with, as [`Chunk::seal`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<Seal>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Chunk {
    /// The rows DuckDB reads from the chunk: its lines but the empty ones.
    pub fn rows(&self) -> u64 {
        self.lines - self.blank
    }

    /// Its files, the main one first then its tail, each with the seal it was written with.
    pub fn files(&self) -> impl Iterator<Item = (&str, Option<Seal>)> {
        let tail = self.tail.as_ref().map(|t| (t.file.as_str(), t.seal));
        std::iter::once((self.file.as_str(), self.seal)).chain(tail)
    }

    /// The member's line number of line `n` (1-based, after the header) of the chunk's main
    /// file: its tail's lines are not in it.
    pub fn main_line(&self, n: u64) -> u64 {
        let mut line = self.first_line + n - 1;
        for moved in self.tail.iter().flat_map(|t| &t.lines) {
            if *moved <= line {
                line += 1;
            } else {
                break;
            }
        }
        line
    }
}

/// How a member is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// As one file under its own name (`meta.csv`, `code.csv`, the benchmark's floors).
    Whole,
    /// In chunk files of at most this many lines (at least one), named `<member>.<n>.csv`.
    Chunks(u64),
}

/// Writes a member as chunk files as `cut` says, every chunk
/// starting with the member's header. Lines end at a newline outside a quoted value (see
/// [`Field`]), so a quoted value holding a newline stays whole and a stray quote inside an
/// unquoted value changes nothing. Line ends are written as `\n` whether the file has LF, CRLF
/// or both (DuckDB's strict CSV reader refuses a file that mixes them); inside quotes, bytes
/// are kept as they are.
pub(super) struct ChunkWriter {
    dir: PathBuf,
    member: Member,
    cut: Cut,
    header: Vec<u8>,
    header_done: bool,
    field: Field,
    /// Bytes of the member seen so far, up to the length of a byte-order mark.
    seen: usize,
    /// A `\r` outside quotes ended the last buffer: dropped if a `\n` follows.
    pending_cr: bool,
    out: Option<SealedWriter>,
    /// The chunk's tail file, once a key came twice in it.
    tail: Option<SealedWriter>,
    partial: bool,
    chunks: Vec<Chunk>,
    next_line: u64,
    /// The keys of the chunk in hand, for a Full's data member cut into chunks.
    keys: Option<Keys>,
    /// The line in hand, while keys are tracked: written once its key is known.
    line: Vec<u8>,
}

impl ChunkWriter {
    pub(super) fn new(dir: &Path, member: Member, cut: Cut) -> ChunkWriter {
        ChunkWriter {
            dir: dir.to_path_buf(),
            member,
            cut,
            header: Vec::new(),
            header_done: false,
            field: Field::Start,
            seen: 0,
            pending_cr: false,
            out: None,
            tail: None,
            partial: false,
            chunks: Vec::new(),
            next_line: 2,
            // Whole files (the floors, meta.csv, code.csv) are written as they come.
            keys: match member {
                Member::Full(table) if cut != Cut::Whole => Some(Keys::new(table)),
                _ => None,
            },
            line: Vec::new(),
        }
    }

    fn file_name(&self, number: usize) -> String {
        if self.cut == Cut::Whole {
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

    /// Writes bytes of the current line (kept until the line ends while keys are tracked).
    fn body(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.partial = true;
        if self.keys.is_some() {
            self.line.extend_from_slice(bytes);
            return Ok(());
        }
        self.open_chunk()?;
        self.out.as_mut().expect("opened above").write_all(bytes)
    }

    /// Opens a chunk (header first) when none is open.
    fn open_chunk(&mut self) -> std::io::Result<()> {
        if self.out.is_some() {
            return Ok(());
        }
        let file = self.file_name(self.chunks.len() + 1);
        let mut out = SealedWriter::create(&self.dir.join(&file), 1 << 20)?;
        out.write_all(&self.header)?;
        self.chunks.push(Chunk {
            file,
            first_line: self.next_line,
            lines: 0,
            blank: 0,
            any_order: self.keys.is_some(),
            tail: None,
            seal: None,
        });
        self.out = Some(out);
        Ok(())
    }

    /// Writes the line in hand to the chunk, or to its tail when its key came before in it.
    fn write_line(&mut self) -> std::io::Result<bool> {
        let Some(keys) = &mut self.keys else {
            return Ok(false);
        };
        let content = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        let again = !keys.first_in_chunk(content);
        self.open_chunk()?;
        if again && self.tail.is_none() {
            let chunk = self.chunks.last_mut().expect("opened above");
            let file = chunk.file.replace(".csv", ".tail.csv");
            let mut tail = SealedWriter::create(&self.dir.join(&file), 1 << 16)?;
            tail.write_all(&self.header)?;
            chunk.tail = Some(Tail {
                file,
                lines: Vec::new(),
                seal: None,
            });
            self.tail = Some(tail);
        }
        let to = if again { &mut self.tail } else { &mut self.out };
        to.as_mut().expect("opened above").write_all(&self.line)?;
        self.line.clear();
        Ok(again)
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
            // No byte of the line came before its end: an empty line.
            let empty = !self.partial;
            self.body(b"\n")?;
            self.end_line(empty)
        } else {
            self.header.push(b'\n');
            self.header_done = true;
            Ok(())
        }
    }

    /// A line ended; `empty` when it held nothing.
    fn end_line(&mut self, empty: bool) -> std::io::Result<()> {
        self.partial = false;
        let again = self.write_line()?;
        let line = self.next_line;
        self.next_line += 1;
        let chunk = self
            .chunks
            .last_mut()
            .expect("a line was written to a chunk");
        chunk.lines += 1;
        chunk.blank += u64::from(empty);
        if again && let Some(tail) = &mut chunk.tail {
            tail.lines.push(line);
        }
        if let Cut::Chunks(lines) = self.cut
            && chunk.lines >= lines.max(1)
        {
            self.close_chunk()?;
        }
        Ok(())
    }

    /// Seals the chunk in hand (and its tail), recording their seals; the next line opens
    /// another.
    fn close_chunk(&mut self) -> std::io::Result<()> {
        let main = self.out.take().map(SealedWriter::seal).transpose()?;
        let tail = self.tail.take().map(SealedWriter::seal).transpose()?;
        if let Some(chunk) = self.chunks.last_mut() {
            if main.is_some() {
                chunk.seal = main;
            }
            if let (Some(t), Some(seal)) = (&mut chunk.tail, tail) {
                t.seal = Some(seal);
            }
        }
        if let Some(keys) = &mut self.keys {
            if let Some(chunk) = self.chunks.last_mut() {
                chunk.any_order &= keys.all_known();
            }
            keys.next_chunk();
        }
        Ok(())
    }

    /// Closes the last chunk; returns the header line and the chunks.
    pub(super) fn finish(mut self) -> std::io::Result<(Vec<u8>, Vec<Chunk>)> {
        // A `\r` at the very end ended the last line: dropped.
        self.pending_cr = false;
        if self.partial {
            self.end_line(false)?;
        }
        self.close_chunk()?;
        if self.cut == Cut::Whole && self.chunks.is_empty() {
            // A whole file (meta.csv, code.csv) exists even when it holds only its header.
            let file = self.file_name(1);
            let mut out = SealedWriter::create(&self.dir.join(&file), 1 << 16)?;
            out.write_all(&self.header)?;
            let seal = Some(out.seal()?);
            self.chunks.push(Chunk {
                file,
                first_line: 2,
                lines: 0,
                blank: 0,
                any_order: false,
                tail: None,
                seal,
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
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            if self.seen < BOM.len() {
                let in_bom = b == BOM.as_bytes()[self.seen];
                self.seen = if in_bom { self.seen + 1 } else { BOM.len() };
                if in_bom {
                    i += 1;
                    continue;
                }
            }
            if self.field == Field::Quoted {
                // Inside a quoted value (most of a KBO file) only a quote matters: on to the
                // next one at once, line ends included.
                let Some(at) = memchr::memchr(b'"', &buf[i..]) else {
                    break;
                };
                i += at + 1;
                self.field = self.field.next(b'"');
                continue;
            }
            if b == b'\n' {
                let line = &buf[start..i];
                self.push(line.strip_suffix(b"\r").unwrap_or(line))?;
                self.line_end()?;
                self.field = Field::Start;
                start = i + 1;
            } else {
                self.field = self.field.next(b);
            }
            i += 1;
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
    use crate::extract::Table;

    #[test]
    fn a_quote_inside_an_unquoted_value_is_a_plain_character() {
        // As DuckDB reads it: `O"Brien` is one value; a quote opens a quoted value only at the
        // start of a field. A BOM opens the member; lines end in CRLF.
        let text: &[u8] = b"\xEF\xBB\xBF\"EntityNumber\",\"Denomination\"\r\n\"0200.000.097\",O\"Brien\r\n\"0200.000.196\",\"a, \"\"b\"\"\r\nc\"\r\n0200.000.295,x\"y\"z\r\n\"0200.000.394\",\"D\"\r\n";
        for split in 0..text.len() {
            let dir = tempfile::tempdir().unwrap();
            let mut writer = ChunkWriter::new(dir.path(), Member::Code, Cut::Chunks(2));
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
            let mut writer = ChunkWriter::new(dir.path(), Member::Code, Cut::Whole);
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

    /// A chunk as cut: its main file, its tail file and the tail's line numbers, whether its
    /// rows may go in any order.
    type CutChunk = (String, Option<(String, Vec<u64>)>, bool);

    /// `text` (a member) cut into chunks of `per` lines, the same for every split of the text
    /// into two buffers.
    fn cut(member: Member, text: &[u8], per: Cut) -> Vec<CutChunk> {
        let mut first = None;
        for split in 0..text.len() {
            let dir = tempfile::tempdir().unwrap();
            let read = |file: &str| std::fs::read_to_string(dir.path().join(file)).unwrap();
            let mut writer = ChunkWriter::new(dir.path(), member, per);
            writer.write_all(&text[..split]).unwrap();
            writer.write_all(&text[split..]).unwrap();
            let (_, chunks) = writer.finish().unwrap();
            // Every file is whole under its name, with the seal the plan keeps of it; no
            // temporary file is left.
            for (file, seal) in chunks.iter().flat_map(|c| {
                let tail = c.tail.as_ref().map(|t| (&t.file, t.seal));
                std::iter::once((&c.file, c.seal)).chain(tail)
            }) {
                let on_disk = Seal::of_file(&dir.path().join(file));
                assert_eq!(seal, on_disk.unwrap(), "{file}, split at {split}");
            }
            let files = std::fs::read_dir(dir.path()).unwrap().count();
            let expected: usize = chunks
                .iter()
                .map(|c| 1 + usize::from(c.tail.is_some()))
                .sum();
            assert_eq!(files, expected, "split at {split}");
            let got: Vec<CutChunk> = chunks
                .iter()
                .map(|c| {
                    let tail = c.tail.as_ref().map(|t| (read(&t.file), t.lines.clone()));
                    (read(&c.file), tail, c.any_order)
                })
                .collect();
            match &first {
                None => first = Some(got),
                Some(f) => assert_eq!(f, &got, "split at {split}"),
            }
        }
        first.unwrap()
    }

    const ACTIVITY_HEADER: &str =
        "\"EntityNumber\",\"ActivityGroup\",\"NaceVersion\",\"NaceCode\",\"Classification\"\n";

    #[test]
    fn a_key_that_comes_again_in_a_chunk_goes_to_its_tail() {
        let activity = Member::Full(Table::Activity);
        let (a, a2, b) = (
            "\"0200.000.043\",\"003\",\"2008\",\"73402\",\"MAIN\"",
            "\"0200.000.043\",\"003\",\"2025\",\"73402\",\"MAIN\"",
            "\"0200.000.097\",\"001\",\"2008\",\"1\",\"SECO\"",
        );
        // The first key again within its entity's lines, written another way: unquoted, with
        // spaces, CRLF.
        let again = "0200.000.043, 003,2008,\"73402\",MAIN";
        let text = format!("{ACTIVITY_HEADER}{a}\n{a2}\r\n{again}\r\n{b}");
        let chunks = cut(activity, text.as_bytes(), Cut::Chunks(10));
        assert_eq!(
            chunks,
            [(
                format!("{ACTIVITY_HEADER}{a}\n{a2}\n{b}"),
                Some((format!("{ACTIVITY_HEADER}{again}\n"), vec![4])),
                true
            )]
        );
        // Across chunks a key may come again: each chunk alone holds it once.
        let chunks = cut(activity, text.as_bytes(), Cut::Chunks(2));
        assert!(
            chunks.iter().all(|(_, tail, any)| tail.is_none() && *any),
            "{chunks:?}"
        );
    }

    #[test]
    fn a_chunk_whose_entities_come_back_keeps_the_files_order() {
        // 0200.000.043's lines come back after 0200.000.097's: its keys are not all known, so
        // the chunk is inserted in the file's order.
        let (a, b, a2) = (
            "\"0200.000.043\",\"003\",\"2008\",\"73402\",\"MAIN\"",
            "\"0200.000.097\",\"001\",\"2008\",\"1\",\"SECO\"",
            "\"0200.000.043\",\"003\",\"2008\",\"73402\",\"MAIN\"",
        );
        let text = format!("{ACTIVITY_HEADER}{a}\n{b}\n{a2}\n");
        let chunks = cut(
            Member::Full(Table::Activity),
            text.as_bytes(),
            Cut::Chunks(10),
        );
        assert_eq!(chunks.len(), 1);
        assert!(!chunks[0].2, "{chunks:?}");
    }

    #[test]
    fn a_key_in_the_tail_keeps_its_later_lines_there_when_its_entity_comes_back() {
        // 0200.000.043's key comes twice in its run (the second line to the tail), then again
        // after 0200.000.097's line: that last line goes to the tail too, after the second, so
        // that it is still the last of its key once the tail is applied after the main file.
        let (a1, a2, b, a3) = (
            "\"0200.000.043\",\"003\",\"2008\",\"73402\",\"MAIN\"",
            "0200.000.043,003,2008,73402,MAIN",
            "\"0200.000.097\",\"001\",\"2008\",\"1\",\"SECO\"",
            "0200.000.043,\"003\",2008,\"73402\",MAIN",
        );
        let text = format!("{ACTIVITY_HEADER}{a1}\n{a2}\n{b}\n{a3}\n");
        let chunks = cut(
            Member::Full(Table::Activity),
            text.as_bytes(),
            Cut::Chunks(10),
        );
        assert_eq!(
            chunks,
            [(
                format!("{ACTIVITY_HEADER}{a1}\n{b}\n"),
                Some((format!("{ACTIVITY_HEADER}{a2}\n{a3}\n"), vec![3, 5])),
                false
            )]
        );
    }

    #[test]
    fn the_chunk_knows_the_line_numbers_of_its_main_file() {
        let chunk = Chunk {
            file: "activity.1.csv".into(),
            first_line: 10,
            lines: 6,
            blank: 0,
            any_order: true,
            tail: Some(Tail {
                file: "activity.1.tail.csv".into(),
                lines: vec![11, 13],
                seal: None,
            }),
            seal: None,
        };
        let lines: Vec<u64> = (1..=4).map(|n| chunk.main_line(n)).collect();
        assert_eq!(lines, [10, 12, 14, 15]);
    }

    #[test]
    fn empty_lines_are_counted_apart_as_duckdb_skips_them() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{ACTIVITY_HEADER}\"0200.000.043\",\"003\",\"2008\",\"73402\",\"MAIN\"\n\r\n\n\"0200.000.097\",\"001\",\"2008\",\"1\",\"SECO\"\n\n"
        );
        let mut writer =
            ChunkWriter::new(dir.path(), Member::Insert(Table::Activity), Cut::Chunks(10));
        writer.write_all(text.as_bytes()).unwrap();
        let (_, chunks) = writer.finish().unwrap();
        // DuckDB's reader skips them (`db::csv`'s test holds it to that).
        assert_eq!(
            (chunks[0].lines, chunks[0].blank, chunks[0].rows()),
            (5, 3, 2)
        );
    }

    #[test]
    fn names_of_one_kind_and_language_keep_their_order() {
        // A denomination's id ends in a digest of the name: two names of one entity, type and
        // language may share it, so the later one goes to the tail.
        let header = "\"EntityNumber\",\"Language\",\"TypeOfDenomination\",\"Denomination\"\n";
        let text = format!(
            "{header}\"0200.000.043\",\"2\",\"001\",\"A, \"\"B\"\"\"\n\"0200.000.043\",\"2\",\"001\",\"C\"\n"
        );
        let chunks = cut(
            Member::Full(Table::Denomination),
            text.as_bytes(),
            Cut::Chunks(10),
        );
        assert_eq!(chunks[0].1.as_ref().map(|t| t.1.clone()), Some(vec![3]));
        // An Update's files and whole files are cut as they come.
        let chunks = cut(
            Member::Insert(Table::Denomination),
            text.as_bytes(),
            Cut::Chunks(10),
        );
        assert_eq!(chunks[0].1, None);
        assert!(!chunks[0].2);
        let chunks = cut(
            Member::Full(Table::Denomination),
            text.as_bytes(),
            Cut::Whole,
        );
        assert_eq!((chunks[0].1.clone(), chunks[0].2), (None, false));
    }
}
