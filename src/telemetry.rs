//! Logging, set up in one place: human-readable by default, JSON lines with `LOG_FORMAT=json`,
//! filtered by `RUST_LOG` (default `info`). Colours only on a terminal, and never with
//! `NO_COLOR`. Secrets (tokens, passwords) are never logged.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Whether log lines may carry colour codes: standard error is a terminal and `NO_COLOR`
/// (<https://no-color.org>) is unset or empty.
pub fn colours(stderr_is_terminal: bool, no_color: Option<&str>) -> bool {
    stderr_is_terminal && no_color.is_none_or(str::is_empty)
}

/// Whether `LOG_FORMAT` asks for JSON lines: unset, empty or `text` for text, `json` for JSON;
/// anything else is refused with what to set.
pub fn json_format(log_format: Option<&str>) -> Result<bool, String> {
    match log_format.map(str::trim) {
        None | Some("") => Ok(false),
        Some(f) if f.eq_ignore_ascii_case("text") => Ok(false),
        Some(f) if f.eq_ignore_ascii_case("json") => Ok(true),
        Some(f) => Err(format!(
            "configuration: LOG_FORMAT={f:?} is not valid: text or json"
        )),
    }
}

/// The log filter `RUST_LOG` gives (`info` when unset or empty); a filter that does not parse
/// is refused with the reason.
pub fn filter(rust_log: Option<&str>) -> Result<EnvFilter, String> {
    match rust_log.map(str::trim) {
        None | Some("") => Ok(EnvFilter::new("info")),
        Some(directives) => EnvFilter::try_new(directives).map_err(|e| {
            format!(
                "configuration: RUST_LOG={directives:?} is not valid: a log filter such as info or kbo_import=debug ({e})"
            )
        }),
    }
}

/// Installs the global subscriber; call once, first thing in `main`. Refuses a `LOG_FORMAT`
/// or `RUST_LOG` it cannot follow.
pub fn init() -> Result<(), String> {
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref())?;
    let json = json_format(std::env::var("LOG_FORMAT").ok().as_deref())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours(
            std::io::stderr().is_terminal(),
            std::env::var("NO_COLOR").ok().as_deref(),
        ))
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    } else {
        builder.init();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_settings_that_cannot_be_followed_are_refused() {
        assert_eq!(json_format(None), Ok(false));
        assert_eq!(json_format(Some("JSON")), Ok(true));
        assert_eq!(json_format(Some("text")), Ok(false));
        assert!(json_format(Some("xml")).unwrap_err().contains("LOG_FORMAT"));
        assert!(filter(None).is_ok() && filter(Some("warn,kbo_import=debug")).is_ok());
        assert!(filter(Some("[[[")).unwrap_err().contains("RUST_LOG"));
    }

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colours(true, None));
        assert!(colours(true, Some("")));
        assert!(!colours(true, Some("1")));
        assert!(!colours(false, None));
    }
}
