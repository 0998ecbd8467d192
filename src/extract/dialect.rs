//! The CSV dialect of KBO extracts, as it really is (docs/format.md, "The CSV dialect"): the
//! one lexer of the service.
//!
//! [`Field`] is where a reader stands within a field, byte by byte, as DuckDB's CSV reader
//! sees it, and [`Field::read`] the one transition: the next state and what the byte is
//! ([`Byte`]). The chunker cuts lines with it, the key fingerprints split values with it and
//! [`split_line`] reads strictly with it; each decides only what to do with a kind of byte. Bulk
//! rows are read by DuckDB; [`split_line`] reads the few lines the service reads itself
//! (headers, `meta.csv`), strictly; [`push_quoted`] writes values for the extract generator.

use thiserror::Error;

/// The UTF-8 byte-order mark some files start with (not part of their first field).
pub const BOM: &str = "\u{feff}";

/// Where the CSV reader stands within a field, as DuckDB's reader sees it: a quote opens a
/// quoted value only at the start of a field (`"O'Brien"`), and is an ordinary character
/// inside an unquoted one (`O"Brien`); inside a quoted value, `""` is a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// At the start of a field (after a comma or a line end).
    Start,
    /// Inside a value that did not start with a quote.
    Unquoted,
    /// Inside a quoted value.
    Quoted,
    /// Just after a quote inside a quoted value: the value's end, or the first of `""`.
    QuoteInQuoted,
}

/// What a byte is, read in a given [`Field`] state: the action each reader takes on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Byte {
    /// A byte of the value (inside quotes, `\r` and line ends too; the second quote of `""`).
    Value,
    /// Quoting, not the value's: an opening quote, a closing one, or the first of `""`.
    Quote,
    /// The comma that ends a field outside quotes.
    FieldEnd,
    /// A `\r` outside quotes: the state stays, the byte is the value's to DuckDB's reader
    /// unless a `\n` follows (a line end, which is the caller's business).
    CarriageReturn,
    /// A byte DuckDB's reader takes as the value's although the dialect has no place for it:
    /// a quote inside an unquoted value (`O"Brien`), or a character after a closing quote. A
    /// strict reader refuses it.
    Loose,
}

impl Field {
    /// The one transition of the lexer: the state after byte `b` and what `b` is (a line end
    /// is the caller's business).
    #[inline]
    pub fn read(self, b: u8) -> (Field, Byte) {
        match (self, b) {
            (Field::Quoted, b'"') => (Field::QuoteInQuoted, Byte::Quote),
            (Field::Quoted, _) => (Field::Quoted, Byte::Value),
            (Field::QuoteInQuoted, b'"') => (Field::Quoted, Byte::Value),
            (Field::Start, b'"') => (Field::Quoted, Byte::Quote),
            (_, b',') => (Field::Start, Byte::FieldEnd),
            (state, b'\r') => (state, Byte::CarriageReturn),
            (Field::QuoteInQuoted, _) | (Field::Unquoted, b'"') => (Field::Unquoted, Byte::Loose),
            _ => (Field::Unquoted, Byte::Value),
        }
    }

    /// The state after byte `b`: [`Field::read`]'s state alone.
    #[inline]
    pub fn next(self, b: u8) -> Field {
        self.read(b).0
    }
}

/// A line that is not valid CSV in the KBO dialect, read strictly.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DialectError {
    /// A quoted value is not closed before the end of the line.
    #[error("a quoted value is not closed")]
    UnclosedQuote,
    /// A quote closes a value but is followed by something other than a comma.
    #[error("unexpected character {0:?} after a closing quote")]
    AfterQuote(char),
    /// A quote appears inside an unquoted value.
    #[error("a quote inside an unquoted value")]
    StrayQuote,
}

/// Splits one CSV line (without its line end) into values, with [`Field`]'s lexing.
///
/// Quoted and unquoted values may be mixed; `""` inside quotes is one quote. An empty value,
/// quoted (`""`) or not (`,,`), is returned as `None`, which is how KBO writes NULL. A leading
/// byte-order mark and a trailing `\r` are ignored.
///
/// Strict where DuckDB and the chunker are lenient: a quote inside an unquoted value
/// (`O"Brien`) and a character after a closing quote are refused, not read as characters. Only
/// headers and `meta.csv` are read this way, and a header or a `meta.csv` line with either
/// cannot be the one a KBO extract has.
pub fn split_line(line: &str) -> Result<Vec<Option<String>>, DialectError> {
    let line = line.strip_prefix(BOM).unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut values = Vec::new();
    let mut value = Vec::new();
    let mut state = Field::Start;
    for (at, &b) in line.as_bytes().iter().enumerate() {
        let (next, byte) = state.read(b);
        match byte {
            Byte::Loose if state == Field::Unquoted => return Err(DialectError::StrayQuote),
            Byte::Loose => {
                let c = line[at..].chars().next().unwrap_or_default();
                return Err(DialectError::AfterQuote(c));
            }
            // A `\r` within a line after a closing quote: a character after it.
            Byte::CarriageReturn if state == Field::QuoteInQuoted => {
                return Err(DialectError::AfterQuote('\r'));
            }
            Byte::Value | Byte::CarriageReturn => value.push(b),
            Byte::Quote => {}
            Byte::FieldEnd => values.push(non_empty(std::mem::take(&mut value))),
        }
        state = next;
    }
    if state == Field::Quoted {
        return Err(DialectError::UnclosedQuote);
    }
    values.push(non_empty(value));
    Ok(values)
}

