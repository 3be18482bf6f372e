//! Statements of the ingress apply block and of action bodies, checked and
//! lowered to IR [`ir::Stmt`]s: assignments, `if`/`else`, table applies
//! (`t.apply();`, `if (t.apply().hit)`, `if (!t.apply().hit)`, `.miss`),
//! direct action calls, `mark_to_drop`, counter and meter calls, `exit`.
//! Blocks are flattened (there are no local declarations to scope).

use super::consts::CVal;
use super::expr::{ir_height, ParamInfo, Place, RTy, Scope, TExpr};
use super::types::Ty;
use crate::ast::{Expr, ExprKind, Ident, Stmt, StmtKind, UnaryOp};
use crate::diag::{err, DResult, Span};
use dataplane::pipeline::{self as ir, limits};

/// Where statements are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// The ingress control's apply block.
    Ingress,
    /// An action body.
    Action,
}

/// Lowers the statements of one body.
#[derive(Debug)]
pub struct Lowerer<'s, 'a> {
    pub scope: Scope<'s, 'a>,
    pub kind: BodyKind,
    /// Parameters of every action so far, by action index.
    pub sigs: &'s [Vec<ParamInfo>],
    /// Whether each action (by index) reads a direct meter: only its
    /// table may run it, so a call of it is refused.
    pub reads_direct: &'s [bool],
}

/// `n` arguments where `want` are expected?
pub fn arity(name: &Ident, want: usize, args: &[Expr]) -> DResult<()> {
    if want == args.len() {
        return Ok(());
    }
    let s = if want == 1 { "" } else { "s" };
    err(
        name.span,
        format!("`{}` takes {want} argument{s}, {} given", name.name, args.len()),
    )
}

impl Lowerer<'_, '_> {
    /// An expression of type `want`, within the IR's nesting limit.
    pub fn top_expr(&self, e: &Expr, want: RTy) -> DResult<ir::Expr> {
        let t = self.scope.expr(e)?;
        let x = self.scope.convert(t, want, e.span)?;
        check_height(&x, e.span)?;
        Ok(x)
    }

    /// Argument `n` (0-based) of a call of `callee`, of type `want`.
    fn arg_expr(&self, e: &Expr, want: RTy, callee: &str, n: usize) -> DResult<ir::Expr> {
        self.top_expr(e, want)
            .map_err(|d| crate::diag::Diag::new(d.span, format!("argument {} of `{callee}`: {}", n + 1, d.msg)))
    }

    /// Lower `stmts` at nesting `depth` into `out`.
    pub fn block(&self, stmts: &[Stmt], depth: usize, out: &mut Vec<ir::Stmt>) -> DResult<()> {
        for s in stmts {
            self.stmt(s, depth, out)?;
        }
        Ok(())
    }

    pub fn stmt(&self, s: &Stmt, depth: usize, out: &mut Vec<ir::Stmt>) -> DResult<()> {
        match &s.kind {
            StmtKind::Empty => Ok(()),
            StmtKind::Block(b) => self.block(b, depth, out),
            StmtKind::Exit => {
                out.push(ir::Stmt::Exit);
                Ok(())
            }
            StmtKind::Assign(lhs, rhs) => {
                let (dst, value) = assignment(&self.scope, lhs, rhs)?;
                out.push(ir::Stmt::Assign { dst, value });
                Ok(())
            }
            StmtKind::If(cond, then, otherwise) => self.if_stmt(cond, then, otherwise.as_deref(), s.span, depth, out),
            StmtKind::Call(e) => self.call(e, out),
        }
    }

    /// A branch of an `if`, one level deeper.
    fn branch(&self, s: Option<&Stmt>, depth: usize) -> DResult<Vec<ir::Stmt>> {
        let mut out = Vec::new();
        if let Some(s) = s {
            self.stmt(s, depth, &mut out)?;
        }
        Ok(out)
    }

    fn if_stmt(
        &self,
        cond: &Expr,
        then: &Stmt,
        otherwise: Option<&Stmt>,
        span: Span,
        depth: usize,
        out: &mut Vec<ir::Stmt>,
    ) -> DResult<()> {
        if depth + 1 > limits::BLOCK_DEPTH {
            return err(
                span,
                format!("statements nested too deeply (at most {} levels)", limits::BLOCK_DEPTH),
            );
        }
        if let Some((table, on_hit)) = self.table_hit(cond)? {
            let a = self.branch(Some(then), depth + 1)?;
            let b = self.branch(otherwise, depth + 1)?;
            let (on_hit, on_miss) = if on_hit { (a, b) } else { (b, a) };
            out.push(ir::Stmt::Apply { table, on_hit, on_miss });
            return Ok(());
        }
        let cond = self.top_expr(cond, RTy::Bool)?;
        let then = self.branch(Some(then), depth + 1)?;
        let otherwise = self.branch(otherwise, depth + 1)?;
        out.push(ir::Stmt::If { cond, then, otherwise });
        Ok(())
    }

