//! `kbo-import verify <url | portal file>`: starts a verification (`KboVerify`) through Restate
//! ingress, follows it, prints its summary, and exits non-zero when the register differs
//! from the Full, saying what to do.
//!
//! It follows only the run it started: the default workflow id is new each time (the Full's
//! stem, the UTC time to the millisecond, and a part of this process's own), and a run that
//! Restate says already existed under the id is followed only when it was started with the
//! same request (`--id` given twice for the same Full); otherwise the command refuses.

use super::RestateArgs;
use anyhow::{Context, bail};
use kbo_import::client::{Ingress, Started};
use kbo_import::extract::file_name::ExtractFileName;
use kbo_import::wire::{RunBody, VerifyProgress, VerifyReport, VerifyStatus};
use std::time::Duration;

/// Arguments of `verify`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  kbo-import verify KboOpenData_0141_2025_10_05_Full.zip       the portal's Full of the register's extract
  kbo-import verify https://…/KboOpenData_0141_2025_10_05_Full.zip

Exit status: 0 when the register equals the Full, 1 when it differs or the verification failed.")]
pub struct Args {
    /// The Full's URL (http, https; file:// when the service allows it), or the name of a file
    /// on the KBO portal, fetched with the service's KBO_USERNAME and KBO_PASSWORD. Its extract
    /// number must be the register's last extract.
    url: String,
    /// Workflow id (default: verify-<extract>-<UTC time to the ms>-<process>, a new
    /// verification each time). An id that already names a run of another request is refused.
    #[arg(long)]
    id: Option<String>,
    /// SHA-256 the download must have.
    #[arg(long)]
    sha256: Option<String>,
    #[command(flatten)]
    restate: RestateArgs,
}

/// Starts the verification, follows it and prints its report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let name = ExtractFileName::parse(&args.url);
    let chosen = args.id.is_some();
    let id = match args.id {
        Some(id) => id,
        None => {
            let stem = name.as_ref().map(ExtractFileName::workflow_id).context(
                "the URL does not end in a KBO file name (KboOpenData_<n>_<yyyy>_<mm>[_<dd>]_Full.zip); give --id",
            )?;
            default_id(&stem, std::time::SystemTime::now(), std::process::id())
        }
    };
    let body = RunBody::Named(super::start::extract_body(args.url, name, args.sha256));
    let digest = body.digest();
    let ingress = args.restate.client().ingress;
    let sent = serde_json::to_value(&body)?;
    match ingress.start_workflow("KboVerify", &id, &sent).await? {
        Started::New => eprintln!("started verification {id}"),
        Started::AlreadyRunning if !chosen => bail!(
            "Restate says verification {id} was already started, by another command: this \
             command follows only the verification it starts, so it stops here; run it again \
             (each run makes a new id)"
        ),
        Started::AlreadyRunning => {
            same_request(&ingress, &id, &digest).await?;
            eprintln!("{id} was already started with this request: following that run");
        }
    }
    follow(&ingress, &id).await
}

/// A new workflow id for a verification of `stem`, started at `now` by process `pid`: two
/// commands started in the same millisecond still differ by their process.
fn default_id(stem: &str, now: std::time::SystemTime, pid: u32) -> String {
    let since = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let time = kbo_import::clock::utc_timestamp(since.as_secs());
    let stamp: String = time.chars().filter(char::is_ascii_digit).collect();
    format!("verify-{stem}-{stamp}{:03}-{pid:x}", since.subsec_millis())
}

