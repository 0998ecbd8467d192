//! The verification that ends a sync when `KBO_SYNC_VERIFY` is set: the register against the
//! portal's Full of its extract, through one `KboVerify` workflow per extract (a later sync at
//! the same extract reads that workflow's report instead of verifying again; after a failed
//! verification, the next sync tries again under a new id, as a failed import's does).

use crate::extract::ExtractType;
use crate::extract::file_name::ExtractFileName;
use crate::importer::RegisterState;
use crate::wire::{SyncReport, VerifiedExtract, VerifyReport};
use crate::workflow::KboVerifyClient;
use restate_sdk::prelude::*;

/// Verifies the register (at `report.register_after`) against the portal's Full of that
/// extract, when `files` (the portal's listing) holds one and the `register` was not verified
/// at that extract before, under a workflow id none of its failed verifications had; the
/// outcome goes to the report (a difference, or a failed verification, is one of its errors).
pub(super) async fn verify_after_sync(
    ctx: &ObjectContext<'_>,
    report: &mut SyncReport,
    files: &[ExtractFileName],
    register: &RegisterState,
) {
    let Some(full) = verifiable(report.register_after, files) else {
        return;
    };
    let base = format!("verify-{}", full.workflow_id());
    // Verified before (an earlier sync at this extract): its outcome, not a second run.
    let earlier = register
        .completed_verifications
        .iter()
        .rev()
        .find(|(id, n, _)| {
            *n == full.extract_number
                && (*id == base || id.starts_with(&format!("{base}-attempt-")))
        });
    if let Some((workflow_id, extract_number, differences)) = earlier {
        report.verified = Some(VerifiedExtract {
            file: full.to_string(),
            workflow_id: workflow_id.clone(),
            extract_number: *extract_number,
            differences: *differences,
        });
        if *differences > 0 {
            report.errors.push(format!(
                "{full} (workflow {workflow_id}): {}",
                VerifyReport::advice_for(*differences, *extract_number)
            ));
        }
        return;
    }
    let workflow_id = super::attempt_id(&base, &register.failed_verifications);
    match verify(ctx, &full, &workflow_id).await {
        Ok(done) => {
            if done.differences > 0 {
                report
                    .errors
                    .push(format!("{full} (workflow {workflow_id}): {}", done.advice));
            }
            report.verified = Some(VerifiedExtract {
                file: full.to_string(),
                workflow_id,
                extract_number: done.extract_number,
                differences: done.differences,
            });
        }
        Err(e) => report.errors.push(format!(
            "verifying with {full} (workflow {workflow_id}): {}",
            e.message()
        )),
    }
}

/// The portal's Full of extract `at`, if it lists one.
fn verifiable(at: Option<u32>, files: &[ExtractFileName]) -> Option<ExtractFileName> {
    let at = at?;
    files
        .iter()
        .find(|f| f.extract_number == at && f.kind == ExtractType::Full)
        .cloned()
}

/// Verifies the register against the portal's Full `file` through the `KboVerify` workflow
/// `workflow_id`, awaiting its report.
async fn verify(
    ctx: &ObjectContext<'_>,
    file: &ExtractFileName,
    workflow_id: &str,
) -> Result<VerifyReport, TerminalError> {
    let Json(report) = ctx
        .workflow_client::<KboVerifyClient>(workflow_id.to_string())
        .run(Json(super::portal_body(file)))
        .call()
        .await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_of_the_registers_extract_is_the_one_verified_with() {
        let files: Vec<ExtractFileName> = [
            "KboOpenData_0140_2025_10_Full.zip",
            "KboOpenData_0141_2025_10_05_Update.zip",
            "KboOpenData_0141_2025_10_05_Full.zip",
        ]
        .iter()
        .filter_map(|n| ExtractFileName::parse(n))
        .collect();
        assert_eq!(
            verifiable(Some(141), &files).map(|f| f.to_string()),
            Some("KboOpenData_0141_2025_10_05_Full.zip".to_string())
        );
        assert_eq!(verifiable(Some(142), &files), None);
        assert_eq!(verifiable(None, &files), None);
    }
}
