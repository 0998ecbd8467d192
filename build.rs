//! Links DuckDB's release library (build/duckdb.rs), and turns the live MotherDuck test on when
//! `KBO_TEST_MOTHERDUCK_TOKEN` is set at build time; without it the test is reported as ignored,
//! with the reason (`tests/suite/motherduck.rs`).

#[path = "build/duckdb.rs"]
mod duckdb;

fn main() {
    duckdb::link_prebuilt_duckdb();
    println!("cargo::rustc-check-cfg=cfg(kbo_motherduck_live)");
    println!("cargo::rerun-if-env-changed=KBO_TEST_MOTHERDUCK_TOKEN");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=build/duckdb.rs");
    if std::env::var_os("KBO_TEST_MOTHERDUCK_TOKEN").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=kbo_motherduck_live");
    }
}
