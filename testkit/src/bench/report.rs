//! The benchmark's report.

use super::floor::Bare;
use super::{BenchOptions, Round};

/// The smallest and the median of `values`.
pub(super) fn min_median(values: &[f64]) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    (sorted[0], median)
}

/// Prints the report: the floors and the workflow (min, median, every run), the ratio of
/// medians, peak RSS, steps and Restate's overhead, the phases, the daily Updates.
pub(super) fn report(options: &BenchOptions, bare: &Bare, rounds: &[Round]) {
    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let floors: Vec<f64> = rounds.iter().map(|r| r.floor_s).collect();
    let fulls: Vec<f64> = rounds.iter().map(|r| r.workflow.full.seconds).collect();
    let (floor_min, floor_median) = min_median(&floors);
    let (full_min, full_median) = min_median(&fulls);
    println!(
        "\nKBO Full extract at scale {} ({} rows of CSV), DuckDB {}, {} interleaved runs",
        options.scale,
        bare.rows,
        kbo_import::db::version::linked(),
        rounds.len()
    );
    println!(
        "{:<44} {:>8} {:>8} {:>12}  runs",
        "", "min s", "median s", "peak RSS MB"
    );
    let bare_s = bare.unzip_s + bare.load_s;
    println!(
        "{:<44} {:>8.1} {:>8.1} {:>12.0}  (once; unzip {:.1} s + load {:.1} s)",
        "(a) DuckDB alone, bare read_csv",
        bare_s,
        bare_s,
        mb(bare.rss),
        bare.unzip_s,
        bare.load_s
    );
    println!(
        "{:<44} {:>8.1} {:>8.1} {:>12.0}  {}",
        "(b) DuckDB alone, the workflow's tables",
        floor_min,
        floor_median,
        mb(rounds.iter().map(|r| r.floor_rss).max().unwrap_or(0)),
        list(&floors)
    );
    println!(
        "{:<44} {:>8.1} {:>8.1} {:>12.0}  {}",
        "the KboImport workflow (Full)",
        full_min,
        full_median,
        mb(rounds
            .iter()
            .map(|r| r.workflow.service_rss)
            .max()
            .unwrap_or(0)),
        list(&fulls)
    );
    println!(
        "ratio of medians workflow / (b): {:.2}; workflow / (a): {:.2}",
        full_median / floor_median,
        full_median / bare_s
    );
    let median_round = rounds
        .iter()
        .min_by(|a, b| {
            (a.workflow.full.seconds - full_median)
                .abs()
                .total_cmp(&(b.workflow.full.seconds - full_median).abs())
        })
        .expect("at least one round");
    let full = &median_round.workflow.full;
    println!(
        "workflow steps: {}; time inside steps {:.1} s; mean Restate overhead per step: {:.0} ms",
        full.steps,
        full.step_ms as f64 / 1000.0,
        (full.seconds * 1000.0 - full.step_ms as f64).max(0.0) / f64::from(full.steps.max(1))
    );
    print_phases(&full.phases, &median_round.floor_phases);
    print_updates(rounds);
    print_changes_and_verify(rounds, floor_median);
}