    /// `t.apply().hit`, `t.apply().miss`, possibly under `!`: the table and
    /// whether the condition holds on a hit.
    fn table_hit(&self, cond: &Expr) -> DResult<Option<(u16, bool)>> {
        let mut e = cond;
        let mut positive = true;
        while let ExprKind::Unary(UnaryOp::Not, inner) = &e.kind {
            positive = !positive;
            e = inner;
        }
        let ExprKind::Member(call, m) = &e.kind else {
            return Ok(None);
        };
        let ExprKind::Call(callee, args) = &call.kind else {
            return Ok(None);
        };
        let ExprKind::Member(target, method) = &callee.kind else {
            return Ok(None);
        };
        if method.name != "apply" {
            return Ok(None);
        }
        let Place::Table(t) = self.scope.place(target)? else {
            return Ok(None);
        };
        if self.kind == BodyKind::Action {
            return err(method.span, "an action cannot apply a table");
        }
        arity(method, 0, args)?;
        match m.name.as_str() {
            "hit" => Ok(Some((t, positive))),
            "miss" => Ok(Some((t, !positive))),
            "action_run" => err(m.span, "`action_run` (and switch on it) is not supported"),
            _ => err(
                m.span,
                format!("`apply()` result has no member `{}` (use hit or miss)", m.name),
            ),
        }
    }

    fn call(&self, e: &Expr, out: &mut Vec<ir::Stmt>) -> DResult<()> {
        let ExprKind::Call(callee, args) = &e.kind else {
            return err(e.span, "a statement must be an assignment or a call");
        };
        match &callee.kind {
            ExprKind::Name(n) => {
                let id = Ident {
                    name: n.clone(),
                    span: callee.span,
                };
                self.call_name(callee, &id, args, out)
            }
            ExprKind::Member(base, m) => self.call_method(base, m, args, out),
            _ => err(callee.span, format!("`{}` cannot be called", callee.render())),
        }
    }

    /// `action(args);` or `extern_function(args);`
    fn call_name(&self, callee: &Expr, id: &Ident, args: &[Expr], out: &mut Vec<ir::Stmt>) -> DResult<()> {
        match self.scope.place(callee)? {
            Place::Action(a) => {
                if self.kind == BodyKind::Action {
                    return err(id.span, "an action cannot call another action");
                }
                let Some(params) = self.sigs.get(usize::from(a)) else {
                    return err(id.span, format!("internal: action `{}` unknown", id.name));
                };
                if self.reads_direct.get(usize::from(a)).copied().unwrap_or(false) {
                    return err(
                        id.span,
                        format!(
                            "action `{}` reads a direct meter: only its table may run it, not a call",
                            id.name
                        ),
                    );
                }
                arity(id, params.len(), args)?;
                let mut lowered = Vec::new();
                for (n, (p, x)) in params.iter().zip(args).enumerate() {
                    let want = RTy::of(&p.ty).unwrap_or(RTy::Bit(p.width));
                    lowered.push(self.arg_expr(x, want, &id.name, n)?);
                }
                out.push(ir::Stmt::Call {
                    action: a,
                    args: lowered,
                });
                Ok(())
            }
            Place::ExternFn(f) => {
                if let Some(crate::ast::ExternDecl::Function(m)) = self.scope.g.externs.get(&f) {
                    arity(id, m.params.len(), args)?;
                }
                if f != "mark_to_drop" {
                    return err(id.span, format!("extern function `{f}` is not supported by fairnic"));
                }
                match args.first().map(|a| self.scope.place(a)) {
                    Some(Ok(Place::StdStruct)) => {
                        out.push(ir::Stmt::Drop);
                        Ok(())
                    }
                    Some(Err(d)) => Err(d),
                    _ => err(
                        args.first().map_or(id.span, |a| a.span),
                        "`mark_to_drop` takes the standard metadata",
                    ),
                }
            }
            _ => err(id.span, format!("`{}` is not an action or a function", id.name)),
        }
    }

    /// The type of parameter `i` of extern method `m` of `ext`, as a
    /// run-time type (None: a type parameter).
    fn method_param(&self, ext: &str, m: &Ident, i: usize) -> DResult<Option<RTy>> {
        let sig = self.scope.g.method(ext, m)?;
        let Some(p) = sig.params.get(i) else {
            return Ok(None);
        };
        let ty = self.scope.g.resolve(&p.ty, &sig.type_params)?;
        Ok(RTy::of(&ty))
    }

