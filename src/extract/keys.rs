//! Keys seen while cutting a Full's data member: whether a line's key came before within the
//! chunk in hand.
//!
//! A line's fingerprint is built from the values of its table's [key
//! columns](super::Table::key_columns) as DuckDB reads them (quotes removed, `""` as `"`),
//! without spaces, tabs and carriage returns outside quotes. Lines with equal keys in the
//! register have equal fingerprints, so lines whose fingerprints differ have different keys.
//! The converse need not hold: an equal fingerprint only sends a line to the chunk's tail,
//! which is applied after the chunk in the file's order.
//!
//! Remembering every key of a chunk (a million) costs a cache miss per line; remembering the
//! keys of one entity's run costs nothing (see [`Keys`]).

use super::dialect::{Byte, Field};
use super::tables::Table;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// The keys of the chunk in hand. Every table's key starts with its first column, the entity's
/// number, and extracts list an entity's lines together: a key that comes again comes again
/// within its entity's run of lines. So the keys of the run in hand are all that must be
/// remembered, plus the entities of the runs before; an entity whose lines come back after
/// others' within the chunk makes the chunk keep the file's order.
pub(super) struct Keys {
    /// Bit `i` set: column `i` is part of the key.
    columns: u64,
    /// The last key column.
    last: u32,
    /// The entity of the run in hand, and the keys of its lines.
    entity: Option<u64>,
    run: Vec<u64>,
    /// The entities of the chunk's runs before.
    entities: HashSet<u64, BuildHasherDefault<Prehashed>>,
    /// The keys sent to the chunk's tail: every later line of such a key goes there too, so
    /// that its last line stays last where its entity's lines come back after others' (the
    /// tail is applied after the main file).
    tailed: HashSet<u64, BuildHasherDefault<Prehashed>>,
    /// An entity's lines came back after other entities' within the chunk.
    scattered: bool,
}

impl Keys {
    /// The keys of `table`'s lines.
    pub(super) fn new(table: Table) -> Keys {
        let columns = table.key_columns();
        Keys {
            columns: columns.iter().map(|c| 1u64 << c).sum(),
            last: columns.iter().copied().max().unwrap_or(0) as u32,
            entity: None,
            run: Vec::new(),
            entities: HashSet::default(),
            tailed: HashSet::default(),
            scattered: false,
        }
    }

    /// Whether the key of `line` (without its line end) is new in the chunk; it is seen from
    /// now on.
    pub(super) fn first_in_chunk(&mut self, line: &[u8]) -> bool {
        let (entity, key) = fingerprints(line, self.columns, self.last);
        if self.entity != Some(entity) {
            if let Some(before) = self.entity.replace(entity) {
                self.entities.insert(before);
            }
            self.scattered |= self.entities.contains(&entity);
            self.run.clear();
        }
        if self.run.contains(&key) || self.tailed.contains(&key) {
            self.tailed.insert(key);
            return false;
        }
        self.run.push(key);
        true
    }

    /// Whether the chunk's keys are all known: no entity's lines came back after others'.
    /// When they did, the chunk's lines must reach the table in the file's order.
    pub(super) fn all_known(&self) -> bool {
        !self.scattered
    }

