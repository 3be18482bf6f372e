//! Random pipeline programs for differential tests: the IR's generator.
//!
//! [`program`] builds a program from a seed: headers with fields of odd
//! widths and offsets (wider than 64 bits and spanning 9 bytes too), user
//! metadata, a parser of up to five states with extracts, metadata
//! assignments and selects (loops included, so timeouts and extracting a
//! header twice happen), actions with parameters, exact, LPM and ternary
//! tables with program entries, meters and counters (indices that fall
//! outside the arrays too), direct counters and direct meters on some
//! tables (with actions of their own that read the direct meter, run on
//! hits and as the default action on misses), and an ingress control of
//! nested ifs, applies
//! with hit and miss branches, calls, drops, exits and every expression
//! operator. Not every draw is valid; [`program`] returns only programs
//! that pass [`Program::validate`] and load. [`packets`] makes packets
//! that follow the program's headers (so parsing gets past the first
//! state) with random bytes and lengths.
//!
//! Deterministic: a seed gives the same program on every machine.

use super::*;

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(crate::rng::SplitMix64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(crate::rng::SplitMix64::new(seed))
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `pct` %.
    pub fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    /// One of `xs`.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    /// A value of `w` bits, often a small or edge one.
    pub fn value(&mut self, w: u16) -> u64 {
        let m = super::compile::mask64(w);
        match self.below(6) {
            0 => 0,
            1 => m,
            2 => self.below(4) & m,
            3 => 1u64.checked_shl(u32::from(w) - 1).unwrap_or(0),
            _ => self.next() & m,
        }
    }
}

const WIDTHS: [u16; 14] = [1, 2, 3, 4, 7, 8, 9, 12, 16, 24, 32, 48, 63, 64];

struct Gen<'r> {
    r: &'r mut Rng,
    p: Program,
}

