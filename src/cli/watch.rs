//! `kbo-import watch <id>`: follows an import until it ends.

use super::WorkflowArgs;
use kbo_import::wire::Progress;

/// Follows the import; an error when it fails.
pub async fn run(args: WorkflowArgs) -> anyhow::Result<()> {
    report(
        &args.id,
        args.restate.client().ingress.watch(&args.id).await?,
    );
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
