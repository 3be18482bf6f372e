//! Match tables at run time: exact (one hash map), LPM (a hash map per
//! prefix length, longest first) and ternary (entries by priority, first
//! match wins). A key is the table's key fields concatenated, first field
//! in the high bits, in a u128 (the IR allows at most 128 key bits).

use super::ir::{KeyDef, MatchKind, TableDef};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A fast hasher for u128 keys (folded multiply; keys are not
/// adversarial across trust boundaries here: the control plane installs
/// them, and a lookup costs one probe sequence either way).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        let m = u128::from(self.0 ^ v) * 0x9e37_79b9_7f4a_7c15_u128;
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
    fn write_u128(&mut self, v: u128) {
        // One folded multiply over both halves (the high half rotated, so
        // keys that differ only there spread too): a lookup's hash is on
        // the data path.
        self.write_u64((v as u64) ^ ((v >> 64) as u64).rotate_left(29) ^ 0x2545_f491_4f6c_dd1d);
    }
}

type Map = HashMap<u128, u32, BuildHasherDefault<KeyHasher>>;

/// One installed entry's outcome: the action and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The action's index in the program.
    pub action: u16,
    /// The action's arguments, one per parameter.
    pub args: Box<[u64]>,
}

/// An entry as the control plane gives it: the concatenated key, its mask
/// (for LPM: the prefix as leading ones of the LPM field, exact fields all
/// ones), and a priority (ternary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key fields concatenated, first field in the high bits.
    pub key: u128,
    /// Which key bits must match.
    pub mask: u128,
    /// Ternary: larger wins (exact and LPM tables ignore it and report 0).
    pub priority: u32,
    /// What a match does.
    pub hit: Hit,
}

#[derive(Debug, Clone)]
enum Store {
    Exact(Map),
    /// (mask, entries) longest prefix first.
    Lpm(Vec<(u128, Map)>),
    /// Entries by descending priority (insertion order among equals).
    Ternary(Vec<Entry>),
}

/// Why an entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// The table holds its `size` entries.
    Full,
    /// An entry with the same key and mask (ternary: and priority) is
    /// installed.
    Exists,
    /// No entry with that key and mask (ternary: and priority).
    NotFound,
    /// The mask does not fit the match kinds (exact bits not all ones, LPM
    /// not a prefix).
    BadMask,
}

/// A table's entries.
#[derive(Debug, Clone)]
pub struct Table {
    store: Store,
    /// Entry storage: keys map to indices here.
    hits: Vec<Hit>,
    free: Vec<u32>,
    len: u32,
    size: u32,
    /// Which key bits must be exact (all ones where a field is exact).
    exact_mask: u128,
    /// The LPM field's bits.
    lpm_field: u128,
    key_bits: u32,
}

/// The concatenated mask of `keys` selecting the fields of `kind`.
fn mask_of(keys: &[KeyDef], pick: impl Fn(MatchKind) -> bool) -> u128 {
    let mut m = 0u128;
    for k in keys {
        let w = u32::from(k.width);
        m = m.checked_shl(w).unwrap_or(0);
        if pick(k.kind) {
            m |= ones(w);
        }
    }
    m
}

/// `w` low bits set.
pub fn ones(w: u32) -> u128 {
    if w >= 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    }
}

impl Table {
    /// An empty table shaped by `def`: its key fields' match kinds and its
    /// `size`.
    pub fn new(def: &TableDef) -> Table {
        let kinds: Vec<MatchKind> = def.keys.iter().map(|k| k.kind).collect();
        let store = if kinds.contains(&MatchKind::Ternary) {
            Store::Ternary(Vec::new())
        } else if kinds.contains(&MatchKind::Lpm) {
            Store::Lpm(Vec::new())
        } else {
            Store::Exact(Map::default())
        };
        Table {
            store,
            hits: Vec::new(),
            free: Vec::new(),
            len: 0,
            size: def.size,
            exact_mask: mask_of(&def.keys, |k| k == MatchKind::Exact),
            lpm_field: mask_of(&def.keys, |k| k == MatchKind::Lpm),
            key_bits: def.keys.iter().map(|k| u32::from(k.width)).sum(),
        }
    }

    /// Entries installed.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether no entry is installed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Look `key` up.
    #[inline]
    pub fn lookup(&self, key: u128) -> Option<&Hit> {
        if self.len == 0 {
            // Most tables start empty (fairnic.p4's acl and route): no hash.
            return None;
        }
        match &self.store {
            Store::Exact(m) => m.get(&key).map(|&i| &self.hits[i as usize]),
            Store::Lpm(groups) => {
                for (mask, m) in groups {
                    if let Some(&i) = m.get(&(key & mask)) {
                        return Some(&self.hits[i as usize]);
                    }
                }
                None
            }
            Store::Ternary(es) => es.iter().find(|e| key & e.mask == e.key).map(|e| &e.hit),
        }
    }

