//! The DuckDB this binary links, and the DuckDB versions MotherDuck accepts as clients.
//!
//! MotherDuck serves a client only when its DuckDB lies in a window that MotherDuck publishes
//! per region; the `duckdb` crate is pinned in `Cargo.toml`, and the release library it links
//! (`tools/duckdb`) with it, so that the linked DuckDB lies in it, and a unit test fails when it does not.

use std::fmt;

/// A DuckDB version, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

/// The oldest and newest DuckDB client MotherDuck accepts in every region, eu-central-1 and
/// eu-west-1 included (us-east-1 also takes 1.4.0). Source: MotherDuck's "Version lifecycle
/// schedules" page, <https://motherduck.com/docs/troubleshooting/version-lifecycle-schedules/>,
/// and its <https://motherduck.com/docs/duckdb-versions.json>, as of 2026-11.
pub const MOTHERDUCK_WINDOW: (Version, Version) = (Version(1, 4, 1), Version(1, 5, 6));

impl Version {
    /// Reads `v1.5.6` or `1.5.6` (a suffix such as `-dev123` is ignored).
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim().trim_start_matches('v');
        let mut parts = text.splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(Version(major, minor, patch.parse().ok()?))
    }

    /// Whether MotherDuck accepts a client of this version.
    pub fn motherduck_accepts(self) -> bool {
        (MOTHERDUCK_WINDOW.0..=MOTHERDUCK_WINDOW.1).contains(&self)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The version string of the linked DuckDB library, as `duckdb --version` prints it (`v1.5.6`).
#[allow(unsafe_code)]
pub fn linked() -> String {
    // SAFETY: `duckdb_library_version` returns a pointer to a static, NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(duckdb::ffi::duckdb_library_version()) }
        .to_string_lossy()
        .into_owned()
}

/// The DuckDB version a database file says wrote it (`v2.0.0`), read from its main header:
/// after the checksum (8 bytes), the magic `DUCK` (4), the storage version (8) and four flags
/// (32) come 32 bytes of the writer's version string.
pub fn written_by(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    let mut header = [0u8; 84];
    std::fs::File::open(path)
        .ok()?
        .read_exact(&mut header)
        .ok()?;
    if &header[8..12] != b"DUCK" {
        return None;
    }
    let text: String = header[52..84]
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    (text.starts_with('v') && text.chars().all(|c| c.is_ascii_graphic())).then_some(text)
}

/// `kbo-import --version`: this binary's version and the DuckDB it links.
pub fn version_line() -> String {
    let duckdb = linked();
    let motherduck = match Version::parse(&duckdb) {
        Some(v) if v.motherduck_accepts() => "accepted by MotherDuck",
        _ => "NOT accepted by MotherDuck",
    };
    format!(
        "{} (DuckDB {duckdb}, {motherduck}: {} to {})",
        env!("CARGO_PKG_VERSION"),
        MOTHERDUCK_WINDOW.0,
        MOTHERDUCK_WINDOW.1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linked_duckdb_lies_in_motherducks_window() {
        let linked = linked();
        let version = Version::parse(&linked).expect("DuckDB reports a version");
        assert!(
            version.motherduck_accepts(),
            "the linked DuckDB is {linked}, but MotherDuck accepts {} to {}: pin the duckdb \
             crate and tools/duckdb to a release in the window (Cargo.toml, tools/duckdb/package.json)",
            MOTHERDUCK_WINDOW.0,
            MOTHERDUCK_WINDOW.1
        );
    }

    #[test]
    fn the_library_reports_what_sql_reports() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let sql: String = conn
            .query_row("SELECT version()", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sql, linked());
    }

    #[test]
    fn a_files_writer_is_read_from_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mine.duckdb");
        duckdb::Connection::open(&file)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER); CHECKPOINT;")
            .unwrap();
        assert_eq!(written_by(&file), Some(linked()));
        std::fs::write(dir.path().join("not.duckdb"), b"hello").unwrap();
        assert_eq!(written_by(&dir.path().join("not.duckdb")), None);
    }

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(Version::parse("v1.5.6"), Some(Version(1, 5, 6)));
        assert_eq!(Version::parse("1.4.1-dev42"), Some(Version(1, 4, 1)));
        assert_eq!(Version::parse("v2"), None);
        assert!(Version(1, 4, 1).motherduck_accepts());
        assert!(!Version(1, 4, 0).motherduck_accepts());
        assert!(!Version(2, 0, 0).motherduck_accepts());
        assert_eq!(Version(1, 5, 6).to_string(), "v1.5.6");
    }
}
