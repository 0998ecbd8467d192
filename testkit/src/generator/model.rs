//! A synthetic register: every enterprise's rows at extract N (version 0) and N+1 (version 1)
//! are a pure function of (seed, enterprise index, version), so any scale streams in constant
//! memory and Full(N) + Update(N+1) = Full(N+1) holds by construction.

use super::data::{FOREIGN, JURIDICAL_FORMS, PLACES, STREETS, SURNAMES};
use super::draw::company_name;
pub use super::draw::{
    MAX_ENTERPRISES, MAX_ESTABLISHMENTS, Rng, enterprise_number, establishment_number,
    unknown_enterprise_number,
};
use kbo_import::extract::Table;
use kbo_import::extract::date::Date;

/// A value as written to a CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Written quoted.
    Text(String),
    /// Written unquoted, `dd-mm-yyyy`, as real extracts write dates.
    Date(Date),
    /// Written as nothing or as `""`.
    Null,
}

/// One CSV line: the entity it belongs to (the key of its table's delete file) and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The value matched by the table's delete file.
    pub entity: String,
    /// The line's values in the file's column order.
    pub values: Vec<Value>,
}

/// Everything the register holds for one enterprise (its establishments and branches too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Lines per table, in [`Table::ALL`] order.
    pub lines: [Vec<Line>; 7],
}

impl Record {
    /// The lines of one table.
    pub fn table(&self, t: Table) -> &[Line] {
        &self.lines[table_index(t)]
    }

    fn push(&mut self, t: Table, entity: &str, values: Vec<Value>) {
        self.lines[table_index(t)].push(Line {
            entity: entity.to_string(),
            values,
        });
    }
}

/// The position of `t` in [`Table::ALL`].
pub fn table_index(t: Table) -> usize {
    Table::ALL
        .iter()
        .position(|x| *x == t)
        .expect("every table is in ALL")
}

/// How an enterprise changes between the two versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing.
    None,
    /// Its legal name changes (denomination files only).
    Rename,
    /// Its registered office moves.
    Move,
    /// It takes up an extra activity.
    NewActivity,
    /// Its contact data change.
    NewContact,
    /// It stops: gone from the register at version 1.
    Stopped,
    /// It is new: only at version 1.
    New,
    /// It opens an establishment.
    NewEstablishment,
    /// Its juridical situation changes (its own row is replaced; its names are not in the update).
    Situation,
    /// One of its establishments takes a new commercial name.
    EstablishmentRenamed,
}

/// Parameters of the synthetic register.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of enterprise slots (present at either version).
    pub enterprises: u64,
    /// Share of enterprises that change between the versions.
    pub change_rate: f64,
}

/// How many NACE codes each NACE version of the synthetic code list has.
pub const NACE_CODES: u64 = 1700;

