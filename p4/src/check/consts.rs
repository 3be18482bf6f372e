//! Compile-time values and constant folding.
//!
//! An integer literal without a width is a [`CVal::Int`] of unbounded
//! precision (here: `i128`) until its context gives it a width, as in P4;
//! then it must fit. Typed values ([`CVal::Bits`]) wrap at their width.

use crate::ast::{BinaryOp, UnaryOp};

/// A compile-time value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CVal {
    /// An integer without a width.
    Int(i128),
    /// `bit<w>` (the value is below `2^w`).
    Bits(u128, u16),
    Bool(bool),
}

/// All ones in the low `w` bits.
pub fn mask(w: u16) -> u128 {
    if w >= 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    }
}

/// Bits needed for `v` (at least 1).
pub fn bits_needed(v: u128) -> u16 {
    (128 - v.leading_zeros()).max(1) as u16
}

impl CVal {
    /// How the value's type reads in messages.
    pub fn type_name(self) -> String {
        match self {
            CVal::Int(_) => "an integer".into(),
            CVal::Bits(_, w) => format!("bit<{w}>"),
            CVal::Bool(_) => "bool".into(),
        }
    }

    /// The value as `bit<w>`: an integer must fit, a typed value must have
    /// width `w`.
    pub fn to_bits(self, w: u16) -> Result<u128, String> {
        match self {
            CVal::Int(v) if v >= 0 && (v as u128) <= mask(w) => Ok(v as u128),
            CVal::Int(v) => Err(format!("value {v} does not fit in bit<{w}>")),
            CVal::Bits(v, vw) if vw == w => Ok(v),
            CVal::Bits(_, vw) => Err(format!("expected bit<{w}>, found bit<{vw}>")),
            CVal::Bool(_) => Err(format!("expected bit<{w}>, found bool")),
        }
    }
}

/// `op a`.
pub fn unary(op: UnaryOp, a: CVal) -> Result<CVal, String> {
    match (op, a) {
        (UnaryOp::Not, CVal::Bool(b)) => Ok(CVal::Bool(!b)),
        (UnaryOp::Not, _) => Err(format!("`!` needs a bool, found {}", a.type_name())),
        (UnaryOp::BitNot, CVal::Bits(v, w)) => Ok(CVal::Bits(!v & mask(w), w)),
        (UnaryOp::BitNot, CVal::Int(_)) => Err("`~` needs a value with a width (e.g. 8w0)".into()),
        (UnaryOp::Neg, CVal::Int(v)) => v.checked_neg().map(CVal::Int).ok_or_else(|| "constant overflow".into()),
        (UnaryOp::Neg, CVal::Bits(v, w)) => Ok(CVal::Bits(v.wrapping_neg() & mask(w), w)),
        (_, CVal::Bool(_)) => Err("arithmetic on a bool".into()),
    }
}

/// `(bit<w>) a`.
pub fn cast_bits(a: CVal, w: u16) -> Result<CVal, String> {
    match a {
        CVal::Int(v) => Ok(CVal::Bits(v as u128 & mask(w), w)),
        CVal::Bits(v, _) => Ok(CVal::Bits(v & mask(w), w)),
        CVal::Bool(b) if w == 1 => Ok(CVal::Bits(u128::from(b), 1)),
        CVal::Bool(_) => Err(format!("cannot cast a bool to bit<{w}> (only to bit<1>)")),
    }
}

/// `(bool) a`.
pub fn cast_bool(a: CVal) -> Result<CVal, String> {
    match a {
        CVal::Bool(_) => Ok(a),
        CVal::Bits(v, 1) => Ok(CVal::Bool(v == 1)),
        CVal::Int(v @ (0 | 1)) => Ok(CVal::Bool(v == 1)),
        _ => Err(format!("cannot cast {} to bool (only bit<1>)", a.type_name())),
    }
}

/// A comparison of two constants (`op` is one of the six comparisons).
fn compare<T: Ord>(op: BinaryOp, x: T, y: T) -> bool {
    match op {
        BinaryOp::Eq => x == y,
        BinaryOp::Ne => x != y,
        BinaryOp::Lt => x < y,
        BinaryOp::Le => x <= y,
        BinaryOp::Gt => x > y,
        _ => x >= y,
    }
}

fn int_op(op: BinaryOp, x: i128, y: i128) -> Result<CVal, String> {
    let overflow = || "constant overflow".to_string();
    let shift = |y: i128| u32::try_from(y).ok().filter(|&s| s < 127).ok_or_else(overflow);
    let v = match op {
        BinaryOp::Add => x.checked_add(y).ok_or_else(overflow)?,
        BinaryOp::Sub => x.checked_sub(y).ok_or_else(overflow)?,
        BinaryOp::Mul => x.checked_mul(y).ok_or_else(overflow)?,
        BinaryOp::BitAnd => x & y,
        BinaryOp::BitOr => x | y,
        BinaryOp::BitXor => x ^ y,
        BinaryOp::Shl => {
            let s = shift(y)?;
            let v = x.checked_shl(s).ok_or_else(overflow)?;
            if v >> s != x {
                return Err(overflow());
            }
            v
        }
        BinaryOp::Shr => x >> shift(y)?.min(126),
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            return Ok(CVal::Bool(compare(op, x, y)))
        }
        BinaryOp::And | BinaryOp::Or => return Err(format!("`{}` needs bool operands", op.text())),
    };
    Ok(CVal::Int(v))
}

