//! The documents agree with the tree and with the code: every relative link leads to a file
//! that exists, and the README's configuration table gives the defaults `.env.example` sets
//! (which `config`'s unit test checks against the code); every command of the Cloud guide
//! names the test that runs it, or why none can.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The README and every page of docs/.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![
        root().join("README.md"),
        root().join("deploy/cluster/README.md"),
    ];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    docs
}

/// The targets of a Markdown text's inline links: `[text](target)`.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            targets.push(rest[..end].to_string());
        }
    }
    targets
}

#[test]
fn every_relative_link_in_the_docs_leads_to_a_file_of_the_tree() {
    let mut broken = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let path = target.split('#').next().unwrap_or_default();
            let base = doc.parent().unwrap_or(Path::new("."));
            if !base.join(path).exists() {
                broken.push(format!("{}: {target}", doc.display()));
            }
        }
        // A page named in prose (`docs/cloud.md`, `cloud.md` beside it) exists too.
        for word in text.split(|c: char| c.is_whitespace() || "`(),;:".contains(c)) {
            let word = word.trim_end_matches('.');
            if word.ends_with(".md") && !word.contains('/') && !word.contains('*') {
                let beside = doc.parent().unwrap().join(word);
                let in_docs = root().join("docs").join(word);
                if !beside.exists() && !in_docs.exists() && !root().join(word).exists() {
                    broken.push(format!("{}: names {word}", doc.display()));
                }
            } else if let Some(page) = word.strip_prefix("docs/")
                && page.ends_with(".md")
                && !root().join("docs").join(page).exists()
            {
                broken.push(format!("{}: names {word}", doc.display()));
            }
        }
    }
    assert!(broken.is_empty(), "links to nothing: {broken:#?}");
}

#[test]
fn the_readme_table_gives_the_defaults_env_example_sets() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let example = std::fs::read_to_string(root().join(".env.example")).unwrap();
    for line in example.lines().filter(|l| !l.starts_with('#')) {
        let Some((var, value)) = line.split_once('=') else {
            continue;
        };
        let row = readme
            .lines()
            .find(|l| {
                l.split('|')
                    .nth(1)
                    .is_some_and(|first| first.contains(&format!("`{var}`")))
            })
            .unwrap_or_else(|| panic!("the README's configuration table has no row for {var}"));
        let default = row.split('|').nth(2).unwrap_or_default();
        let shown = default.replace(['`', ' '], "");
        let agrees = shown
            .split(',')
            .any(|d| d == value || d == byte_size(value).as_deref().unwrap_or("-"));
        assert!(
            agrees,
            "{var}: .env.example sets {value:?}, the README's default says {default:?}"
        );
    }
}

/// A number of bytes as the README writes a round one (`8GiB`).
fn byte_size(value: &str) -> Option<String> {
    let n: u64 = value.parse().ok()?;
    (n >= 1 << 30 && n.is_multiple_of(1 << 30)).then(|| format!("{}GiB", n >> 30))
}

/// Whether `tests/suite/<module>.rs` defines the test `name`.
fn test_exists(module: &str, name: &str) -> bool {
    let file = root().join("tests/suite").join(format!("{module}.rs"));
    std::fs::read_to_string(file).is_ok_and(|text| {
        text.contains(&format!("async fn {name}()")) || text.contains(&format!("fn {name}()"))
    })
}

#[test]
fn every_command_of_the_cloud_guide_names_its_test_or_why_none() {
    let guide = std::fs::read_to_string(root().join("docs/cloud.md")).unwrap();
    let mut in_code = false;
    let mut commands = 0;
    let mut faults = Vec::new();
    for line in guide.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code || line.trim().is_empty() {
            continue;
        }
        commands += 1;
        let (_, comment) = line.split_once(" # ").unwrap_or((line, ""));
        let comment = comment.trim();
        if let Some(test) = comment.strip_prefix("tested: ") {
            let (module, name) = test.split_once("::").unwrap_or(("", test));
            if !test_exists(module, name) {
                faults.push(format!(
                    "{line}\n    names no test of tests/suite/{module}.rs"
                ));
            }
        } else if !comment.starts_with("not testable here: ") || comment.len() < 30 {
            faults.push(format!(
                "{line}\n    needs `# tested: <module>::<test>` or `# not testable here: <why>`"
            ));
        }
    }
    assert!(commands >= 10, "the guide's commands were not found");
    // Prose naming a test (`module::name`) names one that exists.
    for word in guide.split(['`', '(', ')', ',', ' ', '\n']) {
        if let Some((module, name)) = word.split_once("::")
            && module.chars().all(|c| c.is_ascii_lowercase())
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            && !test_exists(module, name)
        {
            faults.push(format!("the guide names {word}, which is no test"));
        }
    }
    assert!(faults.is_empty(), "docs/cloud.md:\n{}", faults.join("\n"));
}

/// Every environment variable named in the service's sources: a quoted `NAME_LIKE_THIS` (or
/// `PORT`), as config.rs, clap's `env =` and the few direct reads spell them.
fn variables_in_the_code() -> std::collections::BTreeSet<String> {
    fn walk(dir: &Path, names: &mut std::collections::BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, names);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for quoted in text.split('"').skip(1).step_by(2) {
                    let upper = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_';
                    let variable = quoted.contains('_')
                        && quoted.starts_with(|c: char| c.is_ascii_uppercase())
                        && !quoted.ends_with('_')
                        && quoted.chars().all(upper);
                    if variable || quoted == "PORT" {
                        names.insert(quoted.to_string());
                    }
                }
            }
        }
    }
    let mut names = std::collections::BTreeSet::new();
    walk(&root().join("src"), &mut names);
    names
}

/// The variables `.env.example` sets or shows commented out (`NAME=` or `# NAME=`).
fn variables_in_env_example() -> std::collections::BTreeSet<String> {
    let example = std::fs::read_to_string(root().join(".env.example")).unwrap();
    example
        .lines()
        .filter_map(|l| l.trim_start_matches(['#', ' ']).split_once('='))
        .map(|(name, _)| name)
        .filter(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(String::from)
        .collect()
}

/// The variables of the README's configuration table (the first cell of each row).
fn variables_in_readme_table() -> std::collections::BTreeSet<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    readme
        .lines()
        .filter_map(|l| l.strip_prefix('|')?.split('|').next())
        .flat_map(|cell| {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|name| name.contains('_') || name == "PORT")
        .filter(|name| {
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect()
}

#[test]
fn every_setting_the_code_reads_is_in_env_example_and_the_readme_table_and_nothing_else() {
    // Named in the code but not settings of a deployment, each with its reason.
    let not_settings = [
        // Cargo's, at compile time (`env!`).
        "CARGO_PKG_VERSION",
        // The convention every program honours; the README's LOG_FORMAT row names it.
        "NO_COLOR",
        // The tests' fault injection (docs/guarantees.md), never set in a deployment.
        "KBO_FAULT_KILL_WRITING",
    ];
    let code: std::collections::BTreeSet<String> = variables_in_the_code()
        .into_iter()
        .filter(|name| !not_settings.contains(&name.as_str()))
        .collect();
    assert!(
        code.len() > 30,
        "the scan found too few variables: {code:?}"
    );
    for (what, listed) in [
        (".env.example", variables_in_env_example()),
        (
            "the README's configuration table",
            variables_in_readme_table(),
        ),
    ] {
        let missing: Vec<&String> = code.difference(&listed).collect();
        let unknown: Vec<&String> = listed.difference(&code).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "{what}: the code reads {missing:?} that it does not list, and it lists {unknown:?} \
             that the code does not read"
        );
    }
}
