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

use super::ir::*;
use super::table::{ones, Entry, Hit, Table, TableError};
use crate::abi::{MeterConfig, TableEntry};
use crate::meter::{self, Color, Meter};

/// Nanoseconds (the caller's clock).
pub type Nanos = u64;

/// Where a header field lives: `span` bytes from `byte` (relative to the
/// header), value = (big-endian bytes >> shift) & mask.
#[derive(Debug, Clone, Copy)]
struct Loc {
    byte: u16,
    span: u8,
    shift: u8,
    width: u16,
}

impl Loc {
    fn new(bit_off: u16, width: u16) -> Loc {
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
        }
    }

    #[inline(always)]
    fn read(&self, hdr: &[u8]) -> u128 {
        let b = usize::from(self.byte);
        let mut acc = 0u128;
        for &x in &hdr[b..b + usize::from(self.span)] {
            acc = (acc << 8) | u128::from(x);
        }
        (acc >> self.shift) & ones(u32::from(self.width))
    }

    #[inline(always)]
    fn write(&self, hdr: &mut [u8], v: u128) {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    ToLif(u16),
    ToUplink,
    /// Every LIF but the sender (and the uplink when a LIF sent it).
    Flood,
    /// `mark_to_drop`.
    Drop,
    /// No destination set.
    NoRoute,
    /// The parser could not take the packet.
    ParseError,
}

/// A packet's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    /// Extra passes the program asked for (`recirculate`, at most 7).
    pub recirculate: u8,
    /// Cost units of one pass (base + states + tables + actions).
    pub cost: u32,
}

/// Pipeline counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub packets: u64,
    pub parse_errors: u64,
    pub drops: u64,
    pub no_route: u64,
    /// Counter or meter indices outside their array (the update was
    /// skipped).
    pub index_errors: u64,
}

/// One packet of a batch: its bytes (edited in place) and ingress LIF
/// (`std_meta::LIF_NONE` for the wire).
#[derive(Debug)]
pub struct Input<'a> {
    pub data: &'a mut [u8],
    pub ingress_lif: u16,
}

/// Per-packet state between the stages.
#[derive(Debug, Clone)]
struct PktState {
    /// Offset of each valid header.
    off: Vec<u16>,
    valid: u64,
    cost: u32,
    parse_error: bool,
    exited: bool,
}

/// Meter arrays of one meter declaration.
#[derive(Debug, Clone)]
enum MeterArray {
    Packets(Vec<Meter<meter::Packets>>),
    Bytes(Vec<Meter<meter::Bytes>>),
}

/// Why a table operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("no table {0}")]
    NoTable(u32),
    #[error("action {action} is not one of table {table}'s")]
    NoAction { table: String, action: u32 },
    #[error("table {table}: {what}")]
    Invalid { table: String, what: String },
    #[error("table {0} is full")]
    Full(String),
    #[error("table {0} already has an entry with that key")]
    Exists(String),
    #[error("table {0} has no entry with that key")]
    NotFound(String),
}

/// A loaded program with its run-time state.
#[derive(Debug, Clone)]
pub struct Pipeline {
    prog: Program,
    locs: Vec<Vec<Loc>>,
    rt: Runtime,
    /// Scratch: per packet of the batch.
    states: Vec<PktState>,
    /// Scratch: metadata of every packet of the batch, `meta.len()` each.
    meta: Vec<u64>,
}

/// What packets change: tables (their hit counts), meters, counters.
#[derive(Debug, Clone)]
struct Runtime {
    tables: Vec<Table>,
    meters: Vec<MeterArray>,
    counters: Vec<Vec<(u64, u64)>>,
    stats: Stats,
    /// Per-table (hits, misses).
    hits: Vec<(u64, u64)>,
}

