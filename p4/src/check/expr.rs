//! Names and expressions: what a name or `a.b.c` path refers to
//! ([`Place`]), and expressions type-checked and lowered to IR
//! ([`TExpr`]), with constants folded.
//!
//! Type rules (P4's, for the supported types): operands of arithmetic,
//! bitwise and comparison operators have the same width; an integer
//! without a width takes its partner's width and must fit in it; `&&`,
//! `||`, `!` and conditions are bool; a shift's result has its left
//! operand's width; widths change only by casts `(bit<N>)`, and `bool`
//! converts to and from `bit<1>` only by a cast. Run-time values are at
//! most 64 bits wide.

use super::consts::{self, bits_needed, CVal, Int};
use super::globals::Globals;
use super::layout::Layout;
use super::types::Ty;
use crate::ast::{BinaryOp, Expr, ExprKind, Ident, TypeRef, UnaryOp};
use crate::diag::{err, DResult, Diag, Span};
use dataplane::pipeline::{self as ir, std_meta, FieldRef};
use std::collections::HashMap;

/// The names a block's parameters give to the packet, headers, metadata and
/// standard metadata.
#[derive(Debug, Clone, Default)]
pub struct BlockNames {
    /// The packet parameter and whether it is `packet_in`.
    pub pkt: Option<(String, bool)>,
    pub hdr: Option<String>,
    pub meta: Option<String>,
    pub std: Option<String>,
}

/// A name declared inside the ingress control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalItem {
    Action(u16),
    Table(u16),
    Meter(u16),
    Counter(u16),
    /// A `direct_meter` (its index among the meters).
    DirectMeter(u16),
    /// A `direct_counter` (its index among the counters).
    DirectCounter(u16),
    Const(CVal),
}

/// An action parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    pub name: String,
    pub ty: Ty,
    pub width: u16,
}

/// What a name or member path refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A header or metadata field.
    Field {
        fr: FieldRef,
        ty: Ty,
        width: u16,
        writable: bool,
    },
    /// A header instance.
    Header(u16),
    HeadersStruct,
    MetaStruct,
    StdStruct,
    Param(u16, Ty),
    Value(CVal),
    Action(u16),
    Table(u16),
    Meter(u16),
    Counter(u16),
    DirectMeter(u16),
    DirectCounter(u16),
    Packet {
        input: bool,
    },
    ExternFn(String),
    Enum(String),
    EnumMember(String, String),
}

/// A typed run-time value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RTy {
    Bit(u16),
    Bool,
}

impl RTy {
    pub fn show(self) -> String {
        match self {
            RTy::Bit(w) => format!("bit<{w}>"),
            RTy::Bool => "bool".into(),
        }
    }

    pub fn width(self) -> u16 {
        match self {
            RTy::Bit(w) => w,
            RTy::Bool => 1,
        }
    }

    /// The run-time type of a scalar type.
    pub fn of(ty: &Ty) -> Option<RTy> {
        match ty {
            Ty::Bit(w) => Some(RTy::Bit(*w)),
            Ty::Bool => Some(RTy::Bool),
            _ => None,
        }
    }
}

/// A checked expression: a constant, or IR computing a value of a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TExpr {
    Const(CVal),
    Run(ir::Expr, RTy),
}

/// The standard metadata fields the device sets and programs only read.
const READ_ONLY_STD: [u16; 3] = [std_meta::INGRESS_LIF, std_meta::PACKET_LENGTH, std_meta::PARSER_ERROR];

/// Where names are looked up: globals, the block's parameters, the
/// ingress control's declarations, and the running action's parameters.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'s, 'a> {
    pub g: &'s Globals<'a>,
    pub layout: Option<&'s Layout>,
    pub names: Option<&'s BlockNames>,
    pub locals: Option<&'s HashMap<String, LocalItem>>,
    pub params: &'s [ParamInfo],
}

fn ir_const(value: u128, width: u16) -> ir::Expr {
    ir::Expr::Const {
        value: value as u64,
        width,
    }
}

impl<'s, 'a> Scope<'s, 'a> {
    /// Globals only (constants, global actions).
    pub fn global(g: &'s Globals<'a>) -> Scope<'s, 'a> {
        Scope {
            g,
            layout: None,
            names: None,
            locals: None,
            params: &[],
        }
    }