impl Gen<'_> {
    /// Whether counter array `c` is a table's direct counter (no index
    /// counts it).
    fn direct_counter(&self, c: u16) -> bool {
        self.p.tables.iter().any(|t| t.direct_counter == Some(c))
    }

    /// Whether meter array `m` is a table's direct meter (no index runs
    /// it).
    fn direct_meter(&self, m: u16) -> bool {
        self.p.tables.iter().any(|t| t.direct_meter == Some(m))
    }

    /// A readable field of at most 64 bits (header or metadata).
    fn field(&mut self) -> FieldRef {
        let narrow: Vec<FieldRef> = self
            .p
            .headers
            .iter()
            .enumerate()
            .flat_map(|(h, d)| {
                d.fields
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.width <= 64)
                    .map(move |(f, _)| FieldRef::Header {
                        header: h as u16,
                        field: f as u16,
                    })
            })
            .collect();
        if !narrow.is_empty() && self.r.pct(60) {
            return self.r.pick(&narrow);
        }
        FieldRef::Meta(self.r.below(self.p.meta.len() as u64) as u16)
    }

    /// A field a program may write: often one of the two 64-bit probe
    /// fields (every bit an expression computes shows there).
    fn writable(&mut self) -> FieldRef {
        if self.r.pct(40) {
            return FieldRef::Meta(probe_index() + self.r.below(2) as u16);
        }
        loop {
            let f = self.field();
            if let FieldRef::Meta(m) = f {
                if [std_meta::INGRESS_LIF, std_meta::PACKET_LENGTH, std_meta::PARSER_ERROR].contains(&m) {
                    continue;
                }
            }
            return f;
        }
    }

    fn expr(&mut self, depth: u32, params: usize) -> Expr {
        let leaf = depth == 0 || self.r.pct(35);
        if leaf {
            return match self.r.below(if params > 0 { 5 } else { 4 }) {
                0 | 1 => Expr::Field(self.field()),
                2 => Expr::Valid(self.r.below(self.p.headers.len() as u64) as u16),
                4 => Expr::Param(self.r.below(params as u64) as u16),
                _ => {
                    let width = self.r.pick(&WIDTHS);
                    Expr::Const {
                        value: self.r.value(width),
                        width,
                    }
                }
            };
        }
        let width = self.r.pick(&WIDTHS);
        match self.r.below(4) {
            0 => Expr::Unary {
                op: self.r.pick(&[UnOp::Not, UnOp::BitNot, UnOp::Neg]),
                arg: Box::new(self.expr(depth - 1, params)),
                width,
            },
            1 => {
                let lo = self.r.below(64) as u16;
                let hi = (lo + self.r.below(64 - u64::from(lo)) as u16).min(63);
                Expr::Slice {
                    arg: Box::new(self.expr(depth - 1, params)),
                    hi,
                    lo,
                }
            }
            2 => Expr::Cast {
                arg: Box::new(self.expr(depth - 1, params)),
                width,
            },
            _ => {
                let op = self.r.pick(&BinOp::ALL);
                let lhs = Box::new(self.expr(depth - 1, params));
                // Shift amounts at the edges (the width, 63, 64, past it).
                let rhs = if matches!(op, BinOp::Shl | BinOp::Shr) && self.r.pct(50) {
                    Box::new(Expr::Const {
                        value: self
                            .r
                            .pick(&[0, 1, u64::from(width) - 1, u64::from(width), 63, 64, 65, u64::MAX]),
                        width: 64,
                    })
                } else {
                    Box::new(self.expr(depth - 1, params))
                };
                Expr::Binary { op, lhs, rhs, width }
            }
        }
    }

    /// An index into an array of `size` cells: usually a small field or
    /// constant, sometimes outside.
    fn index(&mut self, size: u32, params: usize) -> Expr {
        if self.r.pct(50) {
            Expr::Cast {
                arg: Box::new(self.expr(1, params)),
                width: self.r.pick(&[1, 2, 3, 4, 8]),
            }
        } else {
            Expr::Const {
                value: self.r.below(u64::from(size) + 2),
                width: 32,
            }
        }
    }

    /// Statements; `params`: inside an action with that many parameters.
    fn block(&mut self, depth: u32, params: Option<usize>, n: u64) -> Vec<Stmt> {
        (0..self.r.below(n + 1)).map(|_| self.stmt(depth, params)).collect()
    }

    fn stmt(&mut self, depth: u32, params: Option<usize>) -> Stmt {
        let np = params.unwrap_or(0);
        let in_action = params.is_some();
        loop {
            match self.r.below(13) {
                0..=3 => {
                    return Stmt::Assign {
                        dst: self.writable(),
                        value: self.expr(3, np),
                    }
                }
                4 | 12 if depth > 0 => {
                    return Stmt::If {
                        cond: self.expr(2, np),
                        then: self.block(depth - 1, params, 3),
                        otherwise: self.block(depth - 1, params, 2),
                    }
                }
                5 | 6 if !in_action && depth > 0 && !self.p.tables.is_empty() => {
                    return Stmt::Apply {
                        table: self.r.below(self.p.tables.len() as u64) as u16,
                        on_hit: self.block(depth - 1, None, 2),
                        on_miss: self.block(depth - 1, None, 2),
                    }
                }
                7 if !in_action => {
                    let a = self.r.below(self.p.actions.len() as u64) as u16;
                    // An action that reads a direct meter runs only from
                    // its table.
                    if !self.p.actions[usize::from(a)].direct_meters().is_empty() {
                        continue;
                    }
                    let n = self.p.actions[usize::from(a)].params.len();
                    return Stmt::Call {
                        action: a,
                        args: (0..n).map(|_| self.expr(2, 0)).collect(),
                    };
                }
                8 => return Stmt::Drop,
                9 if self.r.pct(30) => return Stmt::Exit,
                10 if !self.p.counters.is_empty() => {
                    let c = self.r.below(self.p.counters.len() as u64) as u16;
                    if self.direct_counter(c) {
                        continue;
                    }
                    let size = self.p.counters[usize::from(c)].size;
                    return Stmt::Count {
                        counter: c,
                        index: self.index(size, np),
                    };
                }
                11 if !self.p.meters.is_empty() => {
                    let m = self.r.below(self.p.meters.len() as u64) as u16;
                    if self.direct_meter(m) {
                        continue;
                    }
                    let size = self.p.meters[usize::from(m)].size;
                    return Stmt::Meter {
                        meter: m,
                        index: self.index(size, np),
                        dst: self.writable(),
                    };
                }
                _ => {}
            }
        }
    }
}

