//! `kbo-import register <endpoint>`: registers the service with Restate's admin API and says
//! what Restate now runs: the deployment, its services and handlers, and the settings as the
//! server applies them, naming any it lowered below what the service declares.

use serde_json::Value;

use super::RestateArgs;
use kbo_import::wire::{DECLARED, SHOWN};

/// Arguments of `register`.
#[derive(clap::Args)]
pub struct Args {
    /// The endpoint's URL as the Restate server reaches it.
    #[arg(default_value = "http://localhost:9080")]
    endpoint: String,
    /// Replace the deployment already registered at this URL even if its services changed.
    /// Restate meant this for development: invocations running on it may fail. In production a
    /// new version goes to a new URL (docs/cloud.md).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    restate: RestateArgs,
}

/// Registers the endpoint; prints what Restate registered and which settings it clamped.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let admin = args.restate.client().admin;
    let answer = admin.register(&args.endpoint, args.force).await?;
    print!("{}", describe(&args.endpoint, &answer));
    Ok(())
}

/// The report of a registration: the admin API's `answer` to `POST /deployments`.
fn describe(endpoint: &str, answer: &Value) -> String {
    let deployment = answer["id"].as_str().unwrap_or("(no id in the answer)");
    let mut out = format!("registered {endpoint} as deployment {deployment}\n");
    let mut clamped = Vec::new();
    let services = answer["services"].as_array().cloned().unwrap_or_default();
    let mut declared: Vec<&str> = DECLARED.iter().map(|d| d.service).collect();
    declared.dedup();
    for name in declared {
        if !services.iter().any(|s| s["name"] == name) {
            clamped.push(format!(
                "{name}: not in the server's answer, so none of its settings"
            ));
        }
    }
    for service in &services {
        let name = service["name"].as_str().unwrap_or("?");
        let kind = service["ty"].as_str().unwrap_or("?");
        let handlers = service["handlers"].as_array().cloned().unwrap_or_default();
        let handler_names: Vec<&str> = handlers.iter().filter_map(|h| h["name"].as_str()).collect();
        out += &format!("  {name} ({kind}): handlers {}\n", handler_names.join(", "));
        out += &format!("    {}\n", settings(service));
        clamped.extend(lowered(name, None, service));
        for handler in &handlers {
            let shown = settings(handler);
            let handler_name = handler["name"].as_str().unwrap_or("?");
            if !shown.is_empty() {
                out += &format!("    {handler_name}: {shown}\n");
            }
            clamped.extend(lowered(name, Some(handler_name), handler));
        }
    }
    if clamped.is_empty() {
        out += "every setting the service declares is in force\n";
    } else {
        out += "the server changed settings the service declares (an environment's maximum on \
                Restate Cloud; docs/cloud.md):\n";
        for line in clamped {
            out += &format!("  clamped: {line}\n");
        }
    }
    out
}

