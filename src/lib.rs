//! kbo-import: imports the Belgian company register (KBO Open Data) into DuckDB or MotherDuck
//! as a durable Restate workflow. `docs/architecture.md` draws the layers; from the bottom:
//!
//! - [`error`], [`redact`], [`clock`], [`telemetry`]: foundations;
//! - [`extract`]: KBO extract knowledge (ZIP, `meta.csv`, CSV dialect, tables, batches), pure;
//! - [`wire`]: what the handlers take and answer, shared with [`client`];
//! - [`db`]: DuckDB behind a few functions; [`net`]: the network policy and HTTP clients;
//!   [`download`], [`portal`], [`blob`], [`client`]:
//!   extract URLs, the KBO portal, the old app's uploads, Restate's ingress and admin APIs;
//! - [`importer`]: the work of each step; [`retry`]: how often a step is tried;
//! - [`workflow`]: the `KboImport` workflow; [`sync`]: the `KboSync` object;
//! - [`config`], [`server`], [`connections`], [`tls`]: settings from the environment, the
//!   Restate endpoint, its HTTP/2 connections (with keep-alive pings), TLS when configured.
//!
//! "The old app" in comments is stevenn/NewAgeKBO, whose import this service replaces and
//! whose web application reads the register (`docs/old-app.md`); the input is described in
//! `docs/format.md`, the tables in `docs/contract.md`.
//!
//! Test and benchmark support (the extract generator, the benchmark, the Restate harness) is
//! the workspace crate `kbo-testkit` (`testkit/`).

pub mod blob;
pub mod client;
pub mod clock;
pub mod config;
pub mod connections;
pub mod db;
pub mod download;
pub mod error;
pub mod extract;
pub mod feed;
pub mod importer;
pub mod net;
pub mod portal;
pub mod redact;
pub mod retry;
pub mod server;
mod spelled;
pub mod sync;
pub mod telemetry;
pub mod tls;
pub mod wire;
pub mod workflow;
