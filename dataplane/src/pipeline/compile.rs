//! Load-time compilation of a validated program into closures that run a
//! whole batch at a time (vector processing, as VPP does).
//!
//! Walking the IR per packet pays, at every node, a dispatch on the node's
//! kind and the lookups its operands name. Here each node becomes a
//! closure that captures everything resolved (a field read: its byte
//! position, span, shift, mask and its header's validity bit; an operator:
//! the operation itself), and each closure runs over every packet of the
//! batch that reaches it, selected by a bit mask. The dispatch is paid
//! once per node per batch instead of once per node per packet; an `if`
//! splits the mask, a table apply groups the hits by action.

use super::exec::{Input, Loc, MeterArray, ParserError, PktState, Runtime};
use super::ir::*;
use super::table::ones;
use crate::meter::{self, Color};
use std::sync::Arc;

/// Most packets a compiled batch holds (one bit each in a mask).
pub(super) const LANES: usize = 64;

/// Values of an expression, one per packet of a batch of `L`.
pub(super) type Vals<const L: usize> = [u64; L];

/// The batch as the compiled program sees it.
pub(super) struct Vb<'a, 'b> {
    pub pkts: &'a mut [Input<'b>],
    pub st: &'a mut [PktState],
    /// Metadata, `nm` slots per packet.
    pub meta: &'a mut [u64],
    pub nm: usize,
    /// Each packet's running action's parameters.
    pub params: &'a mut [[u64; limits::PARAMS]],
    /// Packets that executed `exit`.
    pub exited: u64,
    pub now: u64,
}

/// An expression over the masked packets (of a batch of at most `L`).
pub(super) type ExprFn<const L: usize> = Arc<dyn Fn(&Vb<'_, '_>, u64, &mut Vals<L>) + Send + Sync>;
/// A statement over the masked packets.
pub(super) type StmtFn = Arc<dyn Fn(&mut Runtime, &mut Vb<'_, '_>, u64) + Send + Sync>;
/// A store of one value into one packet's header field.
type StoreFn = Arc<dyn Fn(&mut Vb<'_, '_>, usize, u64) + Send + Sync>;

/// Where a statement stores one value per packet: a metadata field
/// (inline: the usual destination) or a header field (through a closure
/// that knows its position and validity bit).
enum Store {
    Meta { f: usize, w: u64 },
    Header(StoreFn),
}

impl Store {
    /// Store `v` into packet `i`.
    #[inline(always)]
    fn put(&self, b: &mut Vb<'_, '_>, i: usize, v: u64) {
        match self {
            Store::Meta { f, w } => b.meta[i * b.nm + f] = v & w,
            Store::Header(st) => st(b, i, v),
        }
    }
}
/// A condition over the masked packets: the mask of those it holds for.
type CondFn = Arc<dyn Fn(&Vb<'_, '_>, u64) -> u64 + Send + Sync>;

/// The packets of `mask`, in order.
#[inline(always)]
fn lanes(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if mask == 0 {
            return None;
        }
        let i = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        Some(i)
    })
}

/// A compiled parser state.
pub(super) struct CState {
    pub cost: u32,
    pub ops: Vec<COp>,
    pub transition: CTransition,
}

pub(super) enum COp {
    Extract { header: usize, len: usize },
    Assign { meta: usize, mask: u64, value: Expr },
}

pub(super) enum CTransition {
    Next(Next),
    /// One key read straight from a header (most selects).
    Select1 {
        key: (usize, u64, Loc),
        cases: Vec<(u64, u64, Next)>,
        default: Next,
    },
    Select {
        keys: Vec<SelKey>,
        cases: Vec<(Vec<(u64, u64)>, Next)>,
        default: Next,
    },
}

/// A parser select key.
pub(super) enum SelKey {
    Header(usize, u64, Loc),
    Expr(Expr),
}

/// The compiled program: its parser, and its ingress for batches of up to
/// `LANES` and for single packets (whose scratch vectors are one value
/// long instead of 64).
pub(super) struct Compiled {
    pub parser: Vec<CState>,
    pub ingress: StmtFn,
    pub ingress1: StmtFn,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").field("states", &self.parser.len()).finish()
    }
}

