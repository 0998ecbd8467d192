//! The service's wire types: what its handlers take and answer, as JSON. The service (the
//! workflow and the sync object) and the operator's client ([`crate::client`]) share them.

mod progress;
mod run;
mod sync;

pub use progress::{Progress, Status};
pub use run::{RunBody, RunResult, UrlBody};
pub use sync::{
    Every, ImportedExtract, NoBody, ScheduleBody, ScheduleSpec, Skipped, SyncReport, SyncStatus,
};