/// What the change sets add (finalize's `changes` part) to a daily Update and to a Full over
/// a register, and what verifying a register against a Full costs, beside the same-output
/// floor.
fn print_changes_and_verify(rounds: &[Round], floor_median: f64) {
    let part = |i: &super::Imported| i.phase_ms("finalize/changes") as f64 / 1000.0;
    let shares: Vec<f64> = rounds
        .iter()
        .flat_map(|r| {
            r.workflow
                .updates
                .iter()
                .map(|u| 100.0 * part(u) / u.seconds)
        })
        .collect();
    let update_parts: Vec<f64> = rounds
        .iter()
        .flat_map(|r| r.workflow.updates.iter().map(part))
        .collect();
    let (share_min, share_median) = min_median(&shares);
    let (_, part_median) = min_median(&update_parts);
    println!(
        "change set of a daily Update: median {:.3} s, {share_median:.1} % of the Update (min {share_min:.1} %, max {:.1} %)",
        part_median,
        shares.iter().copied().fold(0.0, f64::max)
    );
    let overs: Vec<f64> = rounds
        .iter()
        .map(|r| r.workflow.full_over.seconds)
        .collect();
    let over_parts: Vec<f64> = rounds.iter().map(|r| part(&r.workflow.full_over)).collect();
    let (_, over_median) = min_median(&overs);
    let (over_part_min, over_part_median) = min_median(&over_parts);
    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "a Full over that register: median {over_median:.1} s, of which its change set median {over_part_median:.1} s (min {over_part_min:.1} s; {:.1} % of it); peak RSS {:.0} MB",
        100.0 * over_part_median / over_median,
        mb(rounds
            .iter()
            .map(|r| r.workflow.full_over_rss)
            .max()
            .unwrap_or(0))
    );
    print_feed(rounds);
    let verifies: Vec<f64> = rounds.iter().map(|r| r.workflow.verify_s).collect();
    let (verify_min, verify_median) = min_median(&verifies);
    println!(
        "verify the register against that Full (KboVerify): median {verify_median:.1} s, min {verify_min:.1} s, peak RSS {:.0} MB; {:.2} x the same-output floor's median ({floor_median:.1} s); runs: {}",
        mb(rounds
            .iter()
            .map(|r| r.workflow.verify_rss)
            .max()
            .unwrap_or(0)),
        verify_median / floor_median,
        verifies
            .iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// What the feed adds: delivering each daily Update's change set to one all-changes
/// subscriber (after the import completed), against the Update's own time; and delivering a
/// Full over a register's change set, with the service's peak RSS meanwhile.
fn print_feed(rounds: &[Round]) {
    // The first Update changes the register; the second (the same changes, renumbered) finds
    // nothing to change: nothing to send.
    for (i, what) in ["with changes", "with nothing to send"].iter().enumerate() {
        let shares: Vec<f64> = rounds
            .iter()
            .map(|r| {
                let w = &r.workflow;
                100.0 * w.update_delivery[i].0 / w.updates[i].seconds
            })
            .collect();
        let seconds: Vec<f64> = rounds
            .iter()
            .map(|r| r.workflow.update_delivery[i].0)
            .collect();
        let pages: Vec<u64> = rounds
            .iter()
            .map(|r| r.workflow.update_delivery[i].1)
            .collect();
        let (share_min, share_median) = min_median(&shares);
        let (_, seconds_median) = min_median(&seconds);
        println!(
            "feed: a daily Update {what}, delivered to one all-changes subscriber: median {seconds_median:.3} s after the import ({share_median:.1} % of the Update, min {share_min:.1} %, max {:.1} %; rounds {}), pages {pages:?}",
            shares.iter().copied().fold(0.0, f64::max),
            seconds
                .iter()
                .map(|s| format!("{s:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let overs: Vec<f64> = rounds
        .iter()
        .map(|r| r.workflow.full_over_delivery.0)
        .collect();
    let (over_min, over_median) = min_median(&overs);
    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "feed: a Full over the register's changes delivered: median {over_median:.1} s, min {over_min:.1} s, {} pages, service peak RSS {:.0} MB meanwhile",
        rounds[0].workflow.full_over_delivery.1,
        mb(rounds
            .iter()
            .map(|r| r.workflow.full_over_delivery_rss)
            .max()
            .unwrap_or(0))
    );
}

/// The daily Updates: their median and minimum over every round.
fn print_updates(rounds: &[Round]) {
    let updates: Vec<f64> = rounds
        .iter()
        .flat_map(|r| r.workflow.updates.iter().map(|u| u.seconds))
        .collect();
    let (update_min, update_median) = min_median(&updates);
    let sample = &rounds[0].workflow.updates[0];
    println!(
        "daily Update ({} lines changed: {} rows inserted, {} retired), end to end: median {:.2} s, min {:.2} s ({})",
        sample.rows,
        sample.inserted,
        sample.deleted,
        update_median,
        update_min,
        updates
            .iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The workflow's phases of the median run beside the same-output floor's parts of that round
/// (unzip beside prepare, each table's load beside its batches, the repeated-lines pass and
/// the closing checkpoint beside finalize's).
pub(super) fn print_phases(workflow: &[(String, u64)], floor: &[(String, u64)]) {
    let seconds = |ms: u64| format!("{:.1}", ms as f64 / 1000.0);
    let floor_part = |phase: &str| {
        let part = match phase {
            "prepare" => "unzip",
            p => p.strip_prefix("finalize/").unwrap_or(p),
        };
        floor
            .iter()
            .find(|(name, _)| name == part)
            .map(|(_, ms)| seconds(*ms))
            .unwrap_or_default()
    };
    println!("phases of the median run (seconds; the floor's parts in the same round):");
    println!("  {:<36} {:>8} {:>8}", "", "workflow", "(b)");
    for (phase, ms) in workflow {
        if *ms == 0 && phase.starts_with("delete-") {
            continue;
        }
        println!("  {phase:<36} {:>8} {:>8}", seconds(*ms), floor_part(phase));
    }
    let total = |phases: &[(String, u64)]| {
        phases
            .iter()
            .filter(|(name, _)| !name.contains('/'))
            .map(|(_, ms)| ms)
            .sum::<u64>()
    };
    println!(
        "  {:<36} {:>8} {:>8}",
        "sum",
        seconds(total(workflow)),
        seconds(total(floor))
    );
}