    fn call_method(&self, base: &Expr, m: &Ident, args: &[Expr], out: &mut Vec<ir::Stmt>) -> DResult<()> {
        if m.name == "setValid" || m.name == "setInvalid" {
            return err(
                m.span,
                format!("`{}()` is not supported: headers become valid only by extract", m.name),
            );
        }
        let place = self.scope.place(base)?;
        let ext = match &place {
            Place::Counter(_) => "counter",
            Place::Meter(_) => "meter",
            Place::DirectCounter(_) => "direct_counter",
            Place::DirectMeter(_) => "direct_meter",
            Place::Packet { input: true } => "packet_in",
            Place::Packet { input: false } => "packet_out",
            _ => "",
        };
        if !ext.is_empty() {
            let sig = self.scope.g.method(ext, m)?;
            arity(m, sig.params.len(), args)?;
        }
        match (place, m.name.as_str()) {
            (Place::Table(t), "apply") => {
                if self.kind == BodyKind::Action {
                    return err(m.span, "an action cannot apply a table");
                }
                arity(m, 0, args)?;
                out.push(ir::Stmt::Apply {
                    table: t,
                    on_hit: Vec::new(),
                    on_miss: Vec::new(),
                });
                Ok(())
            }
            (Place::Counter(counter), "count") => {
                let want = self.method_param(ext, m, 0)?.unwrap_or(RTy::Bit(32));
                let index = self.arg_expr(nth(args, 0, m)?, want, &m.name, 0)?;
                out.push(ir::Stmt::Count { counter, index });
                Ok(())
            }
            (Place::Meter(meter), "execute_meter") => {
                let want = self.method_param(ext, m, 0)?.unwrap_or(RTy::Bit(32));
                let index = self.arg_expr(nth(args, 0, m)?, want, &m.name, 0)?;
                let color = nth(args, 1, m)?;
                let (dst, _, width) = self.scope.lvalue(color)?;
                if width < 2 {
                    return err(
                        color.span,
                        "a meter's color (0 green, 1 yellow, 2 red) needs at least 2 bits",
                    );
                }
                out.push(ir::Stmt::Meter { meter, index, dst });
                Ok(())
            }
            (Place::DirectCounter(_), "count") => {
                // As v1model's: every hit counts in the matched entry's
                // cell, so the call itself does nothing.
                if self.kind != BodyKind::Action {
                    return err(m.span, "a direct counter counts in the actions of its table only");
                }
                Ok(())
            }
            (Place::DirectMeter(meter), "read") => {
                if self.kind != BodyKind::Action {
                    return err(
                        m.span,
                        "a direct meter is read in an action of its table (the matched entry's meter)",
                    );
                }
                let color = nth(args, 0, m)?;
                let (dst, _, width) = self.scope.lvalue(color)?;
                if width < 2 {
                    return err(
                        color.span,
                        "a meter's color (0 green, 1 yellow, 2 red) needs at least 2 bits",
                    );
                }
                out.push(ir::Stmt::DirectMeter { meter, dst });
                Ok(())
            }
            (Place::Packet { input: true }, _) => err(m.span, "extract is allowed only in parser states"),
            (Place::Packet { input: false }, _) => err(m.span, "emit is allowed only in the deparser"),
            (Place::Header(_), "isValid") => err(m.span, "`isValid()` as a statement has no effect"),
            _ if !ext.is_empty() => err(m.span, format!("method `{}` of `{ext}` is not supported", m.name)),
            _ => err(m.span, format!("`{}` has no method `{}`", base.render(), m.name)),
        }
    }
}

/// Argument `i` of a call of `m`.
fn nth<'e>(args: &'e [Expr], i: usize, m: &Ident) -> DResult<&'e Expr> {
    args.get(i)
        .ok_or_else(|| crate::diag::Diag::new(m.span, format!("`{}` needs argument {}", m.name, i + 1)))
}

/// Check an IR expression against the IR's nesting limit.
pub fn check_height(x: &ir::Expr, span: Span) -> DResult<()> {
    if ir_height(x) > limits::EXPR_DEPTH + 1 {
        return err(
            span,
            format!(
                "expression too complex (nested more than {} levels)",
                limits::EXPR_DEPTH
            ),
        );
    }
    Ok(())
}

/// `lhs = rhs;`: the destination and the value.
pub fn assignment(scope: &Scope<'_, '_>, lhs: &Expr, rhs: &Expr) -> DResult<(ir::FieldRef, ir::Expr)> {
    let (dst, ty, width) = scope.lvalue(lhs)?;
    let want = RTy::of(&ty).unwrap_or(RTy::Bit(width));
    let value = scope.expr(rhs)?;
    let got = match &value {
        TExpr::Run(_, got) => Some(*got),
        TExpr::Const(CVal::Bits(_, w)) => Some(RTy::Bit(*w)),
        TExpr::Const(CVal::Bool(_)) => Some(RTy::Bool),
        TExpr::Const(CVal::Int(_)) => None,
    };
    if let Some(got) = got {
        if got != want {
            let what = if matches!(ty, Ty::Bool) || got == RTy::Bool {
                "type"
            } else {
                "width"
            };
            return err(
                rhs.span,
                format!(
                    "{what} mismatch: cannot assign {} to `{}` ({}) without a cast",
                    got.show(),
                    lhs.render(),
                    want.show()
                ),
            );
        }
    }
    let value = scope.convert(value, want, rhs.span)?;
    check_height(&value, rhs.span)?;
    Ok((dst, value))
}
