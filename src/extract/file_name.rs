//! The portal's extract file names: `KboOpenData_<extract>_<yyyy>_<mm>[_<dd>]_<Full|Update>.zip`.

use super::meta::{ExtractType, Meta};
use std::fmt;

/// What an extract's file name says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractFileName {
    /// The extract number.
    pub extract_number: u32,
    /// Year, month and (for updates and some fulls) day in the name.
    pub year: u16,
    /// Month in the name.
    pub month: u8,
    /// Day in the name, when present.
    pub day: Option<u8>,
    /// Full or Update.
    pub kind: ExtractType,
}

impl ExtractFileName {
    /// Parses a file name, or the last path segment of a URL.
    pub fn parse(name_or_url: &str) -> Option<ExtractFileName> {
        let name = name_or_url.split(['?', '#']).next()?.rsplit('/').next()?;
        let stem = name.strip_prefix("KboOpenData_")?.strip_suffix(".zip")?;
        let parts: Vec<&str> = stem.split('_').collect();
        let (kind, numbers) = parts.split_last()?;
        let kind = match *kind {
            "Full" => ExtractType::Full,
            "Update" => ExtractType::Update,
            _ => return None,
        };
        let digits = |s: &str, len: usize| {
            (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u32>().ok())
                .flatten()
        };
        let (extract, year, month, day) = match numbers {
            [e, y, m] => (e, y, m, None),
            [e, y, m, d] => (e, y, m, Some(digits(d, 2)? as u8)),
            _ => return None,
        };
        if kind == ExtractType::Update && day.is_none() {
            return None;
        }
        Some(ExtractFileName {
            extract_number: digits(extract, 4)?,
            year: digits(year, 4)? as u16,
            month: digits(month, 2)? as u8,
            day,
            kind,
        })
    }

    /// A workflow id for importing this extract: the same extract always gets the same id.
    pub fn workflow_id(&self) -> String {
        format!("kbo-{:04}-{}", self.extract_number, self.kind)
    }
}

impl ExtractFileName {
    /// Why `meta` (what the extract says of itself) disagrees with this name, if it does: the
    /// extract number and type must be the same, and the snapshot date must lie within a
    /// month of the name's year and month (the name carries the publication day, the snapshot
    /// the day before or so).
    pub fn disagreement(&self, meta: &Meta) -> Option<String> {
        let months = |year: u16, month: u8| i32::from(year) * 12 + i32::from(month);
        let says = if meta.extract_number != self.extract_number {
            format!("extract {}", meta.extract_number)
        } else if meta.extract_type != self.kind {
            format!("a {} extract", meta.extract_type)
        } else if (months(meta.snapshot_date.year, meta.snapshot_date.month)
            - months(self.year, self.month))
        .abs()
            > 1
        {
            format!("snapshot date {}", meta.snapshot_date.kbo())
        } else {
            return None;
        };
        Some(format!(
            "the file is named {self} (extract {}, {}, {:04}-{:02}), but its meta.csv says {says}: \
             the file is not the extract its name promises; get the right file",
            self.extract_number, self.kind, self.year, self.month
        ))
    }
}

impl fmt::Display for ExtractFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KboOpenData_{:04}_{:04}_{:02}",
            self.extract_number, self.year, self.month
        )?;
        if let Some(day) = self.day {
            write!(f, "_{day:02}")?;
        }
        let kind = match self.kind {
            ExtractType::Full => "Full",
            ExtractType::Update => "Update",
        };
        write!(f, "_{kind}.zip")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_portal_names_and_urls() {
        let u =
            ExtractFileName::parse("https://x/files/KboOpenData_0140_2025_10_05_Update.zip?a=1")
                .unwrap();
        assert_eq!(
            (u.extract_number, u.year, u.month, u.day, u.kind),
            (140, 2025, 10, Some(5), ExtractType::Update)
        );
        assert_eq!(u.to_string(), "KboOpenData_0140_2025_10_05_Update.zip");
        assert_eq!(u.workflow_id(), "kbo-0140-update");
        let f = ExtractFileName::parse("KboOpenData_0139_2025_10_Full.zip").unwrap();
        assert_eq!(
            (f.extract_number, f.day, f.kind),
            (139, None, ExtractType::Full)
        );
        assert_eq!(f.to_string(), "KboOpenData_0139_2025_10_Full.zip");
    }

    #[test]
    fn a_name_must_agree_with_meta_csv() {
        use crate::extract::date::{Date, Timestamp};
        let name = ExtractFileName::parse("KboOpenData_0140_2025_10_Full.zip").unwrap();
        let date = Date::new(2025, 10, 4).unwrap();
        let mut meta = Meta {
            snapshot_date: date,
            extract_timestamp: Timestamp {
                date,
                hour: 1,
                minute: 2,
                second: 3,
            },
            extract_type: ExtractType::Full,
            extract_number: 140,
            version: "1.0.0".into(),
        };
        assert_eq!(name.disagreement(&meta), None);
        meta.snapshot_date = Date::new(2025, 9, 30).unwrap();
        assert_eq!(name.disagreement(&meta), None, "a day across a month's end");
        meta.extract_number = 2147483647;
        let why = name.disagreement(&meta).unwrap();
        assert!(why.contains("extract 2147483647"), "{why}");
        meta.extract_number = 140;
        meta.extract_type = ExtractType::Update;
        assert!(name.disagreement(&meta).unwrap().contains("update"));
        meta.extract_type = ExtractType::Full;
        meta.snapshot_date = Date::new(2031, 10, 4).unwrap();
        assert!(name.disagreement(&meta).unwrap().contains("04-10-2031"));
    }

    #[test]
    fn refuses_other_names() {
        for name in [
            "KboOpenData_0140_2025_10_Update.zip",
            "KboOpenData_140_2025_10_05_Full.zip",
            "Kbo_0140_2025_10_05_Full.zip",
            "KboOpenData_0140_2025_10_05_Full.tar",
        ] {
            assert_eq!(ExtractFileName::parse(name), None, "{name}");
        }
    }
}