    fn is_name(&self, n: &str, pick: impl Fn(&BlockNames) -> Option<&str>) -> bool {
        self.names.and_then(pick) == Some(n)
    }

    /// What the name `n` refers to.
    fn name(&self, n: &str, span: Span) -> DResult<Place> {
        if let Some(i) = self.params.iter().position(|p| p.name == n) {
            return Ok(Place::Param(i as u16, self.params[i].ty.clone()));
        }
        if let Some(b) = self.names {
            if let Some((p, input)) = &b.pkt {
                if p == n {
                    return Ok(Place::Packet { input: *input });
                }
            }
        }
        if self.is_name(n, |b| b.hdr.as_deref()) {
            return Ok(Place::HeadersStruct);
        }
        if self.is_name(n, |b| b.meta.as_deref()) {
            return Ok(Place::MetaStruct);
        }
        if self.is_name(n, |b| b.std.as_deref()) {
            return Ok(Place::StdStruct);
        }
        if let Some(l) = self.locals.and_then(|l| l.get(n)) {
            return Ok(match *l {
                LocalItem::Action(a) => Place::Action(a),
                LocalItem::Table(t) => Place::Table(t),
                LocalItem::Meter(m) => Place::Meter(m),
                LocalItem::Counter(c) => Place::Counter(c),
                LocalItem::DirectMeter(m) => Place::DirectMeter(m),
                LocalItem::DirectCounter(c) => Place::DirectCounter(c),
                LocalItem::Const(v) => Place::Value(v),
            });
        }
        if let Some(&a) = self.g.action_index.get(n) {
            return Ok(Place::Action(a));
        }
        if let Some(&v) = self.g.consts.get(n) {
            return Ok(Place::Value(v));
        }
        if self.g.enums.contains_key(n) {
            return Ok(Place::Enum(n.to_string()));
        }
        if let Some(crate::ast::ExternDecl::Function(_)) = self.g.externs.get(n) {
            return Ok(Place::ExternFn(n.to_string()));
        }
        if self.g.parsers.contains_key(n) || self.g.controls.contains_key(n) {
            return err(
                span,
                format!("`{n}` is a parser or control: instantiating or applying one inside another is not supported (blocks run only as `main`'s)"),
            );
        }
        if self.g.names.contains_key(n) {
            return err(span, format!("`{n}` is not a value here"));
        }
        err(span, format!("unknown name `{n}`"))
    }

    /// What `base.m` refers to.
    fn member(&self, base: &Expr, m: &Ident) -> DResult<Place> {
        if let ExprKind::Call(..) = base.kind {
            if m.name == "hit" || m.name == "miss" {
                return err(
                    m.span,
                    format!("`{}.{}` may only be the condition of an `if`", base.render(), m.name),
                );
            }
            return err(m.span, format!("`{}` has no member `{}`", base.render(), m.name));
        }
        let b = self.place(base)?;
        let layout = self.layout;
        let missing = |what: String| err(m.span, format!("{what} has no member `{}`", m.name));
        match (b, layout) {
            (Place::HeadersStruct, Some(l)) => match l.header_index.get(&m.name) {
                Some(&h) => Ok(Place::Header(h)),
                None => missing(format!("struct `{}`", l.hdr_struct)),
            },
            (Place::Header(h), Some(l)) => {
                let ht = &l.header_tys[usize::from(h)];
                match ht.fields.iter().position(|f| f.name == m.name) {
                    Some(f) => Ok(Place::Field {
                        fr: FieldRef::Header {
                            header: h,
                            field: f as u16,
                        },
                        ty: ht.fields[f].ty.clone(),
                        width: ht.fields[f].width,
                        writable: true,
                    }),
                    None => missing(format!(
                        "header `{}` (`{}`)",
                        l.headers[usize::from(h)].type_name,
                        base.render()
                    )),
                }
            }
            (Place::MetaStruct, Some(l)) => match l.user_meta.get(&m.name) {
                Some(&i) => Ok(l.meta_field(i, true)),
                None => missing(format!("struct `{}`", l.meta_struct)),
            },
            (Place::StdStruct, Some(l)) => match l.std_index.get(&m.name) {
                Some(&i) => Ok(l.meta_field(i, !READ_ONLY_STD.contains(&i))),
                None => missing("`standard_metadata_t`".to_string()),
            },
            (Place::Enum(e), _) => {
                if self.g.enums.get(&e).is_some_and(|ms| ms.contains(&m.name)) {
                    Ok(Place::EnumMember(e, m.name.clone()))
                } else {
                    missing(format!("enum `{e}`"))
                }
            }
            _ => missing(format!("`{}`", base.render())),
        }
    }