impl Pipeline {
    /// Load a program (validated again: it may come from an image).
    pub fn new(prog: Program) -> Result<Pipeline, ProgramError> {
        prog.validate()?;
        let locs = prog
            .headers
            .iter()
            .map(|h| h.fields.iter().map(|f| Loc::new(f.bit_off, f.width)).collect())
            .collect();
        let meters = prog
            .meters
            .iter()
            .map(|m| match m.unit {
                MeterUnit::Packets => MeterArray::Packets(vec![Meter::Off; m.size as usize]),
                MeterUnit::Bytes => MeterArray::Bytes(vec![Meter::Off; m.size as usize]),
            })
            .collect();
        let counters = prog.counters.iter().map(|c| vec![(0, 0); c.size as usize]).collect();
        let mut p = Pipeline {
            rt: Runtime {
                tables: prog.tables.iter().map(Table::new).collect(),
                hits: vec![(0, 0); prog.tables.len()],
                meters,
                counters,
                stats: Stats::default(),
            },
            locs,
            states: Vec::new(),
            meta: Vec::new(),
            prog,
        };
        for t in 0..p.prog.tables.len() {
            for e in p.prog.tables[t].entries.clone() {
                let (key, mask) = p.concat(t, &e.key);
                p.rt.tables[t]
                    .insert(Entry {
                        key,
                        mask,
                        priority: e.priority,
                        hit: Hit {
                            action: e.action,
                            args: e.args.clone().into_boxed_slice(),
                        },
                    })
                    .map_err(|err| {
                        ProgramError::Invalid(format!("table {}: a program entry: {err:?}", p.prog.tables[t].name))
                    })?;
            }
        }
        Ok(p)
    }

    /// Decode, validate and load an image.
    pub fn from_image(image: &[u8]) -> Result<Pipeline, ProgramError> {
        Pipeline::new(Program::from_image(image)?)
    }

    pub fn program(&self) -> &Program {
        &self.prog
    }

    pub fn stats(&self) -> Stats {
        self.rt.stats
    }

