//! Test and benchmark support for kbo-import, kept out of the service's library (a deployment
//! never builds it):
//!
//! - [`generator`]: realistic synthetic KBO extracts (Full, Update, the next Full), from a seed;
//! - [`restate`]: a real Restate server on free loopback ports and killable child processes,
//!   shared by the end-to-end tests (`tests/suite/harness.rs`) and the benchmark;
//! - [`cluster`]: a real three-node replicated Restate cluster, its nodes killed, paused and
//!   restarted, its partitions' leaders read with `restatectl`;
//! - [`bench`](mod@bench): `kbo-testkit bench`, the Full against DuckDB alone and the daily Update;
//! - [`tools`]: the pinned Restate binaries the project installs with npm.

pub mod bench;
pub mod cluster;
pub mod generator;
pub mod restate;
pub mod tools;
