//! The tables of docs/contract.md (the contract the old web app reads), and how CSV columns map to them.
//!
//! Every identifier that reaches SQL comes from the fixed lists in this module.

use crate::extract::Table;

/// The SQL type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// VARCHAR.
    Text,
    /// DATE, from a `dd-mm-yyyy` value in the file.
    Date,
}

/// Where a column's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnSource {
    /// A column of the CSV file, by its header name.
    Csv(&'static str),
    /// Derived by the service, as the derivation says.
    Derived(Derivation),
}

/// How the service derives a column that no CSV file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derivation {
    /// The row's id, built from its own columns as it is staged ([`derived_expression`]).
    Id,
    /// `enterprise` or `establishment`, from the shape of the row's entity number.
    EntityType,
    /// An enterprise's name: its number until finalize names it (the contract forbids NULL).
    PrimaryName,
    /// A name's other columns (language, per-language names, commercial names): NULL until
    /// finalize (or a Full's naming join, [`super::names`]) fills them.
    Named,
}

/// A column of a data table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column name in the database.
    pub name: &'static str,
    /// SQL type.
    pub ty: SqlType,
    /// Whether the contract forbids NULL.
    pub not_null: bool,
    /// Where the value comes from.
    pub source: ColumnSource,
}

const fn csv(name: &'static str, header: &'static str, not_null: bool) -> Column {
    Column {
        name,
        ty: SqlType::Text,
        not_null,
        source: ColumnSource::Csv(header),
    }
}
const fn date(name: &'static str, header: &'static str) -> Column {
    Column {
        name,
        ty: SqlType::Date,
        not_null: false,
        source: ColumnSource::Csv(header),
    }
}
const fn derived(name: &'static str, not_null: bool, how: Derivation) -> Column {
    Column {
        name,
        ty: SqlType::Text,
        not_null,
        source: ColumnSource::Derived(how),
    }
}

/// The database table of a data table.
pub fn table_name(t: Table) -> &'static str {
    t.table_name()
}

/// The key of a data table: unique among current rows.
pub fn key_column(t: Table) -> &'static str {
    match t {
        Table::Enterprise => "enterprise_number",
        Table::Establishment => "establishment_number",
        _ => "id",
    }
}

/// What a table's key is built from, for hashing many keys fast: the key itself, or for ids
/// that join plain columns with `_` (addresses, activities), those columns (hashing them skips
/// building 36 M strings; KBO codes and numbers hold no `_`, so equal ids have equal columns).
pub fn key_parts(t: Table) -> &'static str {
    match t {
        Table::Address => "entity_number, type_of_address",
        Table::Activity => "entity_number, activity_group, nace_version, nace_code, classification",
        _ => key_column(t),
    }
}

/// What identifies a row of a data table, from the columns its CSV file carries: the number
/// column, or what its derived `id` is built of (SCHEMA.md's key). A verification matches the
/// Full's rows with the register's on these, so that a wrong stored `id` shows as a row that
/// differs, not as one missing and one extra.
pub fn key_source_parts(t: Table) -> &'static str {
    match t {
        Table::Enterprise => "enterprise_number",
        Table::Establishment => "establishment_number",
        Table::Branch => "id",
        Table::Denomination => {
            "entity_number, denomination_type, language, left(md5(denomination), 8)"
        }
        Table::Address => "entity_number, type_of_address",
        Table::Contact => {
            "entity_number, entity_contact, contact_type, left(md5(contact_value), 8)"
        }
        Table::Activity => "entity_number, activity_group, nace_version, nace_code, classification",
    }
}

/// The key of a data table as text, from the columns its CSV file carries (what its `id` is
/// derived as, or the number column): how a verification names a row that differs.
pub fn key_text(t: Table) -> &'static str {
    derived_expression(t, Derivation::Id).unwrap_or(key_column(t))
}

/// Every column of a data table by name, temporal columns excluded: what a verification
/// compares (source and derived columns alike).
pub fn column_names(t: Table) -> Vec<&'static str> {
    columns(t).iter().map(|c| c.name).collect()
}