/// Refuses to follow the run of workflow `id` (which Restate says already existed) unless it
/// was started with the request whose digest is `digest`.
async fn same_request(ingress: &Ingress, id: &str, digest: &str) -> anyhow::Result<()> {
    // A run that Restate accepted a moment ago may not have said its request yet.
    for _ in 0..20 {
        let p = ingress.verify_progress(id).await?;
        match p.request.as_deref() {
            Some(theirs) if theirs == digest => return Ok(()),
            Some(_) => bail!(
                "workflow id {id} already names a verification of another request (another Full, \
                 URL or sha256): it is not followed as this one; choose another --id, or leave it \
                 out (each run then makes a new id)"
            ),
            None if matches!(p.status, VerifyStatus::Completed | VerifyStatus::Failed) => break,
            None => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    bail!(
        "workflow id {id} already names a verification, and it does not say which request it was \
         started with: it is not followed as this one; choose another --id, or leave it out \
         (each run then makes a new id)"
    )
}

/// Follows verification `id` until it ends; its summary printed, and an error when the register
/// differs or the verification failed (killed, cancelled, refused).
async fn follow(ingress: &Ingress, id: &str) -> anyhow::Result<()> {
    let mut last = String::new();
    loop {
        let p = ingress.verify_progress(id).await?;
        let line = progress_line(id, &p);
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        match (p.status, p.report) {
            (VerifyStatus::Completed, Some(report)) => {
                print!("{}", summary(&report));
                if report.differences > 0 {
                    bail!("{}", report.advice);
                }
                return Ok(());
            }
            (VerifyStatus::Failed, _) => bail!(
                "verification {id} failed ({}): {}",
                p.error_code.map(|c| c.to_string()).unwrap_or_default(),
                p.error.unwrap_or_else(|| "no message".into())
            ),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// One line of progress.
fn progress_line(id: &str, p: &VerifyProgress) -> String {
    format!(
        "{id}: {:?} {}/{} tables{} {} differences",
        p.status,
        p.tables_done,
        p.tables_total,
        p.current_table
            .as_deref()
            .map(|t| format!(" ({t})"))
            .unwrap_or_default(),
        p.differences
    )
    .to_lowercase()
}

/// The report as a person reads it: a line per table, then the samples and the advice.
fn summary(report: &VerifyReport) -> String {
    let mut out = format!(
        "register against Full {} ({}), verification {}:\n",
        report.extract_number, report.snapshot_date, report.run_id
    );
    out.push_str(&format!(
        "  {:<15} {:>10} {:>10} {:>8} {:>8} {:>10}\n",
        "table", "full", "register", "missing", "extra", "different"
    ));
    for t in &report.tables {
        out.push_str(&format!(
            "  {:<15} {:>10} {:>10} {:>8} {:>8} {:>10}\n",
            t.table, t.full_rows, t.register_rows, t.missing, t.extra, t.different
        ));
    }
    for t in &report.tables {
        for d in &t.samples {
            out.push_str(&format!("  {} {:?} {}\n", t.table, d.kind, d.key).to_lowercase());
        }
    }
    out.push_str(&format!("{}\n", report.advice));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbo_import::wire::{Difference, DifferenceKind, TableReport};

    #[test]
    fn default_ids_differ_within_a_second_and_a_millisecond() {
        let at = |ms: u64| std::time::UNIX_EPOCH + Duration::from_millis(ms);
        let stem = "kbo-0142-full";
        let first = default_id(stem, at(1_759_622_400_123), 7);
        assert_eq!(first, "verify-kbo-0142-full-20251005000000123-7");
        assert_ne!(first, default_id(stem, at(1_759_622_400_124), 7));
        assert_ne!(first, default_id(stem, at(1_759_622_400_123), 8));
    }

    #[test]
    fn the_summary_names_each_table_and_each_sample() {
        let report = VerifyReport {
            run_id: "r".into(),
            extract_number: 141,
            snapshot_date: "2025-10-05".into(),
            tables: vec![TableReport {
                table: "enterprises".into(),
                full_rows: 10,
                register_rows: 9,
                missing: 1,
                samples: vec![Difference {
                    kind: DifferenceKind::Missing,
                    key: "0200.065.765".into(),
                    full: None,
                    register: None,
                }],
                ..TableReport::default()
            }],
            differences: 1,
            advice: VerifyReport::advice_for(1, 141),
        };
        let text = summary(&report);
        assert!(
            text.contains("register against Full 141 (2025-10-05)"),
            "{text}"
        );
        assert!(text.contains("enterprises missing 0200.065.765"), "{text}");
        assert!(text.contains("next Full"), "{text}");
    }
}