/// The k-th NACE code of the synthetic code list.
pub fn nace_code(k: u64) -> String {
    format!("{:05}", 1110 + k * 53)
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

fn date(rng: &mut Rng, from_year: u16, to_year: u16) -> Value {
    let year = from_year + rng.below(u64::from(to_year - from_year + 1)) as u16;
    let month = 1 + rng.below(12) as u8;
    let day = 1 + rng.below(28) as u8;
    Value::Date(Date::new(year, month, day).expect("day 1..=28 exists in every month"))
}

impl Model {
    /// How enterprise `i` changes between the versions.
    pub fn change(&self, i: u64) -> Change {
        let mut rng = Rng::new(self.seed, i, 1);
        if !rng.chance(self.change_rate) {
            return Change::None;
        }
        *rng.pick(&[
            Change::Rename,
            Change::Rename,
            Change::Move,
            Change::NewActivity,
            Change::NewContact,
            Change::Stopped,
            Change::New,
            Change::New,
            Change::NewEstablishment,
            Change::Situation,
            Change::EstablishmentRenamed,
        ])
    }

    /// Everything the register holds for enterprise `i` at `version` (0 or 1); empty when the
    /// enterprise does not exist at that version. The draws come in a fixed order (enterprise,
    /// names, office, contacts, activities, establishments, branch), so that the same seed
    /// writes the same extract.
    pub fn record(&self, i: u64, version: u8) -> Record {
        let change = self.change(i);
        let exists = match change {
            Change::Stopped => version == 0,
            Change::New => version == 1,
            _ => true,
        };
        if !exists {
            return Record::default();
        }
        let mut rng = Rng::new(self.seed, i, 2);
        let legal = rng.chance(0.62);
        let region = if rng.chance(0.58) {
            "2"
        } else if rng.chance(0.95) {
            "1"
        } else {
            "3"
        };
        let start = date(&mut rng, 1950, 2025);
        let mut e = Enterprise {
            seed: self.seed,
            i,
            number: enterprise_number(i),
            legal,
            region,
            old: matches!(start, Value::Date(d) if d.year < 2008),
            changed: |c: Change| version == 1 && change == c,
            rng,
            rec: Record::default(),
        };
        e.enterprise_line(start);
        e.names();
        e.office();
        e.contacts();
        e.activities();
        e.establishments();
        e.branch();
        e.rec
    }
}

/// One enterprise being drawn: its fixed traits, the random stream, and its lines so far.
struct Enterprise<F: Fn(Change) -> bool> {
    seed: u64,
    i: u64,
    number: String,
    legal: bool,
    /// The language of its region (`2` Dutch, `1` French, `3` German).
    region: &'static str,
    /// Started before 2008 (its activities carry NACE 2003 codes too).
    old: bool,
    /// Whether the version drawn carries this change.
    changed: F,
    rng: Rng,
    rec: Record,
}

impl<F: Fn(Change) -> bool> Enterprise<F> {
    /// enterprise.csv
    fn enterprise_line(&mut self, start: Value) {
        let rng = &mut self.rng;
        let situation = if (self.changed)(Change::Situation) {
            "012"
        } else if rng.chance(0.9) {
            "000"
        } else {
            "100"
        };
        let form = if self.legal {
            text(*rng.pick(JURIDICAL_FORMS))
        } else {
            Value::Null
        };
        let form_cac = if self.legal && rng.chance(0.05) {
            text("610")
        } else {
            Value::Null
        };
        let number = self.number.clone();
        self.rec.push(
            Table::Enterprise,
            &number,
            vec![
                text(&number),
                text("AC"),
                text(situation),
                text(if self.legal { "2" } else { "1" }),
                form,
                form_cac,
                start,
            ],
        );
    }

    /// Its names: legal (in one or two languages), abbreviation, commercial.
    fn names(&mut self) {
        let (rng, region) = (&mut self.rng, self.region);
        let other = if region == "2" { "1" } else { "2" };
        let mut names = Vec::new();
        if self.legal || rng.chance(0.4) {
            let mut name = company_name(rng, region);
            if (self.changed)(Change::Rename) {
                name = format!("{name} (nieuw)");
            }
            names.push(("001", region, name.clone()));
            if rng.chance(0.35) {
                names.push((
                    "001",
                    other,
                    format!("{name} {}", if other == "1" { "SRL" } else { "BV" }),
                ));
            }
        }
        if rng.chance(0.1) {
            let abbreviation: String = company_name(rng, region)
                .split_whitespace()
                .filter_map(|w| w.chars().next())
                .collect();
            names.push(("002", region, abbreviation));
        }
        if rng.chance(0.25) {
            names.push((
                "003",
                if rng.chance(0.1) { "0" } else { region },
                company_name(rng, region),
            ));
        }
        if rng.chance(0.01) {
            names.push(("001", "4", company_name(rng, "2")));
        }
        let number = &self.number;
        for (kind, language, name) in names {
            self.rec.push(
                Table::Denomination,
                number,
                vec![text(number), text(language), text(kind), text(name)],
            );
        }
    }

    /// The registered office.
    fn office(&mut self) {
        if self.legal && self.rng.chance(0.95) {
            let moved = (self.changed)(Change::Move);
            let mut rng = Rng::new(self.seed, self.i, 3);
            push_address(&mut self.rec, &mut rng, &self.number, "REGO", moved);
        }
    }

    /// Contacts (all random draws made up front, so a change perturbs nothing else).
    fn contacts(&mut self) {
        let rng = &mut self.rng;
        let has_contact = rng.chance(0.2);
        let has_web = rng.chance(0.5);
        let slug: String = rng
            .pick(SURNAMES)
            .chars()
            .filter(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_lowercase();
        let new = (self.changed)(Change::NewContact);
        if !(has_contact || new) {
            return;
        }
        let (number, i) = (&self.number, self.i);
        let suffix = if new { "-new" } else { "" };
        let contact =
            |kind: &str, value: String| vec![text(number), text("ENT"), text(kind), text(value)];
        self.rec.push(
            Table::Contact,
            number,
            contact("EMAIL", format!("info@{slug}{}{suffix}.be", i % 1000)),
        );
        if has_web {
            self.rec.push(
                Table::Contact,
                number,
                contact("WEB", format!("www.{slug}{}.be", i % 1000)),
            );
        }
    }

    /// The enterprise's own activities.
    fn activities(&mut self) {
        let extra = (self.changed)(Change::NewActivity);
        let mut rng = Rng::new(self.seed, self.i, 4);
        push_activities(&mut self.rec, &mut rng, &self.number, self.old, extra);
    }

    /// Its establishments, each with a name now and then, an address, a phone, activities.
    fn establishments(&mut self) {
        let mut count = match self.rng.below(100) {
            0..45 => 0,
            45..80 => 1,
            80..92 => 2,
            92..97 => 3,
            _ => 4,
        };
        if (self.changed)(Change::NewEstablishment) {
            count += 1;
        }
        // Each establishment k has its own number (draw::establishment_number): at most
        // MAX_ESTABLISHMENTS per enterprise.
        debug_assert!(count <= MAX_ESTABLISHMENTS);
        for k in 0..count {
            self.establishment(k);
        }
    }

    fn establishment(&mut self, k: u64) {
        let mut rng = Rng::new(self.seed, self.i, 100 + k);
        let (rec, number) = (&mut self.rec, &self.number);
        let est = establishment_number(self.i, k);
        rec.push(
            Table::Establishment,
            &est,
            vec![text(&est), date(&mut rng, 1960, 2025), text(number)],
        );
        if rng.chance(0.5) {
            let mut name = company_name(&mut rng, self.region);
            if (self.changed)(Change::EstablishmentRenamed) && k == 0 {
                name = format!("{name} II");
            }
            rec.push(
                Table::Denomination,
                &est,
                vec![text(&est), text(self.region), text("003"), text(name)],
            );
        }
        push_address(rec, &mut rng, &est, "BAET", false);
        if rng.chance(0.07) {
            let phone = format!(
                "+32 {} {:03} {:02} {:02}",
                2 + rng.below(8),
                rng.below(1000),
                rng.below(100),
                rng.below(100)
            );
            rec.push(
                Table::Contact,
                &est,
                vec![text(&est), text("EST"), text("TEL"), text(phone)],
            );
        }
        push_activities(rec, &mut rng, &est, self.old, false);
    }

    /// A branch of a foreign entity, now and then.
    fn branch(&mut self) {
        let rng = &mut self.rng;
        if !rng.chance(0.0038) {
            return;
        }
        let i = self.i;
        let id = format!(
            "9.{:03}.{:03}.{:03}",
            i / 1_000_000 % 1000,
            i / 1000 % 1000,
            i % 1000
        );
        self.rec.push(
            Table::Branch,
            &id,
            vec![text(&id), date(rng, 1990, 2025), text(&self.number)],
        );
        let name = format!("{} Belgium Branch", company_name(rng, "1"));
        self.rec.push(
            Table::Denomination,
            &id,
            vec![text(&id), text("1"), text("004"), text(name)],
        );
        push_address(&mut self.rec, rng, &id, "ABBR", false);
    }
}

fn push_address(rec: &mut Record, rng: &mut Rng, entity: &str, kind: &str, moved: bool) {
    let (street_nl, street_fr) = *rng.pick(STREETS);
    let (zip, nl, fr) = *rng.pick(PLACES);
    let foreign = rng.chance(0.03);
    let (country_nl, country_fr) = if foreign {
        let (a, b) = *rng.pick(FOREIGN);
        (text(a), text(b))
    } else {
        (Value::Null, Value::Null)
    };
    let house = (1 + rng.below(250) + if moved { 300 } else { 0 }).to_string();
    let box_ = if rng.chance(0.15) {
        text(format!("{}", 1 + rng.below(20)))
    } else {
        Value::Null
    };
    let extra = if rng.chance(0.02) {
        text("achter het gebouw, 2de verdieping")
    } else {
        Value::Null
    };
    let struck = if rng.chance(0.01) {
        date(rng, 2000, 2025)
    } else {
        Value::Null
    };
    rec.push(
        Table::Address,
        entity,
        vec![
            text(entity),
            text(kind),
            country_nl,
            country_fr,
            text(zip),
            text(nl),
            text(fr),
            text(street_nl),
            text(street_fr),
            text(house),
            box_,
            extra,
            struck,
        ],
    );
}

fn push_activities(rec: &mut Record, rng: &mut Rng, entity: &str, old: bool, extra: bool) {
    let count = 1 + rng.below(7) + u64::from(extra);
    let first = rng.below(NACE_CODES);
    let group = if rng.chance(0.8) { "001" } else { "003" };
    for a in 0..count {
        let code = nace_code((first + a * 13) % NACE_CODES);
        let class = if a == 0 {
            "MAIN"
        } else if rng.chance(0.9) {
            "SECO"
        } else {
            "ANCI"
        };
        let versions: &[&str] = if old {
            &["2003", "2008", "2025"]
        } else {
            &["2008", "2025"]
        };
        for version in versions {
            rec.push(
                Table::Activity,
                entity,
                vec![
                    text(entity),
                    text(group),
                    text(*version),
                    text(&code),
                    text(class),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_digits_ok(number: &str) -> bool {
        let digits: String = number.chars().filter(|c| c.is_ascii_digit()).collect();
        let n: u64 = digits.parse().unwrap();
        97 - (n / 100) % 97 == n % 100
    }

    #[test]
    fn numbers_have_the_kbo_shapes_and_checks() {
        let e = enterprise_number(123_456);
        assert!(regex_like(&e, "dddd.ddd.ddd"), "{e}");
        assert!(e.starts_with('0') || e.starts_with('1'));
        assert!(check_digits_ok(&e));
        let s = establishment_number(1_938_000, 3);
        assert!(regex_like(&s, "d.ddd.ddd.ddd") && s.starts_with('2'), "{s}");
        assert!(check_digits_ok(&s));
        let last = establishment_number(MAX_ENTERPRISES - 1, MAX_ESTABLISHMENTS - 1);
        assert!(last.starts_with("2.999.999"), "{last}");
        assert!(check_digits_ok(&last));
    }

    #[test]
    fn no_two_establishments_share_a_number() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..2000 {
            for k in 0..MAX_ESTABLISHMENTS {
                assert!(seen.insert(establishment_number(i, k)), "({i}, {k})");
            }
        }
        // The fault this replaces: the 5th establishment (the update's new one) of enterprise
        // i took the number of the first of enterprise i + 1.
        assert_ne!(establishment_number(7, 4), establishment_number(8, 0));
    }

    #[test]
    #[should_panic(expected = "outside the generator's numbering")]
    fn a_sixth_establishment_has_no_number() {
        establishment_number(0, MAX_ESTABLISHMENTS);
    }

    fn regex_like(s: &str, shape: &str) -> bool {
        s.len() == shape.len()
            && s.chars()
                .zip(shape.chars())
                .all(|(c, p)| if p == 'd' { c.is_ascii_digit() } else { c == p })
    }

    #[test]
    fn records_are_deterministic_and_changes_show_only_in_version_1() {
        let model = Model {
            seed: 7,
            enterprises: 1000,
            change_rate: 0.5,
        };
        for i in 0..200 {
            assert_eq!(model.record(i, 0), model.record(i, 0));
            if model.change(i) == Change::None {
                assert_eq!(
                    model.record(i, 0),
                    model.record(i, 1),
                    "enterprise {i} has no change"
                );
            }
            let named = model
                .record(i, 0)
                .table(Table::Denomination)
                .iter()
                .any(|l| l.values[2] == Value::Text("001".into()));
            if model.change(i) == Change::Rename && named {
                assert_eq!(
                    model.record(i, 0).table(Table::Enterprise),
                    model.record(i, 1).table(Table::Enterprise)
                );
                assert_ne!(
                    model.record(i, 0).table(Table::Denomination),
                    model.record(i, 1).table(Table::Denomination)
                );
            }
        }
    }

    #[test]
    fn row_proportions_follow_a_real_extract() {
        let model = Model {
            seed: 1,
            enterprises: 20_000,
            change_rate: 0.0,
        };
        let mut counts = [0usize; 7];
        for i in 0..model.enterprises {
            let rec = model.record(i, 0);
            for (c, lines) in counts.iter_mut().zip(&rec.lines) {
                *c += lines.len();
            }
        }
        let per = |t: Table| counts[table_index(t)] as f64 / 20_000.0;
        // docs/format.md, Oct 2025, per enterprise: establishments 0.86, names 1.71, addresses 1.47,
        // contacts 0.36, activities 18.7.
        for (t, expected) in [
            (Table::Establishment, 0.7..1.0),
            (Table::Denomination, 1.4..2.0),
            (Table::Address, 1.2..1.7),
            (Table::Contact, 0.25..0.5),
            (Table::Activity, 14.0..24.0),
        ] {
            assert!(expected.contains(&per(t)), "{t}: {} per enterprise", per(t));
        }
    }
}
