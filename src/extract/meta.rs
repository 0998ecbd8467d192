//! `meta.csv`: what an extract is (kind, number, snapshot date).

use super::date::{Date, Timestamp};
use super::dialect::split_line;
use super::tables::META_COLUMNS;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// The two kinds of extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtractType {
    /// The whole register (monthly).
    Full,
    /// The changes since the previous extract (daily).
    Update,
}

impl ExtractType {
    /// `full` or `update`, as `meta.csv` and the job ledger write it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExtractType::Full => "full",
            ExtractType::Update => "update",
        }
    }
}

impl fmt::Display for ExtractType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The content of `meta.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// SnapshotDate: the day the register was captured.
    pub snapshot_date: Date,
    /// ExtractTimestamp: when the extract was produced.
    pub extract_timestamp: Timestamp,
    /// ExtractType.
    pub extract_type: ExtractType,
    /// ExtractNumber: strictly increasing across extracts.
    pub extract_number: u32,
    /// Version of the format (e.g. `1.0.0`).
    pub version: String,
}

/// Why `meta.csv` was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MetaError {
    /// The file is empty or its header is not `Variable,Value`.
    #[error("meta.csv: the header must be \"Variable,Value\", found {0:?}")]
    Header(String),
    /// A line is not CSV or does not have two values.
    #[error("meta.csv line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A required variable is absent.
    #[error("meta.csv has no {0} row")]
    Missing(&'static str),
    /// A variable has a value that cannot be used.
    #[error("meta.csv: {variable} {value:?} is not valid: {expected}")]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// Its value as found.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

impl Meta {
    /// Parses the text of `meta.csv`.
    pub fn parse(text: &str) -> Result<Meta, MetaError> {
        let mut lines = text.lines().enumerate();
        let header = lines.next().map(|(_, l)| l).unwrap_or("");
        let header_values = split_line(header).map_err(|_| MetaError::Header(header.into()))?;
        if header_values
            .iter()
            .map(|v| v.as_deref().unwrap_or(""))
            .ne(META_COLUMNS.iter().copied())
        {
            return Err(MetaError::Header(
                header.trim_start_matches('\u{feff}').into(),
            ));
        }
        let mut vars: Vec<(String, String)> = Vec::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let values = split_line(line).map_err(|e| MetaError::Line {
                line: i + 1,
                reason: e.to_string(),
            })?;
            match values.as_slice() {
                [Some(k), v] => vars.push((k.clone(), v.clone().unwrap_or_default())),
                _ => {
                    return Err(MetaError::Line {
                        line: i + 1,
                        reason: format!(
                            "expected a variable and a value, found {} values",
                            values.len()
                        ),
                    });
                }
            }
        }
        let get = |name: &'static str| -> Result<&str, MetaError> {
            vars.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
                .ok_or(MetaError::Missing(name))
        };
        let invalid = |variable, value: &str, expected| MetaError::Invalid {
            variable,
            value: value.to_string(),
            expected,
        };

        let v = get("SnapshotDate")?;
        let snapshot_date =
            Date::parse_kbo(v).ok_or_else(|| invalid("SnapshotDate", v, "a dd-mm-yyyy date"))?;
        let v = get("ExtractTimestamp")?;
        let extract_timestamp = Timestamp::parse_kbo(v)
            .ok_or_else(|| invalid("ExtractTimestamp", v, "a dd-mm-yyyy HH:MM:SS timestamp"))?;
        let v = get("ExtractType")?;
        let extract_type = match v.to_ascii_lowercase().as_str() {
            "full" => ExtractType::Full,
            "update" => ExtractType::Update,
            _ => return Err(invalid("ExtractType", v, "\"full\" or \"update\"")),
        };
        let v = get("ExtractNumber")?;
        let extract_number = v
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0 && *n <= i32::MAX as u32)
            .ok_or_else(|| invalid("ExtractNumber", v, "a positive whole number"))?;
        let version = get("Version").unwrap_or("").to_string();
        Ok(Meta {
            snapshot_date,
            extract_timestamp,
            extract_type,
            extract_number,
            version,
        })
    }

    /// The text of a `meta.csv` for this extract, in the dialect of real extracts.
    pub fn to_csv(&self) -> String {
        format!(
            "\"Variable\",\"Value\"\r\n\"SnapshotDate\",\"{}\"\r\n\"ExtractTimestamp\",\"{}\"\r\n\"ExtractType\",\"{}\"\r\n\"ExtractNumber\",\"{}\"\r\n\"Version\",\"{}\"\r\n",
            self.snapshot_date.kbo(),
            self.extract_timestamp.kbo(),
            self.extract_type,
            self.extract_number,
            self.version
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "\u{feff}\"Variable\",\"Value\"\r\n\"SnapshotDate\",\"04-10-2025\"\r\n\"ExtractTimestamp\",\"05-10-2025 07:31:02\"\r\n\"ExtractType\",\"update\"\r\n\"ExtractNumber\",\"0140\"\r\n\"Version\",\"1.0.0\"\r\n";

    #[test]
    fn parses_a_real_meta_file() {
        let meta = Meta::parse(REAL).unwrap();
        assert_eq!(meta.extract_number, 140);
        assert_eq!(meta.extract_type, ExtractType::Update);
        assert_eq!(meta.snapshot_date.iso(), "2025-10-04");
        assert_eq!(meta.extract_timestamp.iso(), "2025-10-05 07:31:02");
        assert_eq!(Meta::parse(&meta.to_csv()).unwrap(), meta);
    }

    #[test]
    fn refuses_what_cannot_be_imported() {
        let with = |from: &str, to: &str| Meta::parse(&REAL.replace(from, to)).unwrap_err();
        assert!(matches!(
            with("\"update\"", "\"delta\""),
            MetaError::Invalid {
                variable: "ExtractType",
                ..
            }
        ));
        assert!(matches!(
            with("\"0140\"", "\"14O\""),
            MetaError::Invalid {
                variable: "ExtractNumber",
                ..
            }
        ));
        assert!(matches!(
            with("\"04-10-2025\"", "\"2025-10-04\""),
            MetaError::Invalid {
                variable: "SnapshotDate",
                ..
            }
        ));
        assert_eq!(
            with("\"SnapshotDate\",\"04-10-2025\"\r\n", ""),
            MetaError::Missing("SnapshotDate")
        );
        assert!(matches!(
            with("\"Variable\",\"Value\"", "\"Name\",\"Value\""),
            MetaError::Header(_)
        ));
        assert!(matches!(Meta::parse(""), Err(MetaError::Header(_))));
    }
}
