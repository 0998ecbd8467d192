//! How the workspace's build scripts link DuckDB (shared by `build.rs` and `testkit/build.rs`).
//!
//! By default the `duckdb` crate links DuckDB's official release library from `DUCKDB_LIB_DIR`
//! (set by `.cargo/config.toml` to what `npm ci --prefix tools/duckdb` installs). This checks
//! that the library is there, with a message saying how to get it, and records its folder as
//! the run-time search path of every binary and test the package links, so that they run
//! without `LD_LIBRARY_PATH`. With the feature `bundled-duckdb` DuckDB is compiled from source
//! and nothing here applies.

use std::path::Path;

/// The library's file name on this target.
fn library_name() -> &'static str {
    match std::env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("macos") => "libduckdb.dylib",
        Ok("windows") => "duckdb.dll",
        _ => "libduckdb.so",
    }
}

/// Checks the prebuilt library and emits its run-time search path, unless DuckDB is bundled.
pub fn link_prebuilt_duckdb() {
    println!("cargo::rerun-if-env-changed=DUCKDB_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_BUNDLED_DUCKDB").is_some() {
        return;
    }
    let Some(dir) = std::env::var_os("DUCKDB_LIB_DIR") else {
        panic!(
            "DUCKDB_LIB_DIR is not set: build inside the checkout (its .cargo/config.toml sets it), \
             or with --features bundled-duckdb to compile DuckDB from source"
        );
    };
    let dir = Path::new(&dir);
    let library = dir.join(library_name());
    println!("cargo::rerun-if-changed={}", library.display());
    if !library.is_file() {
        panic!(
            "DuckDB's release library {} is missing: run `npm ci --prefix tools/duckdb` \
             (scripts/demo.sh and scripts/test.sh do), or build with --features bundled-duckdb \
             to compile DuckDB from source (a platform other than Linux x86-64 with glibc; \
             about 30 minutes on 2 cores)",
            library.display()
        );
    }
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        println!("cargo::rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
}
