//! `kbo-import watch <id>`: follows an import until it ends.

use super::RestateArgs;
use kbo_import::wire::Progress;

/// Arguments of `watch`.
#[derive(clap::Args)]
pub struct Args {
    /// Workflow id.
    id: String,
    #[command(flatten)]
    restate: RestateArgs,
}

/// Follows the import; an error when it fails.
pub async fn run(args: Args) -> anyhow::Result<()> {
    report(&args.id, args.restate.client().watch(&args.id).await?);
    Ok(())
}

/// Prints the one line of a completed import.
pub fn report(id: &str, p: Progress) {
    println!(
        "{id}: completed extract {} ({}): {} batches, {} rows inserted, {} rows retired",
        p.extract_number.unwrap_or_default(),
        p.extract_type.map(|t| t.as_str()).unwrap_or("?"),
        p.completed_batches,
        p.records_inserted.unwrap_or_default(),
        p.records_deleted.unwrap_or_default()
    );
}