/// A value as read: `None` when empty. Split at ASCII bytes of a `str`, it is UTF-8.
fn non_empty(value: Vec<u8>) -> Option<String> {
    (!value.is_empty()).then(|| String::from_utf8_lossy(&value).into_owned())
}

/// Appends `value` to `out` quoted, doubling any quote inside it.
pub fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn mixed_quoting_and_nulls() {
        let line = r#""0200.245.711","AC","012","2","116",,01-01-1922"#;
        assert_eq!(
            split_line(line).unwrap(),
            vec![
                s("0200.245.711"),
                s("AC"),
                s("012"),
                s("2"),
                s("116"),
                None,
                s("01-01-1922")
            ]
        );
    }

    #[test]
    fn quoted_empty_is_null_and_trailing_empty_value_counts() {
        assert_eq!(split_line(r#""a","","#).unwrap(), vec![s("a"), None, None]);
    }

    #[test]
    fn quotes_commas_and_accents_inside_values() {
        let line = "\u{feff}\"Bakkerij \"\"De Zon\"\", Chaussée d'Ixelles\",x\r";
        assert_eq!(
            split_line(line).unwrap(),
            vec![s("Bakkerij \"De Zon\", Chaussée d'Ixelles"), s("x")]
        );
    }

    #[test]
    fn broken_lines_are_refused() {
        assert_eq!(split_line(r#""abc"#), Err(DialectError::UnclosedQuote));
        assert_eq!(split_line(r#""abc"d"#), Err(DialectError::AfterQuote('d')));
        assert_eq!(split_line(r#"ab"c"#), Err(DialectError::StrayQuote));
    }

    #[test]
    fn the_strict_reading_and_the_lexer_agree_on_every_well_formed_line() {
        // Where split_line accepts a line, the lexer ends it outside quotes and cuts it at the
        // same commas.
        for line in [
            r#""a","b""c",,d"#,
            r#"x,"y,z""#,
            "\u{feff}\"Variable\",\"Value\"",
        ] {
            let values = split_line(line).unwrap();
            let mut state = Field::Start;
            let mut commas = 0;
            for b in line.trim_start_matches(BOM).bytes() {
                if b == b',' && state != Field::Quoted {
                    commas += 1;
                }
                state = state.next(b);
            }
            assert_ne!(state, Field::Quoted, "{line}");
            assert_eq!(values.len(), commas + 1, "{line}");
        }
        // O"Brien: a character to DuckDB and the lexer, refused by the strict reading.
        assert_eq!(Field::Unquoted.next(b'"'), Field::Unquoted);
        assert_eq!(split_line(r#"O"Brien"#), Err(DialectError::StrayQuote));
        assert_eq!(split_line("\"é\"è"), Err(DialectError::AfterQuote('è')));
    }

    #[test]
    fn the_transition_says_what_each_byte_is() {
        use Byte::*;
        use Field::*;
        let read = |state: Field, text: &str| {
            let mut state = state;
            let mut bytes = Vec::new();
            for b in text.bytes() {
                let (next, byte) = state.read(b);
                bytes.push(byte);
                state = next;
            }
            (state, bytes)
        };
        // "a""b",c
        assert_eq!(
            read(Start, r#""a""b",c"#),
            (
                Unquoted,
                vec![Quote, Value, Quote, Value, Value, Quote, FieldEnd, Value]
            )
        );
        // Inside quotes a comma and a carriage return are the value's.
        assert_eq!(read(Start, "\",\r"), (Quoted, vec![Quote, Value, Value]));
        // Outside, a carriage return keeps the state.
        assert_eq!(
            read(QuoteInQuoted, "\r"),
            (QuoteInQuoted, vec![CarriageReturn])
        );
        // O"Brien and "a"b: loose bytes, read on as an unquoted value.
        assert_eq!(read(Start, r#"O"B"#), (Unquoted, vec![Value, Loose, Value]));
        assert_eq!(
            read(Start, r#""a"b"#),
            (Unquoted, vec![Quote, Value, Quote, Loose])
        );
    }

    #[test]
    fn quoting_round_trips() {
        let mut out = String::new();
        push_quoted(&mut out, r#"Robert'); DROP TABLE "x";--"#);
        assert_eq!(
            split_line(&out).unwrap(),
            vec![s(r#"Robert'); DROP TABLE "x";--"#)]
        );
    }
}
