//! Job ids: the old web app's UUIDs over a workflow id.

/// The job id of a workflow, as the old web app derives it (`generateJobId` in its status
/// route and `lib/import/batched-update.ts`): the first 32 hex digits of the SHA-256 of the
/// workflow id, laid out as a UUID. The app's pages find the jobs the service writes by it.
pub fn job_id_of(workflow_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = hex::encode(Sha256::digest(workflow_id.as_bytes()));
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Whether `text` has the shape of a job id (a UUID), rather than of a workflow id.
pub fn is_job_id(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_the_apps_uuids_over_the_workflow_id() {
        // sha256("import-0141") = 153465a787f6d26771be9edd06750c3f…, laid out as the app's
        // generateJobId does (slices 0-8, 8-12, 12-16, 16-20, 20-32).
        let id = job_id_of("import-0141");
        assert_eq!(id, "153465a7-87f6-d267-71be-9edd06750c3f");
        assert!(is_job_id(&id), "{id}");
        assert_eq!(id, job_id_of("import-0141"));
        assert_ne!(id, job_id_of("import-0142"));
        assert!(!is_job_id("import-0141"));
        assert!(!is_job_id("kbo-0141-update"));
    }
}