    /// What a name or member path refers to.
    pub fn place(&self, e: &Expr) -> DResult<Place> {
        match &e.kind {
            ExprKind::Name(n) => self.name(n, e.span),
            ExprKind::Member(base, m) => self.member(base, m),
            _ => err(e.span, format!("`{}` is not a name", e.render())),
        }
    }

    /// A field to assign: (field, its type).
    pub fn lvalue(&self, e: &Expr) -> DResult<(FieldRef, Ty, u16)> {
        match self.place(e) {
            Ok(Place::Field {
                fr,
                ty,
                width,
                writable,
            }) => {
                if !writable {
                    return err(
                        e.span,
                        format!("`{}` is set by the device and cannot be assigned", e.render()),
                    );
                }
                if width > 64 {
                    return err(
                        e.span,
                        format!(
                            "`{}` is {width} bits; at most 64-bit fields can be assigned",
                            e.render()
                        ),
                    );
                }
                Ok((fr, ty, width))
            }
            Ok(Place::Param(..)) => err(e.span, format!("cannot assign to action parameter `{}`", e.render())),
            Ok(Place::Header(_)) => err(e.span, "assigning whole headers is not supported"),
            Ok(_) => err(e.span, format!("cannot assign to `{}`", e.render())),
            Err(d) if matches!(e.kind, ExprKind::Slice(..)) => err(d.span, "assigning to a slice is not supported"),
            Err(d) => Err(d),
        }
    }

    /// Check and lower an expression.
    pub fn expr(&self, e: &Expr) -> DResult<TExpr> {
        match &e.kind {
            ExprKind::Int(l) => match l.width {
                Some(w) => Ok(TExpr::Const(CVal::Bits(l.value, w))),
                None => Ok(TExpr::Const(CVal::Int(Int::from_u128(l.value)))),
            },
            ExprKind::Bool(b) => Ok(TExpr::Const(CVal::Bool(*b))),
            ExprKind::Name(_) | ExprKind::Member(..) => self.value(e),
            ExprKind::Call(callee, args) => self.call_value(callee, args, e.span),
            ExprKind::Slice(a, hi, lo) => self.slice(a, hi, lo, e.span),
            ExprKind::Unary(op, a) => self.unary(*op, a, e.span),
            ExprKind::Binary(op, at, a, b) => {
                let a = self.expr(a)?;
                let b = self.expr(b)?;
                self.binary(*op, a, b, *at)
            }
            ExprKind::Cast(t, a) => self.cast(t, a),
        }
    }

    /// The value of a name or path.
    fn value(&self, e: &Expr) -> DResult<TExpr> {
        match self.place(e)? {
            Place::Field { fr, ty, width, .. } => {
                if width > 64 {
                    return err(
                        e.span,
                        format!(
                            "`{}` is {width} bits; expressions compute with at most 64 (match it as a table key instead)",
                            e.render()
                        ),
                    );
                }
                let rt = RTy::of(&ty).unwrap_or(RTy::Bit(width));
                Ok(TExpr::Run(ir::Expr::Field(fr), rt))
            }
            Place::Param(i, ty) => Ok(TExpr::Run(ir::Expr::Param(i), RTy::of(&ty).unwrap_or(RTy::Bit(1)))),
            Place::Value(v) => Ok(TExpr::Const(v)),
            Place::Header(_) => err(e.span, format!("`{}` is a header, not a value", e.render())),
            Place::HeadersStruct | Place::MetaStruct | Place::StdStruct => {
                err(e.span, format!("`{}` is a struct, not a value", e.render()))
            }
            Place::EnumMember(..) => err(e.span, "enum values are only supported as meter and counter arguments"),
            _ => err(e.span, format!("`{}` is not a value", e.render())),
        }
    }

