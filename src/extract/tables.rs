//! The seven data tables of an extract and the CSV files that carry them (docs/format.md).

use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the seven data tables of the register.
///
/// The order of [`Table::ALL`] is the order in which an import applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    /// `enterprise.csv`: registered entities.
    Enterprise,
    /// `establishment.csv`: establishment units.
    Establishment,
    /// `branch.csv`: branch offices of foreign entities.
    Branch,
    /// `denomination.csv`: names of entities, establishments and branches.
    Denomination,
    /// `address.csv`: addresses.
    Address,
    /// `contact.csv`: phone numbers, e-mail and web addresses.
    Contact,
    /// `activity.csv`: economic activities (NACE codes).
    Activity,
}

impl Table {
    /// Every data table, in the order an import applies them.
    pub const ALL: [Table; 7] = [
        Table::Enterprise,
        Table::Establishment,
        Table::Branch,
        Table::Denomination,
        Table::Address,
        Table::Contact,
        Table::Activity,
    ];

    /// The file name stem: `enterprise` for `enterprise.csv` and `enterprise_insert.csv`.
    pub fn stem(self) -> &'static str {
        match self {
            Table::Enterprise => "enterprise",
            Table::Establishment => "establishment",
            Table::Branch => "branch",
            Table::Denomination => "denomination",
            Table::Address => "address",
            Table::Contact => "contact",
            Table::Activity => "activity",
        }
    }

    /// The table's name in the register (the [contract](../../docs/contract.md)): `activities`.
    pub fn table_name(self) -> &'static str {
        match self {
            Table::Enterprise => "enterprises",
            Table::Establishment => "establishments",
            Table::Branch => "branches",
            Table::Denomination => "denominations",
            Table::Address => "addresses",
            Table::Contact => "contacts",
            Table::Activity => "activities",
        }
    }

    /// The columns of the table's full and insert files (indexes into [`Table::columns`]) that
    /// make up a line's key in the register, or that two lines with the same key share: the
    /// key's own columns; for denominations and contacts, whose `id` ends in a digest of the
    /// name or value, the columns before it.
    pub fn key_columns(self) -> &'static [usize] {
        match self {
            Table::Enterprise | Table::Establishment | Table::Branch => &[0],
            Table::Denomination => &[0, 1, 2],
            Table::Address => &[0, 1],
            Table::Contact => &[0, 1, 2],
            Table::Activity => &[0, 1, 2, 3, 4],
        }
    }

    /// The header of the table's full and insert files, exactly as docs/format.md gives it.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Enterprise => &[
                "EnterpriseNumber",
                "Status",
                "JuridicalSituation",
                "TypeOfEnterprise",
                "JuridicalForm",
                "JuridicalFormCAC",
                "StartDate",
            ],
            Table::Establishment => &["EstablishmentNumber", "StartDate", "EnterpriseNumber"],
            Table::Branch => &["Id", "StartDate", "EnterpriseNumber"],
            Table::Denomination => &[
                "EntityNumber",
                "Language",
                "TypeOfDenomination",
                "Denomination",
            ],
            Table::Address => &[
                "EntityNumber",
                "TypeOfAddress",
                "CountryNL",
                "CountryFR",
                "Zipcode",
                "MunicipalityNL",
                "MunicipalityFR",
                "StreetNL",
                "StreetFR",
                "HouseNumber",
                "Box",
                "ExtraAddressInfo",
                "DateStrikingOff",
            ],
            Table::Contact => &["EntityNumber", "EntityContact", "ContactType", "Value"],
            Table::Activity => &[
                "EntityNumber",
                "ActivityGroup",
                "NaceVersion",
                "NaceCode",
                "Classification",
            ],
        }
    }

    /// The single column of the table's `_delete.csv` file.
    pub fn delete_column(self) -> &'static str {
        match self {
            Table::Enterprise => "EnterpriseNumber",
            Table::Establishment => "EstablishmentNumber",
            Table::Branch => "Id",
            Table::Denomination | Table::Address | Table::Contact | Table::Activity => {
                "EntityNumber"
            }
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.stem())
    }
}

/// A CSV member of an extract: which file it is and what header it must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Member {
    /// `meta.csv`.
    Meta,
    /// `code.csv` (the complete code list, in Full and Update extracts alike).
    Code,
    /// `<table>.csv` of a Full extract.
    Full(Table),
    /// `<table>_delete.csv` of an Update extract.
    Delete(Table),
    /// `<table>_insert.csv` of an Update extract.
    Insert(Table),
}

/// Header of `meta.csv`.
pub const META_COLUMNS: &[&str] = &["Variable", "Value"];
/// Header of `code.csv`.
pub const CODE_COLUMNS: &[&str] = &["Category", "Code", "Language", "Description"];

impl Member {
    /// Recognises a member by its file name (`enterprise_insert.csv`); `None` for other files.
    pub fn from_file_name(name: &str) -> Option<Member> {
        let stem = name.strip_suffix(".csv")?;
        match stem {
            "meta" => return Some(Member::Meta),
            "code" => return Some(Member::Code),
            _ => {}
        }
        Table::ALL.into_iter().find_map(|t| {
            if stem == t.stem() {
                Some(Member::Full(t))
            } else if stem.strip_suffix("_delete") == Some(t.stem()) {
                Some(Member::Delete(t))
            } else if stem.strip_suffix("_insert") == Some(t.stem()) {
                Some(Member::Insert(t))
            } else {
                None
            }
        })
    }

    /// The member's file name inside the ZIP.
    pub fn file_name(self) -> String {
        match self {
            Member::Meta => "meta.csv".to_string(),
            Member::Code => "code.csv".to_string(),
            Member::Full(t) => format!("{}.csv", t.stem()),
            Member::Delete(t) => format!("{}_delete.csv", t.stem()),
            Member::Insert(t) => format!("{}_insert.csv", t.stem()),
        }
    }

    /// The header the member must start with.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Member::Meta => META_COLUMNS,
            Member::Code => CODE_COLUMNS,
            Member::Full(t) | Member::Insert(t) => t.columns(),
            Member::Delete(t) => match t {
                Table::Enterprise => &["EnterpriseNumber"],
                Table::Establishment => &["EstablishmentNumber"],
                Table::Branch => &["Id"],
                _ => &["EntityNumber"],
            },
        }
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_round_trip() {
        let mut all = vec![Member::Meta, Member::Code];
        for t in Table::ALL {
            all.extend([Member::Full(t), Member::Delete(t), Member::Insert(t)]);
        }
        for m in all {
            assert_eq!(Member::from_file_name(&m.file_name()), Some(m), "{m}");
        }
        assert_eq!(Member::from_file_name("enterprise.txt"), None);
        assert_eq!(Member::from_file_name("enterprises.csv"), None);
        assert_eq!(Member::from_file_name("foo_insert.csv"), None);
    }

    #[test]
    fn delete_headers_name_the_delete_column() {
        for t in Table::ALL {
            assert_eq!(Member::Delete(t).columns(), &[t.delete_column()]);
        }
    }
}
