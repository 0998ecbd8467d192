//! A database created by the old system: its own DDL (other column order, primary keys on the
//! uniqueness keys, the contract's CHECK constraints), used unchanged.

use crate::fixtures::chain;
use crate::harness::{TestApp, file_url};
use crate::tables::{DATA_TABLES, assert_same_rows, count, open, rows};
use kbo_import::db::schema::columns;
use kbo_import::extract::Table;
use serde_json::json;
use std::time::Duration;

const TEMPORAL: &str = "_is_current BOOLEAN NOT NULL DEFAULT true, _deleted_at_extract INTEGER, _extract_number INTEGER NOT NULL, _snapshot_date DATE NOT NULL";

/// The tables of the old web app's schema files, with their constraints (composite primary
/// keys, CHECKs, NOT NULLs, `import_jobs.extract_number UNIQUE`), in this project's words.
pub fn old_system_ddl() -> String {
    format!(
        "CREATE TABLE enterprises ({TEMPORAL}, primary_name_de VARCHAR, primary_name_fr VARCHAR, primary_name_nl VARCHAR,
            primary_name_language VARCHAR, primary_name VARCHAR NOT NULL, start_date DATE, juridical_form_cac VARCHAR,
            juridical_form VARCHAR, type_of_enterprise VARCHAR, juridical_situation VARCHAR, status VARCHAR NOT NULL,
            enterprise_number VARCHAR NOT NULL, PRIMARY KEY (enterprise_number, _snapshot_date, _extract_number));
         CREATE TABLE establishments ({TEMPORAL}, commercial_name_language VARCHAR, commercial_name VARCHAR, start_date DATE,
            enterprise_number VARCHAR NOT NULL, establishment_number VARCHAR NOT NULL,
            PRIMARY KEY (establishment_number, _snapshot_date, _extract_number));
         CREATE TABLE branches ({TEMPORAL}, start_date DATE, enterprise_number VARCHAR, id VARCHAR NOT NULL,
            PRIMARY KEY (id, _snapshot_date, _extract_number));
         CREATE TABLE denominations ({TEMPORAL}, denomination VARCHAR NOT NULL, language VARCHAR NOT NULL CHECK (language IN ('0','1','2','3','4')),
            denomination_type VARCHAR NOT NULL, entity_type VARCHAR NOT NULL CHECK (entity_type IN ('enterprise','establishment')),
            entity_number VARCHAR NOT NULL, id VARCHAR NOT NULL, PRIMARY KEY (id, _snapshot_date, _extract_number));
         CREATE TABLE addresses ({TEMPORAL}, date_striking_off DATE, extra_address_info VARCHAR, box VARCHAR, house_number VARCHAR,
            street_fr VARCHAR, street_nl VARCHAR, municipality_fr VARCHAR, municipality_nl VARCHAR, zipcode VARCHAR, country_fr VARCHAR,
            country_nl VARCHAR, type_of_address VARCHAR NOT NULL CHECK (type_of_address IN ('REGO','BAET','ABBR','OBAD')),
            entity_type VARCHAR NOT NULL CHECK (entity_type IN ('enterprise','establishment')), entity_number VARCHAR NOT NULL,
            id VARCHAR NOT NULL, PRIMARY KEY (id, _snapshot_date, _extract_number));
         CREATE TABLE contacts ({TEMPORAL}, contact_value VARCHAR NOT NULL, contact_type VARCHAR NOT NULL, entity_contact VARCHAR NOT NULL,
            entity_type VARCHAR NOT NULL CHECK (entity_type IN ('enterprise','establishment')), entity_number VARCHAR NOT NULL,
            id VARCHAR NOT NULL, PRIMARY KEY (id, _snapshot_date, _extract_number));
         CREATE TABLE activities ({TEMPORAL}, classification VARCHAR NOT NULL CHECK (classification IN ('MAIN','SECO','ANCI')),
            nace_code VARCHAR NOT NULL, nace_version VARCHAR NOT NULL CHECK (nace_version IN ('2003','2008','2025')),
            activity_group VARCHAR NOT NULL, entity_type VARCHAR NOT NULL CHECK (entity_type IN ('enterprise','establishment')),
            entity_number VARCHAR NOT NULL, id VARCHAR NOT NULL, PRIMARY KEY (id, _snapshot_date, _extract_number));
         CREATE TABLE codes (description VARCHAR NOT NULL, language VARCHAR NOT NULL CHECK (language IN ('NL', 'FR', 'DE')),
            code VARCHAR NOT NULL, category VARCHAR NOT NULL, PRIMARY KEY (category, code, language));
         CREATE TABLE nace_codes (description_fr VARCHAR, description_nl VARCHAR, nace_code VARCHAR, nace_version VARCHAR,
            PRIMARY KEY (nace_version, nace_code));
         CREATE TABLE import_jobs (id VARCHAR PRIMARY KEY, extract_number INTEGER UNIQUE NOT NULL,
            extract_type VARCHAR NOT NULL CHECK (extract_type IN ('full', 'update')), snapshot_date DATE NOT NULL,
            extract_timestamp TIMESTAMP NOT NULL, status VARCHAR NOT NULL CHECK (status IN ('pending','running','completed','failed')),
            started_at TIMESTAMP, completed_at TIMESTAMP, error_message VARCHAR, records_processed BIGINT, records_inserted BIGINT,
            records_updated BIGINT, records_deleted BIGINT, worker_type VARCHAR CHECK (worker_type IN ('local','vercel','backfill','web_manual')));
         CREATE TABLE import_job_batches (job_id VARCHAR, table_name VARCHAR, batch_number INTEGER, operation VARCHAR,
            status VARCHAR CHECK (status IN ('pending','processing','completed','failed')), records_count BIGINT,
            started_at TIMESTAMP, completed_at TIMESTAMP, error_message VARCHAR,
            PRIMARY KEY (job_id, table_name, batch_number, operation));"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_created_by_the_old_system_is_used_as_it_is() {
    let chain = chain();
    let mut app = TestApp::build()
        .database("old.duckdb")
        .database_holding(&old_system_ddl())
        .spawn();

    // An Update whose insert file repeats a line, with batches small enough that the repeat
    // lands in another batch than the first: the primary keys must never be tripped.
    let update = crate::guarantees::update_repeating_a_line(app.dir());
    app.import_completed("full-140", &chain.full).await;
    app.restart_service_with(&[("KBO_BATCH_ROWS", "50")]);
    // A first attempt at extract 141 that fails half-way (a classification outside the allowed list, in its last table) and is
    // rolled back; the second attempt needs another import_jobs row for the same extract.
    let broken = app.path("broken-141.zip");
    crate::fixtures::rewrite_zip(&update, &broken, |member, bytes| {
        if member == "activity_insert.csv" {
            let mut text = String::from_utf8(bytes).unwrap().trim_end().to_string();
            text.push_str("\n\"0200.000.097\",\"001\",\"2008\",\"62010\",\"NOPE\"\n");
            Some((member.to_string(), text.into_bytes()))
        } else {
            Some((member.to_string(), bytes))
        }
    });
    app.start_import("update-141-first", json!(file_url(&broken)))
        .await;
    let failed = app
        .wait_finished("update-141-first", Duration::from_secs(60))
        .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    for (id, zip) in [("update-141", &update)] {
        app.start_import(id, json!(file_url(zip))).await;
        let done = app.wait_finished(id, Duration::from_secs(60)).await;
        assert_eq!(
            done["status"], "completed",
            "{id} into the old database: {done}"
        );
    }
    let fresh = app
        .import_into(
            &app.path("fresh.duckdb"),
            &[],
            &[("full-141", &chain.next_full)],
        )
        .await;

    let (old, fresh) = (open(&app.db), open(&fresh));
    for table in DATA_TABLES {
        // The views the old web app's search reads, on both databases.
        for (conn, which) in [(&old, "old"), (&fresh, "fresh")] {
            assert_eq!(
                count(conn, &format!("SELECT count(*) FROM {table}_current")),
                count(
                    conn,
                    &format!("SELECT count(*) FROM {table} WHERE _is_current")
                ),
                "{table}_current in the {which} database"
            );
        }
    }
    // The old web app's read side, in the shapes its search and job pages use: by number
    // fragment, by name fragment, by NACE prefix (through the *_current views), and the job
    // list. They answer on the app's database after the chain as on a reference load.
    let name: String = fresh
        .query_row(
            "SELECT lower(substr(denomination, 1, 4)) FROM denominations_current ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let nace: String = fresh
        .query_row(
            "SELECT substr(replace(nace_code, '.', ''), 1, 2) FROM activities_current ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let searches = [
        "SELECT DISTINCT e.enterprise_number, e.primary_name, e.juridical_form, e.status, e.start_date,
                a.street_nl, a.municipality_nl
         FROM enterprises_current e
         LEFT JOIN addresses_current a ON e.enterprise_number = a.entity_number AND a.type_of_address = 'REGO'
         WHERE replace(replace(e.enterprise_number, '.', ''), ' ', '') LIKE '%2000%'"
            .to_string(),
        format!(
            "SELECT DISTINCT e.enterprise_number, e.primary_name, a.municipality_nl
             FROM enterprises_current e
             LEFT JOIN denominations_current d ON e.enterprise_number = d.entity_number
             LEFT JOIN addresses_current a ON e.enterprise_number = a.entity_number AND a.type_of_address = 'REGO'
             WHERE lower(d.denomination) LIKE '%{}%'",
            name.replace('\'', "''")
        ),
        format!(
            "SELECT DISTINCT e.enterprise_number, e.primary_name, n.description_nl
         FROM enterprises_current e
         JOIN activities_current act ON e.enterprise_number = act.entity_number
         LEFT JOIN nace_codes n ON n.nace_version = act.nace_version AND n.nace_code = act.nace_code
         WHERE replace(act.nace_code, '.', '') LIKE '{}%'",
            nace.replace('\'', "''")
        ),
    ];
    for sql in &searches {
        let answer = rows(&fresh, sql);
        assert!(!answer.is_empty(), "the search finds something: {sql}");
        assert_same_rows(
            &format!("the app's search {sql}"),
            &rows(&old, sql),
            &answer,
        );
    }
    let jobs = "SELECT extract_number, extract_type, status, records_processed = records_inserted + records_deleted
                FROM import_jobs ORDER BY started_at DESC";
    assert_eq!(rows(&old, jobs).len(), 2, "the job list");
    assert_eq!(
        count(&fresh, "SELECT count(*) FROM export_jobs"),
        0,
        "the app's export pages find their table on a fresh database"
    );
    let codes = count(&old, "SELECT count(*) FROM codes");
    assert!(
        codes > 0,
        "codes are loaded, within the old schema's languages"
    );
    for (t, table) in Table::ALL.into_iter().zip(DATA_TABLES) {
        // The column order differs: select the contract's columns by name from both.
        let names: Vec<&str> = columns(t).iter().map(|c| c.name).collect();
        let sql = format!("SELECT {} FROM {table} WHERE _is_current", names.join(", "));
        let left = rows(&old, &sql);
        assert!(!left.is_empty(), "{table}");
        assert_same_rows(
            &format!("{table} in the old database vs a fresh one"),
            &left,
            &rows(&fresh, &sql),
        );
    }
    assert_eq!(
        count(
            &old,
            "SELECT count(*) FROM import_jobs WHERE status = 'completed'"
        ),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_old_system_left_behind_is_named_and_settled() {
    let chain = chain();
    let mut app = TestApp::build()
        .database("old.duckdb")
        .database_holding(&old_system_ddl())
        .spawn();
    let db = app.db.clone();
    app.import_completed("import-0140", &chain.full).await;
    app.import_completed("import-0141", &chain.update).await;
    app.service.process.kill();

    // The old system's monthly snapshot script applied extracts without an import_jobs row:
    // the ordering guard reads the data too, and says so.
    let ghost = "0f0e0d0c-0b0a-4909-8807-060504030201";
    {
        let conn = duckdb::Connection::open(&db).unwrap();
        conn.execute("DELETE FROM import_jobs WHERE extract_number = 141", [])
            .unwrap();
        // And a crashed script of the old system left a job running.
        conn.execute(
            "INSERT INTO import_jobs (id, extract_number, extract_type, snapshot_date, extract_timestamp, status, started_at, worker_type)
             VALUES (?, 150, 'update', DATE '2025-10-20', TIMESTAMP '2025-10-20 06:00:00', 'running', TIMESTAMP '2025-10-20 06:01:00', 'vercel')",
            [ghost],
        )
        .unwrap();
    }
    app.restart_service_with(&[]);
    app.start_import("again-141", json!(file_url(&chain.update)))
        .await;
    let refused = app
        .wait_finished("again-141", Duration::from_secs(60))
        .await;
    assert_eq!(refused["error_code"], "job_running", "{refused}");
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("job {ghost} (not started by this service)"))
            && error.contains(&format!("kbo-import rollback {ghost}")),
        "the old system's running job is named, with the command: {error}"
    );
    app.service.process.kill();
    let env = [("KBO_DATABASE", db.to_str().unwrap())];
    let out = app.kbo_import(&["rollback", ghost], &env);
    assert!(
        out.status.success(),
        "{}",
        crate::harness::output_text(&out)
    );
    app.restart_service_with(&[]);
    app.start_import("again-141-b", json!(file_url(&chain.update)))
        .await;
    let refused = app
        .wait_finished("again-141-b", Duration::from_secs(60))
        .await;
    assert_eq!(refused["error_code"], "already_imported", "{refused}");
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Update extract 141 is already applied")
            && error.contains("the current rows carry extract 141; import_jobs says 140"),
        "the guard reads the data and says so: {error}"
    );
}