    /// A call in an expression: only `h.isValid()`.
    fn call_value(&self, callee: &Expr, args: &[Expr], span: Span) -> DResult<TExpr> {
        if let ExprKind::Member(base, m) = &callee.kind {
            if m.name == "isValid" {
                if let Place::Header(h) = self.place(base)? {
                    if let Some(a) = args.first() {
                        return err(a.span, "`isValid` takes no arguments");
                    }
                    return Ok(TExpr::Run(ir::Expr::Valid(h), RTy::Bool));
                }
            }
            if m.name == "apply" {
                return err(
                    span,
                    format!(
                        "`{}` may only be a statement or the condition of an `if` (with `.hit`/`.miss`)",
                        callee.render()
                    ),
                );
            }
        }
        err(
            span,
            format!(
                "`{}` cannot be called in an expression (only `isValid()`)",
                callee.render()
            ),
        )
    }

    /// A compile-time constant, as a u16 (slice bounds).
    fn small_const(&self, e: &Expr, what: &str) -> DResult<u16> {
        let v = match self.expr(e)? {
            TExpr::Const(CVal::Int(v)) => v.nonneg(),
            TExpr::Const(CVal::Bits(v, _)) => Some(v),
            _ => return err(e.span, format!("{what} must be a constant")),
        };
        v.and_then(|v| u16::try_from(v).ok())
            .ok_or_else(|| Diag::new(e.span, format!("{what} out of range")))
    }

    fn slice(&self, a: &Expr, hi: &Expr, lo: &Expr, span: Span) -> DResult<TExpr> {
        let h = self.small_const(hi, "a slice bound")?;
        let l = self.small_const(lo, "a slice bound")?;
        let v = self.expr(a)?;
        let w = match &v {
            TExpr::Run(_, RTy::Bit(w)) | TExpr::Const(CVal::Bits(_, w)) => *w,
            _ => return err(span, "only bit<N> values can be sliced"),
        };
        if l > h || h >= w {
            return err(span, format!("slice [{h}:{l}] is outside bit<{w}>"));
        }
        let width = h - l + 1;
        Ok(match v {
            TExpr::Const(CVal::Bits(x, _)) => TExpr::Const(CVal::Bits((x >> l) & consts::mask(width), width)),
            TExpr::Run(x, _) => TExpr::Run(
                ir::Expr::Slice {
                    arg: Box::new(x),
                    hi: h,
                    lo: l,
                },
                RTy::Bit(width),
            ),
            TExpr::Const(_) => return err(span, "only bit<N> values can be sliced"),
        })
    }

    fn unary(&self, op: UnaryOp, a: &Expr, span: Span) -> DResult<TExpr> {
        let v = self.expr(a)?;
        let (x, t) = match v {
            TExpr::Const(c) => return consts::unary(op, c).map(TExpr::Const).map_err(|m| Diag::new(span, m)),
            TExpr::Run(x, t) => (x, t),
        };
        let (irop, ok) = match op {
            UnaryOp::Not => (ir::UnOp::Not, t == RTy::Bool),
            UnaryOp::BitNot => (ir::UnOp::BitNot, t != RTy::Bool),
            UnaryOp::Neg => (ir::UnOp::Neg, t != RTy::Bool),
        };
        if !ok {
            let want = if op == UnaryOp::Not { "a bool" } else { "bit<N>" };
            return err(span, format!("operand must be {want}, found {}", t.show()));
        }
        Ok(TExpr::Run(
            ir::Expr::Unary {
                op: irop,
                arg: Box::new(x),
                width: t.width(),
            },
            t,
        ))
    }

    fn cast(&self, t: &TypeRef, a: &Expr) -> DResult<TExpr> {
        let ty = self.g.resolve(t, &[])?;
        let v = self.expr(a)?;
        let span = t.span();
        match (ty, v) {
            (Ty::Bit(w), TExpr::Const(c)) => consts::cast_bits(c, w)
                .map(TExpr::Const)
                .map_err(|m| Diag::new(span, m)),
            (Ty::Bool, TExpr::Const(c)) => consts::cast_bool(c).map(TExpr::Const).map_err(|m| Diag::new(span, m)),
            (Ty::Bit(w), TExpr::Run(_, _)) if w > 64 => err(span, format!("bit<{w}> is wider than 64 bits")),
            (Ty::Bit(w), TExpr::Run(x, RTy::Bit(f))) => Ok(TExpr::Run(
                if w == f {
                    x
                } else {
                    ir::Expr::Cast {
                        arg: Box::new(x),
                        width: w,
                    }
                },
                RTy::Bit(w),
            )),
            (Ty::Bit(1), TExpr::Run(x, RTy::Bool)) => Ok(TExpr::Run(x, RTy::Bit(1))),
            (Ty::Bool, TExpr::Run(x, RTy::Bit(1) | RTy::Bool)) => Ok(TExpr::Run(x, RTy::Bool)),
            (ty, TExpr::Run(_, f)) => err(span, format!("cannot cast {} to {}", f.show(), ty.show())),
            (ty, TExpr::Const(_)) => err(span, format!("cannot cast to {}", ty.show())),
        }
    }

