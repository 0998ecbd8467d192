//! kbo-import: imports the Belgian company register (KBO Open Data) into DuckDB or MotherDuck
//! as a durable Restate workflow.
//!
//! Layers, top to bottom:
//! - [`workflow`]: the `KboImport` workflow, orchestration only;
//! - [`importer`]: the work of each step;
//! - [`extract`]: KBO extract knowledge (ZIP, `meta.csv`, CSV dialect, tables), pure code;
//! - [`db`]: DuckDB behind a few functions (schema, staging, batches, finalize, ledger);
//! - [`sync`]: the `KboSync` object, keeping the register current from the [`portal`] by itself;
//! - [`download`], [`plan`]: fetching extracts, cutting them into batches; [`blob`]: deleting
//!   the old app's uploaded extract once imported;
//! - [`generator`]: realistic synthetic extracts for tests, demos and benchmarks;
//! - [`config`], [`telemetry`], [`server`], [`clock`]: how the service is set up and served;
//!   [`redact`]: secrets kept out of every message;
//! - [`client`]: Restate ingress and admin calls for the operator's commands; [`bench`]: the
//!   benchmark; [`tools`]: the pinned Restate binaries.

pub mod bench;
pub mod blob;
pub mod client;
pub mod clock;
pub mod config;
pub mod db;
pub mod download;
pub mod error;
pub mod extract;
pub mod generator;
pub mod importer;
pub mod portal;
pub mod redact;
pub mod retry;
pub mod server;
pub mod sync;
pub mod telemetry;
pub mod tools;
pub mod wire;
pub mod workflow;