    /// A new chunk begins: keys of earlier chunks no longer count.
    pub(super) fn next_chunk(&mut self) {
        self.entity = None;
        self.run.clear();
        self.entities.clear();
        self.tailed.clear();
        self.scattered = false;
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;
/// Mixed in after each key value, so that `"ab","c"` and `"a","bc"` differ.
const VALUE_END: u64 = 0x100;

/// The fingerprints (FNV-1a, then mixed) of the first column of `line` (the entity) and of
/// its key columns (the first column among them).
fn fingerprints(line: &[u8], columns: u64, last: u32) -> (u64, u64) {
    let in_key = |column: u32| column < 64 && columns & (1 << column) != 0;
    let mix = |h: u64, value: u64| (h ^ value).wrapping_mul(FNV_PRIME);
    let (mut h, mut column, mut state) = (FNV_OFFSET, 0u32, Field::Start);
    let mut entity = None;
    let mut i = 0;
    while i < line.len() {
        if state == Field::Quoted {
            // Inside a quoted value every byte up to the next quote is the value's.
            let end = memchr::memchr(b'"', &line[i..]).map_or(line.len(), |at| i + at);
            if in_key(column) {
                h = line[i..end].iter().fold(h, |h, &b| mix(h, u64::from(b)));
            }
            i = end;
            if i == line.len() {
                break;
            }
        }
        let b = line[i];
        i += 1;
        let (next, byte) = state.read(b);
        match byte {
            Byte::FieldEnd => {
                if in_key(column) {
                    h = mix(h, VALUE_END);
                }
                if column == 0 {
                    entity = Some(h);
                }
                column += 1;
                if column > last {
                    break;
                }
            }
            // Spaces and tabs outside quotes are left out, as carriage returns are: keys that
            // differ in them only fingerprint alike, which can only keep a line in order.
            Byte::Value | Byte::Loose if state != Field::Quoted && matches!(b, b' ' | b'\t') => {}
            Byte::Value | Byte::Loose if in_key(column) => h = mix(h, u64::from(b)),
            Byte::Value | Byte::Loose | Byte::Quote | Byte::CarriageReturn => {}
        }
        state = next;
    }
    if column <= last && in_key(column) {
        h = mix(h, VALUE_END);
    }
    let entity = entity.unwrap_or(h);
    (spread(entity), spread(h))
}

/// Spreads FNV's bits: the set takes the fingerprint as its hash.
fn spread(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// A hasher for values that are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(table: Table, line: &str) -> u64 {
        let columns = table.key_columns();
        fingerprints(
            line.as_bytes(),
            columns.iter().map(|c| 1u64 << c).sum(),
            columns.iter().copied().max().unwrap() as u32,
        )
        .1
    }

    #[test]
    fn a_key_written_another_way_is_the_same_key() {
        let a = key(
            Table::Activity,
            r#""0200.000.043","003","2008","73402","MAIN""#,
        );
        assert_eq!(
            a,
            key(Table::Activity, "0200.000.043, 003,2008,\"73402\",MAIN\r")
        );
        assert_ne!(
            a,
            key(
                Table::Activity,
                r#""0200.000.043","003","2025","73402","MAIN""#
            )
        );
        // Values that only join alike are other keys.
        assert_ne!(
            a,
            key(
                Table::Activity,
                r#""0200.000.043","00","32008","73402","MAIN""#
            )
        );
    }

    #[test]
    fn only_the_key_columns_count() {
        let address = |street: &str| {
            key(
                Table::Address,
                &format!(
                    r#""0200.000.043","REGO",,,"1000","Brussel","Bruxelles","{street}","x","1",,,"#
                ),
            )
        };
        assert_eq!(address("Kerkstraat"), address("Stationsstraat"));
        // A quoted comma or quote stays inside its value.
        assert_ne!(
            key(Table::Denomination, r#""0200.000.043","2","001","A, B""#),
            key(Table::Denomination, r#""0200.000.043","2","002","A, B""#)
        );
        assert_eq!(
            key(
                Table::Denomination,
                r#""0200.000.043","2","001","A, ""B""""#
            ),
            key(Table::Denomination, r#""0200.000.043","2","001","C""#)
        );
    }
}

#[cfg(test)]
mod runs {
    use super::*;

    const A: &str = r#""0200.000.043","003","2008","73402","MAIN""#;
    const B: &str = r#""0200.000.043","003","2025","73402","MAIN""#;
    const C: &str = r#""0200.000.097","001","2008","1","SECO""#;

    #[test]
    fn a_key_again_within_its_entitys_run_is_seen() {
        let mut keys = Keys::new(Table::Activity);
        let seen: Vec<bool> = [A, B, A, C]
            .iter()
            .map(|l| keys.first_in_chunk(l.as_bytes()))
            .collect();
        assert_eq!(seen, [true, true, false, true]);
        assert!(keys.all_known());
    }

    #[test]
    fn an_entity_whose_lines_come_back_later_makes_the_chunk_keep_its_order() {
        let mut keys = Keys::new(Table::Activity);
        for line in [A, C, B] {
            keys.first_in_chunk(line.as_bytes());
        }
        assert!(
            !keys.all_known(),
            "0200.000.043 came back after 0200.000.097"
        );
        keys.next_chunk();
        keys.first_in_chunk(B.as_bytes());
        assert!(keys.all_known(), "a new chunk starts afresh");
    }
}