    /// `t` as IR of type `want`: integers must fit, everything else match.
    pub fn convert(&self, t: TExpr, want: RTy, span: Span) -> DResult<ir::Expr> {
        match (t, want) {
            (TExpr::Run(x, got), _) if got == want => Ok(x),
            (TExpr::Run(_, got), _) => err(span, format!("expected {}, found {}", want.show(), got.show())),
            (TExpr::Const(CVal::Bool(b)), RTy::Bool) => Ok(ir_const(u128::from(b), 1)),
            (TExpr::Const(c), RTy::Bool) => err(span, format!("expected bool, found {}", c.type_name())),
            (TExpr::Const(_), RTy::Bit(w)) if w > 64 => err(span, format!("bit<{w}> is wider than 64 bits")),
            (TExpr::Const(c), RTy::Bit(w)) => c.to_bits(w).map(|v| ir_const(v, w)).map_err(|m| Diag::new(span, m)),
        }
    }

    /// The width two operands share (None: both integers without width).
    fn common_width(op: BinaryOp, a: &TExpr, b: &TExpr, span: Span) -> DResult<Option<u16>> {
        let width = |t: &TExpr| match t {
            TExpr::Run(_, RTy::Bit(w)) | TExpr::Const(CVal::Bits(_, w)) => Ok(Some(*w)),
            TExpr::Const(CVal::Int(_)) => Ok(None),
            _ => Err(Diag::new(
                span,
                format!("`{}` needs bit<N> operands, found bool", op.text()),
            )),
        };
        match (width(a)?, width(b)?) {
            (Some(x), Some(y)) if x != y => err(
                span,
                format!(
                    "operands of `{}` have different widths: bit<{x}> and bit<{y}>",
                    op.text()
                ),
            ),
            (x, y) => Ok(x.or(y)),
        }
    }

    fn binary(&self, op: BinaryOp, a: TExpr, b: TExpr, span: Span) -> DResult<TExpr> {
        if let (TExpr::Const(x), TExpr::Const(y)) = (&a, &b) {
            return consts::binary(op, *x, *y)
                .map(TExpr::Const)
                .map_err(|m| Diag::new(span, m));
        }
        let irop = ir_binop(op);
        let node = |l, r, width| ir::Expr::Binary {
            op: irop,
            lhs: Box::new(l),
            rhs: Box::new(r),
            width,
        };
        match op {
            BinaryOp::And | BinaryOp::Or => {
                let l = self.convert(a, RTy::Bool, span)?;
                let r = self.convert(b, RTy::Bool, span)?;
                Ok(TExpr::Run(node(l, r, 1), RTy::Bool))
            }
            BinaryOp::Shl | BinaryOp::Shr => self.shift(a, b, span, node),
            BinaryOp::Eq | BinaryOp::Ne if is_bool(&a) || is_bool(&b) => {
                let l = self.convert(a, RTy::Bool, span)?;
                let r = self.convert(b, RTy::Bool, span)?;
                Ok(TExpr::Run(node(l, r, 1), RTy::Bool))
            }
            _ => {
                let Some(w) = Self::common_width(op, &a, &b, span)? else {
                    return err(span, "internal: no width for a run-time operation");
                };
                let l = self.convert(a, RTy::Bit(w), span)?;
                let r = self.convert(b, RTy::Bit(w), span)?;
                if is_comparison(op) {
                    Ok(TExpr::Run(node(l, r, 1), RTy::Bool))
                } else {
                    Ok(TExpr::Run(node(l, r, w), RTy::Bit(w)))
                }
            }
        }
    }

