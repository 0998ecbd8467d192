//! Random draws, reproducible for a seed, and KBO-shaped numbers.

use super::data::{FORMS, ODD_NAMES, PREFIX_DE, PREFIX_FR, PREFIX_NL, SURNAMES};

/// Enterprise numbers: `0ddd.ddd.ddd` with a mod-97 check on the last two digits.
pub fn enterprise_number(i: u64) -> String {
    dotted(with_check(2_000_000 + i * 7))
}

/// How many establishments an enterprise can have: up to 4 drawn, and 1 more opened by the
/// update (`Change::NewEstablishment`).
pub const MAX_ESTABLISHMENTS: u64 = 5;

/// How many enterprise slots the establishment numbers have room for: the bases of
/// [`establishment_number`] stay within `20_000_000..30_000_000` (first digit 2).
pub const MAX_ENTERPRISES: u64 = (30_000_000 - 20_000_000) / MAX_ESTABLISHMENTS;

/// Establishment numbers: `2.ddd.ddd.ddd`, mod-97 checked. Enterprise `i` owns the block of
/// [`MAX_ESTABLISHMENTS`] numbers from `20_000_000 + i * MAX_ESTABLISHMENTS`, so no two
/// enterprises share a number; `k` must be below [`MAX_ESTABLISHMENTS`] and `i` below
/// [`MAX_ENTERPRISES`] (2 000 000: scale 1.03).
pub fn establishment_number(i: u64, k: u64) -> String {
    assert!(
        k < MAX_ESTABLISHMENTS && i < MAX_ENTERPRISES,
        "establishment {k} of enterprise {i} is outside the generator's numbering \
         (k < {MAX_ESTABLISHMENTS}, i < {MAX_ENTERPRISES}): lower the scale"
    );
    let n = with_check(20_000_000 + i * MAX_ESTABLISHMENTS + k);
    format!(
        "{}.{:03}.{:03}.{:03}",
        n / 1_000_000_000,
        n / 1_000_000 % 1000,
        n / 1000 % 1000,
        n % 1000
    )
}

/// A number the register does not hold (for deletes of unknown entities): enterprise numbers'
/// bases stay below `2_000_000 + 7 * MAX_ENTERPRISES` = 16 000 000.
pub fn unknown_enterprise_number(k: u64) -> String {
    dotted(with_check(19_000_000 + k))
}

fn with_check(base: u64) -> u64 {
    base * 100 + (97 - base % 97)
}

fn dotted(n: u64) -> String {
    format!(
        "{:04}.{:03}.{:03}",
        n / 1_000_000,
        n / 1000 % 1000,
        n % 1000
    )
}

/// SplitMix64: small, fast, and good enough for synthetic data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for (seed, entity, purpose).
    pub fn new(seed: u64, i: u64, salt: u64) -> Rng {
        let mut r = Rng(seed
            ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A company name in `language` (`1` French, `3` German, else Dutch), now and then one that
/// tests the dialect.
pub fn company_name(rng: &mut Rng, language: &str) -> String {
    if rng.chance(0.03) {
        return rng.pick(ODD_NAMES).to_string();
    }
    let prefix = match language {
        "1" => rng.pick(PREFIX_FR),
        "3" => rng.pick(PREFIX_DE),
        _ => rng.pick(PREFIX_NL),
    };
    let surname = rng.pick(SURNAMES);
    let form = rng.pick(FORMS);
    let number = rng.below(1000);
    if form.is_empty() {
        format!("{prefix} {surname} {number}")
    } else {
        format!("{prefix} {surname} {number} {form}")
    }
}
