//! The image encoding of a program: flat, so decoding untrusted bytes never
//! recurses.
//!
//! [`Program`] is a tree (expressions in `Box`es, blocks inside
//! statements). Decoding such a tree straight from bytes would recurse once
//! per nesting level, and an image of a few hundred kilobytes of nested
//! `!` would overflow the device's stack before any check ran. So the
//! image holds the expressions and blocks in arenas, referring to each
//! other by index; decoding is then a flat loop, and the tree is rebuilt
//! with the nesting and size limits checked as it goes.

use super::ir::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Flat {
    name: String,
    headers: Vec<HeaderDef>,
    meta: Vec<FieldDef>,
    parser: Vec<FlatState>,
    actions: Vec<FlatAction>,
    tables: Vec<TableDef>,
    meters: Vec<MeterDef>,
    counters: Vec<CounterDef>,
    ingress: u32,
    deparse: Vec<u16>,
    base_cost: u32,
    exprs: Vec<FlatExpr>,
    blocks: Vec<Vec<FlatStmt>>,
}

#[derive(Serialize, Deserialize)]
struct FlatState {
    name: String,
    cost: u32,
    ops: Vec<FlatOp>,
    transition: FlatTransition,
}

#[derive(Serialize, Deserialize)]
enum FlatOp {
    Extract(u16),
    Assign { dst: FieldRef, value: u32 },
}

#[derive(Serialize, Deserialize)]
enum FlatTransition {
    Next(Next),
    Select {
        keys: Vec<u32>,
        cases: Vec<SelectCase>,
        default: Next,
    },
}

#[derive(Serialize, Deserialize)]
struct FlatAction {
    name: String,
    params: Vec<ParamDef>,
    body: u32,
    cost: u32,
}

#[derive(Serialize, Deserialize)]
enum FlatExpr {
    Const { value: u64, width: u16 },
    Field(FieldRef),
    Param(u16),
    Valid(u16),
    Unary { op: UnOp, arg: u32, width: u16 },
    Binary { op: BinOp, lhs: u32, rhs: u32, width: u16 },
    Slice { arg: u32, hi: u16, lo: u16 },
    Cast { arg: u32, width: u16 },
}

#[derive(Serialize, Deserialize)]
enum FlatStmt {
    Assign { dst: FieldRef, value: u32 },
    Apply { table: u16, on_hit: u32, on_miss: u32 },
    If { cond: u32, then: u32, otherwise: u32 },
    Call { action: u16, args: Vec<u32> },
    Drop,
    Count { counter: u16, index: u32 },
    Meter { meter: u16, index: u32, dst: FieldRef },
    Exit,
    DirectMeter { meter: u16, dst: FieldRef },
}

/// Most expression nodes a program may have once rebuilt.
const MAX_EXPR_NODES: usize = 1 << 16;

// ---- Program -> Flat ----

#[derive(Default)]
struct Flattener {
    exprs: Vec<FlatExpr>,
    blocks: Vec<Vec<FlatStmt>>,
}

impl Flattener {
    fn expr(&mut self, e: &Expr) -> u32 {
        let f = match e {
            Expr::Const { value, width } => FlatExpr::Const {
                value: *value,
                width: *width,
            },
            Expr::Field(r) => FlatExpr::Field(*r),
            Expr::Param(p) => FlatExpr::Param(*p),
            Expr::Valid(h) => FlatExpr::Valid(*h),
            Expr::Unary { op, arg, width } => FlatExpr::Unary {
                op: *op,
                arg: self.expr(arg),
                width: *width,
            },
            Expr::Binary { op, lhs, rhs, width } => FlatExpr::Binary {
                op: *op,
                lhs: self.expr(lhs),
                rhs: self.expr(rhs),
                width: *width,
            },
            Expr::Slice { arg, hi, lo } => FlatExpr::Slice {
                arg: self.expr(arg),
                hi: *hi,
                lo: *lo,
            },
            Expr::Cast { arg, width } => FlatExpr::Cast {
                arg: self.expr(arg),
                width: *width,
            },
        };
        self.exprs.push(f);
        (self.exprs.len() - 1) as u32
    }

    fn block(&mut self, b: &[Stmt]) -> u32 {
        let stmts: Vec<FlatStmt> = b
            .iter()
            .map(|s| match s {
                Stmt::Assign { dst, value } => FlatStmt::Assign {
                    dst: *dst,
                    value: self.expr(value),
                },
                Stmt::Apply { table, on_hit, on_miss } => FlatStmt::Apply {
                    table: *table,
                    on_hit: self.block(on_hit),
                    on_miss: self.block(on_miss),
                },
                Stmt::If { cond, then, otherwise } => FlatStmt::If {
                    cond: self.expr(cond),
                    then: self.block(then),
                    otherwise: self.block(otherwise),
                },
                Stmt::Call { action, args } => FlatStmt::Call {
                    action: *action,
                    args: args.iter().map(|a| self.expr(a)).collect(),
                },
                Stmt::Drop => FlatStmt::Drop,
                Stmt::Count { counter, index } => FlatStmt::Count {
                    counter: *counter,
                    index: self.expr(index),
                },
                Stmt::Meter { meter, index, dst } => FlatStmt::Meter {
                    meter: *meter,
                    index: self.expr(index),
                    dst: *dst,
                },
                Stmt::Exit => FlatStmt::Exit,
                Stmt::DirectMeter { meter, dst } => FlatStmt::DirectMeter {
                    meter: *meter,
                    dst: *dst,
                },
            })
            .collect();
        self.blocks.push(stmts);
        (self.blocks.len() - 1) as u32
    }
}

