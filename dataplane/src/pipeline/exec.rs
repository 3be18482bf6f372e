//! The executor: runs a validated [`Program`] on packets, in place.
//!
//! At load time every field reference becomes a byte position, a span and
//! a shift ([`Loc`]), and every table gets its run-time structure
//! ([`super::table::Table`]); nothing is looked up by name per packet.
//! Packets go through in batches: the parser runs over the whole batch,
//! then the ingress control, so each stage's code and tables stay hot.
//! Headers are edited in place (the deparser emits what the parser
//! extracted, in the same places), so a packet's bytes are never copied.
//!
//! A packet the parser cannot take (too short for a header, a `reject`
//! transition, a parser loop past [`limits::PARSE_STEPS`]) ends as
//! [`Verdict::ParseError`] and is counted; nothing here panics on packet
//! contents.

use super::compile::{compile, mask64, parse, Compiled, Vb, LANES};
use super::ir::*;
use super::table::{ones, Entry, Hit, Table, TableError};
use crate::abi::{MeterConfig, TableEntry};
use crate::meter::{self, Meter};

/// Nanoseconds (the caller's clock).
pub type Nanos = u64;

/// Where a header field lives: `span` bytes from `byte` (relative to the
/// header), value = (big-endian bytes >> shift) & mask.
#[derive(Debug, Clone, Copy)]
pub(super) struct Loc {
    byte: u16,
    span: u8,
    shift: u8,
    width: u16,
    /// `width` low bits (fields of at most 64 bits).
    mask: u64,
}

impl Loc {
    pub(super) fn new(bit_off: u16, width: u16) -> Loc {
        let first = bit_off / 8;
        let last = (u32::from(bit_off) + u32::from(width) - 1) / 8;
        let span = (last - u32::from(first) + 1) as u8;
        let end_bit = (last + 1) * 8;
        let shift = (end_bit - u32::from(bit_off) - u32::from(width)) as u8;
        Loc {
            byte: first,
            span,
            shift,
            width,
            mask: mask64(width),
        }
    }

    /// Byte offset in the header, bytes spanned, right shift, width and
    /// mask (what the compiled code reads and writes).
    #[cfg(feature = "jit")]
    pub(super) fn parts(&self) -> (u16, u8, u8, u16, u64) {
        (self.byte, self.span, self.shift, self.width, self.mask)
    }

    /// The header bytes the field reaches (one past its last byte).
    #[cfg(feature = "jit")]
    pub(super) fn end(&self) -> usize {
        usize::from(self.byte) + usize::from(self.span)
    }

    /// The field's value (fields of up to 64 bits within 8 bytes take the
    /// fast path; wider ones, such as IPv6 addresses, the u128 one).
    #[inline(always)]
    pub(super) fn read(&self, hdr: &[u8]) -> u128 {
        if self.span <= 8 {
            return u128::from(self.read64(hdr));
        }
        let b = usize::from(self.byte);
        let mut acc = 0u128;
        for &x in &hdr[b..b + usize::from(self.span)] {
            acc = (acc << 8) | u128::from(x);
        }
        (acc >> self.shift) & ones(u32::from(self.width))
    }

    /// A field spanning at most 8 bytes.
    #[inline(always)]
    fn read64(&self, hdr: &[u8]) -> u64 {
        let b = usize::from(self.byte);
        let n = usize::from(self.span);
        let acc = if let Some(w) = hdr.get(b..b + 8) {
            // One load; drop the bytes past the field.
            u64::from_be_bytes(w.try_into().expect("8 bytes")) >> (8 * (8 - n))
        } else {
            hdr[b..b + n].iter().fold(0u64, |a, &x| (a << 8) | u64::from(x))
        };
        (acc >> self.shift) & self.mask
    }

    /// A field of at most 64 bits as an expression value.
    #[inline(always)]
    pub(super) fn value(&self, hdr: &[u8]) -> u64 {
        if self.span <= 8 {
            self.read64(hdr)
        } else {
            self.read(hdr) as u64
        }
    }

    #[inline(always)]
    pub(super) fn write(&self, hdr: &mut [u8], v: u128) {
        let b = usize::from(self.byte);
        let bytes = &mut hdr[b..b + usize::from(self.span)];
        let mut acc = 0u128;
        for &x in bytes.iter() {
            acc = (acc << 8) | u128::from(x);
        }
        let m = ones(u32::from(self.width)) << self.shift;
        acc = (acc & !m) | ((v << self.shift) & m);
        for (i, x) in bytes.iter_mut().rev().enumerate() {
            *x = (acc >> (8 * i)) as u8;
        }
    }
}

/// What the program decided for a packet.
///
/// `repr(C, u16)` with fixed discriminants: the compiled program writes
/// each packet's [`Outcome`] itself (a `u16` tag, then `ToLif`'s LIF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, u16)]
pub enum Verdict {
    /// To this LIF (`egress_lif`).
    ToLif(u16) = 0,
    /// Out of the uplink (`to_uplink`).
    ToUplink = 1,
    /// Every LIF but the sender (and the uplink when a LIF sent it).
    Flood = 2,
    /// `mark_to_drop`.
    Drop = 3,
    /// No destination set.
    NoRoute = 4,
    /// The parser could not take the packet.
    ParseError = 5,
}

