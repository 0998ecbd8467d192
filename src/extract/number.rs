//! Enterprise numbers as people write them (`0403.170.701`, `BE0403170701`, `403170701`),
//! read, checked (the mod-97 check) and written as the register writes them; and lists of
//! them, as a watchlist is given.

/// An enterprise number as the register writes it, `0403.170.701`: ten digits, the first 0
/// or 1, the last two a mod-97 check of the first eight.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnterpriseNumber(String);

impl EnterpriseNumber {
    /// Reads `0403.170.701`, `0403170701`, `BE0403170701`, `BE 0403.170.701` or the nine-digit
    /// `403170701` (the leading zero left out), saying why a text is not one.
    pub fn parse(text: &str) -> Result<EnterpriseNumber, String> {
        let trimmed = text.trim();
        let bare = trimmed
            .strip_prefix("BE")
            .or_else(|| trimmed.strip_prefix("be"))
            .unwrap_or(trimmed);
        let digits: String = bare.chars().filter(|c| !matches!(c, '.' | ' ')).collect();
        let bad = |why: &str| format!("`{trimmed}` is not an enterprise number: {why}");
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("it must hold ten digits, as 0403.170.701"));
        }
        let digits = match digits.len() {
            9 => format!("0{digits}"),
            10 => digits,
            n => return Err(bad(&format!("it holds {n} digits, not ten"))),
        };
        if digits.starts_with('2') {
            return Err(bad(
                "it is an establishment number; follow the enterprise it belongs to",
            ));
        }
        if !digits.starts_with(['0', '1']) {
            return Err(bad("an enterprise number starts with 0 or 1"));
        }
        let n: u64 = digits.parse().expect("ten ASCII digits");
        if 97 - (n / 100) % 97 != n % 100 {
            return Err(bad("its last two digits are not its mod-97 check"));
        }
        Ok(EnterpriseNumber(format!(
            "{}.{}.{}",
            &digits[0..4],
            &digits[4..7],
            &digits[7..10]
        )))
    }

    /// The number as the register writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EnterpriseNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The most numbers one call may add to or remove from a watchlist (a longer list goes in
/// several calls, or straight into `feed_watchlist`).
pub const MAX_NUMBERS_PER_CALL: usize = 100_000;

/// Reads a list of enterprise numbers (separated by commas, spaces or new lines), each once,
/// in order; refuses the list with every malformed number named (the first ten), an empty
/// list, or one longer than [`MAX_NUMBERS_PER_CALL`].
pub fn parse_numbers(texts: &[String]) -> Result<Vec<EnterpriseNumber>, String> {
    let items: Vec<&str> = texts
        .iter()
        .flat_map(|t| t.split([',', '\n', '\r', '\t', ';']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Err("the list of enterprise numbers is empty".into());
    }
    if items.len() > MAX_NUMBERS_PER_CALL {
        return Err(format!(
            "{} enterprise numbers in one call; at most {MAX_NUMBERS_PER_CALL} (send the rest in \
             another call, or insert them into feed_watchlist)",
            items.len()
        ));
    }
    let mut numbers = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for item in items {
        match EnterpriseNumber::parse(item) {
            Ok(n) => numbers.push(n),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        let shown: Vec<&str> = errors.iter().take(10).map(String::as_str).collect();
        let more = match errors.len() {
            n if n > 10 => format!(" (and {} more)", n - 10),
            _ => String::new(),
        };
        return Err(format!(
            "{} of the numbers are refused{more}: {}",
            errors.len(),
            shown.join("; ")
        ));
    }
    let mut seen = std::collections::HashSet::new();
    numbers.retain(|n| seen.insert(n.clone()));
    Ok(numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn enterprise_numbers_are_read_in_every_usual_spelling() {
        for text in [
            "0403.170.701",
            "0403170701",
            "BE0403170701",
            "BE 0403.170.701",
            "403170701",
            " 0403.170.701 ",
        ] {
            assert_eq!(
                EnterpriseNumber::parse(text).unwrap().as_str(),
                "0403.170.701",
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_numbers_are_refused_with_the_reason() {
        let why = |t: &str| EnterpriseNumber::parse(t).unwrap_err();
        assert!(why("0403.170.702").contains("mod-97"));
        assert!(why("2.006.242.882").contains("establishment"));
        assert!(why("0403.170").contains("7 digits"));
        assert!(why("04O3.170.701").contains("ten digits"));
        assert!(why("5403.170.701").contains("starts with 0 or 1"));
        assert!(why("").contains("ten digits"));
    }

    #[test]
    fn a_list_is_read_once_each_and_refused_whole_naming_its_bad_numbers() {
        let list =
            parse_numbers(&strings(&["0403.170.701, 0403170701", "0200.065.765\n"])).unwrap();
        let got: Vec<&str> = list.iter().map(EnterpriseNumber::as_str).collect();
        assert_eq!(got, ["0403.170.701", "0200.065.765"]);
        let refused = parse_numbers(&strings(&["0403.170.701,0403.170.702,x"])).unwrap_err();
        assert!(
            refused.starts_with("2 of the numbers are refused"),
            "{refused}"
        );
        assert!(
            refused.contains("`0403.170.702`") && refused.contains("`x`"),
            "{refused}"
        );
        assert!(
            parse_numbers(&strings(&[" , "]))
                .unwrap_err()
                .contains("empty")
        );
        let huge = vec!["0403.170.701".to_string(); MAX_NUMBERS_PER_CALL + 1];
        assert!(parse_numbers(&huge).unwrap_err().contains("at most 100000"));
    }
}