fn header(r: &mut Rng, n: usize) -> HeaderDef {
    let mut fields = Vec::new();
    let mut at = 0u16;
    let nf = 1 + r.below(5);
    for i in 0..nf {
        let w = if r.pct(10) {
            r.pick(&[72u16, 100, 128])
        } else {
            r.pick(&WIDTHS)
        };
        fields.push(FieldDef {
            name: format!("f{i}"),
            bit_off: at,
            width: w,
        });
        at += w;
    }
    // Pad to whole bytes.
    if !at.is_multiple_of(8) {
        let w = 8 - at % 8;
        fields.push(FieldDef {
            name: "pad".into(),
            bit_off: at,
            width: w,
        });
        at += w;
    }
    HeaderDef {
        name: format!("h{n}"),
        type_name: format!("h{n}_t"),
        fields,
        len: at / 8,
    }
}

/// The standard metadata and, after it, the two 64-bit probe fields
/// every generated program has (at [`probe_index`] and the one after).
pub(crate) fn probe_meta() -> Vec<FieldDef> {
    let mut meta: Vec<FieldDef> = std_meta::defs();
    for i in 0..2 {
        meta.push(FieldDef {
            name: format!("probe{i}"),
            bit_off: 0,
            width: 64,
        });
    }
    meta
}

/// The first probe field's slot in [`probe_meta`].
pub(crate) fn probe_index() -> u16 {
    std_meta::FIELDS.len() as u16
}

