//! Expressions and conditions compiled to closures over a batch of
//! packets (lane masks), and stores to fields.

use super::*;

impl<const L: usize> Compiler<'_, L> {
    pub(super) fn expr(&self, e: &Expr) -> ExprFn<L> {
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

    pub(super) fn binary(&self, op: BinOp, lhs: &Expr, rhs: &Expr, w: u64) -> ExprFn<L> {
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
    pub(super) fn cond(&self, e: &Expr) -> CondFn {
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

    pub(super) fn store(&self, dst: FieldRef) -> Store {
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
}
