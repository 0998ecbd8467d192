//! The `KboSync` object's bodies and answers.

use crate::extract::ExtractType;
use serde::{Deserialize, Serialize};

crate::spelled::spelled_enum! {
    /// What started a sync.
    #[derive(Default)]
    pub enum Trigger {
        /// The operator, through `syncNow` (`kbo-import sync now`).
        #[default]
        Manual => "manual",
        /// The object's own schedule.
        Schedule => "schedule",
    }
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// What started it.
    pub trigger: Trigger,
    /// When it started (UTC).
    pub started_at: String,
    /// When it ended (UTC); `None` while it runs.
    pub finished_at: Option<String>,
    /// The extract the register was at before (none: empty).
    pub register_before: Option<u32>,
    /// The extract the register is at after.
    pub register_after: Option<u32>,
    /// The extract files the portal listed.
    pub listed: Vec<String>,
    /// The extracts imported, in order.
    pub imported: Vec<ImportedExtract>,
    /// The `KboImport` workflow under way (follow it with `kbo-import watch <id>`), while the
    /// sync runs.
    pub importing: Option<String>,
    /// Listed extracts not imported, and why.
    pub skipped: Vec<Skipped>,
    /// What the operator should know about the path taken (a restart from a Full).
    pub note: Option<String>,
    /// What went wrong; empty when the register is up to date with the portal.
    pub errors: Vec<String>,
    /// The verification that ended the sync (`KBO_SYNC_VERIFY`), if one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<VerifiedExtract>,
}

/// The verification a sync ran: the register against the portal's Full of its extract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedExtract {
    /// The portal's file name of the Full.
    pub file: String,
    /// The `KboVerify` workflow.
    pub workflow_id: String,
    /// The extract verified.
    pub extract_number: u32,
    /// Rows missing, extra or different (0: the register is right).
    pub differences: u64,
}

/// One extract a sync imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedExtract {
    /// The portal's file name.
    pub file: String,
    /// The `KboImport` workflow that imported it.
    pub workflow_id: String,
    /// Its extract number.
    pub extract_number: u32,
    /// `full` or `update`.
    pub extract_type: ExtractType,
    /// Rows it inserted.
    pub records_inserted: u64,
    /// Rows it retired.
    pub records_deleted: u64,
}

/// What `getStatus`, `schedule` and `pause` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// The schedule, e.g. `daily at 07:00 UTC`; `None` if never scheduled.
    pub schedule: Option<String>,
    /// True when the schedule is armed (scheduled and not paused).
    pub active: bool,
    /// When the next scheduled run fires (UTC).
    pub next_run_at: Option<String>,
    /// How many scheduled runs have fired.
    pub scheduled_runs: u64,
    /// The sync under way, if one is.
    pub running: Option<SyncReport>,
    /// The last finished sync's report.
    pub last_report: Option<SyncReport>,
}

/// A listed extract the sync leaves alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The portal's file name.
    pub file: String,
    /// Why it is not imported.
    pub reason: String,
}

/// The body of `KboSync/<key>/schedule`: none (the service's default), `{"at": "HH:MM"}`
/// (daily, UTC) or `{"every": "90s"}`. Anything else is kept as it came, to be refused with a
/// message saying what to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ScheduleBody {
    /// A schedule by time of day or by interval.
    Spec(ScheduleSpec),
    /// Any other JSON.
    Other(serde_json::Value),
}

/// The object form of [`ScheduleBody`]: exactly one of `at` and `every`. Only a JSON object
/// is read as one (`wire::object_only`): `["07:00"]` is not `{"at": "07:00"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ScheduleSpec {
    /// Daily at this time of day, UTC (`06:30`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Every this long (`90s`, `15m`, `6h`, `1d`, or a number of seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Every>,
}

object_body!(
    ScheduleSpec,
    r#"a JSON object {"at": "HH:MM"} or {"every": "90s"}"#
);

/// An interval: text with a unit, or a bare number of seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Every {
    /// A number of seconds.
    Seconds(u64),
    /// `90s`, `15m`, `6h`, `1d`.
    Text(String),
}

/// The body of a handler that takes none: anything sent (nothing, `null`, an object) is
/// accepted and ignored.
pub type NoBody = serde::de::IgnoredAny;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_is_an_object_and_an_array_is_kept_to_be_refused() {
        let body: ScheduleBody = serde_json::from_str(r#"{"at": "07:00"}"#).unwrap();
        assert_eq!(
            body,
            ScheduleBody::Spec(ScheduleSpec {
                at: Some("07:00".into()),
                every: None
            })
        );
        let body: ScheduleBody = serde_json::from_str(r#"["07:00"]"#).unwrap();
        assert_eq!(body, ScheduleBody::Other(serde_json::json!(["07:00"])));
        let e = serde_json::from_str::<ScheduleSpec>(r#"["07:00"]"#).unwrap_err();
        assert!(e.to_string().contains(r#"{"at": "HH:MM"}"#), "{e}");
    }
}
