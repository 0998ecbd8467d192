//! A job's status in `import_jobs`, as the old web app writes and reads it.

use duckdb::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

crate::spelled::spelled_enum! {
    /// The `status` of an `import_jobs` row (the table's CHECK constraint allows these four),
    /// spelled as in the `status` column.
    pub enum JobStatus {
        /// Recorded, not started (the old app's batches; this service records `running` at once).
        Pending => "pending",
        /// Being imported: its rows carry its extract number and may be undone.
        Running => "running",
        /// Applied; its extract is part of the register.
        Completed => "completed",
        /// Failed and rolled back.
        Failed => "failed",
    }
}

impl JobStatus {
    /// Whether the job has started and not ended: its rows may be undone.
    pub fn is_unfinished(self) -> bool {
        matches!(self, JobStatus::Pending | JobStatus::Running)
    }
}

impl ToSql for JobStatus {
    fn to_sql(&self) -> duckdb::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for JobStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        text.parse()
            .map_err(|_| FromSqlError::Other(format!("import_jobs status {text:?}").into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_written_and_read_as_the_old_app_spells_it() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE j (status VARCHAR CHECK (status IN ('pending', 'running', 'completed', 'failed')))",
        )
        .unwrap();
        for status in JobStatus::ALL {
            conn.execute("INSERT INTO j VALUES (?)", [status]).unwrap();
        }
        let read: Vec<JobStatus> = conn
            .prepare("SELECT status FROM j")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read, JobStatus::ALL);
        conn.execute_batch("ALTER TABLE j ADD COLUMN other VARCHAR DEFAULT 'processing'")
            .unwrap();
        let odd = conn.query_row("SELECT other FROM j LIMIT 1", [], |r| {
            r.get::<_, JobStatus>(0)
        });
        assert!(odd.is_err(), "a value no job has is an error, not a guess");
    }
}