/// The column a `_delete.csv` file's values are matched against.
pub fn delete_match_column(t: Table) -> &'static str {
    match t {
        Table::Enterprise => "enterprise_number",
        Table::Establishment => "establishment_number",
        Table::Branch => "id",
        Table::Denomination | Table::Address | Table::Contact | Table::Activity => "entity_number",
    }
}

/// The columns of a data table, temporal columns excluded, in table order.
pub fn columns(t: Table) -> &'static [Column] {
    match t {
        Table::Enterprise => ENTERPRISE_COLUMNS,
        Table::Establishment => ESTABLISHMENT_COLUMNS,
        Table::Branch => BRANCH_COLUMNS,
        Table::Denomination => DENOMINATION_COLUMNS,
        Table::Address => ADDRESS_COLUMNS,
        Table::Contact => CONTACT_COLUMNS,
        Table::Activity => ACTIVITY_COLUMNS,
    }
}

const ENTERPRISE_COLUMNS: &[Column] = &[
    csv("enterprise_number", "EnterpriseNumber", true),
    csv("status", "Status", true),
    csv("juridical_situation", "JuridicalSituation", false),
    csv("type_of_enterprise", "TypeOfEnterprise", false),
    csv("juridical_form", "JuridicalForm", false),
    csv("juridical_form_cac", "JuridicalFormCAC", false),
    date("start_date", "StartDate"),
    derived("primary_name", true, Derivation::PrimaryName),
    derived("primary_name_language", false, Derivation::Named),
    derived("primary_name_nl", false, Derivation::Named),
    derived("primary_name_fr", false, Derivation::Named),
    derived("primary_name_de", false, Derivation::Named),
];

const ESTABLISHMENT_COLUMNS: &[Column] = &[
    csv("establishment_number", "EstablishmentNumber", true),
    csv("enterprise_number", "EnterpriseNumber", true),
    date("start_date", "StartDate"),
    derived("commercial_name", false, Derivation::Named),
    derived("commercial_name_language", false, Derivation::Named),
];

const BRANCH_COLUMNS: &[Column] = &[
    csv("id", "Id", true),
    csv("enterprise_number", "EnterpriseNumber", false),
    date("start_date", "StartDate"),
];

const DENOMINATION_COLUMNS: &[Column] = &[
    derived("id", true, Derivation::Id),
    csv("entity_number", "EntityNumber", true),
    derived("entity_type", true, Derivation::EntityType),
    csv("denomination_type", "TypeOfDenomination", true),
    csv("language", "Language", true),
    csv("denomination", "Denomination", true),
];

const ADDRESS_COLUMNS: &[Column] = &[
    derived("id", true, Derivation::Id),
    csv("entity_number", "EntityNumber", true),
    derived("entity_type", true, Derivation::EntityType),
    csv("type_of_address", "TypeOfAddress", true),
    csv("country_nl", "CountryNL", false),
    csv("country_fr", "CountryFR", false),
    csv("zipcode", "Zipcode", false),
    csv("municipality_nl", "MunicipalityNL", false),
    csv("municipality_fr", "MunicipalityFR", false),
    csv("street_nl", "StreetNL", false),
    csv("street_fr", "StreetFR", false),
    csv("house_number", "HouseNumber", false),
    csv("box", "Box", false),
    csv("extra_address_info", "ExtraAddressInfo", false),
    date("date_striking_off", "DateStrikingOff"),
];

const CONTACT_COLUMNS: &[Column] = &[
    derived("id", true, Derivation::Id),
    csv("entity_number", "EntityNumber", true),
    derived("entity_type", true, Derivation::EntityType),
    csv("entity_contact", "EntityContact", true),
    csv("contact_type", "ContactType", true),
    csv("contact_value", "Value", true),
];

const ACTIVITY_COLUMNS: &[Column] = &[
    derived("id", true, Derivation::Id),
    csv("entity_number", "EntityNumber", true),
    derived("entity_type", true, Derivation::EntityType),
    csv("activity_group", "ActivityGroup", true),
    csv("nace_version", "NaceVersion", true),
    csv("nace_code", "NaceCode", true),
    csv("classification", "Classification", true),
];

