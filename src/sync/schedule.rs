//! When `KboSync` runs by itself: daily at a time of day (UTC), or at a fixed interval.
//!
//! Pure code: the workflow asks for the delay until the next run from a journaled "now", and
//! re-arms itself with a Restate delayed call of that length.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A sync schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Schedule {
    /// Every day at `hour:minute` UTC (KBO publishes each day's update early in the morning).
    DailyAt {
        /// 0 to 23.
        hour: u8,
        /// 0 to 59.
        minute: u8,
    },
    /// Every `seconds` seconds (for tests, or for catching up more often than daily).
    Every {
        /// At least 1.
        seconds: u64,
    },
}

impl Schedule {
    /// Parses `HH:MM` (UTC).
    pub fn daily_at(text: &str) -> Result<Schedule, &'static str> {
        const EXPECTED: &str = "a time of day HH:MM (UTC), e.g. 07:00";
        let (h, m) = text.trim().split_once(':').ok_or(EXPECTED)?;
        let number = |s: &str, max: u8| {
            (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u8>().ok())
                .flatten()
                .filter(|n| *n <= max)
                .ok_or(EXPECTED)
        };
        Ok(Schedule::DailyAt {
            hour: number(h, 23)?,
            minute: number(m, 59)?,
        })
    }

    /// Parses an interval: a whole number with a unit, `s`, `m`, `h` or `d` (`90s`, `15m`, `6h`).
    pub fn every(text: &str) -> Result<Schedule, &'static str> {
        const EXPECTED: &str = "an interval such as 90s, 15m, 6h or 1d";
        let text = text.trim();
        let unit_at = text.find(|c: char| !c.is_ascii_digit()).ok_or(EXPECTED)?;
        let (number, unit) = text.split_at(unit_at);
        let number: u64 = number.parse().map_err(|_| EXPECTED)?;
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(EXPECTED),
        };
        match number.checked_mul(scale) {
            Some(seconds) if seconds > 0 => Ok(Schedule::Every { seconds }),
            _ => Err(EXPECTED),
        }
    }

    /// Seconds from `now` (Unix seconds) until the next run; never zero, so that a run that
    /// ends within its own minute does not fire again at once.
    pub fn seconds_until_next(&self, now: u64) -> u64 {
        match *self {
            Schedule::Every { seconds } => seconds.max(1),
            Schedule::DailyAt { hour, minute } => {
                let target = u64::from(hour) * 3600 + u64::from(minute) * 60;
                let today = now % 86_400;
                if target > today {
                    target - today
                } else {
                    86_400 - today + target
                }
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Schedule::DailyAt { hour, minute } => write!(f, "daily at {hour:02}:{minute:02} UTC"),
            Schedule::Every { seconds } if seconds % 86_400 == 0 => {
                write!(f, "every {}d", seconds / 86_400)
            }
            Schedule::Every { seconds } if seconds % 3600 == 0 => {
                write!(f, "every {}h", seconds / 3600)
            }
            Schedule::Every { seconds } if seconds % 60 == 0 => {
                write!(f, "every {}m", seconds / 60)
            }
            Schedule::Every { seconds } => write!(f, "every {seconds}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times_of_day_and_intervals() {
        assert_eq!(
            Schedule::daily_at("06:30").unwrap(),
            Schedule::DailyAt {
                hour: 6,
                minute: 30
            }
        );
        for bad in ["6:30", "24:00", "12:60", "noon", "12-30", ""] {
            assert!(Schedule::daily_at(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Schedule::every("90s").unwrap(),
            Schedule::Every { seconds: 90 }
        );
        assert_eq!(
            Schedule::every("15m").unwrap(),
            Schedule::Every { seconds: 900 }
        );
        assert_eq!(
            Schedule::every("1d").unwrap(),
            Schedule::Every { seconds: 86_400 }
        );
        for bad in ["0s", "15", "m", "1w", "-5s", "1.5h"] {
            assert!(Schedule::every(bad).is_err(), "{bad}");
        }
        assert_eq!(Schedule::every("120m").unwrap().to_string(), "every 2h");
        assert_eq!(Schedule::every("90s").unwrap().to_string(), "every 90s");
    }

    #[test]
    fn the_daily_run_is_the_next_occurrence_of_its_time() {
        let at_seven = Schedule::daily_at("07:00").unwrap();
        let day = 20_000 * 86_400; // some midnight UTC
        assert_eq!(at_seven.seconds_until_next(day), 7 * 3600);
        assert_eq!(at_seven.seconds_until_next(day + 6 * 3600 + 59 * 60), 60);
        // At 07:00 exactly, or after it, the next run is tomorrow.
        assert_eq!(at_seven.seconds_until_next(day + 7 * 3600), 86_400);
        assert_eq!(at_seven.seconds_until_next(day + 8 * 3600), 23 * 3600);
        assert_eq!(Schedule::every("90s").unwrap().seconds_until_next(day), 90);
    }
}
