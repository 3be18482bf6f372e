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

/// One slot of an exact table's index, as the compiled code reads it:
/// the key's halves and the entry's index in `hits` ([`EMPTY`]: free).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub lo: u64,
    pub hi: u64,
    pub idx: u32,
    pad: u32,
}

/// A free slot's `idx`.
pub(crate) const EMPTY: u32 = u32::MAX;
const FREE: Slot = Slot {
    lo: 0,
    hi: 0,
    idx: EMPTY,
    pad: 0,
};
/// The hash's constants (the compiled code computes the same).
pub(crate) const HASH_MIX: u64 = 0x2545_f491_4f6c_dd1d;
pub(crate) const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// The hash of an exact key: both halves folded into one word (the high
/// half rotated, so keys that differ only there spread too), multiplied
/// by an odd constant (Fibonacci hashing). An index of `2^b` slots takes
/// the product's top `b` bits ([`ExactIndex::home`]): every bit of the
/// folded key reaches them, and the lookup's hash is one multiply and a
/// shift on the data path.
#[inline(always)]
pub(crate) fn exact_hash(key: u128) -> u64 {
    let x = (key as u64) ^ ((key >> 64) as u64).rotate_left(29) ^ HASH_MIX;
    x.wrapping_mul(HASH_MUL)
}

/// An exact table's entries: open addressing with linear probing, at most
/// half full (a probe always ends at a free slot), deletion by shifting
/// the run back (no tombstones). A flat array of slots, so the compiled
/// program probes it itself.
#[derive(Debug, Clone)]
struct ExactIndex {
    slots: Vec<Slot>,
    len: usize,
}

impl ExactIndex {
    fn new() -> ExactIndex {
        ExactIndex {
            slots: vec![FREE; 8],
            len: 0,
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// How far the hash shifts right to leave a slot's index: 64 minus
    /// log2 of the slots (a power of two, at least 8).
    fn shift(&self) -> u32 {
        64 - self.slots.len().trailing_zeros()
    }

    /// `key`'s home slot.
    #[inline(always)]
    fn home(&self, key: u128) -> usize {
        (exact_hash(key) >> self.shift()) as usize
    }

    /// The slot holding `key`.
    #[inline(always)]
    fn find(&self, key: u128) -> Option<usize> {
        let (lo, hi) = (key as u64, (key >> 64) as u64);
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            let s = &self.slots[i];
            if s.idx == EMPTY {
                return None;
            }
            if s.lo == lo && s.hi == hi {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    #[inline(always)]
    fn get(&self, key: u128) -> Option<u32> {
        self.find(key).map(|i| self.slots[i].idx)
    }

    /// Add `key` (not present) for entry `idx`.
    fn insert(&mut self, key: u128, idx: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            let grown = vec![FREE; 2 * self.slots.len()];
            let old = std::mem::replace(&mut self.slots, grown);
            self.len = 0;
            for s in old.iter().filter(|s| s.idx != EMPTY) {
                self.insert(u128::from(s.lo) | (u128::from(s.hi) << 64), s.idx);
            }
        }
        let mask = self.mask();
        let mut i = self.home(key);
        while self.slots[i].idx != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot {
            lo: key as u64,
            hi: (key >> 64) as u64,
            idx,
            pad: 0,
        };
        self.len += 1;
    }

    /// Remove `key`; its entry's index.
    fn remove(&mut self, key: u128) -> Option<u32> {
        let mut i = self.find(key)?;
        let idx = self.slots[i].idx;
        let mask = self.mask();
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s.idx == EMPTY {
                break;
            }
            // Where the key at `j` wants to be: it may move back to the
            // hole at `i` unless its home lies cyclically in (i, j].
            let home = self.home(u128::from(s.lo) | (u128::from(s.hi) << 64));
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.slots[i] = s;
                i = j;
            }
        }
        self.slots[i] = FREE;
        self.len -= 1;
        Some(idx)
    }

    fn iter(&self) -> impl Iterator<Item = (u128, u32)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.idx != EMPTY)
            .map(|s| (u128::from(s.lo) | (u128::from(s.hi) << 64), s.idx))
    }
}

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
    Exact(ExactIndex),
    /// (mask, entries) longest prefix first.
    Lpm(Vec<(u128, Map)>),
    /// Entries by descending priority (insertion order among equals).
    Ternary(Vec<Tern>),
}

