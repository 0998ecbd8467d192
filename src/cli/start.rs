//! `kbo-import start <url | portal file>`: starts an import through Restate ingress.

use super::RestateArgs;
use anyhow::Context;
use kbo_import::client::Started;
use kbo_import::extract::file_name::ExtractFileName;
use kbo_import::wire::{RunBody, UrlBody};

/// Arguments of `start`.
#[derive(clap::Args)]
pub struct Args {
    /// The extract's URL (http, https; file:// when the service allows it), or the name of a
    /// file on the KBO portal (KboOpenData_0141_2025_10_05_Update.zip), fetched with the
    /// service's KBO_USERNAME and KBO_PASSWORD.
    url: String,
    /// Workflow id (default: from the file name, e.g. kbo-0140-full, so that the same extract
    /// started twice is the same workflow).
    #[arg(long)]
    id: Option<String>,
    /// SHA-256 the download must have.
    #[arg(long)]
    sha256: Option<String>,
    /// Follow the import until it ends.
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    restate: RestateArgs,
}

/// The `run` body naming the extract `url` (whose file name is `name`, if it is a KBO one):
/// a bare file name is a file of the KBO portal, anything else a URL. `verify` takes the same.
pub fn extract_body(url: String, name: Option<ExtractFileName>, sha256: Option<String>) -> UrlBody {
    match name {
        Some(name) if !url.contains('/') => UrlBody {
            portal_file: Some(name.to_string()),
            sha256,
            ..UrlBody::default()
        },
        _ => UrlBody {
            url: Some(url),
            sha256,
            ..UrlBody::default()
        },
    }
}

/// Starts the workflow (and follows it with `--watch`).
pub async fn run(args: Args) -> anyhow::Result<()> {
    let Args {
        url,
        id,
        sha256,
        watch,
        restate,
    } = args;
    let name = ExtractFileName::parse(&url);
    let id = match id {
        Some(id) => id,
        None => name.as_ref().map(ExtractFileName::workflow_id).context(
            "the URL does not end in a KBO file name (KboOpenData_<n>_<yyyy>_<mm>[_<dd>]_<Full|Update>.zip); give --id",
        )?,
    };
    let body = extract_body(url, name, sha256);
    let client = restate.client();
    match client
        .ingress
        .start(&id, &serde_json::to_value(RunBody::Named(body))?)
        .await?
    {
        Started::New => println!("started {id}"),
        Started::AlreadyRunning => println!(
            "{id} was already started: following that run (`kbo-import status {id}` shows it)"
        ),
    }
    if watch {
        super::watch::report(&id, client.ingress.watch(&id).await?);
    }
    Ok(())
}
