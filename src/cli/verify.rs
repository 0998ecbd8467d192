//! `kbo-import verify <url | portal file>`: starts a verification (`KboVerify`) through Restate
//! ingress, follows it, prints its summary, and exits non-zero when the register differs
//! from the Full, saying what to do.

use super::RestateArgs;
use anyhow::{Context, bail};
use kbo_import::client::Started;
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
    /// Workflow id (default: verify-<extract>-<UTC time>, a new verification each time).
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
    let id = match args.id {
        Some(id) => id,
        None => {
            let stem = name.as_ref().map(ExtractFileName::workflow_id).context(
                "the URL does not end in a KBO file name (KboOpenData_<n>_<yyyy>_<mm>[_<dd>]_Full.zip); give --id",
            )?;
            let now = kbo_import::clock::utc_timestamp(kbo_import::clock::now_unix());
            let stamp: String = now.chars().filter(char::is_ascii_digit).collect();
            format!("verify-{stem}-{stamp}")
        }
    };
    let body = super::start::extract_body(args.url, name, args.sha256);
    let ingress = args.restate.client().ingress;
    let body = serde_json::to_value(RunBody::Named(body))?;
    match ingress.start_workflow("KboVerify", &id, &body).await? {
        Started::New => eprintln!("started verification {id}"),
        Started::AlreadyRunning => eprintln!("{id} was already started: following that run"),
    }
    let mut last = String::new();
    loop {
        let p = ingress.verify_progress(&id).await?;
        let line = progress_line(&id, &p);
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
