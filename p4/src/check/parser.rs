//! The parser block: states (`start` first, then in declaration order),
//! their `extract`s and metadata assignments, and their transitions
//! (`accept`, `reject`, a state, or `select` with value, mask and default
//! cases). A state without `transition` rejects, as in P4.

use super::consts::mask;
use super::expr::{BlockNames, Place, RTy, Scope, TExpr};
use super::globals::Globals;
use super::layout::Layout;
use super::stmt::{arity, assignment, check_height};
use super::{annotation_costs, CostSite};
use crate::ast::{ExprKind, Ident, KeySet, ParserDecl, State, Stmt, StmtKind, Transition};
use crate::diag::{err, DResult, Diag};
use dataplane::pipeline::{self as ir, limits, FieldRef};
use std::collections::HashMap;

/// Lowers one parser.
#[derive(Debug)]
struct StateCx<'s, 'a> {
    scope: Scope<'s, 'a>,
    /// State name to index.
    index: HashMap<String, u16>,
}

/// Lower the parser `p`; errors go to `errs`.
pub fn lower(
    g: &Globals<'_>,
    layout: &Layout,
    names: &BlockNames,
    p: &ParserDecl,
    errs: &mut Vec<Diag>,
) -> Vec<ir::ParserState> {
    let order = match state_order(p) {
        Ok(o) => o,
        Err(e) => {
            errs.push(e);
            return Vec::new();
        }
    };
    let cx = StateCx {
        scope: Scope {
            g,
            layout: Some(layout),
            names: Some(names),
            locals: None,
            params: &[],
        },
        index: order
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.name.clone(), i as u16))
            .collect(),
    };
    let mut out = Vec::new();
    for s in order {
        match cx.state(s) {
            Ok(st) => out.push(st),
            Err(e) => {
                errs.push(e);
                out.push(ir::ParserState {
                    name: s.name.name.clone(),
                    cost: 0,
                    ops: Vec::new(),
                    transition: ir::Transition::Next(ir::Next::Reject),
                });
            }
        }
    }
    out
}

/// The states, `start` first; names checked.
fn state_order(p: &ParserDecl) -> DResult<Vec<&State>> {
    let mut seen: HashMap<&str, &Ident> = HashMap::new();
    for s in &p.states {
        let n = s.name.name.as_str();
        if n == "accept" || n == "reject" {
            return err(s.name.span, format!("state `{n}` is built in and cannot be declared"));
        }
        if seen.insert(n, &s.name).is_some() {
            return err(s.name.span, format!("duplicate state `{n}`"));
        }
    }
    if p.states.len() > limits::STATES {
        return err(
            p.name.span,
            format!("parser `{}` has more than {} states", p.name.name, limits::STATES),
        );
    }
    let Some(start) = p.states.iter().find(|s| s.name.name == "start") else {
        return err(p.name.span, format!("parser `{}` has no `start` state", p.name.name));
    };
    let mut order = vec![start];
    order.extend(p.states.iter().filter(|s| s.name.name != "start"));
    Ok(order)
}

impl StateCx<'_, '_> {
    fn state(&self, s: &State) -> DResult<ir::ParserState> {
        let cost = annotation_costs(&s.annotations, CostSite::State)?;
        let mut ops = Vec::new();
        self.ops(&s.stmts, &mut ops)?;
        let transition = match &s.transition {
            None => ir::Transition::Next(ir::Next::Reject),
            Some(Transition::Direct(n)) => ir::Transition::Next(self.next(n)?),
            Some(Transition::Select { keys, cases, span }) => {
                if keys.len() > limits::KEYS {
                    return err(*span, format!("a select has at most {} keys", limits::KEYS));
                }
                let mut ks = Vec::new();
                let mut tys = Vec::new();
                for k in keys {
                    let (x, t) = match self.scope.expr(k)? {
                        TExpr::Run(x, t) => (x, t),
                        TExpr::Const(_) => return err(k.span, "a select key must not be a constant"),
                    };
                    check_height(&x, k.span)?;
                    ks.push(x);
                    tys.push(t);
                }
                self.select(ks, &tys, cases)?
            }
        };
        Ok(ir::ParserState {
            name: s.name.name.clone(),
            cost,
            ops,
            transition,
        })
    }

