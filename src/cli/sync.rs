//! `kbo-import sync …`: the KboSync object (and `sync list`, the portal without Restate).

use super::RestateArgs;
use kbo_import::config::Config;
use kbo_import::wire::{Every, ScheduleBody, ScheduleSpec};

/// Examples printed by `kbo-import sync --help`.
pub const EXAMPLES: &str = "\
Examples:
  kbo-import sync now                    import every extract the register misses, now
  kbo-import sync schedule               sync daily at KBO_SYNC_AT (07:00 UTC by default)
  kbo-import sync schedule --every 6h    or at an interval
  kbo-import sync pause                  stop the schedule until `sync schedule`
  kbo-import sync status                 the schedule, a sync under way, the last report
  kbo-import sync list                   what the portal offers (no Restate needed)";

/// Arguments of `sync`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    /// The KboSync object's key: one per register.
    #[arg(long, global = true, default_value = "default")]
    key: String,
    #[command(flatten)]
    restate: RestateArgs,
}

/// What to do with the KboSync object.
#[derive(clap::Subcommand)]
enum Action {
    /// Run one sync now and print its report; exits non-zero if it reports errors.
    Now,
    /// Arm (or change) the schedule: daily at a time, or at an interval.
    Schedule {
        /// Daily at HH:MM UTC (default: the service's KBO_SYNC_AT / KBO_SYNC_EVERY).
        #[arg(long)]
        at: Option<String>,
        /// At an interval instead: 90s, 15m, 6h, 1d.
        #[arg(long, conflicts_with = "at")]
        every: Option<String>,
    },
    /// Stop the schedule until `sync schedule` is run again.
    Pause,
    /// Print the schedule, the sync under way and the last report as JSON.
    Status,
    /// List the extracts on the portal with this machine's KBO_PORTAL_URL, KBO_USERNAME and
    /// KBO_PASSWORD (checks the account; Restate is not involved).
    List,
}

/// Runs the action; prints the object's answer as JSON.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let (key, client) = (args.key.as_str(), args.restate.client());
    let answer = match args.action {
        Action::List => {
            let config = Config::from_env()?;
            let portal = kbo_import::portal::Portal::new(
                config.import.portal,
                config.import.download.max_bytes,
            );
            for file in portal.list().await? {
                println!("{file}");
            }
            return Ok(());
        }
        Action::Now => {
            eprintln!(
                "syncing {key} (imports run one after the other; `kbo-import sync status` shows the one under way)"
            );
            let report = client.ingress.sync(key, "syncNow", None).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            let errors = report["errors"].as_array().map(Vec::len).unwrap_or(0);
            anyhow::ensure!(
                errors == 0,
                "the sync reported {errors} error(s): {}",
                report["errors"]
            );
            return Ok(());
        }
        Action::Schedule { at, every } => {
            let body = (at.is_some() || every.is_some()).then(|| {
                ScheduleBody::Spec(ScheduleSpec {
                    at,
                    every: every.map(Every::Text),
                })
            });
            let body = body.map(serde_json::to_value).transpose()?;
            client.ingress.sync(key, "schedule", body).await?
        }
        Action::Pause => client.ingress.sync(key, "pause", None).await?,
        Action::Status => client.ingress.sync(key, "getStatus", None).await?,
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}
