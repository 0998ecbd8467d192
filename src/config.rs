//! Typed configuration, read from the environment once at start-up (see `.env.example`).

use crate::extract::Limits;
use std::path::PathBuf;
use thiserror::Error;

/// Everything the service can be configured with, by concern: the endpoint, the import, the
/// sync's schedule. Each concern's defaults are its own (`.env.example` and the README's table
/// are held to them by tests).
#[derive(Debug, Clone)]
pub struct Config {
    /// How the Restate endpoint is served.
    pub server: ServerSettings,
    /// Where and how extracts are imported: the register, the work directory, downloads,
    /// bounds, retries, the portal, Vercel Blob, Restate's admin API.
    pub import: crate::importer::Settings,
    /// When `KboSync`'s schedule runs unless the operator says otherwise.
    pub sync: SyncSettings,
    /// How the feed's pages are made and sent to subscribers.
    pub feed: crate::feed::FeedSettings,
}

/// How the Restate endpoint is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// `PORT`: where the Restate endpoint listens (default 9080).
    pub port: u16,
    /// `RESTATE_IDENTITY_KEYS`: comma-separated `publickeyv1_…` keys; when set, only requests
    /// signed by Restate are served.
    pub identity_keys: Vec<String>,
    /// `KBO_TLS_CERT_FILE` and `KBO_TLS_KEY_FILE` (PEM): when both are set, the endpoint speaks
    /// HTTP/2 over TLS (as Restate Cloud reaches a deployment); otherwise cleartext HTTP/2.
    pub tls: Option<TlsFiles>,
    /// `KBO_HTTP2_KEEPALIVE_SECS`: seconds between the HTTP/2 pings sent on each connection
    /// from Restate (default 20; `0` sends none), so that a proxy that closes idle connections
    /// does not close one while a step works.
    pub keepalive: Option<std::time::Duration>,
}

/// Lines per batch step when `KBO_BATCH_ROWS` is not set: each batch is one statement and one
/// commit, and fewer, larger ones load faster (docs/performance.md), while DuckDB's memory
/// stays under its cap whatever the batch's size.
pub const DEFAULT_BATCH_ROWS: u64 = 2_000_000;

pub use crate::client::RestateAdmin;
pub use crate::db::DuckDbSettings;
pub use crate::portal::{DEFAULT_PORTAL_URL, PortalSettings};
pub use crate::redact::Secret;
pub use crate::retry::RetrySettings;

/// The endpoint's certificate chain and private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `KBO_TLS_CERT_FILE`: the certificate chain, the endpoint's own first.
    pub cert: PathBuf,
    /// `KBO_TLS_KEY_FILE`: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The default schedule of `KboSync`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// `KBO_SYNC_AT` (`HH:MM`, UTC, default `07:00`) or `KBO_SYNC_EVERY` (`90s`, `15m`, `6h`):
    /// daily at a time of day, or at a fixed interval.
    pub schedule: crate::sync::schedule::Schedule,
    /// `KBO_SYNC_VERIFY` (default `false`): after a sync, verify the register against the
    /// portal's Full of its extract (`KboVerify`), once per extract.
    pub verify: bool,
}

pub use crate::db::target::DatabaseTarget;

/// A setting that could not be used.
#[derive(Debug, Error)]
#[error("configuration: {var}={value:?} is not valid: {expected}")]
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// Its value (secrets masked).
    pub value: String,
    /// What it should be.
    pub expected: String,
}

impl From<crate::db::target::TargetError> for ConfigError {
    fn from(e: crate::db::target::TargetError) -> ConfigError {
        ConfigError {
            var: e.var,
            value: e.value,
            expected: e.expected,
        }
    }
}