/// `w` low bits set, w <= 64.
#[inline(always)]
pub(super) fn mask64(w: u16) -> u64 {
    if w >= 64 {
        u64::MAX
    } else {
        (1u64 << w) - 1
    }
}

struct Compiler<'p, const L: usize> {
    prog: &'p Program,
    locs: &'p [Vec<Loc>],
    /// Compiled action bodies and costs, shared by every table and call.
    actions: Vec<(u32, StmtFn)>,
}

pub(super) fn compile(prog: &Program, locs: &[Vec<Loc>]) -> Compiled {
    let mut wide = Compiler::<LANES> {
        prog,
        locs,
        actions: Vec::new(),
    };
    wide.compile_actions();
    let mut one = Compiler::<1> {
        prog,
        locs,
        actions: Vec::new(),
    };
    one.compile_actions();
    Compiled {
        parser: prog.parser.iter().map(|s| wide.state(s)).collect(),
        ingress: wide.block(&prog.ingress),
        ingress1: one.block(&prog.ingress),
    }
}

impl<const L: usize> Compiler<'_, L> {
    fn compile_actions(&mut self) {
        for a in &self.prog.actions {
            let body = self.block(&a.body);
            self.actions.push((a.cost, body));
        }
    }

    fn state(&self, s: &ParserState) -> CState {
        CState {
            cost: s.cost,
            ops: s
                .ops
                .iter()
                .map(|o| match o {
                    ParserOp::Extract(h) => COp::Extract {
                        header: usize::from(*h),
                        len: usize::from(self.prog.headers[usize::from(*h)].len),
                    },
                    ParserOp::Assign { dst, value } => {
                        let m = match dst {
                            FieldRef::Meta(m) => usize::from(*m),
                            // Validated: the parser assigns only metadata.
                            FieldRef::Header { .. } => usize::MAX,
                        };
                        COp::Assign {
                            meta: m,
                            mask: self.prog.meta.get(m).map_or(0, |f| mask64(f.width)),
                            value: value.clone(),
                        }
                    }
                })
                .collect(),
            transition: match &s.transition {
                Transition::Next(n) => CTransition::Next(*n),
                Transition::Select { keys, cases, default }
                    if keys.len() == 1 && matches!(keys[0], Expr::Field(FieldRef::Header { .. })) =>
                {
                    let Expr::Field(FieldRef::Header { header, field }) = keys[0] else {
                        unreachable!("matched above")
                    };
                    CTransition::Select1 {
                        key: self.field(header, field),
                        cases: cases
                            .iter()
                            .map(|c| {
                                let (v, m) = c.matches[0];
                                (v & m, m, c.next)
                            })
                            .collect(),
                        default: *default,
                    }
                }
                Transition::Select { keys, cases, default } => CTransition::Select {
                    keys: keys.iter().map(|k| self.select_key(k)).collect(),
                    cases: cases
                        .iter()
                        .map(|c| (c.matches.iter().map(|&(v, m)| (v & m, m)).collect(), c.next))
                        .collect(),
                    default: *default,
                },
            },
        }
    }

    /// A select key: a header field (the common case, read directly), or
    /// any other expression, evaluated from the IR.
    fn select_key(&self, e: &Expr) -> SelKey {
        match e {
            Expr::Field(FieldRef::Header { header, field }) => {
                let (h, bit, loc) = self.field(*header, *field);
                SelKey::Header(h, bit, loc)
            }
            other => SelKey::Expr(other.clone()),
        }
    }

    fn field(&self, header: u16, field: u16) -> (usize, u64, Loc) {
        let h = usize::from(header);
        (h, 1u64 << h, self.locs[h][usize::from(field)])
    }

    fn expr(&self, e: &Expr) -> ExprFn<L> {
        // Fused shapes: a metadata field cast, or compared with a
        // constant, in one pass with no inner call.
        match e {
            Expr::Cast { arg, width } => {
                if let Expr::Field(FieldRef::Meta(f)) = **arg {
                    let (f, w) = (usize::from(f), mask64(*width));
                    return Arc::new(move |b, m, out| lanes(m).for_each(|i| out[i] = b.meta[i * b.nm + f] & w));
                }
            }
            Expr::Binary { op, lhs, rhs, width } => {
                if let (Expr::Field(FieldRef::Meta(f)), Expr::Const { value: k, .. }) = (&**lhs, &**rhs) {
                    let (f, k, w, op) = (usize::from(*f), *k, mask64(*width), *op);
                    return Arc::new(move |b, m, out| {
                        lanes(m).for_each(|i| out[i] = apply_op(op, b.meta[i * b.nm + f], k, w))
                    });
                }
            }
            _ => {}
        }
        match e {
            Expr::Const { value, .. } => {
                let v = *value;
                Arc::new(move |_, m, out| lanes(m).for_each(|i| out[i] = v))
            }
            Expr::Field(FieldRef::Meta(f)) => {
                let f = usize::from(*f);
                Arc::new(move |b, m, out| lanes(m).for_each(|i| out[i] = b.meta[i * b.nm + f]))
            }
            Expr::Field(FieldRef::Header { header, field }) => {
                let (h, bit, loc) = self.field(*header, *field);
                Arc::new(move |b, m, out| {
                    for i in lanes(m) {
                        let st = &b.st[i];
                        out[i] = if st.valid & bit == 0 {
                            0
                        } else {
                            loc.value(&b.pkts[i].data[usize::from(st.off[h])..])
                        };
                    }
                })
            }
            Expr::Param(p) => {
                let p = usize::from(*p).min(limits::PARAMS - 1);
                Arc::new(move |b, m, out| lanes(m).for_each(|i| out[i] = b.params[i][p]))
            }
            Expr::Valid(h) => {
                let bit = 1u64 << h;
                Arc::new(move |b, m, out| lanes(m).for_each(|i| out[i] = u64::from(b.st[i].valid & bit != 0)))
            }
            Expr::Unary { op, arg, width } => {
                let a = self.expr(arg);
                let w = mask64(*width);
                let op = *op;
                Arc::new(move |b, m, out| {
                    a(b, m, out);
                    for i in lanes(m) {
                        out[i] = match op {
                            UnOp::Not => u64::from(out[i] == 0),
                            UnOp::BitNot => !out[i] & w,
                            UnOp::Neg => out[i].wrapping_neg() & w,
                        };
                    }
                })
            }
            Expr::Binary { op, lhs, rhs, width } => self.binary(*op, lhs, rhs, mask64(*width)),
            Expr::Slice { arg, hi, lo } => {
                let a = self.expr(arg);
                let (lo, w) = (u32::from(*lo), mask64(hi - lo + 1));
                Arc::new(move |b, m, out| {
                    a(b, m, out);
                    lanes(m).for_each(|i| out[i] = (out[i] >> lo) & w);
                })
            }
            Expr::Cast { arg, width } => {
                let a = self.expr(arg);
                let w = mask64(*width);
                Arc::new(move |b, m, out| {
                    a(b, m, out);
                    lanes(m).for_each(|i| out[i] &= w);
                })
            }
        }
    }

    fn binary(&self, op: BinOp, lhs: &Expr, rhs: &Expr, w: u64) -> ExprFn<L> {
        let a = self.expr(lhs);
        // With a constant on the right (the common condition), no second
        // vector.
        if let Expr::Const { value: k, .. } = rhs {
            let k = *k;
            return Arc::new(move |b, m, out| {
                a(b, m, out);
                for i in lanes(m) {
                    out[i] = apply_op(op, out[i], k, w);
                }
            });
        }
        let c = self.expr(rhs);
        Arc::new(move |b, m, out| {
            a(b, m, out);
            let mut r = [0u64; L];
            c(b, m, &mut r);
            for i in lanes(m) {
                out[i] = apply_op(op, out[i], r[i], w);
            }
        })
    }

    /// A condition, straight to a mask for the common shapes (validity,
    /// a metadata field compared with a constant, `!`, `&&`, `||` of
    /// those), else through the expression's values.
    fn cond(&self, e: &Expr) -> CondFn {
        match e {
            Expr::Valid(h) => {
                let bit = 1u64 << h;
                return Arc::new(move |b, m| {
                    let mut yes = 0;
                    for i in lanes(m) {
                        yes |= u64::from(b.st[i].valid & bit != 0) << i;
                    }
                    yes
                });
            }
            Expr::Unary { op: UnOp::Not, arg, .. } => {
                let a = self.cond(arg);
                return Arc::new(move |b, m| m & !a(b, m));
            }
            Expr::Binary {
                op: BinOp::And,
                lhs,
                rhs,
                ..
            } => {
                let (l, r) = (self.cond(lhs), self.cond(rhs));
                return Arc::new(move |b, m| {
                    let x = l(b, m);
                    if x == 0 {
                        0
                    } else {
                        r(b, x)
                    }
                });
            }
            Expr::Binary {
                op: BinOp::Or,
                lhs,
                rhs,
                ..
            } => {
                let (l, r) = (self.cond(lhs), self.cond(rhs));
                return Arc::new(move |b, m| {
                    let x = l(b, m);
                    if x == m {
                        m
                    } else {
                        x | r(b, m & !x)
                    }
                });
            }
            Expr::Binary { op, lhs, rhs, width }
                if matches!(
                    op,
                    BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
                ) =>
            {
                if let (Expr::Field(FieldRef::Meta(f)), Expr::Const { value: k, .. }) = (&**lhs, &**rhs) {
                    let (f, k, w, op) = (usize::from(*f), *k, mask64(*width), *op);
                    return Arc::new(move |b, m| {
                        let mut yes = 0;
                        for i in lanes(m) {
                            yes |= u64::from(apply_op(op, b.meta[i * b.nm + f], k, w) != 0) << i;
                        }
                        yes
                    });
                }
            }
            _ => {}
        }
        let c = self.expr(e);
        Arc::new(move |b, m| {
            let mut x = [0u64; L];
            c(b, m, &mut x);
            let mut yes = 0u64;
            for i in lanes(m) {
                yes |= u64::from(x[i] != 0) << i;
            }
            yes
        })
    }

    fn store(&self, dst: FieldRef) -> Store {
        match dst {
            FieldRef::Meta(f) => {
                let f = usize::from(f);
                Store::Meta {
                    f,
                    w: mask64(self.prog.meta[f].width),
                }
            }
            FieldRef::Header { header, field } => {
                let (h, bit, loc) = self.field(header, field);
                Store::Header(Arc::new(move |b, i, v| {
                    if b.st[i].valid & bit != 0 {
                        let off = usize::from(b.st[i].off[h]);
                        loc.write(&mut b.pkts[i].data[off..], u128::from(v));
                    }
                }))
            }
        }
    }

    fn block(&self, stmts: &[Stmt]) -> StmtFn {
        let stmts: Vec<StmtFn> = stmts.iter().map(|s| self.stmt(s)).collect();
        match stmts.len() {
            0 => Arc::new(|_, _, _| {}),
            1 => stmts.into_iter().next().expect("one statement"),
            _ => Arc::new(move |rt, b, m| {
                for s in &stmts {
                    let live = m & !b.exited;
                    if live == 0 {
                        return;
                    }
                    s(rt, b, live);
                }
            }),
        }
    }

    fn stmt(&self, s: &Stmt) -> StmtFn {
        match s {
            Stmt::Assign { dst, value } => {
                let v = self.expr(value);
                let st = self.store(*dst);
                Arc::new(move |_, b, m| {
                    let mut x = [0u64; L];
                    v(b, m, &mut x);
                    for i in lanes(m) {
                        st.put(b, i, x[i]);
                    }
                })
            }
            Stmt::If { cond, then, otherwise } => {
                let c = self.cond(cond);
                let t = self.block(then);
                let o = self.block(otherwise);
                Arc::new(move |rt, b, m| {
                    let yes = c(b, m);
                    if yes != 0 {
                        t(rt, b, yes);
                    }
                    if m & !yes != 0 {
                        o(rt, b, m & !yes);
                    }
                })
            }
            Stmt::Apply { table, on_hit, on_miss } => self.apply(usize::from(*table), on_hit, on_miss),
            Stmt::Call { action, args } => {
                let (cost, body) = self.actions[usize::from(*action)].clone();
                let args: Vec<ExprFn<L>> = args.iter().map(|a| self.expr(a)).collect();
                Arc::new(move |rt, b, m| {
                    let mut saved = [[0u64; limits::PARAMS]; L];
                    for i in lanes(m) {
                        saved[i] = b.params[i];
                    }
                    for (k, a) in args.iter().enumerate() {
                        let mut x = [0u64; L];
                        a(b, m, &mut x);
                        for i in lanes(m) {
                            b.params[i][k] = x[i];
                        }
                    }
                    for i in lanes(m) {
                        b.st[i].cost = b.st[i].cost.saturating_add(cost);
                    }
                    body(rt, b, m);
                    for i in lanes(m) {
                        b.params[i] = saved[i];
                    }
                })
            }
            Stmt::Drop => Arc::new(|_, b, m| {
                for i in lanes(m) {
                    b.meta[i * b.nm + usize::from(std_meta::DROP)] = 1;
                }
            }),
            Stmt::Exit => Arc::new(|_, b, m| b.exited |= m),
            Stmt::Count { counter, index } => {
                let c = usize::from(*counter);
                let idx = self.expr(index);
                Arc::new(move |rt, b, m| {
                    let mut x = [0u64; L];
                    idx(b, m, &mut x);
                    let arr = &mut rt.counters[c];
                    // Runs of packets on the same index (most: one LIF's
                    // burst, one color) are summed first and added once, not
                    // one dependent increment per packet.
                    let mut run: Option<(u64, u64, u64)> = None;
                    let mut add = |run: (u64, u64, u64), errors: &mut u64| match arr.get_mut(run.0 as usize) {
                        Some(v) => {
                            v.0 += run.1;
                            v.1 += run.2;
                        }
                        None => *errors += run.1,
                    };
                    for i in lanes(m) {
                        let len = b.pkts[i].data.len() as u64;
                        run = match run {
                            Some((idx, n, bytes)) if idx == x[i] => Some((idx, n + 1, bytes + len)),
                            Some(r) => {
                                add(r, &mut rt.stats.index_errors);
                                Some((x[i], 1, len))
                            }
                            None => Some((x[i], 1, len)),
                        };
                    }
                    if let Some(r) = run {
                        add(r, &mut rt.stats.index_errors);
                    }
                })
            }
            Stmt::Meter { meter, index, dst } => {
                let mt = usize::from(*meter);
                let idx = self.expr(index);
                let st = self.store(*dst);
                Arc::new(move |rt, b, m| {
                    let mut x = [0u64; L];
                    idx(b, m, &mut x);
                    let now = b.now;
                    let mut colors = [None; L];
                    match &mut rt.meters[mt] {
                        MeterArray::Packets(v) => {
                            for i in lanes(m) {
                                colors[i] = v.get_mut(x[i] as usize).map(|x| x.color(now, meter::Amount::new(1)));
                            }
                        }
                        MeterArray::Bytes(v) => {
                            for i in lanes(m) {
                                let len = b.pkts[i].data.len() as u64;
                                colors[i] = v.get_mut(x[i] as usize).map(|x| x.color(now, meter::Amount::new(len)));
                            }
                        }
                    }
                    for i in lanes(m) {
                        let code = match colors[i] {
                            Some(Color::Green) => 0,
                            Some(Color::Yellow) => 1,
                            Some(Color::Red) => 2,
                            None => {
                                rt.stats.index_errors += 1;
                                0
                            }
                        };
                        st.put(b, i, code);
                    }
                })
            }
        }
    }

    fn apply(&self, t: usize, on_hit: &[Stmt], on_miss: &[Stmt]) -> StmtFn {
        let def = &self.prog.tables[t];
        let keys: Vec<(u32, KeyPart)> = def
            .keys
            .iter()
            .map(|k| {
                let part = match k.expr {
                    KeyExpr::Valid(h) => KeyPart::Valid(1u64 << h),
                    KeyExpr::Field(FieldRef::Meta(f)) => KeyPart::Meta(usize::from(f)),
                    KeyExpr::Field(FieldRef::Header { header, field }) => {
                        let (h, bit, loc) = self.field(header, field);
                        KeyPart::Header(h, bit, loc)
                    }
                };
                (u32::from(k.width), part)
            })
            .collect();
        let table_cost = def.cost;
        let actions: Vec<(u32, StmtFn)> = self.actions.clone();
        // Actions with nothing to run (NoAction): skipped, costs aside.
        let empty: Vec<bool> = self.prog.actions.iter().map(|a| a.body.is_empty()).collect();
        let d_nparams = self.prog.actions[usize::from(def.default_action)].params.len();
        let default = usize::from(def.default_action);
        let mut d_args = [0u64; limits::PARAMS];
        for (d, a) in d_args.iter_mut().zip(&def.default_args) {
            *d = *a;
        }
        let hit_block = self.block(on_hit);
        let miss_block = self.block(on_miss);
        let branches = !on_hit.is_empty() || !on_miss.is_empty();
        Arc::new(move |rt, b, m| {
            // Each packet's action: table entry or default.
            let mut chosen = [default as u16; L];
            let mut hits = 0u64;
            if table_cost != 0 {
                for i in lanes(m) {
                    b.st[i].cost = b.st[i].cost.saturating_add(table_cost);
                }
            }
            if !rt.tables[t].is_empty() {
                for i in lanes(m) {
                    let mut key = 0u128;
                    for (w, part) in &keys {
                        let v = part.read(b, i);
                        key = key.checked_shl(*w).unwrap_or(0) | (v & ones(*w));
                    }
                    if let Some(h) = rt.tables[t].lookup(key) {
                        hits |= 1 << i;
                        chosen[i] = h.action;
                        let n = h.args.len().min(limits::PARAMS);
                        if n > 0 {
                            b.params[i][..n].copy_from_slice(&h.args[..n]);
                        }
                    }
                }
            }
            rt.hits[t].0 += u64::from(hits.count_ones());
            rt.hits[t].1 += u64::from((m & !hits).count_ones());
            if d_nparams > 0 {
                for i in lanes(m & !hits) {
                    b.params[i] = d_args;
                }
            }
            // Run each action once over the packets that chose it.
            let mut todo = m;
            while todo != 0 {
                let a = chosen[todo.trailing_zeros() as usize];
                let mut group = 0u64;
                for i in lanes(todo) {
                    if chosen[i] == a {
                        group |= 1 << i;
                    }
                }
                todo &= !group;
                let (cost, body) = &actions[usize::from(a)];
                if *cost != 0 {
                    for i in lanes(group) {
                        b.st[i].cost = b.st[i].cost.saturating_add(*cost);
                    }
                }
                if !empty[usize::from(a)] {
                    body(rt, b, group);
                }
            }
            if branches {
                let live = m & !b.exited;
                if live & hits != 0 {
                    hit_block(rt, b, live & hits);
                }
                if live & !hits != 0 {
                    miss_block(rt, b, live & !hits);
                }
            }
        })
    }
}

