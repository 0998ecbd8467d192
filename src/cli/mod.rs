//! The operator's commands, one module per command: each has its arguments (`Args`) and its
//! `run`. `main` only parses and dispatches.
//!
//! `register`, `deployments`, `start`, `watch`, `status`, `verify` and `sync` talk to Restate (ingress and admin);
//! `inspect`, `changes`, `rollback` and `install_extensions` work on the database and the machine.

mod changes;
mod deployments;
mod feed;
mod inspect;
mod install_extensions;
mod register;
mod rollback;
mod start;
mod status;
mod sync;
mod verify;
mod watch;

use clap::Subcommand;
use kbo_import::client::RestateClient;
use kbo_import::config::Config;

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Serve the Restate endpoint (the default when no command is given).
    Serve,
    /// Install DuckDB's motherduck extension now (container builds), so that the service never
    /// downloads it at run time.
    InstallExtensions,
    /// Print row counts, the last import jobs and a sample query of the database (KBO_DATABASE).
    Inspect,
    /// What an extract changed, entity by entity: its change set (inserted, updated and
    /// deleted enterprises, establishments and branches, with the tables involved).
    Changes(changes::Args),
    /// Start importing an extract through Restate ingress.
    Start(start::Args),
    /// Follow an import until it ends; exits non-zero with the error if it fails.
    Watch(WorkflowArgs),
    /// Print an import's progress as one JSON line.
    Status(WorkflowArgs),
    /// Verify the register against the Full of its last extract (the KboVerify workflow):
    /// every table compared on every column, the code tables too; exits non-zero when they
    /// differ.
    Verify(verify::Args),
    /// Keep the register current from the KBO portal: the KboSync object.
    #[command(after_help = sync::EXAMPLES)]
    Sync(sync::Args),
    /// Tell a receiver of each extract's changes: a subscription to every change or to a
    /// watchlist of enterprises, delivered as signed webhooks (docs/feed.md).
    #[command(after_help = feed::EXAMPLES)]
    Subscribe(feed::SubscribeArgs),
    /// Show a subscription and where its delivery stands; edit its watchlist, URL, secret or
    /// filter; pause or resume it.
    #[command(after_help = feed::EXAMPLES)]
    Subscription(feed::ShowArgs),
    /// List the subscriptions.
    Subscriptions(feed::NameArgs),
    /// Remove a subscription.
    Unsubscribe(feed::NameArgs),
    /// Undo a job that did not complete and whose workflow no longer runs (an import killed
    /// through Restate's admin API, one whose retries ran out, a job the old system left
    /// `running`): deletes the rows its extract inserted, makes the rows it retired current
    /// again, and records it failed. Refuses while the job's workflow still runs.
    Rollback(rollback::Args),
    /// Register the service endpoint with Restate's admin API (like `restate deployments register`).
    Register(register::Args),
    /// The deployments Restate knows, which one takes new imports, and which imports still run
    /// on each (an upgrade at a new URL: remove the old one once nothing runs on it).
    Deployments(deployments::Args),
}

/// Runs one command.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => kbo_import::server::serve(Config::from_env()?).await,
        Command::InstallExtensions => install_extensions::run(),
        Command::Inspect => inspect::run().await,
        Command::Changes(args) => changes::run(args).await,
        Command::Start(args) => start::run(args).await,
        Command::Watch(args) => watch::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Sync(args) => sync::run(args).await,
        Command::Subscribe(args) => feed::subscribe(args).await,
        Command::Subscription(args) => feed::show(args).await,
        Command::Subscriptions(args) => feed::list_all(args).await,
        Command::Unsubscribe(args) => feed::unsubscribe(args).await,
        Command::Rollback(args) => rollback::run(args).await,
        Command::Register(args) => register::run(args).await,
        Command::Deployments(args) => deployments::run(args).await,
    }
}

/// A `KboImport` workflow and where Restate is (`watch`, `status`).
#[derive(clap::Args)]
pub struct WorkflowArgs {
    /// Workflow id.
    id: String,
    #[command(flatten)]
    restate: RestateArgs,
}

/// Where Restate is.
#[derive(clap::Args)]
pub struct RestateArgs {
    /// Restate ingress URL; several separated by commas (a cluster's nodes) are tried in turn.
    #[arg(
        long,
        global = true,
        env = "RESTATE_INGRESS_URL",
        value_parser = base_urls,
        default_value = "http://localhost:8080"
    )]
    ingress_url: String,
    /// Restate admin API URL; several separated by commas are tried in turn.
    #[arg(
        long,
        global = true,
        env = "RESTATE_ADMIN_URL",
        value_parser = base_urls,
        default_value = "http://localhost:9070"
    )]
    admin_url: String,
    /// Bearer token for Restate Cloud (never printed).
    #[arg(
        long,
        global = true,
        env = "RESTATE_AUTH_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
}

/// A Restate URL setting: one HTTP(S) base URL or several, comma-separated.
fn base_urls(urls: &str) -> Result<String, String> {
    kbo_import::net::check_base_urls(urls).map(|()| urls.to_string())
}

impl RestateArgs {
    /// A client of this Restate.
    pub fn client(&self) -> RestateClient {
        RestateClient::new(&self.ingress_url, &self.admin_url, self.token.clone())
    }
}
