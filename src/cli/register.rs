//! `kbo-import register <endpoint>`: registers the service with Restate's admin API.

use super::RestateArgs;

/// Arguments of `register`.
#[derive(clap::Args)]
pub struct Args {
    /// The endpoint's URL as the Restate server reaches it.
    #[arg(default_value = "http://localhost:9080")]
    endpoint: String,
    #[command(flatten)]
    restate: RestateArgs,
}

/// Registers the endpoint; prints the services Restate found there.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let answer = args.restate.client().admin.register(&args.endpoint).await?;
    let services: Vec<&str> = answer["services"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    println!(
        "registered {}: services {}",
        args.endpoint,
        services.join(", ")
    );
    Ok(())
}