/// Where a table key part comes from.
enum KeyPart {
    Valid(u64),
    Meta(usize),
    Header(usize, u64, Loc),
}

impl KeyPart {
    #[inline(always)]
    fn read(&self, b: &Vb<'_, '_>, i: usize) -> u128 {
        match self {
            KeyPart::Valid(bit) => u128::from(b.st[i].valid & bit != 0),
            KeyPart::Meta(f) => u128::from(b.meta[i * b.nm + f]),
            KeyPart::Header(h, bit, loc) => {
                let st = &b.st[i];
                if st.valid & bit == 0 {
                    0
                } else {
                    loc.read(&b.pkts[i].data[usize::from(st.off[*h])..])
                }
            }
        }
    }
}

#[inline(always)]
fn apply_op(op: BinOp, a: u64, b: u64, w: u64) -> u64 {
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
        // Expressions have no side effects: evaluating both sides is the
        // same as short-circuiting.
        BinOp::And => u64::from(a != 0 && b != 0),
        BinOp::Or => u64::from(a != 0 || b != 0),
    }
}

/// Evaluate an IR expression for one packet (parser assignments and
/// unusual select keys, which are rare: the parser runs per packet).
fn eval1(e: &Expr, locs: &[Vec<Loc>], data: &[u8], st: &PktState, meta: &[u64]) -> u64 {
    match e {
        Expr::Const { value, .. } => *value,
        Expr::Field(FieldRef::Meta(f)) => meta[usize::from(*f)],
        Expr::Field(FieldRef::Header { header, field }) => {
            let h = usize::from(*header);
            if st.valid & (1u64 << h) == 0 {
                0
            } else {
                locs[h][usize::from(*field)].value(&data[usize::from(st.off[h])..])
            }
        }
        Expr::Param(_) => 0,
        Expr::Valid(h) => u64::from(st.valid & (1u64 << h) != 0),
        Expr::Unary { op, arg, width } => {
            let a = eval1(arg, locs, data, st, meta);
            match op {
                UnOp::Not => u64::from(a == 0),
                UnOp::BitNot => !a & mask64(*width),
                UnOp::Neg => a.wrapping_neg() & mask64(*width),
            }
        }
        Expr::Binary { op, lhs, rhs, width } => apply_op(
            *op,
            eval1(lhs, locs, data, st, meta),
            eval1(rhs, locs, data, st, meta),
            mask64(*width),
        ),
        Expr::Slice { arg, hi, lo } => (eval1(arg, locs, data, st, meta) >> lo) & mask64(hi - lo + 1),
        Expr::Cast { arg, width } => eval1(arg, locs, data, st, meta) & mask64(*width),
    }
}

