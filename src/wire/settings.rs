//! The Restate settings the service declares for itself, as Restate's admin API prints them
//! back (`35d`, `30m`): what `kbo-import register` compares the registered services with, to
//! say which value the server clamped (Restate Cloud lowers any setting above its environment's
//! maximum without a word).
//!
//! The attributes on [`crate::workflow::KboImport`] and [`crate::sync::KboSync`] are what
//! Restate receives; this list repeats them, because a macro attribute takes only literals. The
//! end-to-end test of `register` against a server that clamps nothing proves the two agree.

/// One setting the service declares: of `service`, of its `handler` if any, `key` = `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    /// The service's name (`KboImport`, `KboSync`).
    pub service: &'static str,
    /// The handler the setting belongs to; `None` for the service's own.
    pub handler: Option<&'static str>,
    /// The admin API's name of the setting (`journal_retention`).
    pub key: &'static str,
    /// The value as the admin API prints it.
    pub value: &'static str,
}

const fn service(service: &'static str, key: &'static str, value: &'static str) -> Declared {
    Declared {
        service,
        handler: None,
        key,
        value,
    }
}

const fn handler(
    service: &'static str,
    handler: &'static str,
    key: &'static str,
    value: &'static str,
) -> Declared {
    Declared {
        service,
        handler: Some(handler),
        key,
        value,
    }
}

/// Every setting the service declares.
pub const DECLARED: &[Declared] = &[
    service("KboImport", "workflow_completion_retention", "35d"),
    service("KboImport", "journal_retention", "7d"),
    handler("KboImport", "run", "inactivity_timeout", "30m"),
    handler("KboImport", "run", "abort_timeout", "30m"),
    handler("KboImport", "getProgress", "inactivity_timeout", "1m"),
    handler("KboImport", "getProgress", "abort_timeout", "1m"),
    handler("KboImport", "getChanges", "inactivity_timeout", "1m"),
    handler("KboImport", "getChanges", "abort_timeout", "1m"),
    service("KboVerify", "workflow_completion_retention", "35d"),
    service("KboVerify", "journal_retention", "7d"),
    handler("KboVerify", "run", "inactivity_timeout", "30m"),
    handler("KboVerify", "run", "abort_timeout", "30m"),
    handler("KboVerify", "getProgress", "inactivity_timeout", "1m"),
    handler("KboVerify", "getProgress", "abort_timeout", "1m"),
    service("KboSync", "journal_retention", "7d"),
    service("KboSync", "idempotency_retention", "7d"),
    service("KboSync", "inactivity_timeout", "10m"),
    service("KboSync", "abort_timeout", "10m"),
    service("KboSubscription", "journal_retention", "7d"),
];

/// The settings the admin API shows for a service and its handlers, in the order they are
/// printed.
pub const SHOWN: &[&str] = &[
    "workflow_completion_retention",
    "journal_retention",
    "idempotency_retention",
    "inactivity_timeout",
    "abort_timeout",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_setting_is_one_register_shows_and_none_is_declared_twice() {
        for (i, d) in DECLARED.iter().enumerate() {
            assert!(SHOWN.contains(&d.key), "{d:?} would never be compared");
            let twice = DECLARED[i + 1..]
                .iter()
                .any(|o| (o.service, o.handler, o.key) == (d.service, d.handler, d.key));
            assert!(!twice, "{d:?} is declared twice");
        }
    }
}
