//! Fault injection in the style of Restate's own verification runs: an Update imported again
//! and again while a seeded random fault strikes at a random moment (a cancel, two cancels, a
//! SIGKILL of the service, a SIGKILL of the Restate server). After every round, `getProgress`,
//! the workflow's result, `import_jobs` and the data agree, and the data is either exactly the
//! state before the extract or exactly the state after it.
//!
//! `KBO_FAULT_SEED` and `KBO_FAULT_ROUNDS` replay or lengthen a run; each round prints its fault.

use crate::fixtures::chain;
use crate::guarantees::agreed_end;
use crate::harness::{TestApp, file_url};
use crate::tables::{assert_same_state, state};
use serde_json::json;
use std::time::Duration;

/// A small deterministic random source (64-bit LCG): the same seed, the same faults.
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    Cancel,
    CancelTwice,
    KillService,
    KillRestate,
}

const FAULTS: [Fault; 5] = [
    Fault::None,
    Fault::Cancel,
    Fault::CancelTwice,
    Fault::KillService,
    Fault::KillRestate,
];

/// The number in environment variable `var`, `default` when unset or not a number.
pub fn env_number(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread")]
async fn random_cancels_and_kills_leave_the_data_before_or_after_and_every_status_agreeing() {
    let seed = env_number("KBO_FAULT_SEED", 20261127);
    let rounds = env_number("KBO_FAULT_ROUNDS", 8);
    let mut rng = Lcg(seed);
    let chain = chain();
    let mut app = TestApp::build().unregistered().spawn();

    // The state before (Full 140) and after (Full 140 + Update 141), imported without faults.
    let base = app
        .import_into(&app.path("base.duckdb"), &[], &[("base", &chain.full)])
        .await;
    let before = state(&base);
    let reference = app.copy_database(&base, "reference.duckdb");
    app.import_into(&reference, &[], &[("reference", &chain.update)])
        .await;
    let after = state(&reference);

    let (mut completed, mut failed) = (0, 0);
    for round in 0..rounds {
        let fault = FAULTS[rng.below(FAULTS.len() as u64) as usize];
        let delay = Duration::from_millis(rng.below(1500));
        eprintln!("seed {seed} round {round}: {fault:?} after {delay:?}");
        let db = app.copy_database(&base, &format!("round-{round}.duckdb"));
        let mut service = app.serve_another(&db, &[("KBO_BATCH_ROWS", "100")]);
        let id = format!("round-{round}");
        let invocation = app
            .start_import_id(&id, json!(file_url(&chain.update)))
            .await;
        tokio::time::sleep(delay).await;
        match fault {
            Fault::None => {}
            Fault::Cancel => {
                app.cancel_if_running(&invocation);
            }
            Fault::CancelTwice => {
                app.cancel_if_running(&invocation);
                app.cancel_if_running(&invocation);
            }
            Fault::KillService => service.restart(),
            Fault::KillRestate => app.restate.restart(),
        }
        app.wait_finished(&id, Duration::from_secs(120)).await;
        let done = agreed_end(&app, &db, &id).await;
        drop(service);
        let what = format!("seed {seed} round {round} ({fault:?} after {delay:?})");
        if done {
            completed += 1;
            assert_same_state(&format!("{what}: completed, so after"), &state(&db), &after);
        } else {
            failed += 1;
            assert_same_state(&format!("{what}: failed, so before"), &state(&db), &before);
        }
    }
    eprintln!("seed {seed}: {completed} rounds completed, {failed} rolled back");
}
