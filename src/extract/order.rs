//! Which extract may follow which (docs/format.md, "Two kinds of extract"): an Update N applies
//! only right after extract N-1; a Full applies to an empty register or one older than it.

use crate::error::{ErrorCode, ImportError};
use crate::extract::ExtractType;

/// Whether extract `n` of kind `kind` may be applied to a register whose last applied extract
/// is `last` (`None`: an empty register). The same extract again is refused as
/// `already_imported`, any other wrong order as `out_of_order`; the message says what to import
/// instead.
pub fn may_follow(kind: ExtractType, n: u32, last: Option<u32>) -> Result<(), ImportError> {
    let (n, last) = (i64::from(n), last.map(i64::from));
    let refusal = |message: String| {
        let code = if last == Some(n) {
            ErrorCode::AlreadyImported
        } else {
            ErrorCode::OutOfOrder
        };
        Err(ImportError::new(code, message))
    };
    match (kind, last) {
        (ExtractType::Full, None) => Ok(()),
        (ExtractType::Full, Some(last)) if n > last => Ok(()),
        (ExtractType::Full, Some(last)) => refusal(format!(
            "Full extract {n} is not newer than extract {last}, the last one applied; a Full must be newer than the database"
        )),
        (ExtractType::Update, None) => refusal(format!(
            "Update extract {n} needs extract {} applied before it, but the database holds no completed extract: import a Full first",
            n - 1
        )),
        (ExtractType::Update, Some(last)) if last == n - 1 => Ok(()),
        (ExtractType::Update, Some(last)) if last >= n => refusal(format!(
            "Update extract {n} is already applied: the last extract applied is {last}"
        )),
        (ExtractType::Update, Some(last)) => refusal(format!(
            "Update extract {n} cannot follow extract {last}, the last one applied: import extract{} {} first",
            if n - last > 2 { "s" } else { "" },
            if n - last > 2 {
                format!("{} to {}", last + 1, n - 1)
            } else {
                (last + 1).to_string()
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExtractType::{Full, Update};

    fn code(kind: ExtractType, n: u32, last: Option<u32>) -> Option<ErrorCode> {
        may_follow(kind, n, last).err().map(|e| e.code)
    }

    #[test]
    fn a_full_applies_to_an_empty_or_older_register_only() {
        assert_eq!(code(Full, 140, None), None);
        assert_eq!(code(Full, 140, Some(139)), None);
        assert_eq!(code(Full, 140, Some(140)), Some(ErrorCode::AlreadyImported));
        assert_eq!(code(Full, 140, Some(141)), Some(ErrorCode::OutOfOrder));
    }

    #[test]
    fn an_update_applies_right_after_the_extract_before_it_only() {
        assert_eq!(code(Update, 141, Some(140)), None);
        assert_eq!(code(Update, 141, None), Some(ErrorCode::OutOfOrder));
        assert_eq!(
            code(Update, 141, Some(141)),
            Some(ErrorCode::AlreadyImported)
        );
        assert_eq!(code(Update, 141, Some(142)), Some(ErrorCode::OutOfOrder));
        assert_eq!(code(Update, 143, Some(141)), Some(ErrorCode::OutOfOrder));
    }

    #[test]
    fn a_gap_names_the_extracts_to_import_first() {
        let one = may_follow(Update, 143, Some(141)).unwrap_err();
        assert!(one.message.ends_with("import extract 142 first"), "{one}");
        let several = may_follow(Update, 145, Some(141)).unwrap_err();
        assert!(
            several
                .message
                .ends_with("import extracts 142 to 144 first"),
            "{several}"
        );
        let empty = may_follow(Update, 141, None).unwrap_err();
        assert!(empty.message.ends_with("import a Full first"), "{empty}");
    }
}
