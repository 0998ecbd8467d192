//! `kbo-import subscribe`, `subscriptions`, `subscription` and `unsubscribe`: the feed's
//! subscriptions, through Restate ingress (`KboSubscription/<name>/…`, `KboFeed/list`).

use super::RestateArgs;
use anyhow::Context;
use kbo_import::wire::{EditBody, NumbersBody, SubscribeBody, SubscriptionView};
use serde_json::Value;
use std::path::PathBuf;

/// Examples printed by `kbo-import subscribe --help`.
pub const EXAMPLES: &str = "\
Examples:
  kbo-import subscribe crm https://crm.example.com/kbo --follow 0403.170.701,0200.065.765
  kbo-import subscribe crm https://crm.example.com/kbo --follow-file follows.txt --changes update,delete
  kbo-import subscribe everything https://hooks.example.com/kbo --all --from 141
  kbo-import subscription crm                         where its delivery stands
  kbo-import subscription crm --follow 0404.616.494   add to its watchlist (--unfollow removes)
  kbo-import subscription crm --resume                go on after a receiver failed
  kbo-import subscriptions                            every subscription
  kbo-import unsubscribe crm";

/// Arguments of `subscribe`.
#[derive(clap::Args)]
pub struct SubscribeArgs {
    /// The subscription's name (letters, digits, `-`, `_`, `.`).
    name: String,
    /// Where pages are POSTed: an https:// URL.
    url: String,
    /// Enterprise numbers to follow, comma-separated (their establishments and branches with them).
    #[arg(long, value_name = "NUMBERS")]
    follow: Vec<String>,
    /// A file of enterprise numbers to follow, one per line (or comma-separated).
    #[arg(long, value_name = "FILE")]
    follow_file: Option<PathBuf>,
    /// Every change of every entity instead of a watchlist.
    #[arg(long, conflicts_with_all = ["follow", "follow_file"])]
    all: bool,
    /// Only these change types: insert, update, delete (comma-separated).
    #[arg(long, value_name = "TYPES")]
    changes: Option<String>,
    /// Only changes in these tables: enterprises, establishments, branches, denominations,
    /// addresses, contacts, activities (comma-separated).
    #[arg(long, value_name = "TABLES")]
    tables: Option<String>,
    /// The first extract to receive (a backlog of recorded change sets is sent first).
    /// Default: the next extract imported.
    #[arg(long, value_name = "N")]
    from: Option<u32>,
    /// The signing secret (whsec_…); by default one is made and printed once.
    #[arg(long, env = "KBO_FEED_SECRET", hide_env_values = true)]
    secret: Option<String>,
    #[command(flatten)]
    restate: RestateArgs,
}

/// Arguments of `subscription`.
#[derive(clap::Args)]
pub struct ShowArgs {
    /// The subscription's name.
    name: String,
    /// Add enterprise numbers to its watchlist (comma-separated).
    #[arg(long, value_name = "NUMBERS")]
    follow: Vec<String>,
    /// Add the enterprise numbers of a file to its watchlist.
    #[arg(long, value_name = "FILE")]
    follow_file: Option<PathBuf>,
    /// Remove enterprise numbers from its watchlist (comma-separated).
    #[arg(long, value_name = "NUMBERS")]
    unfollow: Vec<String>,
    /// Stop delivering until --resume.
    #[arg(long, conflicts_with = "resume")]
    pause: bool,
    /// Deliver again, from the page where it stopped.
    #[arg(long)]
    resume: bool,
    /// A new URL.
    #[arg(long)]
    url: Option<String>,
    /// A new signing secret (whsec_…).
    #[arg(long, hide_env_values = true)]
    secret: Option<String>,
    /// New change types (comma-separated; `all` for every one).
    #[arg(long, value_name = "TYPES")]
    changes: Option<String>,
    /// New tables (comma-separated; `all` for every one).
    #[arg(long, value_name = "TABLES")]
    tables: Option<String>,
    #[command(flatten)]
    restate: RestateArgs,
}

/// Arguments of `subscriptions` and `unsubscribe`.
#[derive(clap::Args)]
pub struct NameArgs {
    /// The subscription's name (`unsubscribe`).
    name: Option<String>,
    #[command(flatten)]
    restate: RestateArgs,
}

