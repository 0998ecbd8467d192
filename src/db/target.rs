//! Where the register lives — a local DuckDB file or a MotherDuck database — as the
//! environment names it, and how it is shown: never with its token.
//!
//! The rule (the README's "Which database" paragraph):
//!
//! | set | target |
//! |---|---|
//! | `KBO_DATABASE` | that: a file path, or `md:<name>[?motherduck_token=…&…]` |
//! | else `MOTHERDUCK_TOKEN` (or `motherduck_token`) | `md:${MOTHERDUCK_DATABASE:-kbo}` |
//! | else | the file `kbo.duckdb` in the working directory |

use crate::redact::{self, Secret};
use std::fmt;
use std::path::PathBuf;

/// The local file used when nothing else is configured.
pub const DEFAULT_FILE: &str = "kbo.duckdb";

/// The MotherDuck database used when only a token is configured.
pub const DEFAULT_MOTHERDUCK_DATABASE: &str = "kbo";

/// The catalog name a local file is attached under.
const FILE_CATALOG: &str = "kbo";

/// Where the register lives.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// A DuckDB file on local disk.
    File(PathBuf),
    /// A MotherDuck database.
    MotherDuck(MotherDuck),
}

/// A MotherDuck database and the means to connect to it.
#[derive(Clone, PartialEq, Eq)]
pub struct MotherDuck {
    /// The database's name (`kbo` in `md:kbo`): MotherDuck attaches a database under its own
    /// name, and refuses an alias.
    pub database: String,
    /// The connection string as `ATTACH` takes it, token included (never shown).
    connection: Secret,
}

/// A target that cannot be used, with the variable that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// Its value, secrets masked.
    pub value: String,
    /// What it should be.
    pub expected: String,
}

impl DatabaseTarget {
    /// The target the environment names, read through `get` (see the module's table).
    pub fn from_environment(
        get: &impl Fn(&str) -> Option<String>,
    ) -> Result<DatabaseTarget, TargetError> {
        let token = motherduck_token(get);
        if let Some(value) = get("KBO_DATABASE") {
            return DatabaseTarget::parse(&value, token, "KBO_DATABASE");
        }
        match token {
            Some(token) => {
                let name = get("MOTHERDUCK_DATABASE")
                    .unwrap_or_else(|| DEFAULT_MOTHERDUCK_DATABASE.to_string());
                let bare = strip_motherduck_prefix(&name).unwrap_or(&name).to_string();
                DatabaseTarget::parse(&format!("md:{bare}"), Some(token), "MOTHERDUCK_DATABASE")
            }
            None => Ok(DatabaseTarget::File(PathBuf::from(DEFAULT_FILE))),
        }
    }

    /// `md:<name>[?params]` (or `motherduck:…`) is MotherDuck, anything else a file path.
    /// `token` is used when the connection string carries none; `var` is named in errors.
    pub fn parse(
        value: &str,
        token: Option<Secret>,
        var: &'static str,
    ) -> Result<DatabaseTarget, TargetError> {
        let value = value.trim();
        let Some(rest) = strip_motherduck_prefix(value) else {
            return Ok(DatabaseTarget::File(PathBuf::from(value)));
        };
        let refuse = |expected: String| TargetError {
            var,
            value: redact::mask_parameters(value),
            expected,
        };
        let (name, params) = rest.split_once('?').unwrap_or((rest, ""));
        if name.is_empty() {
            return Err(refuse(
                "a MotherDuck database name, as in md:kbo: `md:` alone is MotherDuck's workspace \
                 mode, where a database cannot be attached for the service; name the database \
                 (create it first with CREATE DATABASE kbo)"
                    .into(),
            ));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(refuse(format!(
                "a MotherDuck database name of letters, digits, `_` and `-`; {name:?} is not one"
            )));
        }
        let has_token = params.split('&').any(|p| {
            p.split_once('=')
                .is_some_and(|(k, v)| k.eq_ignore_ascii_case("motherduck_token") && !v.is_empty())
        });
        let connection = match (has_token, token) {
            (true, _) => format!("md:{rest}"),
            (false, Some(token)) if params.is_empty() => {
                format!("md:{name}?motherduck_token={}", token.expose())
            }
            (false, Some(token)) => format!("md:{rest}&motherduck_token={}", token.expose()),
            (false, None) => {
                return Err(refuse(
                    "a MotherDuck token: set MOTHERDUCK_TOKEN (or motherduck_token), or add \
                     ?motherduck_token=… to the connection string; without one MotherDuck waits \
                     for a browser login that a service cannot give"
                        .into(),
                ));
            }
        };
        Ok(DatabaseTarget::MotherDuck(MotherDuck {
            database: name.to_string(),
            connection: Secret::new(connection),
        }))
    }

    /// The statements that attach the target and make it the default database.
    pub fn attach_sql(&self) -> String {
        match self {
            DatabaseTarget::File(path) => format!(
                "ATTACH {} AS {FILE_CATALOG}; USE {FILE_CATALOG};",
                super::sql_literal(&path.to_string_lossy())
            ),
            // MotherDuck attaches a database under its own name and refuses an alias.
            DatabaseTarget::MotherDuck(md) => format!(
                "ATTACH {}; USE \"{}\";",
                super::sql_literal(md.connection.expose()),
                md.database
            ),
        }
    }

    /// The secret values this target carries (its token), for [`redact::register`].
    pub fn secrets(&self) -> Vec<String> {
        match self {
            DatabaseTarget::File(_) => Vec::new(),
            DatabaseTarget::MotherDuck(md) => md
                .connection
                .expose()
                .split(['?', '&'])
                .filter_map(|p| p.split_once('='))
                .filter(|(k, _)| redact::is_secret_parameter(k))
                .map(|(_, v)| v.to_string())
                .collect(),
        }
    }