    fn check_mask(&self, mask: u128) -> Result<(), TableError> {
        let all = ones(self.key_bits);
        if mask & !all != 0 || mask & self.exact_mask != self.exact_mask {
            return Err(TableError::BadMask);
        }
        if matches!(self.store, Store::Lpm(_)) {
            // The LPM field's part of the mask: leading ones, then zeros.
            let low = self.lpm_field.trailing_zeros();
            let width = self.lpm_field.count_ones();
            let field = (mask & self.lpm_field) >> low;
            let n = field.count_ones();
            if field != ones(width) ^ ones(width - n) {
                return Err(TableError::BadMask);
            }
            if mask & !(self.exact_mask | self.lpm_field) != 0 {
                return Err(TableError::BadMask);
            }
        }
        Ok(())
    }

    fn alloc(&mut self, hit: Hit) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.hits[i as usize] = hit;
                i
            }
            None => {
                self.hits.push(hit);
                (self.hits.len() - 1) as u32
            }
        }
    }

    /// Install an entry (replacing none: an entry with the same key and
    /// mask is `Exists`).
    pub fn insert(&mut self, e: Entry) -> Result<(), TableError> {
        self.check_mask(e.mask)?;
        if self.len >= self.size {
            return Err(TableError::Full);
        }
        let key = e.key & e.mask;
        match &mut self.store {
            Store::Exact(m) => {
                if m.contains_key(&key) {
                    return Err(TableError::Exists);
                }
            }
            Store::Lpm(groups) => {
                if groups.iter().any(|(mk, m)| *mk == e.mask && m.contains_key(&key)) {
                    return Err(TableError::Exists);
                }
            }
            Store::Ternary(es) => {
                if es
                    .iter()
                    .any(|x| x.key == key && x.mask == e.mask && x.priority == e.priority)
                {
                    return Err(TableError::Exists);
                }
            }
        }
        // Ternary entries keep their hit in the entry; only the hashed
        // stores take a slot of `hits` (a ternary add and delete once took
        // one and never gave it back: memory the state budget did not see).
        let ternary = matches!(self.store, Store::Ternary(_));
        let i = if ternary { 0 } else { self.alloc(e.hit.clone()) };
        match &mut self.store {
            Store::Exact(m) => {
                m.insert(key, i);
            }
            Store::Lpm(groups) => {
                let pos = groups.iter().position(|(mk, _)| *mk == e.mask);
                let g = match pos {
                    Some(p) => p,
                    None => {
                        // Longest prefix (most mask bits) first.
                        let at = groups
                            .iter()
                            .position(|(mk, _)| mk.count_ones() < e.mask.count_ones())
                            .unwrap_or(groups.len());
                        groups.insert(at, (e.mask, Map::default()));
                        at
                    }
                };
                groups[g].1.insert(key, i);
            }
            Store::Ternary(es) => {
                let at = es.iter().position(|x| x.priority < e.priority).unwrap_or(es.len());
                es.insert(
                    at,
                    Entry {
                        key,
                        mask: e.mask,
                        priority: e.priority,
                        hit: e.hit,
                    },
                );
            }
        }
        self.len += 1;
        Ok(())
    }

    /// Remove the entry with this key and mask (and priority, ternary);
    /// returns what it did.
    pub fn remove(&mut self, key: u128, mask: u128, priority: u32) -> Result<Hit, TableError> {
        let key = key & mask;
        let idx = match &mut self.store {
            Store::Exact(m) => m.remove(&key),
            Store::Lpm(groups) => {
                let mut found = None;
                groups.retain_mut(|(mk, m)| {
                    if *mk == mask {
                        found = m.remove(&key);
                    }
                    !m.is_empty()
                });
                found
            }
            Store::Ternary(es) => {
                let pos = es
                    .iter()
                    .position(|x| x.key == key && x.mask == mask && x.priority == priority);
                match pos {
                    Some(p) => {
                        let e = es.remove(p);
                        self.len -= 1;
                        return Ok(e.hit);
                    }
                    None => None,
                }
            }
        };
        let i = idx.ok_or(TableError::NotFound)?;
        self.free.push(i);
        self.len -= 1;
        Ok(self.hits[i as usize].clone())
    }

    /// Every entry (for the control plane's `show`): key, mask, priority,
    /// outcome.
    pub fn entries(&self) -> Vec<Entry> {
        let mut out = Vec::with_capacity(self.len as usize);
        let full = ones(self.key_bits);
        match &self.store {
            Store::Exact(m) => {
                for (&k, &i) in m {
                    out.push(Entry {
                        key: k,
                        mask: full,
                        priority: 0,
                        hit: self.hits[i as usize].clone(),
                    });
                }
            }
            Store::Lpm(groups) => {
                for (mask, m) in groups {
                    for (&k, &i) in m {
                        out.push(Entry {
                            key: k,
                            mask: *mask,
                            priority: 0,
                            hit: self.hits[i as usize].clone(),
                        });
                    }
                }
            }
            Store::Ternary(es) => out.extend(es.iter().cloned()),
        }
        out.sort_by(|a, b| (b.priority, a.key, a.mask).cmp(&(a.priority, b.key, b.mask)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::ir::{FieldRef, KeyExpr};

    fn def(kinds: &[(MatchKind, u16)]) -> TableDef {
        TableDef {
            name: "t".into(),
            keys: kinds
                .iter()
                .map(|&(kind, width)| KeyDef {
                    expr: KeyExpr::Field(FieldRef::Meta(0)),
                    kind,
                    width,
                    name: "k".into(),
                })
                .collect(),
            actions: vec![0],
            default_action: 0,
            default_args: vec![],
            size: 4,
            cost: 0,
            entries: vec![],
        }
    }

    fn hit(a: u16) -> Hit {
        Hit {
            action: a,
            args: Box::new([]),
        }
    }

    /// Adding and deleting ternary entries forever takes no memory.
    #[test]
    fn ternary_add_and_delete_leave_nothing_behind() {
        let mut t = Table::new(&def(&[(MatchKind::Ternary, 16)]));
        for round in 0..1000u128 {
            let e = Entry {
                key: round & 0xff,
                mask: 0xff,
                priority: 1,
                hit: hit(1),
            };
            t.insert(e).unwrap();
            t.remove(round & 0xff, 0xff, 1).unwrap();
        }
        assert_eq!((t.hits.len(), t.len), (0, 0));
    }

    #[test]
    fn exact_lookup_insert_remove_and_capacity() {
        let mut t = Table::new(&def(&[(MatchKind::Exact, 48)]));
        let full = ones(48);
        for k in 0..4u128 {
            t.insert(Entry {
                key: k,
                mask: full,
                priority: 0,
                hit: hit(k as u16),
            })
            .unwrap();
        }
        assert_eq!(
            t.insert(Entry {
                key: 9,
                mask: full,
                priority: 0,
                hit: hit(9)
            }),
            Err(TableError::Full)
        );
        assert_eq!(t.lookup(2).unwrap().action, 2);
        assert!(t.lookup(7).is_none());
        t.remove(2, full, 0).unwrap();
        assert!(t.lookup(2).is_none());
        assert_eq!(t.remove(2, full, 0), Err(TableError::NotFound));
        assert_eq!(
            t.insert(Entry {
                key: 1,
                mask: full,
                priority: 0,
                hit: hit(5)
            }),
            Err(TableError::Exists)
        );
        assert_eq!(
            t.insert(Entry {
                key: 1,
                mask: 0xff,
                priority: 0,
                hit: hit(5)
            }),
            Err(TableError::BadMask),
            "exact fields match every bit"
        );
    }

    #[test]
    fn lpm_prefers_the_longest_prefix() {
        let mut t = Table::new(&def(&[(MatchKind::Lpm, 32)]));
        let p = |n: u32| ones(32) ^ ones(32 - n);
        t.insert(Entry {
            key: 0x0a00_0000,
            mask: p(8),
            priority: 0,
            hit: hit(8),
        })
        .unwrap();
        t.insert(Entry {
            key: 0x0a01_0000,
            mask: p(16),
            priority: 0,
            hit: hit(16),
        })
        .unwrap();
        t.insert(Entry {
            key: 0,
            mask: 0,
            priority: 0,
            hit: hit(0),
        })
        .unwrap();
        assert_eq!(t.lookup(0x0a01_0203).unwrap().action, 16);
        assert_eq!(t.lookup(0x0a02_0203).unwrap().action, 8);
        assert_eq!(t.lookup(0x0b00_0000).unwrap().action, 0);
        assert_eq!(
            t.insert(Entry {
                key: 0,
                mask: 0x00ff_0000,
                priority: 0,
                hit: hit(1)
            }),
            Err(TableError::BadMask),
            "not a prefix"
        );
        t.remove(0x0a01_0000, p(16), 0).unwrap();
        assert_eq!(t.lookup(0x0a01_0203).unwrap().action, 8);
    }

    #[test]
    fn ternary_takes_the_highest_priority_match() {
        let mut t = Table::new(&def(&[(MatchKind::Ternary, 16), (MatchKind::Exact, 8)]));
        t.insert(Entry {
            key: 0x08_00_06,
            mask: 0xff_ff_ff,
            priority: 10,
            hit: hit(1),
        })
        .unwrap();
        t.insert(Entry {
            key: 0x00_00_06,
            mask: 0x00_00_ff,
            priority: 5,
            hit: hit(2),
        })
        .unwrap();
        assert_eq!(t.lookup(0x08_00_06).unwrap().action, 1);
        assert_eq!(t.lookup(0x86_dd_06).unwrap().action, 2);
        assert!(t.lookup(0x08_00_11).is_none());
        assert_eq!(
            t.insert(Entry {
                key: 0,
                mask: 0xff_ff_00,
                priority: 1,
                hit: hit(3)
            }),
            Err(TableError::BadMask),
            "the exact byte must be fully masked"
        );
        assert_eq!(t.entries().len(), 2);
    }
}