/// A ternary entry: its key, mask, priority and slot.
#[derive(Debug, Clone)]
struct Tern {
    key: u128,
    mask: u128,
    priority: u32,
    slot: u32,
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
    /// Per entry index, `stride` words: the action, then its arguments
    /// (what the compiled program reads on a hit).
    flat: Vec<u64>,
    stride: usize,
}

/// An exact table as the compiled program reads it (taken again after
/// every table change):
/// its slots, the slot mask, its flat entries, and the right shift that
/// takes a hash to its home slot (the entries' stride is the program's:
/// the compiled code has it as a constant).
#[cfg(feature = "jit")]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ExactView {
    pub slots: u64,
    pub mask: u64,
    pub flat: u64,
    pub shift: u64,
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

/// The key fields' (value, mask) pairs of an entry concatenated as a
/// table matches them: the first field in the high bits, each masked to
/// its width.
pub fn concat(keys: &[KeyDef], parts: &[(u128, u128)]) -> (u128, u128) {
    let mut key = 0u128;
    let mut mask = 0u128;
    for (k, &(v, m)) in keys.iter().zip(parts) {
        let w = u32::from(k.width);
        key = key.checked_shl(w).unwrap_or(0) | (v & ones(w));
        mask = mask.checked_shl(w).unwrap_or(0) | (m & ones(w));
    }
    (key, mask)
}

impl Table {
    /// Table `def` with the program's own entries (`const entries`)
    /// installed, as the device loads a program, for actions of at most
    /// `max_params` parameters. The compiler builds every table of a
    /// program this way too, so it refuses what the device would: the
    /// index in `def.entries` of the entry the table refuses, and why
    /// (`Exists`: another entry has its key and mask, and for ternary its
    /// priority; `Full`: more entries than `size`; `BadMask`).
    pub fn with_entries(def: &TableDef, max_params: usize) -> Result<Table, (usize, TableError)> {
        let mut t = Table::with_params(def, max_params);
        for (i, e) in def.entries.iter().enumerate() {
            let (key, mask) = concat(&def.keys, &e.key);
            t.insert(Entry {
                key,
                mask,
                priority: e.priority,
                hit: Hit {
                    action: e.action,
                    args: e.args.clone().into_boxed_slice(),
                },
            })
            .map_err(|err| (i, err))?;
        }
        Ok(t)
    }

    /// An empty table shaped by `def`: its key fields' match kinds and its
    /// `size`.
    pub fn new(def: &TableDef) -> Table {
        Table::with_params(def, super::ir::limits::PARAMS)
    }

    /// A table whose actions take at most `max_params` parameters (the
    /// flat entries the compiled program reads are that wide).
    pub fn with_params(def: &TableDef, max_params: usize) -> Table {
        let kinds: Vec<MatchKind> = def.keys.iter().map(|k| k.kind).collect();
        let store = if kinds.contains(&MatchKind::Ternary) {
            Store::Ternary(Vec::new())
        } else if kinds.contains(&MatchKind::Lpm) {
            Store::Lpm(Vec::new())
        } else {
            Store::Exact(ExactIndex::new())
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
            flat: Vec::new(),
            stride: 1 + max_params.min(super::ir::limits::PARAMS),
        }
    }

