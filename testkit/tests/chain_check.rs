//! Property: every chain the generator writes passes the independent chain check
//! (Full(N) + Update(N+1) = Full(N+1), no key with two different lines, no establishment with
//! two owners), over many seeds, scales and change rates.

use kbo_testkit::generator::{self, Options, check};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The cases: 54 seeds over three small scales and three change rates (every pair six times),
/// and the demo's scale (0.01) for three seeds, its default seed 42 among them.
fn cases() -> Vec<Options> {
    let scales = [0.0005, 0.001, 0.002];
    let rates = [0.02, 0.05, 0.2];
    let mut cases: Vec<Options> = (0..54u64)
        .map(|seed| Options {
            scale: scales[(seed % 3) as usize],
            change_rate: rates[(seed / 3 % 3) as usize],
            seed: 1000 + seed,
            ..Options::default()
        })
        .collect();
    for (seed, change_rate) in [(42, 0.02), (1, 0.05), (11, 0.2)] {
        cases.push(Options {
            scale: 0.01,
            seed,
            change_rate,
            ..Options::default()
        });
    }
    cases
}

#[test]
fn every_generated_chain_passes_the_check() {
    let cases = cases();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(options) = cases.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let dir = tempfile::tempdir().unwrap();
                    let chain = generator::chain(dir.path(), options).unwrap();
                    let report = check::check_chain(&chain).unwrap();
                    if !report.is_consistent() {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{options:?}:\n{report}"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} chains are inconsistent:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