impl Verdict {
    /// The variant's discriminant above (what the compiled program
    /// writes as the tag).
    #[cfg_attr(not(feature = "jit"), allow(dead_code))]
    pub(crate) const fn tag(self) -> u16 {
        match self {
            Verdict::ToLif(_) => 0,
            Verdict::ToUplink => 1,
            Verdict::Flood => 2,
            Verdict::Drop => 3,
            Verdict::NoRoute => 4,
            Verdict::ParseError => 5,
        }
    }
}

/// A packet's result (`repr(C)`: the compiled program writes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Outcome {
    /// Where the packet goes.
    pub verdict: Verdict,
    /// Extra passes the program asked for (`recirculate`, at most 7).
    pub recirculate: u8,
    /// Cost units of one pass (base + states + tables + actions).
    pub cost: u32,
}

/// Pipeline counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets run, every one of a batch counted.
    pub packets: u64,
    /// Packets the parser could not take ([`Verdict::ParseError`]).
    pub parse_errors: u64,
    /// Packets marked to drop ([`Verdict::Drop`]).
    pub drops: u64,
    /// Packets given no destination ([`Verdict::NoRoute`]).
    pub no_route: u64,
    /// Counter or meter indices outside their array (the update was
    /// skipped).
    pub index_errors: u64,
}

/// One packet of a batch: its bytes (edited in place) and ingress LIF
/// (`std_meta::LIF_NONE` for the wire).
#[derive(Debug)]
pub struct Input<'a> {
    /// The frame's bytes; the program edits its headers in place.
    pub data: &'a mut [u8],
    /// The LIF that sent it.
    pub ingress_lif: u16,
}

/// Per-packet state between the stages.
#[derive(Debug, Clone)]
pub(super) struct PktState {
    /// Offset of each valid header.
    pub off: [u16; limits::HEADERS],
    pub valid: u64,
    pub cost: u32,
    pub parse_error: bool,
    pub exited: bool,
    /// The slot of the entry the running table apply matched
    /// ([`NO_SLOT`] on a miss): the cell of the table's direct meter an
    /// action reads.
    pub slot: u32,
}

/// [`PktState::slot`] of a packet no entry matched.
pub(super) const NO_SLOT: u32 = u32::MAX;

/// Meter arrays of one meter declaration.
#[derive(Debug, Clone)]
pub(super) enum MeterArray {
    Packets(Vec<Meter<meter::Packets>>),
    Bytes(Vec<Meter<meter::Bytes>>),
}

/// A control-plane entry as the table holds it, after `apply_entry`: the
/// canonical key, mask and priority (to remove it by), and what it does
/// (the entry added, or the one removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The table's index in the program.
    pub table: u16,
    /// The key fields concatenated, first field in the high bits.
    pub key: u128,
    /// The mask: all ones over exact fields, the prefix over the LPM field,
    /// as given over ternary ones.
    pub mask: u128,
    /// The priority, as given.
    pub priority: u32,
    /// The action and arguments of the entry added, or of the one removed.
    pub hit: Hit,
}

/// Why a table operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// No table with this number in the loaded program.
    #[error("no table {0}")]
    NoTable(u32),
    /// The action is not one the table allows (or does not exist).
    #[error("action {action} is not one of table {table}'s")]
    NoAction {
        /// The table's name.
        table: String,
        /// The action number given.
        action: u32,
    },
    /// Lengths, values, mask or prefix do not fit the table or action.
    #[error("table {table}: {what}")]
    Invalid {
        /// The table's name.
        table: String,
        /// What does not fit.
        what: String,
    },
    /// The table holds its declared size of entries (the table's name).
    #[error("table {0} is full")]
    Full(String),
    /// An entry with that key is installed already (the table's name).
    #[error("table {0} already has an entry with that key")]
    Exists(String),
    /// No entry with that key is installed (the table's name).
    #[error("table {0} has no entry with that key")]
    NotFound(String),
    /// The table has no direct counter, or no direct meter, to read or set.
    #[error("table {table} has no direct {what}")]
    NoDirect {
        /// The table's name.
        table: String,
        /// `counter` or `meter`.
        what: &'static str,
    },
    /// A direct meter's configuration was refused (the meter's reason).
    #[error("table {table}: direct meter: {why}")]
    Meter {
        /// The table's name.
        table: String,
        /// Why.
        why: String,
    },
}

/// An entry's direct counter and meter, as [`Pipeline::direct`] reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direct {
    /// The entry's slot: its cell in the table's direct arrays.
    pub slot: u32,
    /// The direct counter's cell (packets, bytes), if the table has one.
    pub counter: Option<(u64, u64)>,
    /// The direct meter's cell as applied, if the table has one (its
    /// `resource` the meter's unit, `Packets` or `Bytes`).
    pub meter: Option<MeterConfig>,
}

