//! Which of the portal's extracts a sync imports, and in which order. Pure code.
//!
//! The register is at extract `L` (the last completed job). Update `L+1`, `L+2`, … continue it.
//! An empty register starts from the newest Full. When an update the chain needs is gone from
//! the portal (it keeps only the last few), the newest Full newer than the register restarts
//! the chain. A Full `N` holds the same register as extract `N` applied by updates.

use crate::extract::ExtractType;
use crate::extract::file_name::ExtractFileName;
use crate::wire::Skipped;

use std::collections::BTreeMap;

/// What a sync will do with the portal's listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    /// The extracts to import, in this order.
    pub imports: Vec<ExtractFileName>,
    /// Listed extracts not imported, and why.
    pub skipped: Vec<Skipped>,
    /// Something the operator should know about the chosen path (a restart from a Full).
    pub note: Option<String>,
    /// Why the register cannot be brought fully up to date from the portal, if it cannot.
    pub problem: Option<String>,
}

/// Works out the imports that bring a register at extract `applied` (none: empty) up to date
/// with the extracts `listed` on the portal.
pub fn chain(applied: Option<u32>, listed: &[ExtractFileName]) -> Chain {
    let offer = Offer::of(listed);
    let mut plan = Chain::default();
    // Where the chain of updates starts from, and the Full that starts it, if one does.
    let (start_full, from) = match applied {
        None => match offer.newest_full() {
            Some(full) => (Some(full), full),
            None => {
                plan.problem = Some(if listed.is_empty() {
                    "the portal lists no extracts".to_string()
                } else {
                    "the register is empty and the portal lists no Full extract to start from; \
                     run the sync again once the monthly Full is published"
                        .to_string()
                });
                (None, 0)
            }
        },
        Some(applied) => {
            let chain_end = offer.contiguous_end(applied);
            match (offer.newest(), offer.newest_full()) {
                (Some(newest), Some(full)) if chain_end < newest && full > applied => {
                    plan.note = Some(format!(
                        "update {} is no longer on the portal, so the register (at extract {applied}) continues from Full {full}",
                        chain_end + 1
                    ));
                    (Some(full), full)
                }
                _ => (None, applied),
            }
        }
    };
    if plan.problem.is_none() {
        plan.imports = offer.imports(start_full, from);
        let end = offer.contiguous_end(from);
        if let Some(newest) = offer.newest()
            && end < newest
            && applied.is_none_or(|a| newest > a)
        {
            plan.problem = Some(format!(
                "update {} is not on the portal, so extracts {} to {newest} cannot be applied yet; \
                 they will be once a newer Full is published",
                end + 1,
                end + 1
            ));
        }
    }
    plan.skipped = skipped(&offer, listed, &plan, applied, start_full);
    plan
}

/// What the portal offers, by extract number (of two files for one extract, a
/// re-publication, the later name).
struct Offer<'a> {
    updates: BTreeMap<u32, &'a ExtractFileName>,
    fulls: BTreeMap<u32, &'a ExtractFileName>,
}

