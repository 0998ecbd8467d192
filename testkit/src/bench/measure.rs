//! Measuring processes: time and peak resident memory.

use anyhow::bail;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Runs a command to its end, returning its standard output and its peak RSS in bytes.
pub(super) fn run_measured(mut command: Command) -> anyhow::Result<(String, u64)> {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let peak = Arc::new(AtomicU64::new(0));
    let pid = child.id();
    let seen = Arc::clone(&peak);
    let poller = std::thread::spawn(move || {
        while let Some(hwm) = peak_rss(pid) {
            seen.fetch_max(hwm, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let output = child.wait_with_output()?;
    let _ = poller.join();
    if !output.status.success() {
        bail!("{command:?} failed");
    }
    Ok((
        String::from_utf8_lossy(&output.stdout).into_owned(),
        peak.load(Ordering::Relaxed),
    ))
}

pub(super) fn watch_rss(pid: u32, peak: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(hwm) = peak_rss(pid) {
            peak.fetch_max(hwm, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Starts a new peak for a live process: its VmHWM falls back to its current RSS (Linux's
/// `clear_refs`), so that the next phase's peak is its own.
pub(super) fn reset_peak(pid: u32, peak: &AtomicU64) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    peak.store(0, Ordering::Relaxed);
}

/// The peak resident set size of a live process (VmHWM), in bytes.
pub(super) fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