/// A loaded program with its run-time state.
#[derive(Debug)]
pub struct Pipeline {
    prog: Program,
    locs: Vec<Vec<Loc>>,
    code: Compiled,
    /// Scratch: each lane's action parameters.
    params: Vec<[u64; limits::PARAMS]>,
    /// Scratch: outcomes of `process`.
    out: Vec<Outcome>,
    rt: Runtime,
    /// Scratch: per packet of the batch.
    states: Vec<PktState>,
    /// Scratch: metadata of every packet of the batch, `meta.len()` each.
    meta: Vec<u64>,
    /// The program compiled to machine code, when it was.
    #[cfg(feature = "jit")]
    jit: Option<super::jit::Jit>,
    /// Scratch: the counter arrays as the compiled code sees them.
    #[cfg(feature = "jit")]
    jit_counters: Vec<super::jit::CounterRef>,
    /// Scratch: the meter arrays as the compiled code sees them.
    #[cfg(feature = "jit")]
    jit_meters: Vec<super::jit::CounterRef>,
    /// The batch as the compiled program reads it.
    #[cfg(feature = "jit")]
    jit_in: Vec<super::jit::PktIn>,
    /// Scratch: each table's entry count, for the compiled code.
    #[cfg(feature = "jit")]
    jit_table_lens: Vec<u64>,
    /// Scratch: each exact table's index, for the compiled code.
    #[cfg(feature = "jit")]
    jit_tables: Vec<super::table::ExactView>,
    /// The three scratch views above must be taken again before the next
    /// compiled batch: set at load and by every table change (an insert
    /// may move a table's index, and changes its entry count). Counter
    /// and meter arrays never move after load (`set_meter` writes a meter
    /// in place).
    #[cfg(feature = "jit")]
    jit_views_stale: bool,
    /// Which executor runs the program, and why.
    backend: Backend,
}

/// Which executor runs a loaded program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Compiled to machine code at load (Cranelift): `code_bytes` of it.
    Compiled {
        /// Bytes of machine code generated.
        code_bytes: usize,
    },
    /// The reference executor (closures over batches), and why.
    Reference {
        /// Why the compiler did not take the program (or was not asked).
        why: String,
    },
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Compiled { code_bytes } => write!(f, "compiled to machine code ({code_bytes} bytes)"),
            Backend::Reference { why } => write!(f, "reference executor ({why})"),
        }
    }
}

/// Which executor [`Pipeline::with_executor`] loads a program for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executor {
    /// Compile when the compiler takes the program, else the reference.
    Best,
    /// The reference executor only.
    Reference,
}

/// What packets change: tables (their hit counts), meters, counters.
#[derive(Debug, Clone)]
pub(super) struct Runtime {
    pub tables: Vec<Table>,
    pub meters: Vec<MeterArray>,
    pub counters: Vec<Vec<(u64, u64)>>,
    pub stats: Stats,
    /// Per-table (hits, misses).
    pub hits: Vec<(u64, u64)>,
}

impl Pipeline {
    /// Load a program (validated again: it may come from an image),
    /// compiled to machine code when the compiler takes it
    /// ([`Pipeline::backend`] says which executor runs it).
    pub fn new(prog: Program) -> Result<Pipeline, ProgramError> {
        Pipeline::with_executor(prog, Executor::Best)
    }

    /// Load a program for the executor `exec` chooses.
    pub fn with_executor(prog: Program, exec: Executor) -> Result<Pipeline, ProgramError> {
        prog.validate()?;
        let locs: Vec<Vec<Loc>> = prog
            .headers
            .iter()
            .map(|h| h.fields.iter().map(|f| Loc::new(f.bit_off, f.width)).collect())
            .collect();
        let code = compile(&prog, &locs);
        #[cfg(feature = "jit")]
        let (jit, backend) = match exec {
            Executor::Reference => (
                None,
                Backend::Reference {
                    why: "asked for".into(),
                },
            ),
            Executor::Best => match super::jit::Jit::compile(&prog, &locs) {
                Ok(j) => {
                    let code_bytes = j.code_bytes;
                    (Some(j), Backend::Compiled { code_bytes })
                }
                Err(e) => (None, Backend::Reference { why: e.to_string() }),
            },
        };
        #[cfg(not(feature = "jit"))]
        let backend = Backend::Reference {
            why: match exec {
                Executor::Reference => "asked for".into(),
                Executor::Best => "built without the compiler (cargo feature `jit`)".into(),
            },
        };
        let meters = prog
            .meters
            .iter()
            .map(|m| match m.unit {
                MeterUnit::Packets => MeterArray::Packets(vec![Meter::Off; m.size as usize]),
                MeterUnit::Bytes => MeterArray::Bytes(vec![Meter::Off; m.size as usize]),
            })
            .collect();
        let counters = prog.counters.iter().map(|c| vec![(0, 0); c.size as usize]).collect();
        let tables = prog
            .tables
            .iter()
            .map(|t| {
                Table::with_entries(t, max_params(&prog, t))
                    .map_err(|(i, err)| ProgramError::Invalid(format!("table {}: program entry {i}: {err:?}", t.name)))
            })
            .collect::<Result<Vec<Table>, ProgramError>>()?;
        let p = Pipeline {
            rt: Runtime {
                tables,
                hits: vec![(0, 0); prog.tables.len()],
                meters,
                counters,
                stats: Stats::default(),
            },
            code,
            locs,
            params: vec![[0; limits::PARAMS]; LANES],
            out: Vec::with_capacity(1),
            states: Vec::new(),
            meta: Vec::new(),
            #[cfg(feature = "jit")]
            jit,
            #[cfg(feature = "jit")]
            jit_counters: Vec::new(),
            #[cfg(feature = "jit")]
            jit_meters: Vec::new(),
            #[cfg(feature = "jit")]
            jit_in: Vec::new(),
            #[cfg(feature = "jit")]
            jit_table_lens: Vec::new(),
            #[cfg(feature = "jit")]
            jit_tables: Vec::new(),
            #[cfg(feature = "jit")]
            jit_views_stale: true,
            backend,
            prog,
        };
        Ok(p)
    }

