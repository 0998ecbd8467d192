//! The parts of an entity's state the feed keeps, and the SQL that makes them: each part's
//! aggregate over a source of rows, the owners, and the row of `feed_states` merged from
//! the parts made and the parts kept. Table and column names come from the fixed lists here.

/// A part of an entity's state: the tables it is made from (each with the column naming the
/// entity), its row count's column in `feed_states` and its value columns.
pub(super) struct Part {
    /// `own`, `names`, `address`, `nace`.
    pub name: &'static str,
    /// Its tables, each with the column naming the entity.
    pub tables: &'static [(&'static str, &'static str)],
    /// Its row count's column in `feed_states`.
    pub rows: &'static str,
    /// Its value columns in `feed_states`.
    pub values: &'static [&'static str],
}

pub(super) const OWN_TABLES: &[(&str, &str)] = &[
    ("enterprises", "enterprise_number"),
    ("establishments", "establishment_number"),
    ("branches", "id"),
];

/// The parts made from an entity's current rows (its owner is made apart, from every row).
pub(super) const PARTS: [Part; 4] = [
    Part {
        name: "own",
        tables: OWN_TABLES,
        rows: "own_rows",
        values: &["own"],
    },
    Part {
        name: "names",
        tables: &[("denominations", "entity_number")],
        rows: "name_rows",
        values: &["legal_name", "commercial_name"],
    },
    Part {
        name: "address",
        tables: &[("addresses", "entity_number")],
        rows: "address_rows",
        values: &["address"],
    },
    Part {
        name: "nace",
        tables: &[("activities", "entity_number")],
        rows: "activity_rows",
        values: &["nace"],
    },
];

/// A name among the denominations of type `kind`, in SCHEMA.md's language order (Dutch,
/// French, unknown, German, English).
pub(super) fn name_of(kind: &str) -> String {
    let by_language: Vec<String> = ["2", "1", "0", "3", "4"]
        .iter()
        .map(|l| {
            format!(
                "max(denomination) FILTER (WHERE language = '{l}' AND denomination_type = '{kind}')"
            )
        })
        .collect();
    format!("coalesce({})", by_language.join(", "))
}

/// The value columns of `part` as an aggregate over rows of `table`.
pub(super) fn values(part: &Part, table: &str) -> String {
    match (part.name, table) {
        ("own", "enterprises") => "min([status, juridical_situation, juridical_form, \
             strftime(start_date, '%Y-%m-%d')]) AS own"
            .into(),
        ("own", _) => "min([NULL::VARCHAR, NULL, NULL, strftime(start_date, '%Y-%m-%d')]) AS own".into(),
        ("names", _) => format!(
            "{} AS legal_name, {} AS commercial_name",
            name_of("001"),
            name_of("003")
        ),
        // The first address by type (registered office first), the least of equals.
        ("address", _) => "min([CASE type_of_address WHEN 'REGO' THEN '1' WHEN 'BAET' THEN '2' \
             WHEN 'ABBR' THEN '3' ELSE '4' END, type_of_address, coalesce(street_nl, street_fr), \
             house_number, box, zipcode, coalesce(municipality_nl, municipality_fr), \
             coalesce(country_nl, country_fr)])[2:] AS address"
            .into(),
        _ => "CASE WHEN count(*) FILTER (WHERE classification = 'MAIN') > 0 THEN \
             list_sort(list(DISTINCT [nace_version, nace_code]) FILTER (WHERE classification = 'MAIN')) \
             END AS nace"
            .into(),
    }
}

/// `part` aggregated per entity (`n`, `part_rows`, its values) over the rows `source` gives
/// (a `FROM` clause with `{table}` and `{key}` to fill) in each of its tables.
pub(super) fn aggregate(part: &Part, source: &str) -> String {
    let each: Vec<String> = part
        .tables
        .iter()
        .map(|(table, key)| {
            let from = source.replace("{table}", table).replace("{key}", key);
            format!(
                "SELECT {key} AS n, count(*) AS part_rows, {} FROM {from} GROUP BY 1",
                values(part, table)
            )
        })
        .collect();
    match each.len() {
        1 => each.into_iter().next().unwrap_or_default(),
        // A number in two own tables (it should not be) is one entity all the same.
        _ => format!(
            "SELECT n, sum(part_rows) AS part_rows, min(own) AS own FROM ({}) GROUP BY n",
            each.join(" UNION ALL ")
        ),
    }
}

/// The owners (`n`, `owner`: an establishment's or a branch's enterprise as the register last
/// had it, deleted or not) over the rows `source` gives.
pub(super) fn owners(source: &str) -> String {
    let each: Vec<String> = OWN_TABLES[1..]
        .iter()
        .map(|(table, key)| {
            let from = source.replace("{table}", table).replace("{key}", key);
            format!(
                "SELECT {key} AS n, arg_max(enterprise_number, _extract_number) AS owner \
                 FROM {from} GROUP BY 1"
            )
        })
        .collect();
    format!(
        "SELECT n, min(owner) AS owner FROM ({}) GROUP BY n",
        each.join(" UNION ALL ")
    )
}

/// The columns of `feed_states`, in order.
pub(super) fn columns() -> Vec<&'static str> {
    let mut out = vec!["entity_number", "owner"];
    for p in &PARTS {
        out.push(p.rows);
        out.extend(p.values);
    }
    out
}

/// The `SELECT` list that makes a row of `feed_states` (its columns, named) for each of
/// `ids` (`n`): each part from `p_<part>` (`n`, `part_rows`, values) where it has a row for
/// the entity, else (with `old`: a step) from the kept row `old`; the owner likewise from
/// `p_owner`.
pub(super) fn merged_columns(old: bool) -> String {
    let pick = |new: &str, value: String, column: &str| match old {
        true if column.ends_with("_rows") => {
            format!("CASE WHEN {new}.n IS NOT NULL THEN {value} ELSE coalesce(old.{column}, 0) END")
        }
        true => format!("CASE WHEN {new}.n IS NOT NULL THEN {value} ELSE old.{column} END"),
        false => value,
    };
    let mut out = vec![
        "ids.n".to_string(),
        pick("p_owner", "p_owner.owner".into(), "owner"),
    ];
    for p in &PARTS {
        let new = format!("p_{}", p.name);
        out.push(pick(&new, format!("{new}.part_rows"), p.rows));
        for v in p.values {
            out.push(pick(&new, format!("{new}.{v}"), v));
        }
    }
    out.iter()
        .zip(columns())
        .map(|(value, column)| match (old, column.ends_with("_rows")) {
            // An entity with no part in a build counts no rows there.
            (false, true) => format!("coalesce({value}, 0) AS {column}"),
            _ => format!("{value} AS {column}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The joins of `p_<part>` and `p_owner` to `ids`.
pub(super) fn part_joins() -> String {
    PARTS
        .iter()
        .map(|p| p.name)
        .chain(["owner"])
        .map(|name| format!(" LEFT JOIN feed_part_{name} p_{name} ON p_{name}.n = ids.n"))
        .collect()
}
