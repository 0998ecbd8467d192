//! KBO dates (`dd-mm-yyyy`) and timestamps (`dd-mm-yyyy HH:MM:SS`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A calendar date, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Date {
    /// Year, 1000..=9999.
    pub year: u16,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of the month.
    pub day: u8,
}

impl Date {
    /// A date, if it exists in the calendar.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        let valid = (1000..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        valid.then_some(Date { year, month, day })
    }

    /// Parses the KBO form `dd-mm-yyyy`.
    pub fn parse_kbo(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[2] != b'-' || b[5] != b'-' {
            return None;
        }
        Date::new(num(&s[6..10])?, num(&s[3..5])?, num(&s[0..2])?)
    }

    /// The KBO form `dd-mm-yyyy`.
    pub fn kbo(&self) -> String {
        format!("{:02}-{:02}-{:04}", self.day, self.month, self.year)
    }

    /// The ISO form `yyyy-mm-dd`, as databases take it.
    pub fn iso(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// The day after this one.
    pub fn next_day(&self) -> Date {
        if self.day < days_in_month(self.year, self.month) {
            Date {
                day: self.day + 1,
                ..*self
            }
        } else if self.month < 12 {
            Date {
                month: self.month + 1,
                day: 1,
                ..*self
            }
        } else {
            Date {
                year: self.year + 1,
                month: 1,
                day: 1,
            }
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso())
    }
}

/// A date and a time of day, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    /// The date.
    pub date: Date,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=59.
    pub second: u8,
}

impl Timestamp {
    /// Parses the KBO form `dd-mm-yyyy HH:MM:SS`.
    pub fn parse_kbo(s: &str) -> Option<Timestamp> {
        let (date, time) = s.split_once(' ')?;
        let date = Date::parse_kbo(date)?;
        let b = time.as_bytes();
        if b.len() != 8 || b[2] != b':' || b[5] != b':' {
            return None;
        }
        let (hour, minute, second) = (num(&time[0..2])?, num(&time[3..5])?, num(&time[6..8])?);
        (hour < 24 && minute < 60 && second < 60).then_some(Timestamp {
            date,
            hour,
            minute,
            second,
        })
    }

    /// The KBO form `dd-mm-yyyy HH:MM:SS`.
    pub fn kbo(&self) -> String {
        format!(
            "{} {:02}:{:02}:{:02}",
            self.date.kbo(),
            self.hour,
            self.minute,
            self.second
        )
    }

    /// The ISO form `yyyy-mm-dd HH:MM:SS`.
    pub fn iso(&self) -> String {
        format!(
            "{} {:02}:{:02}:{:02}",
            self.date.iso(),
            self.hour,
            self.minute,
            self.second
        )
    }
}

fn num<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kbo_dates_and_refuses_impossible_ones() {
        assert_eq!(Date::parse_kbo("01-01-1922"), Date::new(1922, 1, 1));
        assert_eq!(
            Date::parse_kbo("29-02-2024").map(|d| d.iso()),
            Some("2024-02-29".into())
        );
        for bad in [
            "29-02-2023",
            "31-04-2020",
            "2020-01-01",
            "1-1-2020",
            "aa-01-2020",
            "00-01-2020",
            "+1-01-2020",
        ] {
            assert_eq!(Date::parse_kbo(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_timestamps() {
        let ts = Timestamp::parse_kbo("05-10-2025 07:31:02").unwrap();
        assert_eq!(ts.iso(), "2025-10-05 07:31:02");
        assert_eq!(ts.kbo(), "05-10-2025 07:31:02");
        assert_eq!(Timestamp::parse_kbo("05-10-2025 24:00:00"), None);
        assert_eq!(Timestamp::parse_kbo("05-10-2025"), None);
    }

    #[test]
    fn next_day_rolls_over() {
        assert_eq!(
            Date::new(2024, 2, 28).unwrap().next_day(),
            Date::new(2024, 2, 29).unwrap()
        );
        assert_eq!(
            Date::new(2023, 12, 31).unwrap().next_day(),
            Date::new(2024, 1, 1).unwrap()
        );
    }
}