    /// Decode, validate and load an image.
    pub fn from_image(image: &[u8]) -> Result<Pipeline, ProgramError> {
        Pipeline::new(Program::from_image(image)?)
    }

    /// Which executor runs the program, and why.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The metadata of the last batch's packets, `program().meta.len()`
    /// slots each, as the program left them (for tests that compare the
    /// executors).
    pub fn last_meta(&self) -> &[u64] {
        &self.meta
    }

    /// The loaded program.
    pub fn program(&self) -> &Program {
        &self.prog
    }

    /// The pipeline's counters so far.
    pub fn stats(&self) -> Stats {
        self.rt.stats
    }

    /// Counter `c` at `index`: (packets, bytes).
    pub fn counter(&self, c: u16, index: u32) -> Option<(u64, u64)> {
        self.rt.counters.get(usize::from(c))?.get(index as usize).copied()
    }

    /// Set cell `index` of counter array `c` (every cell with `None`) to
    /// `value` (packets, bytes); the cells set, or `None` for no such array
    /// or cell. The compiled code reads the cells where they are: a value
    /// is written in place, nothing is resized.
    pub fn set_counter(&mut self, c: u16, index: Option<u32>, value: (u64, u64)) -> Option<u32> {
        let cells = self.rt.counters.get_mut(usize::from(c))?;
        match index {
            None => {
                cells.iter_mut().for_each(|x| *x = value);
                Some(cells.len() as u32)
            }
            Some(i) => {
                *cells.get_mut(i as usize)? = value;
                Some(1)
            }
        }
    }

    /// Table `t`'s (hits, misses).
    pub fn table_hits(&self, t: u16) -> Option<(u64, u64)> {
        self.rt.hits.get(usize::from(t)).copied()
    }

    /// Entries installed in table `t`.
    pub fn table_len(&self, t: u16) -> Option<u32> {
        self.rt.tables.get(usize::from(t)).map(|x| x.len())
    }

    /// Configure meter `m` at `index` (buckets full at `now`).
    pub fn set_meter(&mut self, m: u16, index: u32, cfg: &MeterConfig, now: Nanos) -> Result<(), meter::MeterError> {
        let i = index as usize;
        match self.rt.meters.get_mut(usize::from(m)) {
            Some(MeterArray::Packets(v)) if i < v.len() => v[i] = Meter::from_config(cfg, now)?,
            Some(MeterArray::Bytes(v)) if i < v.len() => v[i] = Meter::from_config(cfg, now)?,
            _ => return Err(meter::MeterError::Invalid("no such meter or index")),
        }
        Ok(())
    }

    /// The direct counter and meter of the entry `e` names (by table, key,
    /// mask or prefix, and priority; its action and parameters are not
    /// looked at).
    pub fn direct(&self, e: &TableEntry) -> Result<Direct, EntryError> {
        let (t, key, mask) = self.abi_key(e)?;
        let def = &self.prog.tables[t];
        let slot = self.rt.tables[t]
            .slot_of(key, mask, e.priority.get())
            .ok_or_else(|| EntryError::NotFound(def.name.clone()))?;
        Ok(Direct {
            slot,
            counter: def.direct_counter.and_then(|c| self.counter(c, slot)),
            meter: def.direct_meter.and_then(|m| self.meter_config(m, slot)),
        })
    }