    /// A transition's destination.
    fn next(&self, n: &Ident) -> DResult<ir::Next> {
        match n.name.as_str() {
            "accept" => Ok(ir::Next::Accept),
            "reject" => Ok(ir::Next::Reject),
            s => match self.index.get(s) {
                Some(&i) => Ok(ir::Next::State(i)),
                None => err(n.span, format!("undeclared parser state `{s}`")),
            },
        }
    }

    fn select(&self, keys: Vec<ir::Expr>, tys: &[RTy], cases: &[(crate::ast::Keys, Ident)]) -> DResult<ir::Transition> {
        let mut out = Vec::new();
        let mut default = None;
        for (k, next) in cases {
            if default.is_some() {
                return err(k.span, "this select case is never reached (it follows `default`)");
            }
            let next = self.next(next)?;
            if k.whole_default {
                default = Some(next);
                continue;
            }
            if k.elems.len() != keys.len() {
                return err(
                    k.span,
                    format!(
                        "the case has {} values; the select has {} keys",
                        k.elems.len(),
                        keys.len()
                    ),
                );
            }
            let mut matches = Vec::new();
            for (ks, t) in k.elems.iter().zip(tys) {
                matches.push(self.case_value(ks, *t)?);
            }
            out.push(ir::SelectCase { matches, next });
        }
        Ok(ir::Transition::Select {
            keys,
            cases: out,
            default: default.unwrap_or(ir::Next::Reject),
        })
    }

    /// One value of a case, against a key of type `t`: (value, mask).
    fn case_value(&self, ks: &KeySet, t: RTy) -> DResult<(u64, u64)> {
        let w = t.width();
        let is_bool = t == RTy::Bool;
        let full = mask(w) as u64;
        match ks {
            KeySet::Any(_) => Ok((0, 0)),
            KeySet::Value(e) => Ok((self.scope.key_value(e, w, is_bool)? as u64, full)),
            KeySet::Mask(e, m) => {
                let v = self.scope.key_value(e, w, is_bool)? as u64;
                let mk = self.scope.key_value(m, w, is_bool)? as u64;
                Ok((v & mk, mk))
            }
        }
    }

    /// A state's statements: extracts and metadata assignments.
    fn ops(&self, stmts: &[Stmt], out: &mut Vec<ir::ParserOp>) -> DResult<()> {
        for s in stmts {
            match &s.kind {
                StmtKind::Empty => {}
                StmtKind::Block(b) => self.ops(b, out)?,
                StmtKind::Assign(lhs, rhs) => {
                    let (dst, value) = assignment(&self.scope, lhs, rhs)?;
                    if !matches!(dst, FieldRef::Meta(_)) {
                        return err(lhs.span, "a parser state may assign only metadata fields");
                    }
                    out.push(ir::ParserOp::Assign { dst, value });
                }
                StmtKind::Call(e) => out.push(self.extract(e)?),
                StmtKind::If(..) => return err(s.span, "`if` is not supported in parser states (use select)"),
                StmtKind::Exit => return err(s.span, "`exit` is not allowed in a parser state"),
            }
        }
        Ok(())
    }

    /// `pkt.extract(hdr.x);`
    fn extract(&self, e: &crate::ast::Expr) -> DResult<ir::ParserOp> {
        let bad = || err(e.span, "a parser state may only extract headers and assign metadata");
        let ExprKind::Call(callee, args) = &e.kind else {
            return bad();
        };
        let ExprKind::Member(base, m) = &callee.kind else {
            return bad();
        };
        if m.name == "setValid" || m.name == "setInvalid" {
            return err(
                m.span,
                format!("`{}()` is not supported: headers become valid only by extract", m.name),
            );
        }
        if self.scope.place(base)? != (Place::Packet { input: true }) {
            return bad();
        }
        let sig = self.scope.g.method("packet_in", m)?;
        arity(m, sig.params.len(), args)?;
        if m.name != "extract" {
            return err(m.span, format!("method `{}` of `packet_in` is not supported", m.name));
        }
        let Some(arg) = args.first() else { return bad() };
        match self.scope.place(arg)? {
            Place::Header(h) => Ok(ir::ParserOp::Extract(h)),
            Place::HeadersStruct | Place::MetaStruct | Place::StdStruct => err(
                arg.span,
                format!("cannot extract `{}`: it is a struct, not a header", arg.render()),
            ),
            _ => err(
                arg.span,
                format!("cannot extract `{}`: it is not a header", arg.render()),
            ),
        }
    }
}