/// The source columns of a data table, by name: those its CSV file carries (the derived ones
/// follow from them). Change sets and verifications compare rows on these.
pub fn source_columns(t: Table) -> Vec<&'static str> {
    columns(t)
        .iter()
        .filter(|c| matches!(c.source, ColumnSource::Csv(_)))
        .map(|c| c.name)
        .collect()
}

/// The allowed values an existing database may enforce, as (column, allowed values).
pub fn allowed_values(t: Table) -> &'static [(&'static str, &'static [&'static str])] {
    const ENTITY_TYPE: (&str, &[&str]) = ("entity_type", &["enterprise", "establishment"]);
    match t {
        Table::Denomination => &[ENTITY_TYPE, ("language", &["0", "1", "2", "3", "4"])],
        Table::Address => &[
            ENTITY_TYPE,
            ("type_of_address", &["REGO", "BAET", "ABBR", "OBAD"]),
        ],
        Table::Activity => &[
            ENTITY_TYPE,
            ("classification", &["MAIN", "SECO", "ANCI"]),
            ("nace_version", &["2003", "2008", "2025"]),
        ],
        Table::Contact => &[ENTITY_TYPE],
        _ => &[],
    }
}

/// The SQL expression of a column derived `how` in table `t`, over a staging row whose
/// columns carry database names. `None` for names, filled in later (by finalize).
pub fn derived_expression(t: Table, how: Derivation) -> Option<&'static str> {
    const ENTITY_TYPE: &str = r"CASE WHEN regexp_full_match(entity_number, '\d\.\d{3}\.\d{3}\.\d{3}') THEN 'establishment' ELSE 'enterprise' END";
    match (t, how) {
        (_, Derivation::EntityType) => Some(ENTITY_TYPE),
        (Table::Denomination, Derivation::Id) => Some(
            "entity_number || '_' || denomination_type || '_' || language || '_' || left(md5(denomination), 8)",
        ),
        (Table::Address, Derivation::Id) => Some("entity_number || '_' || type_of_address"),
        (Table::Activity, Derivation::Id) => Some(
            "entity_number || '_' || activity_group || '_' || nace_version || '_' || nace_code || '_' || classification",
        ),
        (Table::Contact, Derivation::Id) => Some(
            "entity_number || '_' || entity_contact || '_' || contact_type || '_' || left(md5(contact_value), 8)",
        ),
        _ => None,
    }
}

const TEMPORAL: &str = "_snapshot_date DATE NOT NULL, _extract_number INTEGER NOT NULL, _is_current BOOLEAN NOT NULL, _deleted_at_extract INTEGER";

/// `CREATE TABLE IF NOT EXISTS` for a data table.
///
/// No primary key or unique index: uniqueness is guaranteed by the import (staging removes
/// repeated keys, updates retire a key's current row before inserting it again), which keeps
/// loading 36 M rows fast.
pub fn create_table_sql(t: Table) -> String {
    let mut parts: Vec<String> = columns(t)
        .iter()
        .map(|c| {
            let ty = match c.ty {
                SqlType::Text => "VARCHAR",
                SqlType::Date => "DATE",
            };
            let null = if c.not_null { " NOT NULL" } else { "" };
            format!("{} {ty}{null}", c.name)
        })
        .collect();
    parts.push(TEMPORAL.to_string());
    for (column, values) in allowed_values(t) {
        let list: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
        parts.push(format!("CHECK ({column} IN ({}))", list.join(", ")));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        table_name(t),
        parts.join(", ")
    )
}

/// `CREATE VIEW IF NOT EXISTS <table>_current`: the current rows of a data table, as the old
/// web app's search reads them (`enterprises_current`, …).
pub fn current_view_sql(t: Table) -> String {
    let table = table_name(t);
    format!("CREATE VIEW IF NOT EXISTS {table}_current AS SELECT * FROM {table} WHERE _is_current")
}

/// `CREATE MACRO IF NOT EXISTS <table>_as_of(n)`: the rows of a data table that were current
/// right after extract `n` was applied (`SELECT * FROM enterprises_as_of(141)`). Exact back to
/// the history a Full keeps (`KBO_HISTORY_MONTHS`): older retired rows are removed.
pub fn as_of_macro_sql(t: Table) -> String {
    let table = table_name(t);
    format!(
        "CREATE MACRO IF NOT EXISTS {table}_as_of(n) AS TABLE SELECT * FROM {table} \
         WHERE _extract_number <= n AND (_deleted_at_extract IS NULL OR _deleted_at_extract > n)"
    )
}

