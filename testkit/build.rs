//! Links DuckDB's release library as the service does (../build/duckdb.rs).

#[path = "../build/duckdb.rs"]
mod duckdb;

fn main() {
    duckdb::link_prebuilt_duckdb();
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=../build/duckdb.rs");
}