    /// Words per flat entry: 1 + the most parameters of the table's actions.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// An exact table's index for the compiled program (None: LPM or
    /// ternary, looked up through the helper).
    #[cfg(feature = "jit")]
    pub(crate) fn exact_view(&mut self) -> Option<ExactView> {
        match &mut self.store {
            Store::Exact(ix) => Some(ExactView {
                slots: ix.slots.as_mut_ptr() as u64,
                mask: ix.mask() as u64,
                flat: self.flat.as_mut_ptr() as u64,
                shift: u64::from(ix.shift()),
            }),
            _ => None,
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
        self.lookup_slot(key).map(|i| &self.hits[i as usize])
    }

    /// Look `key` up: the slot of the entry that matches. Every entry has
    /// a slot below the table's `size` from its insert to its removal (a
    /// removed entry's slot is given to a later one): the cell of the
    /// table's direct counter and meter that belongs to it.
    #[inline]
    pub fn lookup_slot(&self, key: u128) -> Option<u32> {
        if self.len == 0 {
            // Most tables start empty (fairnic.p4's acl and route): no hash.
            return None;
        }
        match &self.store {
            Store::Exact(m) => m.get(key),
            Store::Lpm(groups) => {
                for (mask, m) in groups {
                    if let Some(&i) = m.get(&(key & mask)) {
                        return Some(i);
                    }
                }
                None
            }
            Store::Ternary(es) => es.iter().find(|e| key & e.mask == e.key).map(|e| e.slot),
        }
    }

    /// What the entry in `slot` does (a slot [`Table::lookup_slot`] or
    /// [`Table::slot_of`] gave).
    pub fn hit_at(&self, slot: u32) -> Option<&Hit> {
        self.hits.get(slot as usize)
    }

    /// The slot of the entry with this key and mask (and priority,
    /// ternary).
    pub fn slot_of(&self, key: u128, mask: u128, priority: u32) -> Option<u32> {
        let key = key & mask;
        match &self.store {
            Store::Exact(m) => m.get(key).filter(|_| mask == ones(self.key_bits)),
            Store::Lpm(groups) => groups
                .iter()
                .find(|(mk, _)| *mk == mask)
                .and_then(|(_, m)| m.get(&key).copied()),
            Store::Ternary(es) => es
                .iter()
                .find(|x| x.key == key && x.mask == mask && x.priority == priority)
                .map(|x| x.slot),
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
        let i = self.free.last().copied().unwrap_or(self.hits.len() as u32) as usize;
        let at = i * self.stride;
        if self.flat.len() < at + self.stride {
            self.flat.resize(at + self.stride, 0);
        }
        self.flat[at] = u64::from(hit.action);
        for (w, a) in self.flat[at + 1..at + self.stride].iter_mut().zip(hit.args.iter()) {
            *w = *a;
        }
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
    /// mask is `Exists`); its slot.
    pub fn insert(&mut self, e: Entry) -> Result<u32, TableError> {
        self.check_mask(e.mask)?;
        if self.len >= self.size {
            return Err(TableError::Full);
        }
        let key = e.key & e.mask;
        match &mut self.store {
            Store::Exact(m) => {
                if m.find(key).is_some() {
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
        // Every entry takes a slot of `hits` and gives it back when removed
        // (a ternary add and delete once took one and never gave it back:
        // memory the state budget did not see).
        let i = self.alloc(e.hit);
        match &mut self.store {
            Store::Exact(m) => m.insert(key, i),
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
                    Tern {
                        key,
                        mask: e.mask,
                        priority: e.priority,
                        slot: i,
                    },
                );
            }
        }
        self.len += 1;
        Ok(i)
    }

    /// Remove the entry with this key and mask (and priority, ternary);
    /// returns what it did.
    pub fn remove(&mut self, key: u128, mask: u128, priority: u32) -> Result<Hit, TableError> {
        let key = key & mask;
        let idx = match &mut self.store {
            Store::Exact(m) => m.remove(key),
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
                pos.map(|p| es.remove(p).slot)
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
                for (k, i) in m.iter() {
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
            Store::Ternary(es) => out.extend(es.iter().map(|e| Entry {
                key: e.key,
                mask: e.mask,
                priority: e.priority,
                hit: self.hits[e.slot as usize].clone(),
            })),
        }
        out.sort_by(|a, b| (b.priority, a.key, a.mask).cmp(&(a.priority, b.key, b.mask)));
        out
    }

    /// The first `n` entries in the order (key, mask, priority), and how
    /// many the table has: one page of a listing, without cloning or
    /// sorting the entries past it (a linear selection, then a sort of the
    /// page).
    pub fn entries_by_key(&self, n: usize) -> (Vec<(Entry, u32)>, usize) {
        let mut refs: Vec<(u128, u128, u32, u32)> = Vec::with_capacity(self.len as usize);
        let full = ones(self.key_bits);
        match &self.store {
            Store::Exact(m) => refs.extend(m.iter().map(|(k, i)| (k, full, 0, i))),
            Store::Lpm(groups) => {
                for (mask, m) in groups {
                    refs.extend(m.iter().map(|(&k, &i)| (k, *mask, 0, i)));
                }
            }
            Store::Ternary(es) => refs.extend(es.iter().map(|e| (e.key, e.mask, e.priority, e.slot))),
        }
        let total = refs.len();
        let end = n.min(total);
        let order = |r: &(u128, u128, u32, u32)| (r.0, r.1, r.2);
        if end > 0 && end < total {
            refs.select_nth_unstable_by_key(end - 1, order);
        }
        refs[..end].sort_unstable_by_key(order);
        let page = refs[..end]
            .iter()
            .map(|&(key, mask, priority, slot)| {
                let e = Entry {
                    key,
                    mask,
                    priority,
                    hit: self.hits[slot as usize].clone(),
                };
                (e, slot)
            })
            .collect();
        (page, total)
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
            direct_counter: None,
            direct_meter: None,
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
    fn a_page_by_key_is_the_sorted_tables_first_entries() {
        for kind in [MatchKind::Exact, MatchKind::Lpm, MatchKind::Ternary] {
            let mut d = def(&[(kind, 16)]);
            d.size = 64;
            let mut t = Table::new(&d);
            // 40 entries, inserted out of key order.
            for i in 0..40u128 {
                let key = ((i * 37) % 64) << 8;
                let (mask, priority) = match kind {
                    MatchKind::Exact => (0xffff, 0),
                    MatchKind::Lpm => (0xff00, 0),
                    MatchKind::Ternary => (0xff00, (i % 3) as u32 + 1),
                };
                t.insert(Entry {
                    key,
                    mask,
                    priority,
                    hit: hit(i as u16),
                })
                .unwrap();
            }
            let mut all = t.entries();
            all.sort_by_key(|e| (e.key, e.mask, e.priority));
            let fields = |es: &[Entry]| -> Vec<(u128, u128, u32, u16)> {
                es.iter().map(|e| (e.key, e.mask, e.priority, e.hit.action)).collect()
            };
            for n in [0, 1, 7, 39, 40, 100] {
                let (page, total) = t.entries_by_key(n);
                assert_eq!(total, 40);
                for (e, slot) in &page {
                    assert_eq!(t.slot_of(e.key, e.mask, e.priority), Some(*slot));
                    assert_eq!(t.hit_at(*slot), Some(&e.hit));
                }
                let page: Vec<Entry> = page.into_iter().map(|(e, _)| e).collect();
                assert_eq!(fields(&page), fields(&all[..n.min(40)]), "{kind:?}, first {n}");
            }
        }
    }

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
        // One slot, taken and given back each round.
        assert_eq!((t.hits.len(), t.free.len(), t.len), (1, 1, 0));
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

#[cfg(test)]
mod index_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The exact index agrees with a hash map through any inserts and
        /// removes (growing, and shifting runs back on removal), keys
        /// drawn from a small set so they collide and repeat.
        #[test]
        fn exact_index_is_a_map(ops in proptest::collection::vec((any::<bool>(), 0u8..40, any::<bool>()), 1..400)) {
            let mut ix = ExactIndex::new();
            let mut model: HashMap<u128, u32> = HashMap::new();
            for (n, &(add, k, wide)) in ops.iter().enumerate() {
                let key = (u128::from(k) * 0x1_0000_0001) | if wide { 1u128 << 100 } else { 0 };
                if add {
                    if let std::collections::hash_map::Entry::Vacant(v) = model.entry(key) {
                        v.insert(n as u32);
                        ix.insert(key, n as u32);
                    }
                } else {
                    prop_assert_eq!(ix.remove(key), model.remove(&key));
                }
                prop_assert_eq!(ix.len, model.len());
                prop_assert!(ix.len * 2 <= ix.slots.len());
                for k in 0..40u8 {
                    for wide in [false, true] {
                        let key = (u128::from(k) * 0x1_0000_0001) | if wide { 1u128 << 100 } else { 0 };
                        prop_assert_eq!(ix.get(key), model.get(&key).copied());
                    }
                }
            }
            let mut all: Vec<(u128, u32)> = ix.iter().collect();
            let mut want: Vec<(u128, u32)> = model.into_iter().collect();
            all.sort_unstable();
            want.sort_unstable();
            prop_assert_eq!(all, want);
        }
    }
}
