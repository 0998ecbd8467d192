//! Knowledge of KBO Open Data extracts (docs/format.md): pure code, no database and no network.
//!
//! - [`tables`]: the seven data tables and the CSV members that carry them;
//! - [`dialect`]: the CSV dialect as real extracts write it;
//! - [`date`]: `dd-mm-yyyy` dates;
//! - [`meta`]: `meta.csv`, which says what an extract is;
//! - [`number`]: enterprise numbers as people write them, checked (mod 97);
//! - [`archive`]: opening the ZIP safely and checking its members;
//! - [`chunker`]: cutting a data member into chunk files of whole lines on the way out of the
//!   ZIP (a line whose key came before goes to the chunk's tail), with `keys`, the lines' key
//!   fingerprints;
//! - [`sealed`]: files that are whole or absent (written aside, flushed, renamed into place)
//!   and the seal that proves a file on disk is the one written;
//! - [`order`]: which extract may follow which;
//! - [`plan`]: the batches of an import, typed steps, and the Update's rule;
//! - [`file_name`]: the portal's file names (`KboOpenData_0140_2025_10_05_Update.zip`).

pub mod archive;
pub mod chunker;
pub mod date;
pub mod dialect;
pub mod file_name;
mod keys;
pub mod meta;
pub mod number;
pub mod order;
pub mod plan;
pub mod sealed;
pub mod tables;

pub use archive::{Limits, Unpacked};
pub use chunker::Cut;
pub use meta::{ExtractType, Meta};
pub use tables::{Member, Table};
