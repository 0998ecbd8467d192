//! `kbo-import status <id>`: an import's progress as one JSON line.

use super::WorkflowArgs;

/// Prints the progress.
pub async fn run(args: WorkflowArgs) -> anyhow::Result<()> {
    let progress = args.restate.client().ingress.progress(&args.id).await?;
    println!("{}", serde_json::to_string(&progress)?);
    Ok(())
}
