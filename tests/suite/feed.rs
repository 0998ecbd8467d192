//! The feed end to end: subscriptions made through the CLI, pages delivered by the real
//! service through real Restate to receivers on loopback that fail on cue, with the service
//! killed and Restate restarted mid-delivery; what each receiver holds (deduplicated by
//! `webhook-id`) compared with `getChanges` and the register.

use crate::fixtures::{chain, member_text};
use crate::harness::{TestApp, output_text};
use crate::receiver::{Received, Receiver, Reply};
use crate::tables::open;
use kbo_import::feed::sign::{Secret, verify};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The service's feed settings in these tests: small pages, quick retries.
const FEED_ENV: [(&str, &str); 4] = [
    ("KBO_FEED_PAGE_SIZE", "40"),
    ("KBO_FEED_ATTEMPTS", "6"),
    ("KBO_FEED_BACKOFF_MAX_SECS", "1"),
    ("KBO_FEED_TIMEOUT_SECS", "2"),
];

/// `kbo-import subscribe <args>`; asserts it succeeds and returns its JSON.
fn subscribe(app: &TestApp, args: &[&str]) -> Value {
    let out = app.kbo_import(&[&["subscribe"], args, &["--secret", SECRET]].concat(), &[]);
    assert!(
        out.status.success(),
        "subscribe {args:?}: {}",
        output_text(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `KboSubscription/<name>/get` through ingress.
async fn subscription(app: &TestApp, name: &str) -> Value {
    let (status, view) = app
        .post(&format!("/KboSubscription/{name}/get"), Value::Null)
        .await;
    assert_eq!(status, 200, "{view}");
    view
}

/// Waits until subscription `name` has delivered every page through extract `n`, or stopped.
async fn wait_delivered(app: &TestApp, name: &str, n: u32) -> Value {
    let start = Instant::now();
    loop {
        let view = subscription(app, name).await;
        let done =
            view["deliveredThrough"].as_u64() >= Some(n.into()) && view["delivering"].is_null();
        if done || view["status"] != "active" {
            return view;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "{name} never delivered {n}: {view}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The requests a receiver got, one per `webhook-id` (the first), each signature verified.
fn deduplicated(receiver: &Receiver) -> Vec<Received> {
    let secret = Secret::parse(SECRET).unwrap();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in receiver.received() {
        assert!(
            verify(&secret, &r.id, r.timestamp, &r.body, &r.signature),
            "the signature of {} verifies",
            r.id
        );
        if seen.insert(r.id.clone()) {
            out.push(r);
        }
    }
    out
}

/// Per entity, its change and tables (`table:added:removed`), from a receiver's pages of
/// extract `n`; asserts the pages are 1..=pages, in order, each entity once.
fn delivered_changes(pages: &[Received], n: u64) -> BTreeMap<String, (String, Vec<String>)> {
    let pages: Vec<Value> = pages
        .iter()
        .map(Received::json)
        .filter(|p| p["type"] == "changes" && p["extract"]["number"] == n)
        .collect();
    let numbers: Vec<u64> = pages.iter().map(|p| p["page"].as_u64().unwrap()).collect();
    let total = pages.first().map_or(0, |p| p["pages"].as_u64().unwrap());
    assert_eq!(
        numbers,
        (1..=total).collect::<Vec<_>>(),
        "pages in order, each once"
    );
    let mut out = BTreeMap::new();
    for page in &pages {
        assert_eq!(page["version"], 1);
        for e in page["entities"].as_array().unwrap() {
            let tables = tables_of(&e["tables"]);
            let change = e["changeType"].as_str().unwrap().to_string();
            assert_eq!(e["current"].is_null(), change == "delete", "{e}");
            let number = e["entityNumber"].as_str().unwrap().to_string();
            assert!(
                out.insert(number, (change, tables)).is_none(),
                "an entity once: {e}"
            );
        }
    }
    out
}

/// Asserts every entity state the pages of extract `n` hold is the one Full `full` (the
/// register right after `n`) gives it, and that a deleted entity has none.
fn assert_states_as_in_the_full(pages: &[Received], n: u64, full: &std::path::Path) {
    let states = crate::states::states_in_full(full);
    let mut compared = 0;
    let pages = pages
        .iter()
        .map(Received::json)
        .filter(|p| p["type"] == "changes" && p["extract"]["number"] == n);
    for page in pages {
        for e in page["entities"].as_array().unwrap() {
            let number = e["entityNumber"].as_str().unwrap();
            let Some(want) = states.get(number) else {
                assert!(e["current"].is_null(), "{number} is not in the Full: {e}");
                continue;
            };
            for field in [
                "name",
                "status",
                "juridicalSituation",
                "juridicalForm",
                "startDate",
                "address",
                "mainNaceCodes",
            ] {
                assert_eq!(e["current"][field], want[field], "{number}'s {field}: {e}");
            }
            compared += 1;
        }
    }
    assert!(compared > 20, "states compared: {compared}");
}

/// A list of affected tables (a page's `tables`, `getChanges`' `affectedTables`) as
/// `table:added:removed`.
fn tables_of(tables: &Value) -> Vec<String> {
    tables
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let name = t["tableName"].as_str().unwrap();
            format!("{name}:{}:{}", t["rowsAdded"], t["rowsRemoved"])
        })
        .collect()
}

/// Extract `n`'s change set as `getChanges` answers it (every entity), as [`delivered_changes`].
async fn get_changes(app: &TestApp, workflow: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let mut out = BTreeMap::new();
    for page in 1.. {
        let (status, answer) = app
            .changes(
                workflow,
                json!({"entityType": "all", "limit": 200, "page": page}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        for e in answer["enterprises"].as_array().unwrap() {
            let tables = tables_of(&e["affectedTables"]);
            let number = e["enterpriseNumber"].as_str().unwrap().to_string();
            out.insert(
                number,
                (e["changeType"].as_str().unwrap().to_string(), tables),
            );
        }
        if page >= answer["totalPages"].as_u64().unwrap() {
            break;
        }
    }
    out
}

/// Enterprises to follow: three the Update renames or inserts, one that owns an establishment
/// the Update touches, and one it leaves alone.
fn watchlist() -> Vec<String> {
    let update = &chain().update;
    let numbers = |member: &str, column: usize| -> Vec<String> {
        member_text(update, member)
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').nth(column))
            .map(|v| v.trim_matches('"').to_string())
            .collect()
    };
    let mut list: Vec<String> = Vec::new();
    let renamed = numbers("denomination_insert.csv", 0)
        .into_iter()
        .filter(|n| n.starts_with('0'));
    for n in renamed {
        if list.len() < 3 && !list.contains(&n) {
            list.push(n);
        }
    }
    let owner = numbers("establishment_insert.csv", 2)
        .into_iter()
        .find(|n| !list.contains(n));
    list.extend(owner);
    let full = member_text(&chain().full, "enterprise.csv");
    let untouched = full
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .map(|v| v.trim_matches('"').to_string())
        .find(|n| {
            !member_text(update, "enterprise_delete.csv").contains(n.as_str()) && !list.contains(n)
        });
    list.extend(untouched);
    list
}

/// The entities of extract `n`'s change set that watchlist `list` follows, from the register.
fn followed_changes(app: &TestApp, n: u32, list: &[String]) -> BTreeSet<String> {
    let conn = open(&app.db);
    let mut statement = conn
        .prepare(
            "SELECT DISTINCT c.entity_number FROM import_changes c
             LEFT JOIN (SELECT establishment_number AS n, any_value(enterprise_number) AS owner FROM establishments GROUP BY 1
                        UNION ALL SELECT id, any_value(enterprise_number) FROM branches GROUP BY 1) o ON o.n = c.entity_number
             WHERE c.extract_number = ? AND list_contains(string_split(?, ','), coalesce(o.owner, c.entity_number))",
        )
        .unwrap();
    statement
        .query_map(duckdb::params![n, list.join(",")], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_receiver_holds_exactly_its_changes_through_failures_a_killed_service_and_a_restarted_restate()
 {
    let chain = chain();
    let all = Receiver::start(vec![
        Reply::Status(500, None),
        Reply::Close,
        Reply::Status(429, Some(1)),
        Reply::Late(Duration::from_secs(4)),
        Reply::Status(503, None),
    ])
    .await;
    let watch = Receiver::start(Vec::new()).await;
    let mut app = TestApp::spawn(&FEED_ENV);
    app.import_completed("kbo-0140-full", &chain.full).await;
    subscribe(&app, &["everything", &all.url, "--all"]);
    let list = watchlist();
    let view = subscribe(&app, &["watch", &watch.url, "--follow", &list.join(",")]);
    assert_eq!(view["watchlistSize"], list.len(), "{view}");
    assert_eq!(view["fromExtract"], 141, "{view}");

    app.import_completed("kbo-0141-update", &chain.update).await;
    // The service killed and Restate restarted while the first receiver still fails.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let midway = subscription(&app, "everything").await;
    assert!(
        midway["deliveredThrough"].is_null() && !midway["delivering"].is_null(),
        "the kill lands during the delivery: {midway}"
    );
    app.service.kill();
    app.restate.restart();
    app.service.restart();
    let done = wait_delivered(&app, "everything", 141).await;
    assert_eq!(done["status"], "active", "{done}");
    assert_eq!(wait_delivered(&app, "watch", 141).await["status"], "active");

    let expected = get_changes(&app, "kbo-0141-update").await;
    assert!(
        expected.len() > 40,
        "the change set spans several pages: {}",
        expected.len()
    );
    let got = delivered_changes(&deduplicated(&all), 141);
    assert_eq!(
        got, expected,
        "the all-changes receiver holds getChanges' change set"
    );
    assert!(
        all.received().len() > deduplicated(&all).len(),
        "failed pages were sent again"
    );

    let watched = delivered_changes(&deduplicated(&watch), 141);
    let want = followed_changes(&app, 141, &list);
    assert!(!want.is_empty());
    assert_eq!(watched.keys().cloned().collect::<BTreeSet<_>>(), want);
    for (number, change) in &watched {
        assert_eq!(
            Some(change),
            expected.get(number),
            "{number} as getChanges has it"
        );
    }

    assert_states_as_in_the_full(&deduplicated(&all), 141, &chain.next_full);

    // A subscription made later, from 141, receives the backlog.
    let late = Receiver::start(Vec::new()).await;
    subscribe(&app, &["late", &late.url, "--all", "--from", "141"]);
    wait_delivered(&app, "late", 141).await;
    assert_eq!(delivered_changes(&deduplicated(&late), 141), expected);

    // The extract removed: each receiver of its pages is sent one retraction.
    let db = app.db.to_string_lossy().into_owned();
    let out = app.kbo_import(
        &["rollback", "kbo-0141-update", "--completed"],
        &[("KBO_DATABASE", &db)],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    for receiver in [&all, &watch, &late] {
        let start = Instant::now();
        let retracted = loop {
            let r: Vec<Value> = deduplicated(receiver)
                .iter()
                .map(Received::json)
                .filter(|p| p["type"] == "retraction")
                .collect();
            if !r.is_empty() || start.elapsed() > Duration::from_secs(60) {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        assert_eq!(retracted.len(), 1, "{retracted:?}");
        assert_eq!(retracted[0]["extract"]["number"], 141);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusing_receiver_pauses_its_subscription_and_resume_goes_on_where_it_stopped() {
    let chain = chain();
    // Page 1 delivered, page 2 refused (400): paused at page 2.
    let receiver = Receiver::start(vec![Reply::Status(204, None), Reply::Status(400, None)]).await;
    let gone = Receiver::start(vec![Reply::Status(410, None)]).await;
    let app = TestApp::spawn(&FEED_ENV);
    app.import_completed("kbo-0140-full", &chain.full).await;
    subscribe(&app, &["crm", &receiver.url, "--all"]);
    subscribe(&app, &["gone", &gone.url, "--all"]);
    app.import_completed("kbo-0141-update", &chain.update).await;
    let paused = wait_delivered(&app, "crm", 141).await;
    assert_eq!(paused["status"], "paused", "{paused}");
    assert!(
        paused["reason"].as_str().unwrap().contains("answered 400"),
        "{paused}"
    );
    assert_eq!(paused["delivering"]["nextPage"], 2, "{paused}");
    let ended = wait_delivered(&app, "gone", 141).await;
    assert_eq!(ended["status"], "ended", "{ended}");
    assert!(ended["reason"].as_str().unwrap().contains("410"), "{ended}");
    assert_eq!(gone.received().len(), 1, "nothing more after 410");

    let out = app.kbo_import(&["subscription", "crm", "--resume"], &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    let done = wait_delivered(&app, "crm", 141).await;
    assert_eq!(done["status"], "active", "{done}");
    let pages = deduplicated(&receiver);
    assert_eq!(
        delivered_changes(&pages, 141),
        get_changes(&app, "kbo-0141-update").await
    );
    let ids: Vec<String> = receiver.received().into_iter().map(|r| r.id).collect();
    assert_eq!(
        ids.iter().filter(|i| i.ends_with("_p1")).count(),
        1,
        "page 1 was not sent again: {ids:?}"
    );
    assert_eq!(
        ids.iter().filter(|i| i.ends_with("_p2")).count(),
        2,
        "page 2 refused, then sent again: {ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_subscriptions_are_refused_with_a_clear_answer() {
    let app = TestApp::spawn(&FEED_ENV);
    let receiver = Receiver::start(Vec::new()).await;
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "a",
            json!({"url": "ftp://example.com/x", "all": true}),
            400,
            "only http and https",
        ),
        (
            "a",
            json!({"url": "http://169.254.169.254/latest", "all": true}),
            400,
            "link-local",
        ),
        (
            "a",
            json!({"url": "https://user:pw@example.com/", "all": true}),
            400,
            "user name or password",
        ),
        (
            "a",
            json!({"url": receiver.url, "follow": ["0403.170.701", "0403.170.702", "12"]}),
            400,
            "2 of the numbers are refused",
        ),
        (
            "a",
            json!({"url": receiver.url, "follow": []}),
            400,
            "empty",
        ),
        ("a", json!({"url": receiver.url}), 400, "say what to follow"),
        (
            "a",
            json!({"url": receiver.url, "all": true, "secret": "hunter2"}),
            400,
            "whsec_",
        ),
        ("a", json!([receiver.url]), 400, "an object"),
        (
            "a b",
            json!({"url": receiver.url, "all": true}),
            400,
            "not a subscription name",
        ),
    ];
    for (name, body, status, words) in cases {
        let (got, answer) = app
            .post(
                &format!("/KboSubscription/{}/subscribe", name.replace(' ', "%20")),
                body.clone(),
            )
            .await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer.to_string().contains(words), "{body}: {answer}");
    }
    let (ok, _) = app
        .post(
            "/KboSubscription/one/subscribe",
            json!({"url": receiver.url, "all": true}),
        )
        .await;
    assert_eq!(ok, 200);
    let (twice, answer) = app
        .post(
            "/KboSubscription/one/subscribe",
            json!({"url": receiver.url, "all": true}),
        )
        .await;
    assert_eq!(twice, 409, "{answer}");
    assert!(
        answer.to_string().contains("subscription_exists"),
        "{answer}"
    );
    let (none, answer) = app.post("/KboSubscription/nobody/get", Value::Null).await;
    assert_eq!(none, 404, "{answer}");
    // A long watchlist goes in at once, and edits add and remove without sending it whole.
    let numbers: Vec<String> = (0..20_000u64)
        .map(|i| {
            let base = 2_000_000 + i;
            let n = base * 100 + (97 - base % 97);
            format!("{:010}", n)
        })
        .collect();
    let file = app.path("follows.txt");
    std::fs::write(&file, numbers.join("\n")).unwrap();
    let file = file.to_string_lossy().into_owned();
    let out = app.kbo_import(
        &["subscribe", "big", &receiver.url, "--follow-file", &file],
        &[],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["watchlistSize"], 20_000);
    assert!(
        view["secret"].as_str().unwrap().starts_with("whsec_"),
        "a made secret is shown once"
    );
    let out = app.kbo_import(
        &[
            "subscription",
            "big",
            "--unfollow",
            &numbers[..10].join(","),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["watchlistSize"], 19_990);
    assert!(view.get("secret").is_none(), "{view}");
    let out = app.kbo_import(&["subscriptions"], &[]);
    let text = output_text(&out);
    assert!(
        text.contains("big") && text.contains("19990 enterprises") && text.contains("one"),
        "{text}"
    );
}