fn bits_op(op: BinaryOp, x: u128, y: u128, w: u16) -> Result<CVal, String> {
    let m = mask(w);
    let v = match op {
        BinaryOp::Add => x.wrapping_add(y),
        BinaryOp::Sub => x.wrapping_sub(y),
        BinaryOp::Mul => x.wrapping_mul(y),
        BinaryOp::BitAnd => x & y,
        BinaryOp::BitOr => x | y,
        BinaryOp::BitXor => x ^ y,
        BinaryOp::Shl => u32::try_from(y).ok().and_then(|s| x.checked_shl(s)).unwrap_or(0),
        BinaryOp::Shr => u32::try_from(y).ok().and_then(|s| x.checked_shr(s)).unwrap_or(0),
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            return Ok(CVal::Bool(compare(op, x, y)))
        }
        BinaryOp::And | BinaryOp::Or => return Err(format!("`{}` needs bool operands", op.text())),
    };
    Ok(CVal::Bits(v & m, w))
}

fn is_shift(op: BinaryOp) -> bool {
    matches!(op, BinaryOp::Shl | BinaryOp::Shr)
}

/// `a op b`.
pub fn binary(op: BinaryOp, a: CVal, b: CVal) -> Result<CVal, String> {
    match (a, b) {
        (CVal::Bool(x), CVal::Bool(y)) => match op {
            BinaryOp::Eq => Ok(CVal::Bool(x == y)),
            BinaryOp::Ne => Ok(CVal::Bool(x != y)),
            BinaryOp::And => Ok(CVal::Bool(x && y)),
            BinaryOp::Or => Ok(CVal::Bool(x || y)),
            _ => Err(format!("`{}` does not apply to bool", op.text())),
        },
        (CVal::Bool(_), _) | (_, CVal::Bool(_)) => Err(format!(
            "`{}` between {} and {}",
            op.text(),
            a.type_name(),
            b.type_name()
        )),
        (CVal::Int(x), CVal::Int(y)) => int_op(op, x, y),
        (CVal::Int(x), CVal::Bits(y, _)) if is_shift(op) => {
            int_op(op, x, i128::try_from(y).map_err(|_| "constant overflow".to_string())?)
        }
        (CVal::Bits(x, w), CVal::Bits(y, _)) if is_shift(op) => bits_op(op, x, y, w),
        (CVal::Bits(x, w), CVal::Int(y)) if is_shift(op) => {
            let y = u128::try_from(y).map_err(|_| "negative shift amount".to_string())?;
            bits_op(op, x, y, w)
        }
        (CVal::Bits(x, w), CVal::Int(_)) => bits_op(op, x, b.to_bits(w)?, w),
        (CVal::Int(_), CVal::Bits(y, w)) => bits_op(op, a.to_bits(w)?, y, w),
        (CVal::Bits(x, w), CVal::Bits(y, v)) if w == v => bits_op(op, x, y, w),
        (CVal::Bits(_, w), CVal::Bits(_, v)) => Err(format!(
            "operands of `{}` have different widths: bit<{w}> and bit<{v}>",
            op.text()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_exact_typed_values_wrap() {
        assert_eq!(binary(BinaryOp::Add, CVal::Int(250), CVal::Int(10)), Ok(CVal::Int(260)));
        assert_eq!(
            binary(BinaryOp::Add, CVal::Bits(250, 8), CVal::Int(10)),
            Ok(CVal::Bits(4, 8))
        );
        assert!(binary(BinaryOp::Add, CVal::Bits(250, 8), CVal::Int(300)).is_err());
        assert!(binary(BinaryOp::Add, CVal::Bits(1, 8), CVal::Bits(1, 16)).is_err());
        assert_eq!(
            binary(BinaryOp::Shl, CVal::Int(1), CVal::Int(40)),
            Ok(CVal::Int(1 << 40))
        );
        assert!(binary(BinaryOp::Shl, CVal::Int(1), CVal::Int(200)).is_err());
        assert_eq!(
            binary(BinaryOp::Shl, CVal::Bits(1, 8), CVal::Int(9)),
            Ok(CVal::Bits(0, 8))
        );
        assert_eq!(binary(BinaryOp::Lt, CVal::Int(1), CVal::Int(2)), Ok(CVal::Bool(true)));
        assert_eq!(unary(UnaryOp::Neg, CVal::Bits(1, 8)), Ok(CVal::Bits(255, 8)));
        assert_eq!(unary(UnaryOp::BitNot, CVal::Bits(0, 4)), Ok(CVal::Bits(15, 4)));
        assert!(unary(UnaryOp::BitNot, CVal::Int(0)).is_err());
        assert_eq!(cast_bits(CVal::Int(-1), 8), Ok(CVal::Bits(255, 8)));
        assert_eq!(cast_bool(CVal::Bits(1, 1)), Ok(CVal::Bool(true)));
        assert!(cast_bool(CVal::Bits(1, 2)).is_err());
        assert_eq!(CVal::Int(-1).to_bits(8).unwrap_err(), "value -1 does not fit in bit<8>");
        assert_eq!(mask(128), u128::MAX);
        assert_eq!(bits_needed(0), 1);
        assert_eq!(bits_needed(255), 8);
    }
}