impl Config {
    /// Reads the configuration from the process environment, and registers its secrets
    /// (tokens, passwords) with [`crate::redact`] so that no message ever shows them.
    pub fn from_env() -> Result<Config, ConfigError> {
        let config = Config::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))?;
        for secret in config.secrets() {
            crate::redact::register(&secret);
        }
        Ok(config)
    }

    /// The secret values of this configuration: the MotherDuck token, the portal password.
    pub fn secrets(&self) -> Vec<String> {
        let import = &self.import;
        let mut secrets = import.database.secrets();
        secrets.extend(
            import
                .portal
                .password
                .iter()
                .map(|p| p.expose().to_string()),
        );
        secrets.extend(import.blob.token.iter().map(|t| t.expose().to_string()));
        secrets.extend(
            import
                .restate_admin
                .iter()
                .filter_map(|a| a.token.as_ref())
                .map(|t| t.expose().to_string()),
        );
        secrets
    }

    /// Reads the configuration through `get`, which answers an environment variable's value.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let work_dir = PathBuf::from(get("KBO_WORK_DIR").unwrap_or_else(|| "kbo-work".into()));
        let batch_rows: u64 = parse(
            &get,
            "KBO_BATCH_ROWS",
            DEFAULT_BATCH_ROWS,
            "a positive number of rows",
        )?;
        if batch_rows == 0 {
            return Err(ConfigError {
                var: "KBO_BATCH_ROWS",
                value: "0".into(),
                expected: "a positive number of rows".into(),
            });
        }
        let server = ServerSettings {
            port: parse(&get, "PORT", 9080, "a TCP port number")?,
            identity_keys: identity_keys(&get)?,
            tls: tls_files(&get)?,
            keepalive: match parse(
                &get,
                "KBO_HTTP2_KEEPALIVE_SECS",
                20u64,
                "a number of seconds",
            )? {
                0 => None,
                secs => Some(std::time::Duration::from_secs(secs)),
            },
        };
        let import = crate::importer::Settings {
            database: DatabaseTarget::from_environment(&get)?,
            batch_rows,
            allow_file_urls: parse(&get, "KBO_ALLOW_FILE_URLS", false, "true or false")?,
            retries: retry_settings(&get)?,
            download: download_policy(&get)?,
            history_months: parse(&get, "KBO_HISTORY_MONTHS", 24, "a whole number of months")?,
            duckdb: duckdb_settings(&get, &work_dir)?,
            limits: limits(&get)?,
            blob: crate::blob::BlobSettings::from_lookup(&get),
            restate_admin: get("RESTATE_ADMIN_URL").map(|url| RestateAdmin {
                url: url.trim().trim_end_matches('/').to_string(),
                token: get("RESTATE_AUTH_TOKEN").map(Secret::new),
            }),
            portal: PortalSettings {
                url: get("KBO_PORTAL_URL")
                    .unwrap_or_else(|| DEFAULT_PORTAL_URL.into())
                    .trim()
                    .trim_end_matches('/')
                    .to_string(),
                username: get("KBO_USERNAME"),
                password: get("KBO_PASSWORD").map(Secret::new),
            },
            work_dir,
        };
        check_urls(&import)?;
        Ok(Config {
            server,
            import,
            sync: SyncSettings {
                schedule: sync_schedule(&get)?,
                verify: parse(&get, "KBO_SYNC_VERIFY", false, "true or false")?,
            },
            feed: crate::feed::FeedSettings::from_lookup(&get).map_err(
                |(var, value, expected)| ConfigError {
                    var,
                    value,
                    expected: expected.into(),
                },
            )?,
        })
    }
}

/// Checks that the settings naming a URL the service calls hold HTTP(S) URLs.
fn check_urls(import: &crate::importer::Settings) -> Result<(), ConfigError> {
    let mut urls = vec![
        ("KBO_PORTAL_URL", import.portal.url.as_str()),
        ("VERCEL_BLOB_API_URL", import.blob.api_url.as_str()),
    ];
    if let Some(admin) = &import.restate_admin {
        urls.push(("RESTATE_ADMIN_URL", admin.url.as_str()));
    }
    for (var, value) in urls {
        crate::net::check_base_urls(value).map_err(|why| ConfigError {
            var,
            value: url::Url::parse(value)
                .map_or_else(|_| value.to_string(), |u| crate::net::redacted(&u)),
            expected: format!("an http:// or https:// URL ({why})"),
        })?;
    }
    Ok(())
}

