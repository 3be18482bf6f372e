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

mod expr;
mod stmt;

use super::exec::{Input, Loc, MeterArray, ParserError, PktState, Runtime, NO_SLOT};
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