/// Run the compiled parser on one packet.
pub(super) fn parse(
    states: &[CState],
    locs: &[Vec<Loc>],
    data: &[u8],
    st: &mut PktState,
    meta: &mut [u64],
) -> ParserError {
    let mut at = 0usize;
    let mut state = 0usize;
    for _ in 0..limits::PARSE_STEPS {
        let s = &states[state];
        st.cost = st.cost.saturating_add(s.cost);
        for op in &s.ops {
            match op {
                COp::Extract { header, len } => {
                    let bit = 1u64 << header;
                    if st.valid & bit != 0 {
                        return ParserError::StackOutOfBounds;
                    }
                    if at + len > data.len() {
                        return ParserError::PacketTooShort;
                    }
                    st.off[*header] = at as u16;
                    st.valid |= bit;
                    at += len;
                }
                COp::Assign { meta: f, mask, value } => {
                    let v = eval1(value, locs, data, st, meta);
                    if let Some(slot) = meta.get_mut(*f) {
                        *slot = v & mask;
                    }
                }
            }
        }
        let next = match &s.transition {
            CTransition::Next(n) => *n,
            CTransition::Select1 {
                key: (h, bit, loc),
                cases,
                default,
            } => {
                let x = if st.valid & bit != 0 {
                    loc.value(&data[usize::from(st.off[*h])..])
                } else {
                    0
                };
                cases
                    .iter()
                    .find(|&&(v, m, _)| x & m == v)
                    .map_or(*default, |&(_, _, n)| n)
            }
            CTransition::Select { keys, cases, default } => {
                let mut vals = [0u64; limits::KEYS];
                for (v, k) in vals.iter_mut().zip(keys) {
                    *v = match k {
                        SelKey::Header(h, bit, loc) if st.valid & bit != 0 => {
                            loc.value(&data[usize::from(st.off[*h])..])
                        }
                        SelKey::Header(..) => 0,
                        SelKey::Expr(e) => eval1(e, locs, data, st, meta),
                    };
                }
                cases
                    .iter()
                    .find(|(ms, _)| ms.iter().zip(&vals).all(|(&(v, mk), &x)| x & mk == v))
                    .map(|(_, n)| *n)
                    .unwrap_or(*default)
            }
        };
        match next {
            Next::Accept => return ParserError::NoError,
            Next::Reject => return ParserError::NoMatch,
            Next::State(n) => state = usize::from(n),
        }
    }
    ParserError::ParserTimeout
}