/// The value of `var` parsed, `default` when it is unset; `expected` says what it should be.
fn parse<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
    expected: &'static str,
) -> Result<T, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError {
            var,
            value: v,
            expected: expected.into(),
        }),
    }
}

/// `KBO_TLS_CERT_FILE` and `KBO_TLS_KEY_FILE`: both, or neither.
fn tls_files(get: &impl Fn(&str) -> Option<String>) -> Result<Option<TlsFiles>, ConfigError> {
    match (get("KBO_TLS_CERT_FILE"), get("KBO_TLS_KEY_FILE")) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: PathBuf::from(cert.trim()),
            key: PathBuf::from(key.trim()),
        })),
        (None, None) => Ok(None),
        (Some(cert), None) => Err(ConfigError {
            var: "KBO_TLS_KEY_FILE",
            value: String::new(),
            expected: format!("the private key of KBO_TLS_CERT_FILE={cert} (set both, or neither)"),
        }),
        (None, Some(key)) => Err(ConfigError {
            var: "KBO_TLS_CERT_FILE",
            value: String::new(),
            expected: format!("the certificate of KBO_TLS_KEY_FILE={key} (set both, or neither)"),
        }),
    }
}

/// The most tries a step's retry policy may have: each try is an attempt of the invocation,
/// and `run`'s invocation retry policy pauses the import after 70 attempts
/// (src/workflow/mod.rs), which a step's own tries must stay well below.
pub const MAX_STEP_ATTEMPTS: u32 = 50;

/// `KBO_RETRY_NETWORK_ATTEMPTS`, `KBO_RETRY_LOCAL_ATTEMPTS`.
fn retry_settings(get: &impl Fn(&str) -> Option<String>) -> Result<RetrySettings, ConfigError> {
    let defaults = RetrySettings::default();
    let attempts = "a number of attempts from 1 to 50";
    let settings = RetrySettings {
        network_attempts: parse(
            get,
            "KBO_RETRY_NETWORK_ATTEMPTS",
            defaults.network_attempts,
            attempts,
        )?,
        local_attempts: parse(
            get,
            "KBO_RETRY_LOCAL_ATTEMPTS",
            defaults.local_attempts,
            attempts,
        )?,
    };
    for (var, n) in [
        ("KBO_RETRY_NETWORK_ATTEMPTS", settings.network_attempts),
        ("KBO_RETRY_LOCAL_ATTEMPTS", settings.local_attempts),
    ] {
        if !(1..=MAX_STEP_ATTEMPTS).contains(&n) {
            return Err(ConfigError {
                var,
                value: n.to_string(),
                expected: attempts.into(),
            });
        }
    }
    Ok(settings)
}