/// `key value` of the settings [`SHOWN`] that `item` (a service or handler) carries.
fn settings(item: &Value) -> String {
    SHOWN
        .iter()
        .filter_map(|key| Some(format!("{key} {}", item[*key].as_str()?)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The declared settings of `service` (its `handler`'s if given) that `item` shows lower, or
/// not at all (a value the server raised is no loss; one that cannot be read is named).
fn lowered(service: &str, handler: Option<&str>, item: &Value) -> Vec<String> {
    let whose = handler.map_or(service.to_string(), |h| format!("{service}.{h}"));
    DECLARED
        .iter()
        .filter(|d| d.service == service && d.handler == handler)
        .filter_map(|d| {
            let shown = item[d.key].as_str().unwrap_or("(absent)");
            let lower = match (seconds(shown), seconds(d.value)) {
                (Some(shown), Some(declared)) => shown < declared,
                _ => shown != d.value,
            };
            lower.then(|| format!("{whose} {}: declared {}, in force {shown}", d.key, d.value))
        })
        .collect()
}

/// A duration as Restate's admin API prints one (`35d`, `30m`, `1h 30m`, `500ms`, `7days`), in
/// seconds; `None` for anything else.
fn seconds(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut any = false;
    for part in text.split_whitespace() {
        let split = part.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (number, unit) = part.split_at(split);
        let number: f64 = number.parse().ok()?;
        let unit_seconds = match unit {
            "ms" | "msec" | "millis" => 0.001,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 604_800.0,
            "M" | "month" | "months" => 2_630_016.0,
            "y" | "year" | "years" => 31_557_600.0,
            _ => return None,
        };
        total += number * unit_seconds;
        any = true;
    }
    any.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(sync_idempotency: &str) -> Value {
        json!({
            "id": "dp_1",
            "services": [
                {"name": "KboImport", "ty": "Workflow",
                 "workflow_completion_retention": "35d", "journal_retention": "7d",
                 "idempotency_retention": "1d", "inactivity_timeout": "1m", "abort_timeout": "10m",
                 "handlers": [
                    {"name": "run", "inactivity_timeout": "30m", "abort_timeout": "30m"},
                    {"name": "getProgress", "inactivity_timeout": "1m", "abort_timeout": "1m"},
                    {"name": "getChanges", "inactivity_timeout": "1m", "abort_timeout": "1m"}]},
                {"name": "KboVerify", "ty": "Workflow",
                 "workflow_completion_retention": "35d", "journal_retention": "7d",
                 "handlers": [
                    {"name": "run", "inactivity_timeout": "30m", "abort_timeout": "30m"},
                    {"name": "getProgress", "inactivity_timeout": "1m", "abort_timeout": "1m"}]},
                {"name": "KboSync", "ty": "VirtualObject", "journal_retention": "7d",
                 "idempotency_retention": sync_idempotency, "inactivity_timeout": "10m",
                 "abort_timeout": "10m", "handlers": [{"name": "syncNow"}]},
                {"name": "KboSubscription", "ty": "VirtualObject", "journal_retention": "7d",
                 "handlers": [{"name": "subscribe"}, {"name": "deliver"}]},
                {"name": "KboFeed", "ty": "Service", "handlers": [{"name": "list"}, {"name": "wake"}]}
            ]
        })
    }

    #[test]
    fn a_registration_as_declared_lists_services_handlers_and_settings_and_clamps_nothing() {
        let text = describe("http://svc:9080", &answer("7d"));
        assert!(
            text.starts_with("registered http://svc:9080 as deployment dp_1\n"),
            "{text}"
        );
        assert!(
            text.contains("  KboImport (Workflow): handlers run, getProgress, getChanges\n"),
            "{text}"
        );
        assert!(
            text.contains("    run: inactivity_timeout 30m, abort_timeout 30m\n"),
            "{text}"
        );
        assert!(
            text.contains("workflow_completion_retention 35d, journal_retention 7d"),
            "{text}"
        );
        assert!(
            text.ends_with("every setting the service declares is in force\n"),
            "{text}"
        );
        assert!(!text.contains("clamped"), "{text}");
    }

    #[test]
    fn a_setting_the_server_lowered_is_named_with_both_values() {
        let text = describe("http://svc:9080", &answer("1d"));
        assert!(
            text.contains("  clamped: KboSync idempotency_retention: declared 7d, in force 1d\n"),
            "{text}"
        );
        assert_eq!(text.matches("clamped:").count(), 1, "{text}");
    }

    #[test]
    fn the_same_duration_written_otherwise_or_raised_is_no_clamp_and_a_missing_service_is_named() {
        let mut a = answer("168h");
        a["services"][0]["workflow_completion_retention"] = json!("60d");
        let text = describe("http://svc:9080", &a);
        assert!(!text.contains("clamped"), "{text}");
        a["services"].as_array_mut().unwrap().remove(2);
        let text = describe("http://svc:9080", &a);
        assert!(
            text.contains("clamped: KboSync: not in the server's answer"),
            "{text}"
        );
        assert_eq!(seconds("1h 30m"), Some(5_400.0));
        assert_eq!(seconds("500ms"), Some(0.5));
        assert_eq!(seconds("7days"), Some(604_800.0));
        assert_eq!(seconds("soon"), None);
        assert_eq!(seconds(""), None);
    }

    #[test]
    fn a_handler_setting_the_server_dropped_is_named_as_absent() {
        let mut a = answer("7d");
        a["services"][0]["handlers"][0]
            .as_object_mut()
            .unwrap()
            .remove("abort_timeout");
        let text = describe("http://svc:9080", &a);
        assert!(
            text.contains("clamped: KboImport.run abort_timeout: declared 30m, in force (absent)"),
            "{text}"
        );
    }
}
