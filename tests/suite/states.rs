//! Each entity's state as a Full says it is, read from its files with this crate's own CSV
//! reader: what a feed page's `current` must hold for an entity after the extract that Full
//! describes (docs/feed.md).

use crate::changes::fields;
use crate::fixtures::member_text;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// The lines of a Full's file `member` as maps from column name to value (NULL: `None`),
/// the last line of a key (`key`'s columns) winning.
fn lines(zip: &Path, member: &str, key: &[&str]) -> Vec<BTreeMap<String, Option<String>>> {
    let text = member_text(zip, member);
    let mut lines = text.lines().map(|l| l.trim_start_matches('\u{feff}'));
    let header: Vec<String> = fields(lines.next().unwrap())
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let mut by_key = BTreeMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let row: BTreeMap<String, Option<String>> =
            header.iter().cloned().zip(fields(line)).collect();
        let k: Vec<Option<String>> = key.iter().map(|c| row[*c].clone()).collect();
        by_key.insert(k, row);
    }
    by_key.into_values().collect()
}

/// `dd-mm-yyyy` as `yyyy-mm-dd`.
fn iso(date: &Option<String>) -> Value {
    match date.as_deref().map(|d| d.split('-').collect::<Vec<_>>()) {
        Some(p) if p.len() == 3 => json!(format!("{}-{}-{}", p[2], p[1], p[0])),
        _ => Value::Null,
    }
}

/// Every entity's `current` as Full `zip` has it (SCHEMA.md's naming rule: the first language
/// present of Dutch, French, unknown, German, English, the greatest name of that language; an
/// enterprise without a legal name is named by its number; the first address by type,
/// registered office first).
pub fn states_in_full(zip: &Path) -> BTreeMap<String, Value> {
    let mut names: BTreeMap<(String, String), BTreeMap<usize, String>> = BTreeMap::new();
    let keys = [
        "EntityNumber",
        "TypeOfDenomination",
        "Language",
        "Denomination",
    ];
    for row in lines(zip, "denomination.csv", &keys) {
        let rank = ["2", "1", "0", "3", "4"]
            .iter()
            .position(|l| row["Language"].as_deref() == Some(l))
            .unwrap_or(9);
        let (Some(n), Some(t), Some(d)) = (
            row["EntityNumber"].clone(),
            row["TypeOfDenomination"].clone(),
            row["Denomination"].clone(),
        ) else {
            continue;
        };
        let best = names.entry((n, t)).or_default().entry(rank).or_default();
        if d > *best {
            *best = d;
        }
    }
    let name = |n: &str, t: &str| -> Value {
        names
            .get(&(n.to_string(), t.to_string()))
            .and_then(|by| by.values().next().cloned())
            .map_or(Value::Null, Value::from)
    };
    let mut addresses: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for row in lines(zip, "address.csv", &["EntityNumber", "TypeOfAddress"]) {
        let either = |nl: &str, fr: &str| row[nl].clone().or_else(|| row[fr].clone());
        let t = row["TypeOfAddress"].clone().unwrap_or_default();
        let rank = match t.as_str() {
            "REGO" => "1",
            "BAET" => "2",
            "ABBR" => "3",
            _ => "4",
        };
        let address = json!({
            "typeOfAddress": t, "street": either("StreetNL", "StreetFR"),
            "houseNumber": row["HouseNumber"], "box": row["Box"], "zipcode": row["Zipcode"],
            "municipality": either("MunicipalityNL", "MunicipalityFR"),
            "country": either("CountryNL", "CountryFR"),
        });
        let n = row["EntityNumber"].clone().unwrap_or_default();
        addresses
            .entry(n)
            .or_default()
            .push((format!("{rank}{t}"), address));
    }
    let mut nace: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let keys = [
        "EntityNumber",
        "ActivityGroup",
        "NaceVersion",
        "NaceCode",
        "Classification",
    ];
    for row in lines(zip, "activity.csv", &keys) {
        if row["Classification"].as_deref() == Some("MAIN") {
            let code = (
                row["NaceVersion"].clone().unwrap_or_default(),
                row["NaceCode"].clone().unwrap_or_default(),
            );
            let codes = nace
                .entry(row["EntityNumber"].clone().unwrap_or_default())
                .or_default();
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
    }
    let mut out = BTreeMap::new();
    let mut state = |n: String, name: Value, own: [Value; 4]| {
        let address = addresses
            .get(&n)
            .and_then(|a| a.iter().min_by(|x, y| x.0.cmp(&y.0)).map(|x| x.1.clone()))
            .unwrap_or(Value::Null);
        let mut codes = nace.get(&n).cloned().unwrap_or_default();
        codes.sort();
        let codes: Vec<Value> = codes
            .into_iter()
            .map(|(version, code)| json!({"version": version, "code": code}))
            .collect();
        let [status, situation, form, start] = own;
        out.insert(
            n,
            json!({"name": name, "status": status, "juridicalSituation": situation,
                   "juridicalForm": form, "startDate": start, "address": address,
                   "mainNaceCodes": codes}),
        );
    };
    for row in lines(zip, "enterprise.csv", &["EnterpriseNumber"]) {
        let n = row["EnterpriseNumber"].clone().unwrap_or_default();
        let named = match name(&n, "001") {
            Value::Null => json!(n),
            v => v,
        };
        let own = [
            json!(row["Status"]),
            json!(row["JuridicalSituation"]),
            json!(row["JuridicalForm"]),
            iso(&row["StartDate"]),
        ];
        state(n, named, own);
    }
    for (member, key, kind) in [
        ("establishment.csv", "EstablishmentNumber", "003"),
        ("branch.csv", "Id", ""),
    ] {
        for row in lines(zip, member, &[key]) {
            let n = row[key].clone().unwrap_or_default();
            let named = name(&n, kind);
            let own = [
                Value::Null,
                Value::Null,
                Value::Null,
                iso(&row["StartDate"]),
            ];
            state(n, named, own);
        }
    }
    out
}