impl<'a> Offer<'a> {
    fn of(listed: &'a [ExtractFileName]) -> Offer<'a> {
        let mut offer = Offer {
            updates: BTreeMap::new(),
            fulls: BTreeMap::new(),
        };
        for file in listed {
            let by_number = match file.kind {
                ExtractType::Update => &mut offer.updates,
                ExtractType::Full => &mut offer.fulls,
            };
            let keep = by_number.get(&file.extract_number).is_none_or(|kept| {
                (kept.year, kept.month, kept.day) <= (file.year, file.month, file.day)
            });
            if keep {
                by_number.insert(file.extract_number, file);
            }
        }
        offer
    }

    fn newest(&self) -> Option<u32> {
        self.updates.keys().chain(self.fulls.keys()).copied().max()
    }

    fn newest_full(&self) -> Option<u32> {
        self.fulls.keys().next_back().copied()
    }

    /// The last extract number reached from `from` by updates without a gap.
    fn contiguous_end(&self, from: u32) -> u32 {
        contiguous_end(&self.updates, from)
    }

    /// The Full that starts the chain, if any, then the updates after `from`, in order.
    fn imports(&self, start_full: Option<u32>, from: u32) -> Vec<ExtractFileName> {
        let full = start_full.map(|full| self.fulls[&full].clone());
        let end = self.contiguous_end(from);
        full.into_iter()
            .chain((from + 1..=end).map(|n| self.updates[&n].clone()))
            .collect()
    }
}

/// The listed extracts the plan does not import, and why.
fn skipped(
    offer: &Offer,
    listed: &[ExtractFileName],
    plan: &Chain,
    applied: Option<u32>,
    start_full: Option<u32>,
) -> Vec<Skipped> {
    let applied_or_started = applied.or(start_full);
    let mut skipped = Vec::new();
    for file in listed.iter().filter(|f| !plan.imports.contains(f)) {
        let n = file.extract_number;
        let reason = match (applied, start_full) {
            (Some(a), _) if n <= a => format!("already applied (the register is at extract {a})"),
            (_, Some(full)) if n <= full => {
                format!("covered by Full {full}, which the sync imports instead")
            }
            _ if file.kind == ExtractType::Full
                && applied_or_started.is_some()
                && n <= offer.contiguous_end(applied_or_started.unwrap_or(0)) =>
            {
                "not needed: the daily updates continue the register".to_string()
            }
            _ if plan.problem.is_some() => "waits for the missing update".to_string(),
            _ => "not needed".to_string(),
        };
        skipped.push(Skipped {
            file: file.to_string(),
            reason,
        });
    }
    skipped.sort_by(|a, b| a.file.cmp(&b.file));
    skipped.dedup();
    skipped
}

/// The last extract number reached from `from` by updates `from+1`, `from+2`, … without a gap.
fn contiguous_end(updates: &BTreeMap<u32, &ExtractFileName>, from: u32) -> u32 {
    let mut end = from;
    while updates.contains_key(&(end + 1)) {
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<ExtractFileName> {
        names
            .iter()
            .map(|n| ExtractFileName::parse(n).unwrap_or_else(|| panic!("{n}")))
            .collect()
    }

    fn numbers(plan: &Chain) -> Vec<String> {
        plan.imports
            .iter()
            .map(|f| format!("{}{}", f.extract_number, &f.kind.as_str()[..1]))
            .collect()
    }

    const PORTAL: [&str; 6] = [
        "KboOpenData_0140_2025_10_Full.zip",
        "KboOpenData_0141_2025_10_05_Update.zip",
        "KboOpenData_0142_2025_10_06_Update.zip",
        "KboOpenData_0143_2025_11_Full.zip",
        "KboOpenData_0143_2025_11_01_Update.zip",
        "KboOpenData_0144_2025_11_02_Update.zip",
    ];

    #[test]
    fn an_empty_register_starts_from_the_newest_full_then_its_updates() {
        let plan = chain(None, &files(&PORTAL));
        assert_eq!(numbers(&plan), ["143f", "144u"]);
        assert_eq!(plan.problem, None);
        let reasons: Vec<(&str, &str)> = plan
            .skipped
            .iter()
            .map(|s| (s.file.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(
            reasons
                .iter()
                .all(|(_, r)| r.contains("covered by Full 143")),
            "{reasons:?}"
        );
    }

    #[test]
    fn a_current_register_takes_the_updates_in_order_and_ignores_fulls() {
        let plan = chain(Some(140), &files(&PORTAL));
        assert_eq!(numbers(&plan), ["141u", "142u", "143u", "144u"]);
        assert_eq!(
            (plan.note.as_deref(), plan.problem.as_deref()),
            (None, None)
        );
        let full = plan
            .skipped
            .iter()
            .find(|s| s.file.contains("0143_2025_11_Full"))
            .unwrap();
        assert!(full.reason.contains("updates continue"), "{full:?}");
    }

    #[test]
    fn an_up_to_date_register_imports_nothing() {
        let plan = chain(Some(144), &files(&PORTAL));
        assert!(plan.imports.is_empty());
        assert_eq!(plan.problem, None);
        assert_eq!(plan.skipped.len(), PORTAL.len());
        assert!(
            plan.skipped
                .iter()
                .all(|s| s.reason.starts_with("already applied"))
        );
        // The same Full a second time is not newer than the register: nothing to do.
        let plan = chain(Some(143), &files(&PORTAL[3..4]));
        assert!(
            plan.imports.is_empty() && plan.problem.is_none(),
            "{plan:?}"
        );
    }

    #[test]
    fn a_broken_chain_restarts_from_the_newest_full_and_says_so() {
        // The register is at 139; update 140 is gone.
        let plan = chain(Some(139), &files(&PORTAL));
        assert_eq!(numbers(&plan), ["143f", "144u"]);
        let note = plan.note.unwrap();
        assert!(
            note.contains("update 140") && note.contains("Full 143"),
            "{note}"
        );
        // Register at 141, update 142 gone, Full 143 there.
        let mut listed = files(&PORTAL);
        listed.retain(|f| f.extract_number != 142);
        let plan = chain(Some(141), &listed);
        assert_eq!(numbers(&plan), ["143f", "144u"]);
        assert!(plan.note.unwrap().contains("update 142"));
    }

    #[test]
    fn a_gap_without_a_newer_full_imports_what_it_can_and_says_why_not_the_rest() {
        let listed = files(&[
            "KboOpenData_0141_2025_10_05_Update.zip",
            "KboOpenData_0143_2025_10_07_Update.zip",
        ]);
        let plan = chain(Some(140), &listed);
        assert_eq!(numbers(&plan), ["141u"]);
        let problem = plan.problem.unwrap();
        assert!(problem.contains("update 142"), "{problem}");
        assert_eq!(plan.skipped[0].reason, "waits for the missing update");
        // Nothing at all can continue a register at 139.
        let plan = chain(Some(139), &listed);
        assert!(plan.imports.is_empty());
        assert!(plan.problem.unwrap().contains("update 140"));
    }

    #[test]
    fn an_empty_register_needs_a_full() {
        let plan = chain(None, &files(&PORTAL[1..3]));
        assert!(plan.imports.is_empty());
        assert!(plan.problem.unwrap().contains("no Full"));
        assert!(chain(None, &[]).problem.unwrap().contains("no extracts"));
    }

    #[test]
    fn a_register_ahead_of_the_portal_imports_nothing_and_reports_no_problem() {
        let plan = chain(Some(150), &files(&PORTAL));
        assert!(plan.imports.is_empty());
        assert_eq!(plan.problem, None);
    }
}