/// DDL of the code tables and the job ledger; `export_jobs`, which the old web app's export
/// pages read and write (so that they work on a database this service created);
/// `import_job_workflows` (the service's own) remembers which workflow ran each job, since a
/// job id is a hash of it.
pub const SUPPORT_TABLES_SQL: &str = "
CREATE TABLE IF NOT EXISTS codes (
    category VARCHAR NOT NULL, code VARCHAR NOT NULL, language VARCHAR NOT NULL, description VARCHAR);
CREATE TABLE IF NOT EXISTS nace_codes (
    nace_version VARCHAR NOT NULL, nace_code VARCHAR NOT NULL, description_nl VARCHAR, description_fr VARCHAR);
CREATE TABLE IF NOT EXISTS import_jobs (
    id VARCHAR PRIMARY KEY,
    extract_number INTEGER UNIQUE,
    extract_type VARCHAR,
    snapshot_date DATE,
    extract_timestamp TIMESTAMP,
    status VARCHAR CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    error_message VARCHAR,
    records_processed BIGINT,
    records_inserted BIGINT,
    records_updated BIGINT,
    records_deleted BIGINT,
    worker_type VARCHAR CHECK (worker_type IN ('local', 'vercel', 'backfill', 'web_manual')));
CREATE TABLE IF NOT EXISTS import_job_batches (
    job_id VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    batch_number INTEGER NOT NULL,
    operation VARCHAR NOT NULL CHECK (operation IN ('delete', 'insert')),
    status VARCHAR CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    records_count BIGINT,
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    error_message VARCHAR,
    PRIMARY KEY (job_id, table_name, batch_number, operation));
CREATE TABLE IF NOT EXISTS export_jobs (
    id VARCHAR PRIMARY KEY,
    export_type VARCHAR NOT NULL CHECK (export_type IN ('vat_entities', 'all_entities')),
    filter_config VARCHAR,
    status VARCHAR NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    error_message VARCHAR,
    records_exported BIGINT DEFAULT 0,
    table_name VARCHAR,
    expires_at TIMESTAMP,
    worker_type VARCHAR NOT NULL CHECK (worker_type IN ('vercel', 'web_manual', 'cli')),
    created_by VARCHAR,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS import_job_workflows (
    job_id VARCHAR PRIMARY KEY,
    workflow_id VARCHAR NOT NULL);
CREATE SCHEMA IF NOT EXISTS kbo_staging;
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_csv_column_is_mapped_once() {
        for t in Table::ALL {
            let mapped: Vec<&str> = columns(t)
                .iter()
                .filter_map(|c| match c.source {
                    ColumnSource::Csv(h) => Some(h),
                    ColumnSource::Derived(_) => None,
                })
                .collect();
            let mut expected = t.columns().to_vec();
            let mut got = mapped.clone();
            expected.sort();
            got.sort();
            assert_eq!(got, expected, "{t}");
        }
    }

    #[test]
    fn keys_and_derived_ids_are_defined() {
        for t in Table::ALL {
            let cols = columns(t);
            assert!(
                cols.iter().any(|c| c.name == key_column(t) && c.not_null),
                "{t}"
            );
            assert!(cols.iter().any(|c| c.name == delete_match_column(t)), "{t}");
            for c in cols {
                if let ColumnSource::Derived(how @ (Derivation::Id | Derivation::EntityType)) =
                    c.source
                {
                    assert!(derived_expression(t, how).is_some(), "{t}.{}", c.name);
                }
            }
        }
    }

    #[test]
    fn ddl_carries_the_contract_constraints() {
        let sql = create_table_sql(Table::Activity);
        assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS activities ("));
        assert!(sql.contains("CHECK (classification IN ('MAIN', 'SECO', 'ANCI'))"));
        assert!(sql.contains("_deleted_at_extract INTEGER"));
        assert!(create_table_sql(Table::Enterprise).contains("primary_name VARCHAR NOT NULL"));
    }
}