    /// True for MotherDuck.
    pub fn is_motherduck(&self) -> bool {
        matches!(self, DatabaseTarget::MotherDuck(_))
    }
}

/// The token from `MOTHERDUCK_TOKEN`, or `motherduck_token` as MotherDuck's own docs spell it.
fn motherduck_token(get: &impl Fn(&str) -> Option<String>) -> Option<Secret> {
    get("MOTHERDUCK_TOKEN")
        .or_else(|| get("motherduck_token"))
        .map(|t| Secret::new(t.trim()))
        .filter(|t| !t.expose().is_empty())
}

/// What follows `md:` or `motherduck:` (any case), if `value` is a MotherDuck connection string.
fn strip_motherduck_prefix(value: &str) -> Option<&str> {
    ["md:", "motherduck:"].iter().find_map(|prefix| {
        value
            .get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .map(|_| &value[prefix.len()..])
    })
}

impl fmt::Display for DatabaseTarget {
    /// The target as operators read it: a path, or the connection string with its token masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseTarget::File(path) => write!(f, "{}", path.display()),
            DatabaseTarget::MotherDuck(md) => {
                f.write_str(&redact::mask_parameters(md.connection.expose()))
            }
        }
    }
}

impl fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?} cannot be used: it needs {}",
            self.var, self.value, self.expected
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const TOKEN: &str = "FAKE-md-token-7f3a9c";

    fn target(vars: &[(&str, &str)]) -> Result<DatabaseTarget, TargetError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        DatabaseTarget::from_environment(&|k| map.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn nothing_set_is_the_local_default() {
        assert_eq!(
            target(&[]).unwrap(),
            DatabaseTarget::File(DEFAULT_FILE.into())
        );
        assert_eq!(
            target(&[("MOTHERDUCK_DATABASE", "register")]).unwrap(),
            DatabaseTarget::File(DEFAULT_FILE.into()),
            "a database name without a token is not MotherDuck"
        );
    }

    #[test]
    fn a_token_alone_selects_motherduck_kbo_either_spelling() {
        for var in ["MOTHERDUCK_TOKEN", "motherduck_token"] {
            let t = target(&[(var, TOKEN)]).unwrap();
            assert_eq!(t.to_string(), "md:kbo?motherduck_token=***", "{var}");
            assert!(t.attach_sql().contains(TOKEN));
            assert_eq!(t.secrets(), vec![TOKEN.to_string()]);
        }
        let t = target(&[
            ("MOTHERDUCK_TOKEN", TOKEN),
            ("MOTHERDUCK_DATABASE", "register"),
        ])
        .unwrap();
        assert!(
            t.attach_sql().ends_with("USE \"register\";"),
            "{}",
            t.attach_sql()
        );
    }

    #[test]
    fn kbo_database_wins() {
        let t = target(&[
            ("KBO_DATABASE", "/data/kbo.duckdb"),
            ("MOTHERDUCK_TOKEN", TOKEN),
            ("MOTHERDUCK_DATABASE", "register"),
        ])
        .unwrap();
        assert_eq!(t, DatabaseTarget::File("/data/kbo.duckdb".into()));
        let t = target(&[("KBO_DATABASE", "md:other"), ("MOTHERDUCK_TOKEN", TOKEN)]).unwrap();
        assert_eq!(t.to_string(), "md:other?motherduck_token=***");
    }

    #[test]
    fn a_token_in_the_connection_string_is_used_and_never_shown() {
        let raw = format!("md:kbo?motherduck_token={TOKEN}&attach_mode=single");
        let t = target(&[("KBO_DATABASE", raw.as_str())]).unwrap();
        assert_eq!(
            t.to_string(),
            "md:kbo?motherduck_token=***&attach_mode=single"
        );
        assert_eq!(format!("{t:?}"), t.to_string());
        assert!(t.attach_sql().contains(TOKEN));
        assert_eq!(t.secrets(), vec![TOKEN.to_string()]);
        let t = target(&[
            ("KBO_DATABASE", "md:kbo?attach_mode=single"),
            ("motherduck_token", TOKEN),
        ])
        .unwrap();
        assert_eq!(
            t.to_string(),
            "md:kbo?attach_mode=single&motherduck_token=***"
        );
    }

    #[test]
    fn workspace_mode_and_missing_tokens_are_refused() {
        let err = target(&[("KBO_DATABASE", "md:"), ("MOTHERDUCK_TOKEN", TOKEN)]).unwrap_err();
        assert_eq!(err.var, "KBO_DATABASE");
        assert!(err.to_string().contains("name the database"), "{err}");
        let raw = format!("md:?motherduck_token={TOKEN}");
        let err = target(&[("KBO_DATABASE", raw.as_str())]).unwrap_err();
        assert!(!err.to_string().contains(TOKEN), "{err}");
        let err = target(&[("KBO_DATABASE", "md:kbo")]).unwrap_err();
        assert!(err.to_string().contains("MOTHERDUCK_TOKEN"), "{err}");
        let err = target(&[("KBO_DATABASE", "md:k\"bo"), ("MOTHERDUCK_TOKEN", TOKEN)]).unwrap_err();
        assert!(err.to_string().contains("database name"), "{err}");
        let err =
            target(&[("MOTHERDUCK_TOKEN", TOKEN), ("MOTHERDUCK_DATABASE", "md:")]).unwrap_err();
        assert_eq!(err.var, "MOTHERDUCK_DATABASE");
    }
}