pub(super) fn encode(p: &Program) -> Vec<u8> {
    let mut fl = Flattener::default();
    let parser = p
        .parser
        .iter()
        .map(|s| FlatState {
            name: s.name.clone(),
            cost: s.cost,
            ops: s
                .ops
                .iter()
                .map(|o| match o {
                    ParserOp::Extract(h) => FlatOp::Extract(*h),
                    ParserOp::Assign { dst, value } => FlatOp::Assign {
                        dst: *dst,
                        value: fl.expr(value),
                    },
                })
                .collect(),
            transition: match &s.transition {
                Transition::Next(n) => FlatTransition::Next(*n),
                Transition::Select { keys, cases, default } => FlatTransition::Select {
                    keys: keys.iter().map(|k| fl.expr(k)).collect(),
                    cases: cases.clone(),
                    default: *default,
                },
            },
        })
        .collect();
    let actions = p
        .actions
        .iter()
        .map(|a| FlatAction {
            name: a.name.clone(),
            params: a.params.clone(),
            body: fl.block(&a.body),
            cost: a.cost,
        })
        .collect();
    let ingress = fl.block(&p.ingress);
    let flat = Flat {
        name: p.name.clone(),
        headers: p.headers.clone(),
        meta: p.meta.clone(),
        parser,
        actions,
        tables: p.tables.clone(),
        meters: p.meters.clone(),
        counters: p.counters.clone(),
        ingress,
        deparse: p.deparse.clone(),
        base_cost: p.base_cost,
        exprs: fl.exprs,
        blocks: fl.blocks,
    };
    postcard::to_allocvec(&flat).expect("a program always encodes")
}

// ---- Flat -> Program ----

struct Rebuild<'a> {
    f: &'a Flat,
    nodes: usize,
    stmts: usize,
}

fn bad(msg: impl Into<String>) -> ProgramError {
    ProgramError::Invalid(msg.into())
}

impl Rebuild<'_> {
    fn expr(&mut self, id: u32, depth: usize) -> Result<Expr, ProgramError> {
        if depth > limits::EXPR_DEPTH {
            return Err(bad("expression nested too deep"));
        }
        self.nodes += 1;
        if self.nodes > MAX_EXPR_NODES {
            return Err(bad("too many expression nodes"));
        }
        let e = self
            .f
            .exprs
            .get(id as usize)
            .ok_or_else(|| bad(format!("expression {id} does not exist")))?;
        Ok(match e {
            FlatExpr::Const { value, width } => Expr::Const {
                value: *value,
                width: *width,
            },
            FlatExpr::Field(r) => Expr::Field(*r),
            FlatExpr::Param(p) => Expr::Param(*p),
            FlatExpr::Valid(h) => Expr::Valid(*h),
            FlatExpr::Unary { op, arg, width } => Expr::Unary {
                op: *op,
                arg: Box::new(self.expr(*arg, depth + 1)?),
                width: *width,
            },
            FlatExpr::Binary { op, lhs, rhs, width } => Expr::Binary {
                op: *op,
                lhs: Box::new(self.expr(*lhs, depth + 1)?),
                rhs: Box::new(self.expr(*rhs, depth + 1)?),
                width: *width,
            },
            FlatExpr::Slice { arg, hi, lo } => Expr::Slice {
                arg: Box::new(self.expr(*arg, depth + 1)?),
                hi: *hi,
                lo: *lo,
            },
            FlatExpr::Cast { arg, width } => Expr::Cast {
                arg: Box::new(self.expr(*arg, depth + 1)?),
                width: *width,
            },
        })
    }

    fn block(&mut self, id: u32, depth: usize) -> Result<Vec<Stmt>, ProgramError> {
        if depth > limits::BLOCK_DEPTH {
            return Err(bad("blocks nested too deep"));
        }
        let b = self
            .f
            .blocks
            .get(id as usize)
            .ok_or_else(|| bad(format!("block {id} does not exist")))?;
        self.stmts += b.len();
        if self.stmts > limits::STMTS {
            return Err(bad(format!("more than {} statements", limits::STMTS)));
        }
        let mut out = Vec::with_capacity(b.len());
        for s in b {
            out.push(match s {
                FlatStmt::Assign { dst, value } => Stmt::Assign {
                    dst: *dst,
                    value: self.expr(*value, 0)?,
                },
                FlatStmt::Apply { table, on_hit, on_miss } => Stmt::Apply {
                    table: *table,
                    on_hit: self.block(*on_hit, depth + 1)?,
                    on_miss: self.block(*on_miss, depth + 1)?,
                },
                FlatStmt::If { cond, then, otherwise } => Stmt::If {
                    cond: self.expr(*cond, 0)?,
                    then: self.block(*then, depth + 1)?,
                    otherwise: self.block(*otherwise, depth + 1)?,
                },
                FlatStmt::Call { action, args } => Stmt::Call {
                    action: *action,
                    args: args.iter().map(|a| self.expr(*a, 0)).collect::<Result<_, _>>()?,
                },
                FlatStmt::Drop => Stmt::Drop,
                FlatStmt::Count { counter, index } => Stmt::Count {
                    counter: *counter,
                    index: self.expr(*index, 0)?,
                },
                FlatStmt::Meter { meter, index, dst } => Stmt::Meter {
                    meter: *meter,
                    index: self.expr(*index, 0)?,
                    dst: *dst,
                },
                FlatStmt::Exit => Stmt::Exit,
                FlatStmt::DirectMeter { meter, dst } => Stmt::DirectMeter {
                    meter: *meter,
                    dst: *dst,
                },
            });
        }
        Ok(out)
    }
}