    /// Set the direct counter (packets, bytes) and/or the direct meter
    /// (buckets full at `now`) of the entry `e` names; both are checked
    /// before either is set.
    pub fn set_direct(
        &mut self,
        e: &TableEntry,
        counter: Option<(u64, u64)>,
        meter: Option<&MeterConfig>,
        now: Nanos,
    ) -> Result<(), EntryError> {
        let d = self.direct(e)?;
        let def = &self.prog.tables[e.table_id.get() as usize];
        let name = def.name.clone();
        let no = |what| EntryError::NoDirect {
            table: name.clone(),
            what,
        };
        let c = match counter {
            Some(v) => Some((def.direct_counter.ok_or_else(|| no("counter"))?, v)),
            None => None,
        };
        let m = match meter {
            Some(cfg) => {
                let m = def.direct_meter.ok_or_else(|| no("meter"))?;
                let bad = |e: meter::MeterError| EntryError::Meter {
                    table: name.clone(),
                    why: e.to_string(),
                };
                // Built first, so that a refused config changes nothing.
                let cell = match &self.rt.meters[usize::from(m)] {
                    MeterArray::Packets(_) => MeterArray::Packets(vec![Meter::from_config(cfg, now).map_err(bad)?]),
                    MeterArray::Bytes(_) => MeterArray::Bytes(vec![Meter::from_config(cfg, now).map_err(bad)?]),
                };
                Some((m, cell))
            }
            None => None,
        };
        if let Some((c, v)) = c {
            self.set_counter(c, Some(d.slot), v);
        }
        if let Some((m, cell)) = m {
            let i = d.slot as usize;
            match (&mut self.rt.meters[usize::from(m)], cell) {
                (MeterArray::Packets(v), MeterArray::Packets(x)) => v[i] = x[0],
                (MeterArray::Bytes(v), MeterArray::Bytes(x)) => v[i] = x[0],
                _ => {}
            }
        }
        Ok(())
    }

    /// Meter `m` at `index` as applied (rates rounded to the device's
    /// step; `resource` the array's unit, `policy` 0), or `None` for no
    /// such meter or cell.
    pub fn meter_config(&self, m: u16, index: u32) -> Option<MeterConfig> {
        let i = index as usize;
        let policy = crate::abi::MeterPolicy::Backpressure;
        match self.rt.meters.get(usize::from(m))? {
            MeterArray::Packets(v) => v.get(i).map(|x| x.applied(policy)),
            MeterArray::Bytes(v) => v.get(i).map(|x| x.applied(policy)),
        }
    }

    /// The slot of table `t`'s entry with this key, mask and priority (as
    /// [`Pipeline::apply_entry`] returned or [`Pipeline::entries`] lists
    /// them): the cell of its direct counter and meter. `None`: no such
    /// table or entry.
    pub fn entry_slot(&self, t: u16, key: u128, mask: u128, priority: u32) -> Option<u32> {
        self.rt.tables.get(usize::from(t))?.slot_of(key, mask, priority)
    }

    /// Key values and masks per field, concatenated (first field high).
    fn concat(&self, t: usize, parts: &[(u128, u128)]) -> (u128, u128) {
        super::table::concat(&self.prog.tables[t].keys, parts)
    }

    /// An ABI entry's table (checked), key and mask as the table matches
    /// them.
    fn abi_key(&self, e: &TableEntry) -> Result<(usize, u128, u128), EntryError> {
        let t = e.table_id.get() as usize;
        let def = self.prog.tables.get(t).ok_or(EntryError::NoTable(e.table_id.get()))?;
        let name = def.name.clone();
        let invalid = |what: String| EntryError::Invalid {
            table: name.clone(),
            what,
        };
        let want: usize = def.keys.iter().map(|k| usize::from(k.width).div_ceil(8)).sum();
        if usize::from(e.key_len) != want {
            return Err(invalid(format!("key is {} bytes, the table's {want}", e.key_len)));
        }
        let (key, mask) = {
            let mut at = 0;
            let mut parts = Vec::with_capacity(def.keys.len());
            let mut lpm_seen = false;
            for k in &def.keys {
                let n = usize::from(k.width).div_ceil(8);
                let v = be(&e.key()[at..at + n]);
                let m = match k.kind {
                    MatchKind::Exact => ones(u32::from(k.width)),
                    MatchKind::Ternary => be(&e.mask()[at..at + n]),
                    MatchKind::Lpm => {
                        lpm_seen = true;
                        let p = u32::from(e.prefix_len.get());
                        let w = u32::from(k.width);
                        if p > w {
                            return Err(invalid(format!("prefix /{p} longer than the {w}-bit key")));
                        }
                        ones(w) ^ ones(w - p)
                    }
                };
                if v & !ones(u32::from(k.width)) != 0 {
                    return Err(invalid(format!("key {} wider than {} bits", k.name, k.width)));
                }
                parts.push((v, m));
                at += n;
            }
            if !lpm_seen && e.prefix_len.get() != 0 {
                return Err(invalid("prefix_len on a table without an LPM key".into()));
            }
            self.concat(t, &parts)
        };
        Ok((t, key, mask))
    }

