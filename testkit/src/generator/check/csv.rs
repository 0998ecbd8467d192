//! The chain check's own reader of the extracts' CSV dialect (docs/format.md): quotes, `""`
//! inside a quoted value, unquoted values, empty and `""` both NULL, a byte-order mark, CRLF.
//! It shares no code with the importer's lexer.

use anyhow::{Context, bail};
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Calls `f` with the header and each record of the CSV member `file` of the ZIP `zip`.
pub(super) fn each_record(
    zip: &Path,
    file: &str,
    mut f: impl FnMut(&[String], &[Option<Cow<'_, str>>]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let what = || format!("{file} in {}", zip.display());
    let archive = File::open(zip).with_context(|| format!("cannot open {}", zip.display()))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(archive))
        .with_context(|| format!("{} is not a readable ZIP file", zip.display()))?;
    let member = archive.by_name(file).with_context(what)?;
    let mut reader = CsvReader::new(BufReader::new(member));
    let header: Vec<String> = reader
        .next_record()
        .with_context(what)?
        .with_context(|| format!("{} has no header line", what()))?
        .1
        .into_iter()
        .map(|name| name.unwrap_or_default().into_owned())
        .collect();
    while let Some((line, record)) = reader.next_record().with_context(what)? {
        if record.len() != header.len() {
            bail!(
                "line {line} of {} has {} values for {} columns",
                what(),
                record.len(),
                header.len()
            );
        }
        f(&header, &record).with_context(|| format!("line {line} of {}", what()))?;
    }
    Ok(())
}

/// A reader of the extracts' CSV dialect: one record at a time, values `None` for NULL.
struct CsvReader<R> {
    input: R,
    /// The number of the last physical line read (1 = the header).
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> CsvReader<R> {
    fn new(input: R) -> CsvReader<R> {
        CsvReader {
            input,
            line: 0,
            buf: Vec::new(),
        }
    }

    /// The next record and the number of its last line, reading on while a quoted value spans a line end; empty lines skipped.
    fn next_record(&mut self) -> anyhow::Result<Option<(u64, Record<'_>)>> {
        let (start, end) = loop {
            self.buf.clear();
            loop {
                let read = self.input.read_until(b'\n', &mut self.buf)?;
                if read == 0 && self.buf.is_empty() {
                    return Ok(None);
                }
                self.line += 1;
                let quotes = self.buf.iter().filter(|b| **b == b'"').count();
                if read == 0 || quotes % 2 == 0 {
                    break;
                }
            }
            let start = if self.line == 1 && self.buf.starts_with(b"\xef\xbb\xbf") {
                3
            } else {
                0
            };
            let mut end = self.buf.len();
            for ending in [b'\n', b'\r'] {
                if end > start && self.buf[end - 1] == ending {
                    end -= 1;
                }
            }
            if end > start {
                break (start, end);
            }
        };
        let line = self.line;
        let text = std::str::from_utf8(&self.buf[start..end])
            .with_context(|| format!("line {line} is not UTF-8"))?;
        let record = parse_record(text).map_err(|e| anyhow::anyhow!("line {line}: {e}"))?;
        Ok(Some((line, record)))
    }
}

/// One record's values, borrowed from the line where no `""` had to be undone; `None` is NULL.
pub(super) type Record<'a> = Vec<Option<Cow<'a, str>>>;

/// Splits one record into values: quoted (`""` for a quote) or not; empty or `""` is NULL.
fn parse_record(text: &str) -> Result<Record<'_>, String> {
    let mut values = Vec::new();
    let mut rest = text;
    loop {
        let value: Cow<'_, str>;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut unquoted: Option<String> = None;
            let mut from = 0;
            loop {
                let Some(q) = quoted[from..].find('"').map(|q| from + q) else {
                    return Err("a quoted value is not closed".into());
                };
                if quoted[q + 1..].starts_with('"') {
                    // `""` inside a quoted value: keep one quote.
                    unquoted
                        .get_or_insert_with(String::new)
                        .push_str(&quoted[from..=q]);
                    from = q + 2;
                    continue;
                }
                value = match unquoted.take() {
                    Some(mut s) => {
                        s.push_str(&quoted[from..q]);
                        Cow::Owned(s)
                    }
                    None => Cow::Borrowed(&quoted[..q]),
                };
                rest = &quoted[q + 1..];
                break;
            }
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            if rest[..end].contains('"') {
                return Err("a quote inside an unquoted value".into());
            }
            value = Cow::Borrowed(&rest[..end]);
            rest = &rest[end..];
        }
        values.push((!value.is_empty()).then_some(value));
        match rest.chars().next() {
            None => return Ok(values),
            Some(',') => rest = &rest[1..],
            Some(c) => return Err(format!("{c:?} after a quoted value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(record: Record<'_>) -> Vec<Option<String>> {
        record.into_iter().map(|v| v.map(Cow::into_owned)).collect()
    }

    #[test]
    fn the_dialect_is_read_as_docs_format_md_says() {
        assert_eq!(
            owned(parse_record(r#""a ""b"", c",,"",01-01-2020,"""#).unwrap()),
            vec![
                Some("a \"b\", c".to_string()),
                None,
                None,
                Some("01-01-2020".into()),
                None
            ]
        );
        assert!(parse_record(r#""open"#).is_err());
        assert!(parse_record(r#""a"b"#).is_err());
        let text = "\u{feff}\"A\",B\r\n\"x\ny\",\"\"\r\n\r\n1,\n";
        let mut reader = CsvReader::new(text.as_bytes());
        let mut records = Vec::new();
        while let Some((_, record)) = reader.next_record().unwrap() {
            records.push(owned(record));
        }
        assert_eq!(
            records,
            vec![
                vec![Some("A".to_string()), Some("B".into())],
                vec![Some("x\ny".to_string()), None],
                vec![Some("1".to_string()), None],
            ]
        );
    }
}
