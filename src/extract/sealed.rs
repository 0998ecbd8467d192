//! Files that are whole or absent.
//!
//! A machine can die while it writes a file; a file under its final name must then never be
//! half of what was meant. So a [`SealedWriter`] writes under a temporary name of its own,
//! counts and checksums the bytes as they go by, and on [`SealedWriter::seal`] flushes them to
//! the disk and renames the file into place, in that order. What it returns, a [`Seal`] (the
//! length and CRC-32 of the bytes), goes into the plan, so that a later step proves a file
//! on disk is the one that was written ([`Seal::of_file`]) before it trusts it. The folder is
//! flushed once its files are all in place ([`sync_dir`]), so that the renames last too.
//!
//! CRC-32 (the checksum ZIP itself keeps per member) is there to catch a torn or damaged
//! file, not a file forged on purpose; at some 10 GB/s it costs a real-size Full well under a
//! second, where SHA-256 would cost several.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The length and checksum of a file as it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// Its length in bytes.
    pub bytes: u64,
    /// The CRC-32 (IEEE, as ZIP's) of its bytes.
    pub crc32: u32,
}

impl Seal {
    /// The seal of the file at `path` as it is now; `None` when there is no such file.
    pub fn of_file(path: &Path) -> std::io::Result<Option<Seal>> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut hasher = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            bytes += n as u64;
        }
        Ok(Some(Seal {
            bytes,
            crc32: hasher.finalize(),
        }))
    }

    /// Why the file at `path` is not the one this seal was made of, if it is not.
    pub fn differs(&self, path: &Path) -> std::io::Result<Option<String>> {
        // The length first: a torn file differs there, and costs no read.
        let on_disk = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Some("it is not on this machine".into()));
            }
            Err(e) => return Err(e),
        };
        if on_disk != self.bytes {
            return Ok(Some(format!(
                "it has {on_disk} bytes where {} were written",
                self.bytes
            )));
        }
        Ok(match Seal::of_file(path)? {
            None => Some("it is not on this machine".into()),
            Some(seal) if seal.crc32 != self.crc32 => Some(format!(
                "its CRC-32 is {:08x} where {:08x} was written",
                seal.crc32, self.crc32
            )),
            Some(_) => None,
        })
    }
}

/// Writes one file that is whole or absent: see the module's documentation.
pub struct SealedWriter {
    path: PathBuf,
    partial: PathBuf,
    out: BufWriter<File>,
    hasher: crc32fast::Hasher,
    bytes: u64,
    /// Killed for a test while writing this file (see [`fault_kill_writing`]).
    doomed: bool,
}

/// Tells the temporary files of one process apart.
static NEXT: AtomicU64 = AtomicU64::new(0);

impl SealedWriter {
    /// Starts writing the file `path`, with a buffer of `capacity` bytes. Nothing is at
    /// `path` until [`SealedWriter::seal`].
    pub fn create(path: &Path, capacity: usize) -> std::io::Result<SealedWriter> {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        // Its own name per writer: two processes cutting the same extract into one folder
        // never write into each other's file.
        let partial = path.with_file_name(format!(
            ".{name}.{}-{}.partial",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let out = BufWriter::with_capacity(capacity, File::create(&partial)?);
        Ok(SealedWriter {
            doomed: fault_kill_writing().is_some_and(|doomed| *doomed == *name),
            path: path.to_path_buf(),
            partial,
            out,
            hasher: crc32fast::Hasher::new(),
            bytes: 0,
        })
    }

    /// Flushes the file to the disk and renames it into place; returns its seal.
    pub fn seal(self) -> std::io::Result<Seal> {
        let SealedWriter {
            path,
            partial,
            out,
            hasher,
            bytes,
            ..
        } = self;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&partial, &path)?;
        Ok(Seal {
            bytes,
            crc32: hasher.finalize(),
        })
    }
}

impl Write for SealedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        if self.doomed && self.bytes > 0 {
            // What is written so far reaches the file, then the process dies as a machine does.
            self.out.flush()?;
            tracing::error!(file = %self.path.display(), "KBO_FAULT_KILL_WRITING: killing this process while it writes the file");
            // SAFETY: raising a signal at this process has no memory effects.
            #[allow(unsafe_code)]
            unsafe {
                libc::raise(libc::SIGKILL);
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Flushes a folder's entries (the files just renamed into it) to the disk.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes the temporary files that writers killed half-way left in `dir`.
pub fn remove_partial_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".partial") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The file name whose writing kills this process (`KBO_FAULT_KILL_WRITING`), read once: a
/// fault-injection point for the tests of what a machine that dies while writing leaves
/// behind. Unset, as in every deployment, it does nothing.
fn fault_kill_writing() -> Option<&'static String> {
    static DOOMED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    DOOMED
        .get_or_init(|| {
            std::env::var("KBO_FAULT_KILL_WRITING")
                .ok()
                .filter(|v| !v.is_empty())
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_at_its_name_only_once_sealed_and_its_seal_proves_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("activity.1.csv");
        let mut w = SealedWriter::create(&path, 16).unwrap();
        w.write_all(b"\"EntityNumber\"\n\"0200.065.765\"\n")
            .unwrap();
        assert!(
            !path.exists(),
            "nothing under the final name before the seal"
        );
        let seal = w.seal().unwrap();
        assert_eq!(seal.bytes, 30);
        assert_eq!(Seal::of_file(&path).unwrap(), Some(seal));
        assert_eq!(seal.differs(&path).unwrap(), None);
        sync_dir(dir.path()).unwrap();

        // Torn: shorter than written.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..20]).unwrap();
        let why = seal.differs(&path).unwrap().unwrap();
        assert!(why.contains("20 bytes where 30"), "{why}");
        // Damaged: the same length, other bytes.
        let mut damaged = bytes.clone();
        damaged[18] = b'9';
        std::fs::write(&path, &damaged).unwrap();
        let why = seal.differs(&path).unwrap().unwrap();
        assert!(why.contains("CRC-32"), "{why}");
        std::fs::remove_file(&path).unwrap();
        assert!(
            seal.differs(&path)
                .unwrap()
                .unwrap()
                .contains("not on this machine")
        );
        assert_eq!(Seal::of_file(&path).unwrap(), None);
    }

    #[test]
    fn a_writer_that_never_seals_leaves_only_a_partial_file_that_is_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("code.csv");
        let mut w = SealedWriter::create(&path, 4).unwrap();
        w.write_all(b"half of a line").unwrap();
        w.flush().unwrap();
        std::mem::forget(w);
        assert!(!path.exists());
        let names = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(names().len(), 1, "{:?}", names());
        remove_partial_files(dir.path());
        assert!(names().is_empty(), "{:?}", names());
    }
}