/// A random program from `r`, or None when the draw is not valid (about
/// one in three is) or does not load.
pub fn program(r: &mut Rng) -> Option<Program> {
    let mut meta = probe_meta();
    for i in 0..r.below(4) {
        meta.push(FieldDef {
            name: format!("m{i}"),
            bit_off: 0,
            width: r.pick(&WIDTHS),
        });
    }
    let headers: Vec<HeaderDef> = (0..1 + r.below(4) as usize).map(|n| header(r, n)).collect();
    let mut g = Gen {
        r,
        p: Program {
            name: "random".into(),
            deparse: (0..headers.len() as u16).collect(),
            headers,
            meta,
            parser: Vec::new(),
            actions: Vec::new(),
            tables: Vec::new(),
            meters: Vec::new(),
            counters: Vec::new(),
            ingress: Vec::new(),
            base_cost: 1,
        },
    };
    for i in 0..g.r.below(3) {
        let size = 1 + g.r.below(8) as u32;
        g.p.meters.push(MeterDef {
            name: format!("meter{i}"),
            size,
            unit: g.r.pick(&[MeterUnit::Packets, MeterUnit::Bytes]),
        });
    }
    for i in 0..g.r.below(4) {
        let size = 1 + g.r.below(8) as u32;
        g.p.counters.push(CounterDef {
            name: format!("counter{i}"),
            size,
            unit: CounterUnit::PacketsAndBytes,
        });
    }
    // Actions (their bodies may count, meter and exit, not apply or call).
    let na = 1 + g.r.below(4);
    for i in 0..na {
        let params: Vec<ParamDef> = (0..g.r.below(3))
            .map(|k| ParamDef {
                name: format!("p{k}"),
                width: g.r.pick(&WIDTHS),
            })
            .collect();
        g.p.actions.push(ActionDef {
            name: format!("a{i}"),
            params: params.clone(),
            body: Vec::new(),
            cost: g.r.below(4) as u32,
        });
        let body = g.block(1, Some(params.len()), 3);
        g.p.actions[i as usize].body = body;
    }
    // Parser states.
    let ns = 1 + g.r.below(5);
    for i in 0..ns {
        let mut ops = Vec::new();
        for _ in 0..g.r.below(3) {
            if g.r.pct(70) {
                ops.push(ParserOp::Extract(g.r.below(g.p.headers.len() as u64) as u16));
            } else {
                let m = g.p.meta.len() as u64;
                let dst = FieldRef::Meta((std_meta::FIELDS.len() as u64 + g.r.below(m)).min(m - 1) as u16);
                if let FieldRef::Meta(x) = dst {
                    if [std_meta::INGRESS_LIF, std_meta::PACKET_LENGTH, std_meta::PARSER_ERROR].contains(&x) {
                        continue;
                    }
                }
                ops.push(ParserOp::Assign {
                    dst,
                    value: g.expr(2, 0),
                });
            }
        }
        // Mostly on to a later state or accept; now and then back (a loop:
        // timeouts and headers extracted twice) or reject.
        let next = |g: &mut Gen<'_>| match g.r.below(20) {
            0..=10 => Next::Accept,
            11 => Next::Reject,
            12 => Next::State(g.r.below(ns) as u16),
            _ if i + 1 < ns => Next::State((i + 1 + g.r.below(ns - i - 1)) as u16),
            _ => Next::Accept,
        };
        let transition = if g.r.pct(50) {
            Transition::Next(next(&mut g))
        } else {
            let nk = 1 + g.r.below(2) as usize;
            let keys: Vec<Expr> = (0..nk).map(|_| Expr::Field(g.field())).collect();
            let cases = (0..g.r.below(4))
                .map(|_| SelectCase {
                    matches: (0..nk)
                        .map(|_| (g.r.value(16), if g.r.pct(70) { u64::MAX } else { g.r.value(16) }))
                        .collect(),
                    next: next(&mut g),
                })
                .collect();
            Transition::Select {
                keys,
                cases,
                default: next(&mut g),
            }
        };
        g.p.parser.push(ParserState {
            name: format!("s{i}"),
            cost: g.r.below(3) as u32,
            ops,
            transition,
        });
    }
    // Tables.
    for i in 0..g.r.below(4) {
        // Direct resources: arrays of the table's size, its alone (added
        // after the action bodies below, which may index only the other
        // arrays).
        let direct_counter = g.r.pct(40).then_some(g.p.counters.len() as u16);
        let direct_meter = g.r.pct(40).then_some(g.p.meters.len() as u16);
        let direct = direct_counter.is_some() || direct_meter.is_some();
        let mut keys = Vec::new();
        let mut bits = 0u32;
        let mut lpm = false;
        for k in 0..1 + g.r.below(3) {
            // Validity bits match more packets than fields: more of them
            // for a table with direct resources (its hits are what count).
            let (expr, width) = if g.r.pct(if direct { 45 } else { 20 }) {
                let h = g.r.below(g.p.headers.len() as u64) as u16;
                (KeyExpr::Valid(h), 1)
            } else if g.r.pct(15) {
                // Any header field, wide ones too.
                let h = g.r.below(g.p.headers.len() as u64) as usize;
                let f = g.r.below(g.p.headers[h].fields.len() as u64) as usize;
                let w = g.p.headers[h].fields[f].width;
                (
                    KeyExpr::Field(FieldRef::Header {
                        header: h as u16,
                        field: f as u16,
                    }),
                    w,
                )
            } else {
                let f = g.field();
                let w = g.p.field_width(f).unwrap_or(1);
                (KeyExpr::Field(f), w)
            };
            if bits + u32::from(width) > limits::KEY_BITS {
                break;
            }
            bits += u32::from(width);
            let kind = match g.r.below(3) {
                0 if !lpm => {
                    lpm = true;
                    MatchKind::Lpm
                }
                1 => MatchKind::Ternary,
                _ => MatchKind::Exact,
            };
            keys.push(KeyDef {
                expr,
                kind,
                width,
                name: format!("k{k}"),
            });
        }
        let mut actions: Vec<u16> = (0..na as u16).filter(|_| g.r.pct(60)).collect();
        if actions.is_empty() {
            actions.push(0);
        }
        let size = 1 + g.r.below(8) as u32;
        // Actions of this table alone that read its direct meter (in
        // their body's statements, now and then inside an if), for its
        // entries and now and then its default action (the miss: green,
        // no meter run).
        if let Some(m) = direct_meter {
            for _ in 0..1 + g.r.below(2) {
                let params: Vec<ParamDef> = (0..g.r.below(3))
                    .map(|k| ParamDef {
                        name: format!("p{k}"),
                        width: g.r.pick(&WIDTHS),
                    })
                    .collect();
                let mut body = g.block(1, Some(params.len()), 2);
                let read = Stmt::DirectMeter {
                    meter: m,
                    dst: g.writable(),
                };
                let read = if g.r.pct(25) {
                    Stmt::If {
                        cond: g.expr(1, params.len()),
                        then: vec![read],
                        otherwise: Vec::new(),
                    }
                } else {
                    read
                };
                let at = g.r.below(body.len() as u64 + 1) as usize;
                body.insert(at, read);
                if g.r.pct(30) {
                    // Read twice: the same cell metered twice a pass.
                    body.push(Stmt::DirectMeter {
                        meter: m,
                        dst: g.writable(),
                    });
                }
                g.p.actions.push(ActionDef {
                    name: format!("t{i}_d{}", g.p.actions.len()),
                    params,
                    body,
                    cost: g.r.below(4) as u32,
                });
                actions.push((g.p.actions.len() - 1) as u16);
            }
        }
        if direct_counter.is_some() {
            g.p.counters.push(CounterDef {
                name: format!("t{i}_hits"),
                size,
                unit: CounterUnit::PacketsAndBytes,
            });
        }
        if direct_meter.is_some() {
            let unit = g.r.pick(&[MeterUnit::Packets, MeterUnit::Bytes]);
            g.p.meters.push(MeterDef {
                name: format!("t{i}_rate"),
                size,
                unit,
            });
        }
        let default_action = g.r.pick(&actions);
        let dargs: Vec<u64> = g.p.actions[usize::from(default_action)]
            .params
            .iter()
            .map(|p| g.r.value(p.width))
            .collect();
        let mut entries: Vec<EntryDef> = Vec::new();
        for _ in 0..g.r.below(u64::from(size) + 1) {
            let key = keys
                .iter()
                .map(|k| {
                    let w = u32::from(k.width);
                    let ones = super::table::ones(w);
                    let v = (u128::from(g.r.value(k.width.min(64))) | (u128::from(g.r.next()) << 64)) & ones;
                    let m = match k.kind {
                        MatchKind::Exact => ones,
                        MatchKind::Ternary => u128::from(g.r.next()) & ones,
                        MatchKind::Lpm => {
                            let p = g.r.below(u64::from(w) + 1) as u32;
                            ones ^ super::table::ones(w - p)
                        }
                    };
                    (v & m, m)
                })
                .collect();
            let a = g.r.pick(&actions);
            let args = g.p.actions[usize::from(a)]
                .params
                .iter()
                .map(|p| g.r.value(p.width))
                .collect();
            entries.push(EntryDef {
                key,
                priority: g.r.below(4) as u32,
                action: a,
                args,
            });
        }
        g.p.tables.push(TableDef {
            name: format!("t{i}"),
            keys,
            actions,
            default_action,
            default_args: dargs,
            size,
            cost: g.r.below(3) as u32,
            entries,
            direct_counter,
            direct_meter,
        });
    }
    g.p.ingress = g.block(3, None, 10);
    let p = g.p;
    p.validate().ok()?;
    // Entries that collide or do not fit are refused at load: drawn again.
    Pipeline::new(p.clone()).ok()?;
    Some(p)
}

/// Packets for `p`: its headers in random order with random bytes, cut at
/// a random length, or random bytes.
pub fn packets(r: &mut Rng, p: &Program, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let mut b = Vec::new();
            // Bytes from a small alphabet make fields that equal the
            // entries' edge values (0, all ones, small), so tables hit.
            let fill = r.below(4);
            let byte = |r: &mut Rng| match fill {
                0 => 0,
                1 => 0xff,
                2 => r.below(2) as u8,
                _ => r.next() as u8,
            };
            if r.pct(80) {
                for _ in 0..1 + r.below(4) {
                    let h = &p.headers[r.below(p.headers.len() as u64) as usize];
                    b.extend((0..h.len).map(|_| byte(r)));
                }
                if r.pct(30) {
                    let cut = b.len() as u64;
                    b.truncate(r.below(cut + 1) as usize);
                } else {
                    // Room for the headers the parser extracts again.
                    b.extend((0..64).map(|_| byte(r)));
                }
            } else {
                b.extend((0..r.below(100)).map(|_| byte(r)));
            }
            b
        })
        .collect()
}