    /// Install (`add`) or remove a control-plane entry given in the ABI's
    /// form: key and mask bytes are the key fields concatenated, each
    /// big-endian in whole bytes; an LPM field's mask comes from
    /// `prefix_len`; parameters likewise, each big-endian in whole bytes.
    pub fn apply_entry(&mut self, e: &TableEntry, add: bool) -> Result<Applied, EntryError> {
        #[cfg(feature = "jit")]
        {
            self.jit_views_stale = true;
        }
        let (t, key, mask) = self.abi_key(e)?;
        let def = &self.prog.tables[t];
        let name = def.name.clone();
        let invalid = |what: String| EntryError::Invalid {
            table: name.clone(),
            what,
        };
        let table_err = |err: TableError| match err {
            TableError::Full => EntryError::Full(name.clone()),
            TableError::Exists => EntryError::Exists(name.clone()),
            TableError::NotFound => EntryError::NotFound(name.clone()),
            TableError::BadMask => EntryError::Invalid {
                table: name.clone(),
                what: "mask does not fit the match kinds".into(),
            },
        };
        let applied = |hit: Hit| Applied {
            table: t as u16,
            key,
            mask,
            priority: e.priority.get(),
            hit,
        };
        if !add {
            return self.rt.tables[t]
                .remove(key, mask, e.priority.get())
                .map(applied)
                .map_err(table_err);
        }
        let a = e.action_id.get();
        if a > u32::from(u16::MAX) || !def.actions.contains(&(a as u16)) {
            return Err(EntryError::NoAction {
                table: name.clone(),
                action: a,
            });
        }
        let act = &self.prog.actions[a as usize];
        let want: usize = act.params.iter().map(|p| usize::from(p.width).div_ceil(8)).sum();
        if usize::from(e.param_len) != want {
            return Err(invalid(format!(
                "action {} takes {want} parameter bytes, given {}",
                act.name, e.param_len
            )));
        }
        let mut args = Vec::with_capacity(act.params.len());
        let mut at = 0;
        for p in &act.params {
            let n = usize::from(p.width).div_ceil(8);
            let v = be(&e.params()[at..at + n]);
            if v & !ones(u32::from(p.width)) != 0 {
                return Err(invalid(format!("parameter {} wider than {} bits", p.name, p.width)));
            }
            args.push(v as u64);
            at += n;
        }
        let hit = Hit {
            action: a as u16,
            args: args.into_boxed_slice(),
        };
        let slot = self.rt.tables[t]
            .insert(Entry {
                key,
                mask,
                priority: e.priority.get(),
                hit: hit.clone(),
            })
            .map_err(table_err)?;
        // A new entry's direct counter starts at zero and its direct meter
        // off, whatever the slot's last entry left there.
        let def = &self.prog.tables[t];
        if let Some(c) = def.direct_counter {
            self.rt.counters[usize::from(c)][slot as usize] = (0, 0);
        }
        if let Some(m) = def.direct_meter {
            match &mut self.rt.meters[usize::from(m)] {
                MeterArray::Packets(v) => v[slot as usize] = Meter::Off,
                MeterArray::Bytes(v) => v[slot as usize] = Meter::Off,
            }
        }
        Ok(applied(hit))
    }

    /// Remove an entry by the key, mask and priority [`Pipeline::entries`]
    /// lists or [`Pipeline::apply_entry`] returned.
    pub fn remove_entry(&mut self, t: u16, key: u128, mask: u128, priority: u32) -> Result<Hit, TableError> {
        #[cfg(feature = "jit")]
        {
            self.jit_views_stale = true;
        }
        self.rt
            .tables
            .get_mut(usize::from(t))
            .ok_or(TableError::NotFound)?
            .remove(key, mask, priority)
    }

    /// Entries of table `t` as the control plane reads them back.
    pub fn entries(&self, t: u16) -> Option<Vec<Entry>> {
        self.rt.tables.get(usize::from(t)).map(|x| x.entries())
    }

    /// Up to `n` of table `t`'s entries from index `from` on, in the ABI's
    /// form as [`Pipeline::apply_entry`] takes them (the device's own
    /// entries too), and how many the table has. Ordered by key, mask and
    /// priority, so that a listing in pages is stable while the table does
    /// not change; `None` for no such table.
    pub fn abi_entries(&self, t: u16, from: usize, n: usize) -> Option<(Vec<TableEntry>, usize)> {
        let (es, total) = self.abi_entries_slots(t, from, n)?;
        Some((es.into_iter().map(|(e, _)| e).collect(), total))
    }

