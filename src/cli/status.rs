//! `kbo-import status <id>`: an import's progress as one JSON line.

use super::RestateArgs;

/// Arguments of `status`.
#[derive(clap::Args)]
pub struct Args {
    /// Workflow id.
    id: String,
    #[command(flatten)]
    restate: RestateArgs,
}

/// Prints the progress.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let progress = args.restate.client().progress(&args.id).await?;
    println!("{}", serde_json::to_string(&progress)?);
    Ok(())
}
