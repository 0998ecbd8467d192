//! Keeping secrets out of every message, in one place.
//!
//! Tokens and passwords reach the service through its configuration (`MOTHERDUCK_TOKEN`, a
//! `motherduck_token=` parameter in `KBO_DATABASE`, `KBO_PASSWORD`) and through request
//! bodies (a signed URL's query string). Whatever text leaves the service — an error, a log
//! line, `getProgress`, a step failure in Restate's journal, a command's output — goes through
//! [`scrub`] first: every registered secret value and every value of a secret-looking parameter
//! (`…token=`, `…password=`, `…signature=`) becomes `***`.
//!
//! [`crate::error::ImportError`] scrubs its message when it is made, so every error of an
//! import is clean wherever it is shown afterwards.

use std::fmt;
use std::sync::RwLock;

/// A value that is never printed: `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Secret values known to this process, longest first (so that a secret containing another
/// is masked whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Values shorter than this are not registered: masking every `1` or `ab` in a message would
/// garble it, and such a value protects nothing.
const MIN_SECRET_LEN: usize = 4;

/// Remembers `secret`: from now on [`scrub`] replaces it wherever it appears.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_string());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every registered secret and every secret parameter's value replaced by `***`.
pub fn scrub(text: &str) -> String {
    let mut out = mask_parameters(text);
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

/// Parameter names whose values are secret, matched at the end of a parameter name, case
/// insensitively: `motherduck_token`, `access_token`, `password`, `X-Amz-Signature`, `sig`, …
const SECRET_PARAMETERS: [&str; 6] = [
    "token",
    "password",
    "secret",
    "signature",
    "sig",
    "credential",
];

/// Whether a parameter named `name` carries a secret (its name ends in `token`, `password`,
/// `signature`, …, in any case).
pub fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMETERS.iter().any(|p| name.ends_with(p))
}

/// Masks the value of every `name=value` whose name ends in one of `SECRET_PARAMETERS`
/// (a connection string's or a URL's query parameters, wherever they appear in `text`).
pub fn mask_parameters(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'=' {
            i += 1;
            continue;
        }
        let name_start = text[..i]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            .map(|(p, c)| p + c.len_utf8())
            .unwrap_or(0);
        let secret = is_secret_parameter(&text[name_start..i]);
        let value_end = text[i + 1..]
            .find(|c: char| c.is_whitespace() || "&'\"`;:,)]}<>".contains(c))
            .map(|p| i + 1 + p)
            .unwrap_or(text.len());
        if secret && value_end > i + 1 && &text[i + 1..value_end] != MASK {
            out.push_str(&text[copied..=i]);
            out.push_str(MASK);
            copied = value_end;
        }
        i = value_end.max(i + 1);
    }
    out.push_str(&text[copied..]);
    out
}

/// At most `max` bytes of `text` (cut at a character boundary), saying how much was left out:
/// messages quote input (a header line, a value), and input can be megabytes long.
pub fn capped(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}… ({} more bytes not shown)",
        &text[..cut],
        text.len() - cut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_string_tokens_are_masked() {
        assert_eq!(
            mask_parameters("md:kbo?motherduck_token=eyJhbGc.abc-def&attach_mode=single"),
            "md:kbo?motherduck_token=***&attach_mode=single"
        );
        assert_eq!(
            mask_parameters("cannot open 'md:kbo?MOTHERDUCK_TOKEN=abc': refused"),
            "cannot open 'md:kbo?MOTHERDUCK_TOKEN=***': refused"
        );
    }

    #[test]
    fn signed_url_parameters_are_masked_and_others_kept() {
        assert_eq!(
            mask_parameters(
                "https://x.blob/KboOpenData_0140.zip?X-Amz-Credential=AK/1&X-Amz-Signature=ff00&n=2"
            ),
            "https://x.blob/KboOpenData_0140.zip?X-Amz-Credential=***&X-Amz-Signature=***&n=2"
        );
        assert_eq!(mask_parameters("a = b, x=1"), "a = b, x=1");
        assert_eq!(mask_parameters("password="), "password=");
        assert_eq!(mask_parameters("é=ü token=ß"), "é=ü token=***");
    }

    #[test]
    fn registered_secrets_are_masked_anywhere() {
        register("s3cr3t-7f3a9c-registered");
        register("ab");
        let text = scrub("login with s3cr3t-7f3a9c-registered failed; ab stays");
        assert_eq!(text, "login with *** failed; ab stays");
    }

    #[test]
    fn long_input_is_capped_at_a_character_boundary() {
        assert_eq!(capped("short", 10), "short");
        let long = "é".repeat(10);
        let cut = capped(&long, 5);
        assert!(cut.starts_with("éé…"), "{cut}");
        assert!(cut.ends_with("(16 more bytes not shown)"), "{cut}");
    }
}