    /// Counter `c` at `index`: (packets, bytes).
    pub fn counter(&self, c: u16, index: u32) -> Option<(u64, u64)> {
        self.rt.counters.get(usize::from(c))?.get(index as usize).copied()
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

    /// Key values and masks per field, concatenated (first field high).
    fn concat(&self, t: usize, parts: &[(u128, u128)]) -> (u128, u128) {
        let mut key = 0u128;
        let mut mask = 0u128;
        for (k, &(v, m)) in self.prog.tables[t].keys.iter().zip(parts) {
            let w = u32::from(k.width);
            key = key.checked_shl(w).unwrap_or(0) | (v & ones(w));
            mask = mask.checked_shl(w).unwrap_or(0) | (m & ones(w));
        }
        (key, mask)
    }

    /// Install (`add`) or remove a control-plane entry given in the ABI's
    /// form: key and mask bytes are the key fields concatenated, each
    /// big-endian in whole bytes; an LPM field's mask comes from
    /// `prefix_len`; parameters likewise, each big-endian in whole bytes.
    pub fn apply_entry(&mut self, e: &TableEntry, add: bool) -> Result<(), EntryError> {
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
        let table_err = |err: TableError| match err {
            TableError::Full => EntryError::Full(name.clone()),
            TableError::Exists => EntryError::Exists(name.clone()),
            TableError::NotFound => EntryError::NotFound(name.clone()),
            TableError::BadMask => EntryError::Invalid {
                table: name.clone(),
                what: "mask does not fit the match kinds".into(),
            },
        };
        if !add {
            return self.rt.tables[t].remove(key, mask, e.priority.get()).map_err(table_err);
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
        self.rt.tables[t]
            .insert(Entry {
                key,
                mask,
                priority: e.priority.get(),
                hit: Hit {
                    action: a as u16,
                    args: args.into_boxed_slice(),
                },
            })
            .map_err(table_err)
    }

    /// Remove an entry as [`Pipeline::entries`] listed it.
    pub fn remove_entry(&mut self, t: u16, e: &Entry) -> Result<(), TableError> {
        self.rt
            .tables
            .get_mut(usize::from(t))
            .ok_or(TableError::NotFound)?
            .remove(e.key, e.mask, e.priority)
    }

    /// Entries of table `t` as the control plane reads them back.
    pub fn entries(&self, t: u16) -> Option<Vec<Entry>> {
        self.rt.tables.get(usize::from(t)).map(|x| x.entries())
    }

    /// Run one packet.
    pub fn process(&mut self, now: Nanos, data: &mut [u8], ingress_lif: u16) -> Outcome {
        let mut out = Vec::with_capacity(1);
        self.process_batch(now, &mut [Input { data, ingress_lif }], &mut out);
        out[0]
    }

    /// Run a batch: the parser over every packet, then the ingress control
    /// over every packet. Appends one outcome per input to `out`.
    pub fn process_batch(&mut self, now: Nanos, batch: &mut [Input<'_>], out: &mut Vec<Outcome>) {
        let nm = self.prog.meta.len();
        let nh = self.prog.headers.len();
        if self.states.len() < batch.len() {
            self.states.resize(
                batch.len(),
                PktState {
                    off: vec![0; nh],
                    valid: 0,
                    cost: 0,
                    parse_error: false,
                    exited: false,
                },
            );
        }
        self.meta.clear();
        self.meta.resize(batch.len() * nm, 0);
        let mut states = std::mem::take(&mut self.states);
        let mut meta = std::mem::take(&mut self.meta);
        for (i, pkt) in batch.iter().enumerate() {
            let st = &mut states[i];
            let m = &mut meta[i * nm..(i + 1) * nm];
            m.fill(0);
            st.valid = 0;
            st.cost = self.prog.base_cost;
            st.exited = false;
            m[usize::from(std_meta::INGRESS_LIF)] = u64::from(pkt.ingress_lif);
            m[usize::from(std_meta::EGRESS_LIF)] = std_meta::LIF_NONE;
            m[usize::from(std_meta::PACKET_LENGTH)] = pkt.data.len() as u64;
            st.parse_error = !parse(&self.prog, &self.locs, pkt.data, st, m);
            if st.parse_error {
                m[usize::from(std_meta::PARSER_ERROR)] = 1;
            }
        }
        let mut ex = Exec {
            prog: &self.prog,
            locs: &self.locs,
            rt: &mut self.rt,
        };
        for (i, pkt) in batch.iter_mut().enumerate() {
            let st = &mut states[i];
            let m = &mut meta[i * nm..(i + 1) * nm];
            ex.rt.stats.packets += 1;
            if st.parse_error {
                ex.rt.stats.parse_errors += 1;
                out.push(Outcome {
                    verdict: Verdict::ParseError,
                    recirculate: 0,
                    cost: st.cost,
                });
                continue;
            }
            let mut cx = Cx {
                data: pkt.data,
                st,
                meta: m,
                params: &[],
                now,
            };
            ex.block(&ex.prog.ingress, &mut cx);
            out.push(ex.verdict(st, m));
        }
        self.states = states;
        self.meta = meta;
    }
}

/// The program and the state packets change, borrowed for a batch.
struct Exec<'a> {
    prog: &'a Program,
    locs: &'a [Vec<Loc>],
    rt: &'a mut Runtime,
}

impl<'a> Exec<'a> {
    fn verdict(&mut self, st: &PktState, m: &[u64]) -> Outcome {
        let verdict = if m[usize::from(std_meta::DROP)] != 0 {
            self.rt.stats.drops += 1;
            Verdict::Drop
        } else if m[usize::from(std_meta::FLOOD)] != 0 {
            Verdict::Flood
        } else if m[usize::from(std_meta::TO_UPLINK)] != 0 {
            Verdict::ToUplink
        } else if m[usize::from(std_meta::EGRESS_LIF)] != std_meta::LIF_NONE {
            Verdict::ToLif(m[usize::from(std_meta::EGRESS_LIF)] as u16)
        } else {
            self.rt.stats.no_route += 1;
            Verdict::NoRoute
        };
        Outcome {
            verdict,
            recirculate: (m[usize::from(std_meta::RECIRCULATE)] as u8).min(7),
            cost: st.cost,
        }
    }

    fn block(&mut self, b: &'a [Stmt], cx: &mut Cx<'_, '_>) {
        for s in b {
            if cx.st.exited {
                return;
            }
            self.stmt(s, cx);
        }
    }

    fn stmt(&mut self, s: &'a Stmt, cx: &mut Cx<'_, '_>) {
        match s {
            Stmt::Assign { dst, value } => {
                let v = eval(value, self.locs, cx.data, cx.st, cx.meta, cx.params);
                self.store(*dst, v, cx);
            }
            Stmt::Apply { table, on_hit, on_miss } => {
                let t = usize::from(*table);
                cx.st.cost += self.prog.tables[t].cost;
                let key = self.key(t, cx);
                let prog = self.prog;
                let (action, args, was_hit) = match self.rt.tables[t].lookup(key) {
                    Some(h) => {
                        // Copy the arguments out: the action may update the
                        // runtime the entry lives in.
                        let mut a = [0u64; limits::PARAMS];
                        let n = h.args.len().min(limits::PARAMS);
                        a[..n].copy_from_slice(&h.args[..n]);
                        self.rt.hits[t].0 += 1;
                        (h.action, Args::Inline(a, n), true)
                    }
                    None => {
                        self.rt.hits[t].1 += 1;
                        let d = &prog.tables[t];
                        (d.default_action, Args::Program(&d.default_args), false)
                    }
                };
                match &args {
                    Args::Inline(a, n) => self.run_action(action, &a[..*n], cx),
                    Args::Program(a) => self.run_action(action, a, cx),
                }
                self.block(if was_hit { on_hit } else { on_miss }, cx);
            }
            Stmt::If { cond, then, otherwise } => {
                let c = eval(cond, self.locs, cx.data, cx.st, cx.meta, cx.params);
                self.block(if c != 0 { then } else { otherwise }, cx);
            }
            Stmt::Call { action, args } => {
                let mut vals = [0u64; limits::PARAMS];
                for (v, a) in vals.iter_mut().zip(args) {
                    *v = eval(a, self.locs, cx.data, cx.st, cx.meta, cx.params);
                }
                self.run_action(*action, &vals[..args.len().min(limits::PARAMS)], cx);
            }
            Stmt::Drop => cx.meta[usize::from(std_meta::DROP)] = 1,
            Stmt::Count { counter, index } => {
                let i = eval(index, self.locs, cx.data, cx.st, cx.meta, cx.params) as usize;
                let len = cx.data.len() as u64;
                match self.rt.counters[usize::from(*counter)].get_mut(i) {
                    Some(c) => {
                        c.0 += 1;
                        c.1 += len;
                    }
                    None => self.rt.stats.index_errors += 1,
                }
            }
            Stmt::Meter { meter, index, dst } => {
                let i = eval(index, self.locs, cx.data, cx.st, cx.meta, cx.params) as usize;
                let now = cx.now;
                let len = cx.data.len() as u64;
                let color = match &mut self.rt.meters[usize::from(*meter)] {
                    MeterArray::Packets(v) => v.get_mut(i).map(|m| m.color(now, meter::Amount::new(1))),
                    MeterArray::Bytes(v) => v.get_mut(i).map(|m| m.color(now, meter::Amount::new(len))),
                };
                let code = match color {
                    Some(Color::Green) => 0,
                    Some(Color::Yellow) => 1,
                    Some(Color::Red) => 2,
                    None => {
                        self.rt.stats.index_errors += 1;
                        0
                    }
                };
                self.store(*dst, code, cx);
            }
            Stmt::Exit => cx.st.exited = true,
        }
    }

    fn run_action(&mut self, a: u16, args: &[u64], cx: &mut Cx<'_, '_>) {
        let act = &self.prog.actions[usize::from(a)];
        cx.st.cost += act.cost;
        if act.body.is_empty() {
            return;
        }
        let mut inner = Cx {
            data: &mut *cx.data,
            st: &mut *cx.st,
            meta: &mut *cx.meta,
            params: args,
            now: cx.now,
        };
        self.block(&act.body, &mut inner);
    }

    fn store(&self, dst: FieldRef, v: u64, cx: &mut Cx<'_, '_>) {
        match dst {
            FieldRef::Meta(i) => cx.meta[usize::from(i)] = v & mask64(self.prog.meta[usize::from(i)].width),
            FieldRef::Header { header, field } => {
                let h = usize::from(header);
                if cx.st.valid & (1u64 << h) == 0 {
                    return;
                }
                let off = usize::from(cx.st.off[h]);
                self.locs[h][usize::from(field)].write(&mut cx.data[off..], u128::from(v));
            }
        }
    }

    /// The table's key for the packet.
    fn key(&self, t: usize, cx: &Cx<'_, '_>) -> u128 {
        let mut key = 0u128;
        for k in &self.prog.tables[t].keys {
            let w = u32::from(k.width);
            let v = match k.expr {
                KeyExpr::Valid(h) => u128::from(cx.st.valid >> h & 1),
                KeyExpr::Field(FieldRef::Meta(i)) => u128::from(cx.meta[usize::from(i)]),
                KeyExpr::Field(FieldRef::Header { header, field }) => {
                    let h = usize::from(header);
                    if cx.st.valid & (1u64 << h) == 0 {
                        0
                    } else {
                        self.locs[h][usize::from(field)].read(&cx.data[usize::from(cx.st.off[h])..])
                    }
                }
            };
            key = key.checked_shl(w).unwrap_or(0) | v;
        }
        key
    }
}

/// Run the parser; false on a parser error.
fn parse(prog: &Program, locs: &[Vec<Loc>], data: &[u8], st: &mut PktState, m: &mut [u64]) -> bool {
    let mut at = 0usize;
    let mut state = 0usize;
    for _ in 0..limits::PARSE_STEPS {
        let s = &prog.parser[state];
        st.cost += s.cost;
        for op in &s.ops {
            match op {
                ParserOp::Extract(h) => {
                    let h = usize::from(*h);
                    let len = usize::from(prog.headers[h].len);
                    if at + len > data.len() || st.valid & (1u64 << h) != 0 {
                        return false;
                    }
                    st.off[h] = at as u16;
                    st.valid |= 1u64 << h;
                    at += len;
                }
                ParserOp::Assign { dst, value } => {
                    let v = eval(value, locs, data, st, m, &[]);
                    if let FieldRef::Meta(i) = dst {
                        m[usize::from(*i)] = v & mask64(prog.meta[usize::from(*i)].width);
                    }
                }
            }
        }
        let next = match &s.transition {
            Transition::Next(n) => *n,
            Transition::Select { keys, cases, default } => {
                let mut vals = [0u64; limits::KEYS];
                for (k, e) in keys.iter().enumerate() {
                    vals[k] = eval(e, locs, data, st, m, &[]);
                }
                cases
                    .iter()
                    .find(|c| c.matches.iter().zip(&vals).all(|(&(v, mk), &x)| x & mk == v & mk))
                    .map(|c| c.next)
                    .unwrap_or(*default)
            }
        };
        match next {
            Next::Accept => return true,
            Next::Reject => return false,
            Next::State(n) => state = usize::from(n),
        }
    }
    false
}

/// Arguments of the action a table chose.
enum Args<'a> {
    Inline([u64; limits::PARAMS], usize),
    Program(&'a [u64]),
}

struct Cx<'d, 'p> {
    data: &'d mut [u8],
    st: &'d mut PktState,
    meta: &'d mut [u64],
    params: &'p [u64],
    now: Nanos,
}

/// `w` low bits set, w <= 64.
#[inline(always)]
fn mask64(w: u16) -> u64 {
    if w >= 64 {
        u64::MAX
    } else {
        (1u64 << w) - 1
    }
}

fn be(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |a, &x| (a << 8) | u128::from(x))
}

/// Evaluate an expression (validated: widths <= 64, indices in range).
fn eval(e: &Expr, locs: &[Vec<Loc>], data: &[u8], st: &PktState, m: &[u64], params: &[u64]) -> u64 {
    match e {
        Expr::Const { value, .. } => *value,
        Expr::Field(FieldRef::Meta(i)) => m[usize::from(*i)],
        Expr::Field(FieldRef::Header { header, field }) => {
            let h = usize::from(*header);
            if st.valid & (1u64 << h) == 0 {
                return 0;
            }
            locs[h][usize::from(*field)].read(&data[usize::from(st.off[h])..]) as u64
        }
        Expr::Param(i) => params.get(usize::from(*i)).copied().unwrap_or(0),
        Expr::Valid(h) => st.valid >> h & 1,
        Expr::Unary { op, arg, width } => {
            let a = eval(arg, locs, data, st, m, params);
            match op {
                UnOp::Not => u64::from(a == 0),
                UnOp::BitNot => !a & mask64(*width),
                UnOp::Neg => a.wrapping_neg() & mask64(*width),
            }
        }
        Expr::Binary { op, lhs, rhs, width } => {
            let a = eval(lhs, locs, data, st, m, params);
            let b = eval(rhs, locs, data, st, m, params);
            let w = mask64(*width);
            match op {
                BinOp::Add => a.wrapping_add(b) & w,
                BinOp::Sub => a.wrapping_sub(b) & w,
                BinOp::Mul => a.wrapping_mul(b) & w,
                BinOp::BitAnd => a & b,
                BinOp::BitOr => a | b,
                BinOp::BitXor => a ^ b,
                BinOp::Shl => a.checked_shl(b.min(64) as u32).unwrap_or(0) & w,
                BinOp::Shr => a.checked_shr(b.min(64) as u32).unwrap_or(0),
                BinOp::Eq => u64::from(a == b),
                BinOp::Ne => u64::from(a != b),
                BinOp::Lt => u64::from(a < b),
                BinOp::Le => u64::from(a <= b),
                BinOp::Gt => u64::from(a > b),
                BinOp::Ge => u64::from(a >= b),
                // Expressions have no side effects: evaluating both sides
                // is the same as short-circuiting.
                BinOp::And => u64::from(a != 0 && b != 0),
                BinOp::Or => u64::from(a != 0 || b != 0),
            }
        }
        Expr::Slice { arg, hi, lo } => {
            let a = eval(arg, locs, data, st, m, params);
            (a >> lo) & mask64(hi - lo + 1)
        }
        Expr::Cast { arg, width } => eval(arg, locs, data, st, m, params) & mask64(*width),
    }
}