    /// As [`Pipeline::abi_entries`], with each entry's slot (its cell of
    /// the table's direct counter and meter).
    pub fn abi_entries_slots(&self, t: u16, from: usize, n: usize) -> Option<(Vec<(TableEntry, u32)>, usize)> {
        let def = self.prog.tables.get(usize::from(t))?;
        // Only the entries up to the page's end are put in order and
        // copied: a page near the start of a big table costs a linear
        // selection, not a sort and a copy of the whole table.
        let (entries, total) = self
            .rt
            .tables
            .get(usize::from(t))?
            .entries_by_key(from.saturating_add(n));
        let out = entries
            .iter()
            .skip(from)
            .filter_map(|(e, slot)| {
                // Split the concatenated key: the last field is in the low bits.
                let mut parts = Vec::with_capacity(def.keys.len());
                let (mut key, mut mask) = (e.key, e.mask);
                for k in def.keys.iter().rev() {
                    let w = u32::from(k.width);
                    parts.push((key & ones(w), mask & ones(w)));
                    key = key.checked_shr(w).unwrap_or(0);
                    mask = mask.checked_shr(w).unwrap_or(0);
                }
                parts.reverse();
                let mut b = TableEntry::builder(u32::from(t), e.priority);
                for (k, (v, m)) in def.keys.iter().zip(parts) {
                    match k.kind {
                        MatchKind::Exact | MatchKind::Ternary => b.key(k.width, v, m).ok()?,
                        MatchKind::Lpm => b.key(k.width, v, 0).ok()?.prefix_len(m.count_ones() as u16),
                    };
                }
                let act = self.prog.actions.get(usize::from(e.hit.action))?;
                b.action(u32::from(e.hit.action));
                for (p, &v) in act.params.iter().zip(e.hit.args.iter()) {
                    b.param(p.width, u128::from(v)).ok()?;
                }
                Some((b.build(), *slot))
            })
            .collect();
        Some((out, total))
    }

    /// Run one packet.
    pub fn process(&mut self, now: Nanos, data: &mut [u8], ingress_lif: u16) -> Outcome {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.process_batch(now, &mut [Input { data, ingress_lif }], &mut out);
        let o = out[0];
        self.out = out;
        o
    }