pub(super) fn decode(body: &[u8]) -> Result<Program, ProgramError> {
    let (f, rest): (Flat, &[u8]) = postcard::take_from_bytes(body).map_err(|e| ProgramError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(ProgramError::Decode(format!("{} bytes after the program", rest.len())));
    }
    if f.parser.len() > limits::STATES || f.actions.len() > limits::ACTIONS {
        return Err(bad("too many parser states or actions"));
    }
    let mut r = Rebuild {
        f: &f,
        nodes: 0,
        stmts: 0,
    };
    let mut parser = Vec::with_capacity(f.parser.len());
    for s in &f.parser {
        let mut ops = Vec::with_capacity(s.ops.len());
        for o in &s.ops {
            ops.push(match o {
                FlatOp::Extract(h) => ParserOp::Extract(*h),
                FlatOp::Assign { dst, value } => ParserOp::Assign {
                    dst: *dst,
                    value: r.expr(*value, 0)?,
                },
            });
        }
        let transition = match &s.transition {
            FlatTransition::Next(n) => Transition::Next(*n),
            FlatTransition::Select { keys, cases, default } => Transition::Select {
                keys: keys.iter().map(|k| r.expr(*k, 0)).collect::<Result<_, _>>()?,
                cases: cases.clone(),
                default: *default,
            },
        };
        parser.push(ParserState {
            name: s.name.clone(),
            cost: s.cost,
            ops,
            transition,
        });
    }
    let mut actions = Vec::with_capacity(f.actions.len());
    for a in &f.actions {
        actions.push(ActionDef {
            name: a.name.clone(),
            params: a.params.clone(),
            body: r.block(a.body, 0)?,
            cost: a.cost,
        });
    }
    let ingress = r.block(f.ingress, 0)?;
    Ok(Program {
        name: f.name.clone(),
        headers: f.headers.clone(),
        meta: f.meta.clone(),
        parser,
        actions,
        tables: f.tables.clone(),
        meters: f.meters.clone(),
        counters: f.counters.clone(),
        ingress,
        deparse: f.deparse.clone(),
        base_cost: f.base_cost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(exprs: Vec<FlatExpr>, cond: u32) -> Vec<u8> {
        let std: Vec<FieldDef> = std_meta::defs();
        let f = Flat {
            name: "deep".into(),
            headers: vec![],
            meta: std,
            parser: vec![FlatState {
                name: "start".into(),
                cost: 0,
                ops: vec![],
                transition: FlatTransition::Next(Next::Accept),
            }],
            actions: vec![],
            tables: vec![],
            meters: vec![],
            counters: vec![],
            ingress: 0,
            deparse: vec![],
            base_cost: 0,
            exprs,
            blocks: vec![
                vec![FlatStmt::If {
                    cond,
                    then: 1,
                    otherwise: 1,
                }],
                vec![],
            ],
        };
        postcard::to_allocvec(&f).unwrap()
    }

    #[test]
    fn a_deep_chain_decodes_flat_and_is_refused() {
        // 200 000 nested `!` in 1 MB: a recursive decoder would overflow
        // the stack here.
        let n = 200_000u32;
        let mut exprs = vec![FlatExpr::Const { value: 0, width: 1 }];
        exprs.extend((1..n).map(|i| FlatExpr::Unary {
            op: UnOp::Not,
            arg: i - 1,
            width: 1,
        }));
        let img = flat(exprs, n - 1);
        assert!(matches!(decode(&img), Err(ProgramError::Invalid(m)) if m.contains("too deep")));
    }

    #[test]
    fn cycles_and_dangling_indices_are_refused() {
        let cyc = flat(
            vec![FlatExpr::Unary {
                op: UnOp::Not,
                arg: 0,
                width: 1,
            }],
            0,
        );
        assert!(matches!(decode(&cyc), Err(ProgramError::Invalid(_))));
        let dangling = flat(vec![], 7);
        assert!(matches!(decode(&dangling), Err(ProgramError::Invalid(m)) if m.contains("does not exist")));
        let ok = flat(vec![FlatExpr::Const { value: 1, width: 1 }], 0);
        let p = decode(&ok).unwrap();
        p.validate().unwrap();
    }
}
