//! The service's wire types: what its handlers take and answer, as JSON. The service (the
//! workflow and the sync object) and the operator's client ([`crate::client`]) share them.
//!
//! `progress` is `getProgress`'s answer ([`Progress`]), `run` the body `run` takes and its
//! result ([`RunBody`], [`RunResult`]), `changes` `getChanges`' question and answer
//! ([`ChangesQuery`], [`ChangesPage`]), `verify` `KboVerify`'s progress and report
//! ([`VerifyProgress`], [`VerifyReport`]), `sync` `KboSync`'s requests and report, `settings` the
//! Restate settings the service declares ([`DECLARED`]).

mod changes;
mod progress;
mod run;
mod settings;
mod sync;
mod verify;

pub use changes::{
    AffectedEntity, AffectedTable, ChangeSummary, ChangeType, ChangesPage, ChangesQuery,
    EntityFilter, EntityType, MAX_LIMIT,
};
pub use progress::{Progress, Status};
pub use run::{RunBody, RunResult, UrlBody};
pub use settings::{DECLARED, Declared, SHOWN};
pub use sync::{
    Every, ImportedExtract, NoBody, ScheduleBody, ScheduleSpec, Skipped, SyncReport, SyncStatus,
    Trigger, VerifiedExtract,
};
pub use verify::{
    Difference, DifferenceKind, SAMPLES_PER_KIND, TableReport, VerifyProgress, VerifyReport,
    VerifyStatus,
};