    fn shift(
        &self,
        a: TExpr,
        b: TExpr,
        span: Span,
        node: impl Fn(ir::Expr, ir::Expr, u16) -> ir::Expr,
    ) -> DResult<TExpr> {
        let w = match &a {
            TExpr::Run(_, RTy::Bit(w)) | TExpr::Const(CVal::Bits(_, w)) => *w,
            TExpr::Const(CVal::Int(_)) => {
                return err(
                    span,
                    "shifting an integer without a width by a run-time amount (give it a width)",
                )
            }
            _ => return err(span, "only bit<N> values can be shifted"),
        };
        let l = self.convert(a, RTy::Bit(w), span)?;
        let r = match b {
            TExpr::Run(x, RTy::Bit(_)) => x,
            TExpr::Const(CVal::Int(v)) => {
                let v = v
                    .nonneg()
                    .and_then(|v| u64::try_from(v).ok())
                    .ok_or_else(|| Diag::new(span, "shift amount out of range"))?;
                ir_const(u128::from(v), bits_needed(u128::from(v)))
            }
            TExpr::Const(CVal::Bits(v, bw)) if bw <= 64 => ir_const(v, bw),
            _ => return err(span, "the shift amount must be bit<N> of at most 64 bits"),
        };
        Ok(TExpr::Run(node(l, r, w), RTy::Bit(w)))
    }

    /// A compile-time constant of the declared type `t` (`const` values).
    pub fn constant_of(&self, e: &Expr, t: &TypeRef) -> DResult<CVal> {
        let (ty, w) = self.g.scalar(t, "a constant")?;
        let v = match self.expr(e)? {
            TExpr::Const(v) => v,
            TExpr::Run(..) => return err(e.span, "a constant's value must be known at compile time"),
        };
        match ty {
            Ty::Bool => match v {
                CVal::Bool(_) => Ok(v),
                _ => err(e.span, format!("expected bool, found {}", v.type_name())),
            },
            _ => v.to_bits(w).map(|x| CVal::Bits(x, w)).map_err(|m| Diag::new(e.span, m)),
        }
    }

    /// A compile-time constant for a key of `width` bits (bool keys take
    /// `true`/`false`).
    pub fn key_value(&self, e: &Expr, width: u16, is_bool: bool) -> DResult<u128> {
        let v = match self.expr(e)? {
            TExpr::Const(v) => v,
            TExpr::Run(..) => return err(e.span, "a key value must be a constant"),
        };
        match v {
            CVal::Bool(b) if is_bool => Ok(u128::from(b)),
            // As in an assignment (`meta.flag = 1;` is refused), and as
            // p4c says: a bool key takes a bool.
            _ if is_bool => err(
                e.span,
                format!("expected bool (`true` or `false`), found {}", v.type_name()),
            ),
            _ => v.to_bits(width).map_err(|m| Diag::new(e.span, m)),
        }
    }
}

fn is_bool(t: &TExpr) -> bool {
    matches!(t, TExpr::Run(_, RTy::Bool) | TExpr::Const(CVal::Bool(_)))
}

fn is_comparison(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
    )
}

fn ir_binop(op: BinaryOp) -> ir::BinOp {
    match op {
        BinaryOp::Mul => ir::BinOp::Mul,
        BinaryOp::Add => ir::BinOp::Add,
        BinaryOp::Sub => ir::BinOp::Sub,
        BinaryOp::Shl => ir::BinOp::Shl,
        BinaryOp::Shr => ir::BinOp::Shr,
        BinaryOp::BitAnd => ir::BinOp::BitAnd,
        BinaryOp::BitXor => ir::BinOp::BitXor,
        BinaryOp::BitOr => ir::BinOp::BitOr,
        BinaryOp::Eq => ir::BinOp::Eq,
        BinaryOp::Ne => ir::BinOp::Ne,
        BinaryOp::Lt => ir::BinOp::Lt,
        BinaryOp::Le => ir::BinOp::Le,
        BinaryOp::Gt => ir::BinOp::Gt,
        BinaryOp::Ge => ir::BinOp::Ge,
        BinaryOp::And => ir::BinOp::And,
        BinaryOp::Or => ir::BinOp::Or,
    }
}

/// The height of an IR expression (a leaf is 1).
pub fn ir_height(e: &ir::Expr) -> usize {
    match e {
        ir::Expr::Const { .. } | ir::Expr::Field(_) | ir::Expr::Param(_) | ir::Expr::Valid(_) => 1,
        ir::Expr::Unary { arg, .. } | ir::Expr::Slice { arg, .. } | ir::Expr::Cast { arg, .. } => 1 + ir_height(arg),
        ir::Expr::Binary { lhs, rhs, .. } => 1 + ir_height(lhs).max(ir_height(rhs)),
    }
}