    /// Run a batch: the parser over every packet, then the ingress control
    /// over the batch, each of its statements over every packet that
    /// reaches it (up to 64 at a time). Appends one outcome per input to
    /// `out`, in order.
    pub fn process_batch(&mut self, now: Nanos, batch: &mut [Input<'_>], out: &mut Vec<Outcome>) {
        #[cfg(feature = "jit")]
        if self.jit.is_some() {
            self.run_compiled(now, batch, out);
            return;
        }
        for chunk in batch.chunks_mut(LANES) {
            self.run_lanes(now, chunk, out);
        }
    }

    /// The compiled program, one packet after the other.
    #[cfg(feature = "jit")]
    fn run_compiled(&mut self, now: Nanos, pkts: &mut [Input<'_>], out: &mut Vec<Outcome>) {
        let Some(jit) = self.jit.as_ref() else { return };
        let nm = self.prog.meta.len();
        // The generated code sets every slot of every packet: sized, not
        // cleared.
        self.meta.resize(pkts.len() * nm, 0);
        self.rt.stats.packets += pkts.len() as u64;
        if self.jit_views_stale {
            super::jit::CounterRef::of(&mut self.rt, &mut self.jit_counters);
            super::jit::CounterRef::meters_of(&mut self.rt, &mut self.jit_meters);
            // The generated code indexes the arrays by the sizes the
            // program declares (the runtime was built from them, and
            // nothing resizes an array).
            assert!(
                self.jit_counters
                    .iter()
                    .map(|c| c.len)
                    .eq(self.prog.counters.iter().map(|c| u64::from(c.size)))
                    && self
                        .jit_meters
                        .iter()
                        .map(|c| c.len)
                        .eq(self.prog.meters.iter().map(|m| u64::from(m.size))),
                "counter or meter arrays differ from the program's sizes"
            );
            self.jit_table_lens.clear();
            self.jit_table_lens
                .extend(self.rt.tables.iter().map(|t| u64::from(t.len())));
            self.jit_tables.clear();
            self.jit_tables
                .extend(self.rt.tables.iter_mut().map(|t| t.exact_view().unwrap_or_default()));
            self.jit_views_stale = false;
        }
        self.jit_in.clear();
        self.jit_in.extend(pkts.iter_mut().map(|p| super::jit::PktIn {
            data: p.data.as_mut_ptr() as u64,
            len: p.data.len() as u64,
            ingress_lif: u64::from(p.ingress_lif),
        }));
        out.reserve(pkts.len());
        let mut fr = super::jit::Frame {
            data: std::ptr::null_mut(),
            len: 0,
            meta: std::ptr::null_mut(),
            rt: &raw mut self.rt,
            now,
            cost: 0,
            counters: self.jit_counters.as_ptr(),
            stats: &raw mut self.rt.stats,
            table_lens: self.jit_table_lens.as_ptr(),
            hits: self.rt.hits.as_mut_ptr(),
            tables: self.jit_tables.as_ptr(),
            meters: self.jit_meters.as_ptr(),
            batch: self.jit_in.as_ptr(),
            n: pkts.len() as u64,
            meta_base: self.meta.as_mut_ptr(),
            outcomes: out.spare_capacity_mut().as_mut_ptr().cast::<Outcome>(),
        };
        // SAFETY: the batch lends each packet's bytes (`pkts` borrows them
        // mutably, each its own slice), `meta` has the program's
        // `meta.len()` slots per packet (the program was validated
        // against them), `out` room for one outcome per packet past its
        // length (reserved above), and the runtime is this pipeline's, for
        // which `jit` was compiled, with its counter, meter and table views
        // as they are now (taken again after every table change, and
        // nothing changes them during the call); nothing else touches any
        // of them until `run` returns.
        let ran = unsafe { jit.run(&mut fr) };
        assert_eq!(ran, pkts.len() as u64, "the compiled program ran the whole batch");
        // SAFETY: the generated code wrote a whole `Outcome` (a tag of
        // `Verdict`'s, its LIF for `ToLif`, the recirculations and the
        // cost) for each of the `ran` packets, in order, into the
        // reserved capacity.
        unsafe { out.set_len(out.len() + pkts.len()) };
    }

    fn run_lanes(&mut self, now: Nanos, pkts: &mut [Input<'_>], out: &mut Vec<Outcome>) {
        let n = pkts.len();
        let nm = self.prog.meta.len();
        if self.states.len() < n {
            self.states.resize(
                n,
                PktState {
                    off: [0; limits::HEADERS],
                    valid: 0,
                    cost: 0,
                    parse_error: false,
                    exited: false,
                    slot: NO_SLOT,
                },
            );
        }
        self.meta.clear();
        self.meta.resize(n * nm, 0);
        let mut live = 0u64;
        for (i, pkt) in pkts.iter().enumerate() {
            let st = &mut self.states[i];
            let m = &mut self.meta[i * nm..(i + 1) * nm];
            st.valid = 0;
            st.cost = self.prog.base_cost;
            st.exited = false;
            m[usize::from(std_meta::INGRESS_LIF)] = u64::from(pkt.ingress_lif);
            m[usize::from(std_meta::EGRESS_LIF)] = std_meta::LIF_NONE;
            m[usize::from(std_meta::PACKET_LENGTH)] = pkt.data.len() as u64;
            let e = parse(&self.code.parser, &self.locs, pkt.data, st, m);
            st.parse_error = e != ParserError::NoError;
            m[usize::from(std_meta::PARSER_ERROR)] = e as u64;
            if !st.parse_error {
                live |= 1 << i;
            }
        }
        self.rt.stats.packets += n as u64;
        if live != 0 {
            let mut vb = Vb {
                pkts,
                st: &mut self.states[..n],
                meta: &mut self.meta,
                nm,
                params: &mut self.params,
                exited: 0,
                now,
            };
            // One packet: the single-lane compilation (no 64-wide scratch).
            let ingress = if n == 1 {
                &self.code.ingress1
            } else {
                &self.code.ingress
            };
            ingress(&mut self.rt, &mut vb, live);
        }
        for i in 0..n {
            let st = &self.states[i];
            if st.parse_error {
                self.rt.stats.parse_errors += 1;
                out.push(Outcome {
                    verdict: Verdict::ParseError,
                    recirculate: 0,
                    cost: st.cost,
                });
            } else {
                out.push(verdict(&mut self.rt, st.cost, &self.meta[i * nm..(i + 1) * nm]));
            }
        }
    }
}

/// The most parameters an action of table `t` takes (its default too).
pub(super) fn max_params(prog: &Program, t: &TableDef) -> usize {
    t.actions
        .iter()
        .chain(std::iter::once(&t.default_action))
        .chain(t.entries.iter().map(|e| &e.action))
        .filter_map(|&a| prog.actions.get(usize::from(a)))
        .map(|a| a.params.len())
        .max()
        .unwrap_or(0)
}

/// The packet's outcome from its standard metadata.
fn verdict(rt: &mut Runtime, cost: u32, m: &[u64]) -> Outcome {
    let verdict = if m[usize::from(std_meta::DROP)] != 0 {
        rt.stats.drops += 1;
        Verdict::Drop
    } else if m[usize::from(std_meta::FLOOD)] != 0 {
        Verdict::Flood
    } else if m[usize::from(std_meta::TO_UPLINK)] != 0 {
        Verdict::ToUplink
    } else if m[usize::from(std_meta::EGRESS_LIF)] != std_meta::LIF_NONE {
        Verdict::ToLif(m[usize::from(std_meta::EGRESS_LIF)] as u16)
    } else {
        rt.stats.no_route += 1;
        Verdict::NoRoute
    };
    Outcome {
        verdict,
        recirculate: (m[usize::from(std_meta::RECIRCULATE)] as u8).min(7),
        cost,
    }
}

fn be(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |a, &x| (a << 8) | u128::from(x))
}

/// The architecture's parser errors (`error` in fairnic_arch.p4), as
/// `std.parser_error` holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ParserError {
    NoError = 0,
    PacketTooShort = 1,
    NoMatch = 2,
    /// The same header extracted twice (a parser loop).
    StackOutOfBounds = 3,
    ParserTimeout = 5,
}
