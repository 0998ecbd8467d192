//! The feed's own tables: their DDL, and the columns an earlier release's tables are given.

/// DDL of the feed's tables (`CREATE TABLE IF NOT EXISTS`). An application that keeps its
/// users' follows in the register's database writes them into `feed_watchlist` itself.
pub const FEED_TABLES_SQL: &str = "
CREATE TABLE IF NOT EXISTS feed_subscriptions (
    name VARCHAR PRIMARY KEY,
    id VARCHAR NOT NULL,
    url VARCHAR NOT NULL,
    secret VARCHAR NOT NULL,
    follows_all BOOLEAN NOT NULL,
    change_types VARCHAR,
    tables VARCHAR,
    from_extract INTEGER NOT NULL,
    status VARCHAR NOT NULL CHECK (status IN ('active', 'paused', 'ended')),
    reason VARCHAR,
    created_at TIMESTAMP NOT NULL,
    generation BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS feed_watchlist (
    subscription VARCHAR NOT NULL,
    enterprise_number VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS feed_deliveries (
    subscription_id VARCHAR NOT NULL,
    extract_number INTEGER NOT NULL,
    job_id VARCHAR NOT NULL,
    extract_type VARCHAR NOT NULL,
    snapshot_date DATE,
    entities BIGINT NOT NULL,
    pages INTEGER NOT NULL,
    pages_delivered INTEGER NOT NULL,
    planned_at TIMESTAMP NOT NULL,
    completed_at TIMESTAMP,
    retracted_at TIMESTAMP,
    tables VARCHAR,
    pages_attempted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS feed_outbox (
    subscription_id VARCHAR NOT NULL,
    extract_number INTEGER NOT NULL,
    job_id VARCHAR NOT NULL,
    page INTEGER NOT NULL,
    entity_number VARCHAR NOT NULL,
    stated BOOLEAN DEFAULT false,
    owner VARCHAR,
    present BOOLEAN,
    name VARCHAR,
    status VARCHAR,
    juridical_situation VARCHAR,
    juridical_form VARCHAR,
    start_date VARCHAR,
    address VARCHAR[],
    nace VARCHAR[][]);
CREATE TABLE IF NOT EXISTS feed_pages (
    subscription_id VARCHAR NOT NULL,
    extract_number INTEGER NOT NULL,
    job_id VARCHAR NOT NULL,
    page INTEGER NOT NULL,
    body VARCHAR NOT NULL);
";

/// The columns a plan holds its entities' states in, added to a `feed_outbox` an earlier
/// release made (run with the schema, once per process; never in an import's transaction).
pub const FEED_UPGRADE_SQL: &str = "
ALTER TABLE feed_outbox ADD COLUMN IF NOT EXISTS stated BOOLEAN DEFAULT false;
ALTER TABLE feed_outbox ADD COLUMN IF NOT EXISTS owner VARCHAR;
ALTER TABLE feed_outbox ADD COLUMN IF NOT EXISTS present BOOLEAN;
ALTER TABLE feed_outbox ADD COLUMN IF NOT EXISTS name VARCHAR;
ALTER TABLE feed_outbox ADD COLUMN IF NOT EXISTS status VARCHAR;
ALTER TABLE feed_outbox ADD COLUMN IF NOT EXISTS juridical_situation VARCHAR;
ALTER TABLE feed_outbox ADD COLUMN IF NOT EXISTS juridical_form VARCHAR;
ALTER TABLE feed_outbox ADD COLUMN IF NOT EXISTS start_date VARCHAR;
ALTER TABLE feed_outbox ADD COLUMN IF NOT EXISTS address VARCHAR[];
ALTER TABLE feed_outbox ADD COLUMN IF NOT EXISTS nace VARCHAR[][];
";

#[cfg(test)]
mod tests {
    #[test]
    fn an_earlier_releases_plan_is_given_the_state_columns_and_left_unstated() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE feed_outbox (subscription_id VARCHAR NOT NULL,
                 extract_number INTEGER NOT NULL, job_id VARCHAR NOT NULL, page INTEGER NOT NULL,
                 entity_number VARCHAR NOT NULL);
             INSERT INTO feed_outbox VALUES ('sub_a', 2, 'j2', 1, '0200.000.043');",
        )
        .unwrap();
        crate::db::ensure_schema(&conn).unwrap();
        // Twice: nothing more to do.
        crate::db::ensure_schema(&conn).unwrap();
        let (stated, name): (bool, Option<String>) = conn
            .query_row("SELECT stated, name FROM feed_outbox", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        // Unstated: its pages read their states from the register (plan.rs's tests read a
        // page both ways).
        assert_eq!((stated, name), (false, None));
    }
}