/// The numbers given inline and in a file, as one list of texts.
fn numbers(inline: &[String], file: Option<&PathBuf>) -> anyhow::Result<Vec<String>> {
    let mut all = inline.to_vec();
    if let Some(path) = file {
        all.push(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        );
    }
    Ok(all)
}

/// A comma-separated option as a list (`all`: empty, every one).
fn list(option: &Option<String>) -> Option<Vec<String>> {
    option.as_ref().map(|s| match s.trim() {
        "all" => Vec::new(),
        s => s.split(',').map(|p| p.trim().to_string()).collect(),
    })
}

/// `kbo-import subscribe`: makes a subscription and prints it (with its secret when made).
pub async fn subscribe(args: SubscribeArgs) -> anyhow::Result<()> {
    let follow = numbers(&args.follow, args.follow_file.as_ref())?;
    let body = SubscribeBody {
        url: args.url,
        secret: args.secret,
        follow: (!args.all).then_some(follow),
        all: args.all,
        change_types: list(&args.changes),
        tables: list(&args.tables),
        from: args.from,
    };
    let client = args.restate.client();
    let answer = client
        .ingress
        .feed(
            Some(&args.name),
            "subscribe",
            Some(serde_json::to_value(body)?),
        )
        .await?;
    print(&answer)?;
    if answer["secret"].is_string() {
        eprintln!(
            "keep the secret: receivers verify each page's webhook-signature with it, and it is not shown again"
        );
    }
    Ok(())
}

/// `kbo-import subscription <name> [edits]`: applies the edits asked for, in order (watchlist,
/// settings, pause or resume), then prints the subscription.
pub async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let client = args.restate.client();
    let name = Some(args.name.as_str());
    let ingress = &client.ingress;
    let follow = numbers(&args.follow, args.follow_file.as_ref())?;
    let mut answer: Option<Value> = None;
    if !follow.is_empty() {
        let body = serde_json::to_value(NumbersBody { numbers: follow })?;
        answer = Some(ingress.feed(name, "follow", Some(body)).await?);
    }
    if !args.unfollow.is_empty() {
        let body = serde_json::to_value(NumbersBody {
            numbers: args.unfollow,
        })?;
        answer = Some(ingress.feed(name, "unfollow", Some(body)).await?);
    }
    let edit = EditBody {
        url: args.url,
        secret: args.secret,
        change_types: list(&args.changes),
        tables: list(&args.tables),
    };
    if edit != EditBody::default() {
        answer = Some(
            ingress
                .feed(name, "edit", Some(serde_json::to_value(edit)?))
                .await?,
        );
    }
    if args.pause {
        answer = Some(ingress.feed(name, "pause", None).await?);
    }
    if args.resume {
        answer = Some(ingress.feed(name, "resume", None).await?);
    }
    let answer = match answer {
        Some(a) => a,
        None => ingress.feed(name, "get", None).await?,
    };
    print(&answer)
}

/// `kbo-import subscriptions`: one line per subscription.
pub async fn list_all(args: NameArgs) -> anyhow::Result<()> {
    let answer = args
        .restate
        .client()
        .ingress
        .feed(None, "list", None)
        .await?;
    let views: Vec<SubscriptionView> = serde_json::from_value(answer)?;
    if views.is_empty() {
        println!("no subscription (kbo-import subscribe --help says how to make one)");
    }
    for v in views {
        let follows = match v.all {
            true => "every change".to_string(),
            false => format!("{} enterprises", v.watchlist_size),
        };
        let through = v
            .delivered_through
            .map_or("nothing yet".into(), |n| format!("through extract {n}"));
        let reason = v.reason.map(|r| format!(" ({r})")).unwrap_or_default();
        println!(
            "{}\t{}\t{follows}\tdelivered {through}\t{}{reason}",
            v.name, v.url, v.status
        );
    }
    Ok(())
}

/// `kbo-import unsubscribe <name>`.
pub async fn unsubscribe(args: NameArgs) -> anyhow::Result<()> {
    let name = args
        .name
        .context("name the subscription to remove: kbo-import unsubscribe <name>")?;
    let answer = args
        .restate
        .client()
        .ingress
        .feed(Some(&name), "unsubscribe", None)
        .await?;
    eprintln!("removed subscription {name}; what it received stays in feed_deliveries");
    print(&answer)
}

fn print(answer: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(answer)?);
    Ok(())
}
