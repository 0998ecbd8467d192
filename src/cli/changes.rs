//! `kbo-import changes <extract>`: what an extract changed, entity by entity, read from the
//! database's change sets (`getChanges` answers the same through Restate ingress).

use kbo_import::config::Config;
use kbo_import::db::changes::{self, ChangeSetOf};
use kbo_import::db::{self, Database, DatabaseTarget};
use kbo_import::wire::{ChangeType, ChangesPage, ChangesQuery, EntityFilter, MAX_LIMIT};

/// The arguments of `changes`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  kbo-import changes 141                          the enterprises extract 141 inserted, updated or deleted
  kbo-import changes kbo-0141-update --all        every entity (establishments and branches too)
  kbo-import changes 141 --change delete --json   the deleted enterprises, as getChanges answers")]
pub struct Args {
    /// The extract number (`141`), or the id of the workflow that imported it.
    extract: String,
    /// The page, from 1.
    #[arg(long, default_value_t = 1)]
    page: u32,
    /// Entities per page (1 to 200).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Every kind of entity, not only enterprises.
    #[arg(long, conflicts_with = "entity_type")]
    all: bool,
    /// Only this kind of entity: enterprise (the default), establishment, branch.
    #[arg(long = "type", value_name = "KIND")]
    entity_type: Option<String>,
    /// Only entities with this change: insert, update, delete.
    #[arg(long = "change", value_name = "CHANGE")]
    change_type: Option<String>,
    /// Print the page as getChanges answers it (JSON), not as a table.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// The question, checked as getChanges checks it.
    fn query(&self) -> anyhow::Result<ChangesQuery> {
        let entity_type = match (&self.entity_type, self.all) {
            (_, true) => EntityFilter::All,
            (Some(kind), false) => EntityFilter::Only(kind.parse().map_err(|_| {
                anyhow::anyhow!("--type {kind:?} is none of enterprise, establishment, branch")
            })?),
            (None, false) => ChangesQuery::default().entity_type,
        };
        let change_type = match &self.change_type {
            Some(c) => Some(c.parse::<ChangeType>().map_err(|_| {
                anyhow::anyhow!("--change {c:?} is none of insert, update, delete")
            })?),
            None => None,
        };
        ChangesQuery {
            page: self.page,
            limit: self.limit,
            entity_type,
            change_type,
        }
        .checked()
        .map_err(|why| anyhow::anyhow!("{why} (--limit is at most {MAX_LIMIT})"))
    }

    /// Which change set: a number is an extract, anything else a workflow id.
    fn of(&self) -> ChangeSetOf {
        match self.extract.parse::<u32>() {
            Ok(n) => ChangeSetOf::Extract(n),
            Err(_) => ChangeSetOf::Job(db::ledger::job_id_of(&self.extract)),
        }
    }
}

/// Prints a page of the change set, or says why there is none.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let query = args.query()?;
    let config = Config::from_env()?;
    let target = config.import.database.clone();
    if matches!(&target, DatabaseTarget::File(path) if !path.exists()) {
        anyhow::bail!("no register yet in {target}: no change sets");
    }
    let of = args.of();
    let database = Database::new(target, config.import.duckdb.clone());
    let page = database
        .run_last(move |conn| {
            db::ensure_schema(conn)?;
            let extract = changes::extract_of(conn, &of)?;
            changes::page(conn, extract, &query)
        })
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
    } else {
        print!("{}", table(&page));
    }
    Ok(())
}

/// The page as a person reads it: the counts, then one line per entity.
fn table(page: &ChangesPage) -> String {
    let s = &page.summary;
    let mut out = format!(
        "extract {} ({}, job {}): {} inserted, {} updated, {} deleted entities; {} rows added, {} removed\n",
        s.extract_number,
        s.extract_type,
        s.job_id,
        s.inserted,
        s.updated,
        s.deleted,
        s.rows_added,
        s.rows_removed
    );
    if s.initial {
        out.push_str(
            "an initial load into an empty register: every entity is new, none is listed\n",
        );
        return out;
    }
    out.push_str(&format!(
        "page {} of {} ({} entities match)\n",
        page.page, page.total_pages, page.total
    ));
    for e in &page.enterprises {
        let tables: Vec<String> = e
            .affected_tables
            .iter()
            .map(|t| format!("{} +{} -{}", t.table_name, t.rows_added, t.rows_removed))
            .collect();
        out.push_str(&format!(
            "{:<14} {:<13} {:<6} {}  [{}]\n",
            e.enterprise_number,
            e.entity_type.as_str(),
            e.change_type.as_str(),
            e.primary_name,
            tables.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(line: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("changes").chain(line.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn a_number_is_an_extract_and_anything_else_a_workflow() {
        assert_eq!(args(&["141"]).of(), ChangeSetOf::Extract(141));
        assert_eq!(
            args(&["kbo-0141-update"]).of(),
            ChangeSetOf::Job(db::ledger::job_id_of("kbo-0141-update"))
        );
    }

    #[test]
    fn the_options_become_getchanges_query() {
        let q = args(&["141", "--all", "--change", "delete", "--page", "2"])
            .query()
            .unwrap();
        assert_eq!(q.entity_type, EntityFilter::All);
        assert_eq!(q.change_type, Some(ChangeType::Delete));
        assert_eq!(q.offset(), 50);
        let e = args(&["141", "--type", "person"]).query().unwrap_err();
        assert!(
            e.to_string().contains("enterprise, establishment, branch"),
            "{e}"
        );
        let e = args(&["141", "--limit", "500"]).query().unwrap_err();
        assert!(e.to_string().contains("at most 200"), "{e}");
    }
}
