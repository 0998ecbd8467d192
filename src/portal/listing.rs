//! The portal's file listing: an HTML page whose links end in extract file names. Pure code.

use crate::extract::file_name::ExtractFileName;

/// The extracts a listing page links to, in extract order, each once.
///
/// Links may be relative or absolute, quoted with `"` or `'` or not at all, and carry a query
/// or fragment; links to anything but a KBO extract are ignored.
pub fn extracts(html: &str) -> Vec<ExtractFileName> {
    let mut found: Vec<ExtractFileName> = hrefs(html)
        .filter_map(|target| ExtractFileName::parse(&decode_entities(target)))
        .collect();
    found.sort_by_key(|f| (f.extract_number, f.kind.as_str(), f.to_string()));
    found.dedup();
    found
}

/// The targets of every `href=` attribute in `html`.
fn hrefs(html: &str) -> impl Iterator<Item = &str> {
    let lower = html.to_ascii_lowercase();
    let starts: Vec<usize> = lower.match_indices("href").map(|(i, _)| i + 4).collect();
    starts.into_iter().filter_map(move |start| {
        let rest = html[start..].trim_start();
        let rest = rest.strip_prefix('=')?.trim_start();
        let (value, _) = match rest.chars().next()? {
            quote @ ('"' | '\'') => rest[1..].split_once(quote)?,
            _ => rest
                .split_once(|c: char| c.is_whitespace() || c == '>')
                .unwrap_or((rest, "")),
        };
        Some(value.trim())
    })
}

/// `&amp;` and friends in an attribute value (query strings in links are often escaped).
fn decode_entities(value: &str) -> String {
    value
        .replace("&amp;", "&")
        .replace("&#47;", "/")
        .replace("&#x2F;", "/")
        .replace("&quot;", "\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::ExtractType;

    #[test]
    fn finds_relative_and_absolute_links_to_extracts_once_each_in_order() {
        let html = r#"<html><body><table>
            <tr><td><a href="files/KboOpenData_0141_2025_10_05_Update.zip">KboOpenData_0141_2025_10_05_Update.zip</a></td></tr>
            <tr><td><A HREF='https://kbopub.economie.fgov.be/kbo-open-data/affiliation/xml/files/KboOpenData_0140_2025_10_Full.zip'>Full</A></td></tr>
            <tr><td><a href=KboOpenData_0142_2025_10_06_Update.zip>unquoted</a></td></tr>
            <tr><td><a href="files/KboOpenData_0141_2025_10_05_Update.zip?download=1&amp;x=2">again</a></td></tr>
            <tr><td><a href="files/KboOpenData_0141_2025_10_05_Full.zip">same number, a Full</a></td></tr>
            <tr><td><a href="/static/help.html">help</a> <a href="files/readme.pdf">readme</a></td></tr>
            <tr><td><a href="files/KboOpenData_141_2025_10_05_Update.zip">not a KBO name</a></td></tr>
        </table></body></html>"#;
        let names: Vec<String> = extracts(html).iter().map(|f| f.to_string()).collect();
        assert_eq!(
            names,
            [
                "KboOpenData_0140_2025_10_Full.zip",
                "KboOpenData_0141_2025_10_05_Full.zip",
                "KboOpenData_0141_2025_10_05_Update.zip",
                "KboOpenData_0142_2025_10_06_Update.zip",
            ]
        );
        assert_eq!(extracts(html)[2].kind, ExtractType::Update);
    }

    #[test]
    fn a_page_without_extracts_lists_nothing() {
        assert!(extracts("").is_empty());
        assert!(
            extracts("<html><form action=\"j_spring_security_check\"></form></html>").is_empty()
        );
        assert!(extracts("<a href=").is_empty());
        assert!(extracts("<a href=\"unterminated").is_empty());
    }
}