/// `KBO_MAX_DOWNLOAD_BYTES`, `KBO_ALLOW_PRIVATE_HOSTS`.
fn download_policy(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<crate::net::DownloadPolicy, ConfigError> {
    let defaults = crate::net::DownloadPolicy::default();
    Ok(crate::net::DownloadPolicy {
        max_bytes: parse(
            get,
            "KBO_MAX_DOWNLOAD_BYTES",
            defaults.max_bytes,
            "a number of bytes",
        )?,
        allow_private_hosts: parse(get, "KBO_ALLOW_PRIVATE_HOSTS", false, "true or false")?,
    })
}

/// `KBO_DUCKDB_*`; DuckDB spills into `<work dir>/duckdb-tmp` unless told otherwise.
fn duckdb_settings(
    get: &impl Fn(&str) -> Option<String>,
    work_dir: &std::path::Path,
) -> Result<DuckDbSettings, ConfigError> {
    let settings = DuckDbSettings {
        memory_limit: get("KBO_DUCKDB_MEMORY_LIMIT").unwrap_or_else(|| "1536MB".into()),
        threads: match get("KBO_DUCKDB_THREADS") {
            None => None,
            Some(_) => Some(parse(get, "KBO_DUCKDB_THREADS", 0, "a number of threads")?),
        },
        temp_dir: get("KBO_DUCKDB_TEMP_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| work_dir.join("duckdb-tmp")),
        checkpoint_wal_mb: parse(get, "KBO_DUCKDB_CHECKPOINT_WAL_MB", 64, "a number of MiB")?,
    };
    // Checked by DuckDB now, not at the first import.
    settings.check().map_err(|(var, why)| ConfigError {
        var,
        value: get(var).unwrap_or_default(),
        expected: match var {
            "KBO_DUCKDB_MEMORY_LIMIT" => {
                format!("a size DuckDB takes, such as 1536MB or 2GB ({why})")
            }
            _ => format!("a number of threads DuckDB takes ({why})"),
        },
    })?;
    Ok(settings)
}

/// `KBO_MAX_MEMBER_BYTES`, `KBO_MAX_TOTAL_BYTES`, `KBO_MAX_COMPRESSION_RATIO`.
fn limits(get: &impl Fn(&str) -> Option<String>) -> Result<Limits, ConfigError> {
    let defaults = Limits::default();
    let bytes = "a number of bytes";
    Ok(Limits {
        max_member_bytes: parse(
            get,
            "KBO_MAX_MEMBER_BYTES",
            defaults.max_member_bytes,
            bytes,
        )?,
        max_total_bytes: parse(get, "KBO_MAX_TOTAL_BYTES", defaults.max_total_bytes, bytes)?,
        max_ratio: parse(
            get,
            "KBO_MAX_COMPRESSION_RATIO",
            defaults.max_ratio,
            "a whole number",
        )?,
    })
}

/// The request-identity keys of `RESTATE_IDENTITY_KEYS` and of `RESTATE_SIGNING_PUBLIC_KEY`
/// (the old app's name for the same setting), together. A value that is set but holds no
/// well-formed key is refused: it would silently leave the endpoint unauthenticated.
fn identity_keys(get: &impl Fn(&str) -> Option<String>) -> Result<Vec<String>, ConfigError> {
    let mut keys = Vec::new();
    for var in ["RESTATE_IDENTITY_KEYS", "RESTATE_SIGNING_PUBLIC_KEY"] {
        let Some(value) = get(var) else { continue };
        let these: Vec<String> = value
            .split(',')
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect();
        if these.is_empty() || these.iter().any(|k| !k.starts_with("publickeyv1_")) {
            return Err(ConfigError {
                var,
                value,
                expected: "one or more comma-separated Restate request-identity public keys \
                           (publickeyv1_…); a value that is set but holds none would leave the \
                           endpoint open to unsigned requests"
                    .into(),
            });
        }
        for key in these {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    Ok(keys)
}

/// `KBO_SYNC_EVERY` when set, else `KBO_SYNC_AT`, else daily at 07:00 UTC.
fn sync_schedule(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<crate::sync::schedule::Schedule, ConfigError> {
    use crate::sync::schedule::Schedule;
    if let Some(every) = get("KBO_SYNC_EVERY") {
        return Schedule::every(&every).map_err(|expected| ConfigError {
            var: "KBO_SYNC_EVERY",
            value: every,
            expected: expected.into(),
        });
    }
    let at = get("KBO_SYNC_AT").unwrap_or_else(|| "07:00".into());
    Schedule::daily_at(&at).map_err(|expected| ConfigError {
        var: "KBO_SYNC_AT",
        value: at,
        expected: expected.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn urls_the_service_calls_are_checked_at_start_up() {
        for var in ["KBO_PORTAL_URL", "VERCEL_BLOB_API_URL", "RESTATE_ADMIN_URL"] {
            let err = config(&[(var, "garbage")]).unwrap_err();
            assert_eq!(err.var, var);
            assert!(err.expected.contains("https://"), "{err}");
        }
        let err = config(&[("RESTATE_ADMIN_URL", "http://a:9070,b:9070")]).unwrap_err();
        assert!(
            err.expected.contains("b:9070"),
            "names the node that is wrong: {err}"
        );
        let c = config(&[("RESTATE_ADMIN_URL", "http://a:9070, https://b:9070")]).unwrap();
        assert!(c.import.restate_admin.is_some());
    }

    #[test]
    fn defaults_serve_a_local_file() {
        let c = config(&[]).unwrap();
        assert_eq!(c.server.port, 9080);
        assert_eq!(c.import.database, DatabaseTarget::File("kbo.duckdb".into()));
        assert_eq!(c.import.batch_rows, 2_000_000);
        assert!(!c.import.allow_file_urls);
        assert_eq!(c.import.history_months, 24);
        assert!(c.server.identity_keys.is_empty());
        assert_eq!(
            c.import.duckdb.temp_dir,
            PathBuf::from("kbo-work/duckdb-tmp")
        );
        assert_eq!(c.import.portal.url, DEFAULT_PORTAL_URL);
        assert_eq!(c.import.portal.username, None);
        assert_eq!(c.sync.schedule.to_string(), "daily at 07:00 UTC");
    }

    #[test]
    fn keepalive_pings_every_twenty_seconds_unless_set_and_zero_turns_them_off() {
        let every = |v: &[(&str, &str)]| config(v).unwrap().server.keepalive;
        assert_eq!(every(&[]), Some(std::time::Duration::from_secs(20)));
        let five = [("KBO_HTTP2_KEEPALIVE_SECS", "5")];
        assert_eq!(every(&five), Some(std::time::Duration::from_secs(5)));
        assert_eq!(every(&[("KBO_HTTP2_KEEPALIVE_SECS", "0")]), None);
        let bad = config(&[("KBO_HTTP2_KEEPALIVE_SECS", "soon")]).unwrap_err();
        assert_eq!(bad.var, "KBO_HTTP2_KEEPALIVE_SECS");
    }

    #[test]
    fn every_value_env_example_sets_is_the_default() {
        let defaults = format!("{:?}", config(&[]).unwrap());
        let example = include_str!("../.env.example");
        let set: Vec<&str> = example
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains('='))
            .collect();
        assert!(set.len() >= 10, "{set:?}");
        for line in set {
            let (var, value) = line.split_once('=').unwrap();
            let with = format!("{:?}", config(&[(var, value)]).unwrap());
            assert_eq!(with, defaults, ".env.example's {line} is not the default");
        }
    }

    #[test]
    fn tls_takes_a_certificate_and_its_key_together() {
        assert_eq!(config(&[]).unwrap().server.tls, None);
        let both = config(&[
            ("KBO_TLS_CERT_FILE", "c.pem"),
            ("KBO_TLS_KEY_FILE", "k.pem"),
        ]);
        assert_eq!(
            both.unwrap().server.tls,
            Some(TlsFiles {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        let e = config(&[("KBO_TLS_CERT_FILE", "c.pem")]).unwrap_err();
        assert_eq!(e.var, "KBO_TLS_KEY_FILE");
        let e = config(&[("KBO_TLS_KEY_FILE", "k.pem")]).unwrap_err();
        assert_eq!(e.var, "KBO_TLS_CERT_FILE");
    }

    #[test]
    fn step_retries_stay_below_the_runs_invocation_retries() {
        assert!(config(&[("KBO_RETRY_LOCAL_ATTEMPTS", "50")]).is_ok());
        let e = config(&[("KBO_RETRY_LOCAL_ATTEMPTS", "51")]).unwrap_err();
        assert_eq!(e.var, "KBO_RETRY_LOCAL_ATTEMPTS");
        let e = config(&[("KBO_RETRY_NETWORK_ATTEMPTS", "0")]).unwrap_err();
        assert_eq!(e.var, "KBO_RETRY_NETWORK_ATTEMPTS");
    }

    #[test]
    fn portal_password_is_never_shown() {
        let c = config(&[
            ("KBO_PORTAL_URL", "http://127.0.0.1:8000/portal/"),
            ("KBO_USERNAME", "me"),
            ("KBO_PASSWORD", "hunter2"),
        ])
        .unwrap();
        assert_eq!(c.import.portal.url, "http://127.0.0.1:8000/portal");
        assert_eq!(
            c.import.portal.password.as_ref().unwrap().expose(),
            "hunter2"
        );
        assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");
    }

    #[test]
    fn sync_schedule_is_a_time_of_day_or_an_interval() {
        let c = config(&[("KBO_SYNC_AT", "05:30")]).unwrap();
        assert_eq!(c.sync.schedule.to_string(), "daily at 05:30 UTC");
        let c = config(&[("KBO_SYNC_AT", "05:30"), ("KBO_SYNC_EVERY", "90s")]).unwrap();
        assert_eq!(c.sync.schedule.to_string(), "every 90s");
        assert_eq!(
            config(&[("KBO_SYNC_AT", "25:00")]).unwrap_err().var,
            "KBO_SYNC_AT"
        );
        assert_eq!(
            config(&[("KBO_SYNC_EVERY", "soon")]).unwrap_err().var,
            "KBO_SYNC_EVERY"
        );
    }

    #[test]
    fn motherduck_from_kbo_database_or_from_a_token() {
        let c = config(&[
            ("KBO_DATABASE", "md:kbo"),
            ("MOTHERDUCK_TOKEN", "FAKE-token-1234"),
        ])
        .unwrap();
        assert!(c.import.database.is_motherduck());
        assert_eq!(c.import.database.to_string(), "md:kbo?motherduck_token=***");
        assert_eq!(c.secrets(), vec!["FAKE-token-1234".to_string()]);
        assert!(!format!("{c:?}").contains("FAKE-token-1234"), "{c:?}");
        let c = config(&[("motherduck_token", "FAKE-token-1234")]).unwrap();
        assert!(
            c.import.database.is_motherduck(),
            "the token alone selects md:kbo"
        );
        let err = config(&[
            ("KBO_DATABASE", "md:"),
            ("MOTHERDUCK_TOKEN", "FAKE-token-1234"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "KBO_DATABASE");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = config(&[("KBO_BATCH_ROWS", "lots")]).unwrap_err();
        assert_eq!(err.var, "KBO_BATCH_ROWS");
        assert!(config(&[("KBO_BATCH_ROWS", "0")]).is_err());
        assert!(config(&[("PORT", "99999")]).is_err());
        let c = config(&[("RESTATE_IDENTITY_KEYS", "publickeyv1_a, publickeyv1_b")]).unwrap();
        assert_eq!(
            c.server.identity_keys,
            vec!["publickeyv1_a", "publickeyv1_b"]
        );
    }

    #[test]
    fn duckdb_is_asked_at_start_up_whether_it_takes_its_resource_bounds() {
        let err = config(&[("KBO_DUCKDB_MEMORY_LIMIT", "lots")]).unwrap_err();
        assert_eq!(err.var, "KBO_DUCKDB_MEMORY_LIMIT");
        assert_eq!(err.value, "lots");
        let c = config(&[("KBO_DUCKDB_MEMORY_LIMIT", "2GB")]).unwrap();
        assert_eq!(c.import.duckdb.memory_limit, "2GB");
        let err = config(&[("KBO_DUCKDB_THREADS", "0")]).unwrap_err();
        assert_eq!(err.var, "KBO_DUCKDB_THREADS");
    }

    #[test]
    fn identity_keys_under_either_name_and_never_silently_none() {
        let c = config(&[("RESTATE_SIGNING_PUBLIC_KEY", "publickeyv1_old")]).unwrap();
        assert_eq!(c.server.identity_keys, vec!["publickeyv1_old"]);
        let c = config(&[
            ("RESTATE_IDENTITY_KEYS", "publickeyv1_a"),
            ("RESTATE_SIGNING_PUBLIC_KEY", "publickeyv1_a,publickeyv1_b"),
        ])
        .unwrap();
        assert_eq!(
            c.server.identity_keys,
            vec!["publickeyv1_a", "publickeyv1_b"]
        );
        for (var, value) in [
            ("RESTATE_IDENTITY_KEYS", " , "),
            ("RESTATE_IDENTITY_KEYS", "not-a-key"),
            ("RESTATE_SIGNING_PUBLIC_KEY", ","),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{value:?}");
            assert!(err.expected.contains("publickeyv1_"), "{err}");
        }
    }
}
