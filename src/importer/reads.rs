//! What the workflow's shared handlers read of the register (`getChanges`, `getProgress`):
//! reads that end by letting the database go, or that never wait for it.

use super::Importer;
use crate::db;
use crate::error::ImportResult;

impl Importer {
    /// A page of a change set (`getChanges`, as `query` asks); the database is let go after
    /// it, as after every command.
    pub async fn changes(
        &self,
        of: db::changes::ChangeSetOf,
        query: crate::wire::ChangesQuery,
    ) -> ImportResult<crate::wire::ChangesPage> {
        self.db
            .run_last(move |conn| {
                db::ensure_schema(conn)?;
                let extract = db::changes::extract_of(conn, &of)?;
                db::changes::page(conn, extract, &query)
            })
            .await
    }

    /// What `import_jobs` says of job `job_id` when it is failed: its extract and message
    /// ([`db::rollback::failed_job`]). Read only when no step holds the database now (`None`
    /// otherwise): `getProgress` asks it, and never makes an import wait.
    pub async fn failed_job_now(
        &self,
        job_id: &str,
    ) -> Option<ImportResult<Option<(Option<u32>, String)>>> {
        let id = job_id.to_string();
        self.db
            .try_run(move |conn| db::rollback::failed_job(conn, &id))
            .await
    }
}
