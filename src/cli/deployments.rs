//! `kbo-import deployments`: the deployments Restate knows, which one takes new imports, and
//! which imports (and other invocations) still run on each, for an upgrade at a new URL: the
//! old deployment may be removed once nothing runs on it.

use super::RestateArgs;
use kbo_import::client::{Deployment, Unfinished};
use std::fmt::Write;

/// The service whose latest revision takes new imports.
const IMPORTS: &str = "KboImport";

/// Arguments of `deployments`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    restate: RestateArgs,
}

/// Prints the report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let admin = args.restate.client().admin;
    let deployments = admin.deployments().await?;
    let unfinished = admin.unfinished().await?;
    print!("{}", report(&deployments, &unfinished));
    Ok(())
}

/// What an invocation is, in the operator's words.
fn label(invocation: &Unfinished) -> String {
    let key = invocation.key.as_deref().unwrap_or("");
    match (invocation.service.as_str(), invocation.handler.as_str()) {
        (IMPORTS, "run") => format!("import {key}"),
        (service, handler) if key.is_empty() => format!("{service}/{handler}"),
        (service, handler) => format!("{service}/{key}/{handler}"),
    }
}

/// The deployment serving the highest revision of `KboImport`: where new imports go.
fn latest(deployments: &[Deployment]) -> Option<&str> {
    deployments
        .iter()
        .filter_map(|d| {
            let revision = d.services.iter().find(|s| s.name == IMPORTS)?.revision;
            Some((revision, d.id.as_str()))
        })
        .max()
        .map(|(_, id)| id)
}

/// The report: each deployment, newest first, with what runs on it and what to do with it;
/// then the invocations not yet on any deployment.
pub fn report(deployments: &[Deployment], unfinished: &[Unfinished]) -> String {
    let mut out = String::new();
    if deployments.is_empty() {
        out.push_str("no deployment is registered: kbo-import register <the service's URL>\n");
    }
    let latest = latest(deployments);
    let mut newest_first: Vec<&Deployment> = deployments.iter().collect();
    newest_first.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    for deployment in newest_first {
        let services: Vec<String> = deployment
            .services
            .iter()
            .map(|s| format!("{} rev {}", s.name, s.revision))
            .collect();
        let _ = writeln!(
            out,
            "{}  {}  registered {}  ({})",
            deployment.id,
            deployment.uri,
            deployment.created_at,
            services.join(", ")
        );
        let running: Vec<&Unfinished> = unfinished
            .iter()
            .filter(|i| i.deployment.as_deref() == Some(deployment.id.as_str()))
            .collect();
        for invocation in &running {
            let _ = writeln!(
                out,
                "  runs {} ({}, {})",
                label(invocation),
                invocation.status,
                invocation.id
            );
        }
        let is_latest = latest == Some(deployment.id.as_str());
        let advice = match (is_latest, running.is_empty()) {
            (true, true) => "new imports go here; nothing runs on it now".to_string(),
            (true, false) => "new imports go here".to_string(),
            (false, false) => format!(
                "keep it serving until these end (they stay on it); then `restate deployments \
                 remove {}`",
                deployment.id
            ),
            (false, true) => format!(
                "nothing runs on it: remove it with `restate deployments remove {}`",
                deployment.id
            ),
        };
        let _ = writeln!(out, "  {advice}");
    }
    let waiting: Vec<&Unfinished> = unfinished
        .iter()
        .filter(|i| i.deployment.is_none())
        .collect();
    if !waiting.is_empty() {
        out.push_str("not started on a deployment yet (they go to the latest):\n");
        for invocation in waiting {
            let _ = writeln!(out, "  {} ({})", label(invocation), invocation.status);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbo_import::client::ServiceRevision;

    fn deployment(id: &str, created_at: &str, revision: u32) -> Deployment {
        Deployment {
            id: id.into(),
            uri: format!("http://{id}:9080/"),
            created_at: created_at.into(),
            services: vec![
                ServiceRevision {
                    name: "KboSync".into(),
                    revision,
                },
                ServiceRevision {
                    name: IMPORTS.into(),
                    revision,
                },
            ],
        }
    }

    fn invocation(service: &str, key: &str, handler: &str, on: Option<&str>) -> Unfinished {
        Unfinished {
            id: format!("inv_{key}"),
            service: service.into(),
            key: Some(key.into()),
            handler: handler.into(),
            status: "running".into(),
            deployment: on.map(String::from),
        }
    }

    #[test]
    fn the_old_deployment_is_kept_while_its_import_runs_and_the_new_one_takes_new_imports() {
        let deployments = [
            deployment("dp_old", "2026-12-01T10:00:00Z", 1),
            deployment("dp_new", "2026-12-02T10:00:00Z", 2),
        ];
        let unfinished = [
            invocation(IMPORTS, "kbo-0140-full", "run", Some("dp_old")),
            invocation("KboSync", "main", "scheduledRun", Some("dp_new")),
            invocation(IMPORTS, "kbo-0141-update", "run", None),
        ];
        let text = report(&deployments, &unfinished);
        let new_at = text.find("dp_new  ").unwrap();
        let old_at = text.find("dp_old  ").unwrap();
        assert!(new_at < old_at, "newest first:\n{text}");
        let (new, old) = text[new_at..].split_at(old_at - new_at);
        assert!(
            new.contains("runs KboSync/main/scheduledRun (running"),
            "{text}"
        );
        assert!(new.contains("new imports go here"), "{text}");
        assert!(old.contains("runs import kbo-0140-full (running, inv_kbo-0140-full)"));
        assert!(
            old.contains("keep it serving until these end") && !old.contains("new imports"),
            "{text}"
        );
        assert!(text.contains("not started on a deployment yet"), "{text}");
        assert!(
            text.ends_with("  import kbo-0141-update (running)\n"),
            "{text}"
        );
    }

    #[test]
    fn a_drained_old_deployment_is_named_for_removal_but_never_the_latest() {
        let deployments = [
            deployment("dp_old", "2026-12-01T10:00:00Z", 1),
            deployment("dp_new", "2026-12-02T10:00:00Z", 2),
        ];
        let text = report(&deployments, &[]);
        assert!(text.contains("remove it with `restate deployments remove dp_old`"));
        assert!(!text.contains("remove dp_new"), "{text}");
        assert!(text.contains("new imports go here; nothing runs on it now"));
        assert!(!text.contains("not started"), "{text}");
    }

    #[test]
    fn no_deployment_says_how_to_register_one() {
        assert!(report(&[], &[]).contains("kbo-import register"));
    }
}
