//! End-to-end and integration tests: one test binary (each links DuckDB, and links are slow),
//! against a real Restate server on loopback and the real service binary.

mod certs;
mod changes;
mod cli;
mod cloud;
mod cluster;
mod docs;
mod dropin;
mod existing;
mod faults;
mod feed;
mod fixtures;
mod floor;
mod gateway;
mod guarantees;
mod harness;
mod hostile;
mod http_server;
mod image;
mod import;
mod keepalive;
mod layers;
mod malformed;
mod motherduck;
mod portal_server;
mod receiver;
mod recovery;
mod states;
mod statuses;
mod sync;
mod tables;
mod torn;
mod upgrade;
mod verify;
