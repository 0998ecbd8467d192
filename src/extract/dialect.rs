//! The CSV dialect of KBO extracts, as it really is (docs/format.md, "The CSV dialect").
//!
//! Bulk rows are read by DuckDB's CSV reader; this module reads the few lines the service
//! needs itself (headers, `meta.csv`) and writes lines for the extract generator.

use thiserror::Error;

/// The UTF-8 byte-order mark some files start with.
pub const BOM: &str = "\u{feff}";

/// A line that is not valid CSV in the KBO dialect.
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

/// Splits one CSV line (without its line end) into values.
///
/// Quoted and unquoted values may be mixed; `""` inside quotes is one quote. An empty value,
/// quoted (`""`) or not (`,,`), is returned as `None`, which is how KBO writes NULL.
/// A leading byte-order mark and a trailing `\r` are ignored.
pub fn split_line(line: &str) -> Result<Vec<Option<String>>, DialectError> {
    let line = line.strip_prefix(BOM).unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut values = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(DialectError::UnclosedQuote),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        value.push('"');
                    }
                    Some('"') => break,
                    Some(c) => value.push(c),
                }
            }
            match chars.next() {
                None => {
                    values.push(non_empty(value));
                    return Ok(values);
                }
                Some(',') => values.push(non_empty(value)),
                Some(c) => return Err(DialectError::AfterQuote(c)),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        values.push(non_empty(value));
                        return Ok(values);
                    }
                    Some(',') => break,
                    Some('"') => return Err(DialectError::StrayQuote),
                    Some(c) => value.push(c),
                }
            }
            values.push(non_empty(value));
        }
    }
}

fn non_empty(value: String) -> Option<String> {
    if value.is_empty() { None } else { Some(value) }
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
    fn quoting_round_trips() {
        let mut out = String::new();
        push_quoted(&mut out, r#"Robert'); DROP TABLE "x";--"#);
        assert_eq!(
            split_line(&out).unwrap(),
            vec![s(r#"Robert'); DROP TABLE "x";--"#)]
        );
    }
}
