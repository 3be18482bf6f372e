//! Compile-time values and constant folding.
//!
//! An integer literal without a width is a [`CVal::Int`] of unbounded
//! precision (here: [`Int`], every value from -(2^128 - 1) to 2^128 - 1,
//! enough for anything a `bit<128>` holds) until its context gives it a
//! width, as in P4; then it must fit. Typed values ([`CVal::Bits`]) wrap
//! at their width.

use crate::ast::{BinaryOp, UnaryOp};

/// P4's `int` (an integer without a width) as the compiler folds it:
/// sign and magnitude, -(2^128 - 1)..=2^128 - 1; past that, "constant
/// overflow".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int {
    neg: bool,
    mag: u128,
}

impl Int {
    pub const ZERO: Int = Int { neg: false, mag: 0 };

    #[cfg(test)]
    pub fn new(v: i128) -> Int {
        Int {
            neg: v < 0,
            mag: v.unsigned_abs(),
        }
    }

    /// A non-negative value.
    pub fn from_u128(v: u128) -> Int {
        Int { neg: false, mag: v }
    }

    fn signed(neg: bool, mag: u128) -> Int {
        Int {
            neg: neg && mag != 0,
            mag,
        }
    }

    /// The value if it is not negative.
    pub fn nonneg(self) -> Option<u128> {
        (!self.neg).then_some(self.mag)
    }

    /// The low `w` bits of the value in two's complement.
    pub fn low_bits(self, w: u16) -> u128 {
        let low = if self.neg { self.mag.wrapping_neg() } else { self.mag };
        low & mask(w)
    }

    /// 129-bit two's complement: (sign bit, low 128 bits).
    fn twos(self) -> (bool, u128) {
        (self.neg, if self.neg { self.mag.wrapping_neg() } else { self.mag })
    }

    fn from_twos(sign: bool, low: u128) -> Option<Int> {
        if !sign {
            return Some(Int::from_u128(low));
        }
        // Negative: the magnitude is 2^128 - low, which needs low != 0.
        (low != 0).then(|| Int::signed(true, low.wrapping_neg()))
    }

    fn add(self, o: Int) -> Option<Int> {
        if self.neg == o.neg {
            return self.mag.checked_add(o.mag).map(|m| Int::signed(self.neg, m));
        }
        // Opposite signs: the larger magnitude's sign wins.
        Some(if self.mag >= o.mag {
            Int::signed(self.neg, self.mag - o.mag)
        } else {
            Int::signed(o.neg, o.mag - self.mag)
        })
    }

    fn neg(self) -> Int {
        Int::signed(!self.neg, self.mag)
    }

    fn mul(self, o: Int) -> Option<Int> {
        self.mag.checked_mul(o.mag).map(|m| Int::signed(self.neg != o.neg, m))
    }

    fn shl(self, s: u32) -> Option<Int> {
        let m = self.mag.checked_shl(s)?;
        (m >> s == self.mag).then(|| Int::signed(self.neg, m))
    }

    /// Arithmetic shift right (rounds toward minus infinity).
    fn shr(self, s: u32) -> Int {
        let q = self.mag.checked_shr(s).unwrap_or(0);
        if self.neg && q.checked_shl(s).is_none_or(|back| back != self.mag) {
            Int::signed(true, q + 1)
        } else {
            Int::signed(self.neg, q)
        }
    }

    fn bitwise(self, o: Int, f: impl Fn(u128, u128) -> u128, fb: impl Fn(bool, bool) -> bool) -> Option<Int> {
        let ((sa, la), (sb, lb)) = (self.twos(), o.twos());
        Int::from_twos(fb(sa, sb), f(la, lb))
    }
}

impl PartialOrd for Int {
    fn partial_cmp(&self, o: &Int) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Int {
    fn cmp(&self, o: &Int) -> std::cmp::Ordering {
        match (self.neg, o.neg) {
            (false, false) => self.mag.cmp(&o.mag),
            (true, true) => o.mag.cmp(&self.mag),
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
        }
    }
}

impl std::fmt::Display for Int {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.neg {
            write!(f, "-{}", self.mag)
        } else {
            write!(f, "{}", self.mag)
        }
    }
}

/// A compile-time value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CVal {
    /// An integer without a width.
    Int(Int),
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
    /// An integer without a width.
    #[cfg(test)]
    pub fn int(v: i128) -> CVal {
        CVal::Int(Int::new(v))
    }

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
            CVal::Int(v) => match v.nonneg() {
                Some(x) if x <= mask(w) => Ok(x),
                _ => Err(format!("value {v} does not fit in bit<{w}>")),
            },
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
        (UnaryOp::Neg, CVal::Int(v)) => Ok(CVal::Int(v.neg())),
        (UnaryOp::Neg, CVal::Bits(v, w)) => Ok(CVal::Bits(v.wrapping_neg() & mask(w), w)),
        (_, CVal::Bool(_)) => Err("arithmetic on a bool".into()),
    }
}

/// `(bit<w>) a`.
pub fn cast_bits(a: CVal, w: u16) -> Result<CVal, String> {
    match a {
        CVal::Int(v) => Ok(CVal::Bits(v.low_bits(w), w)),
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
        CVal::Int(v) if v.nonneg().is_some_and(|x| x <= 1) => Ok(CVal::Bool(v == Int::from_u128(1))),
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

fn int_op(op: BinaryOp, x: Int, y: Int) -> Result<CVal, String> {
    let overflow = || "constant overflow".to_string();
    let shift = |y: Int| {
        y.nonneg()
            .and_then(|s| u32::try_from(s).ok())
            .ok_or_else(|| "shift amount out of range".to_string())
    };
    let v = match op {
        BinaryOp::Add => x.add(y).ok_or_else(overflow)?,
        BinaryOp::Sub => x.add(y.neg()).ok_or_else(overflow)?,
        BinaryOp::Mul => x.mul(y).ok_or_else(overflow)?,
        BinaryOp::BitAnd => x.bitwise(y, |a, b| a & b, |a, b| a & b).ok_or_else(overflow)?,
        BinaryOp::BitOr => x.bitwise(y, |a, b| a | b, |a, b| a | b).ok_or_else(overflow)?,
        BinaryOp::BitXor => x.bitwise(y, |a, b| a ^ b, |a, b| a ^ b).ok_or_else(overflow)?,
        BinaryOp::Shl => {
            let s = shift(y)?;
            if x == Int::ZERO {
                Int::ZERO
            } else {
                x.shl(s).ok_or_else(overflow)?
            }
        }
        BinaryOp::Shr => x.shr(shift(y)?),
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
        (CVal::Int(x), CVal::Bits(y, _)) if is_shift(op) => int_op(op, x, Int::from_u128(y)),
        (CVal::Bits(x, w), CVal::Bits(y, _)) if is_shift(op) => bits_op(op, x, y, w),
        (CVal::Bits(x, w), CVal::Int(y)) if is_shift(op) => {
            let y = y.nonneg().ok_or_else(|| "negative shift amount".to_string())?;
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
        assert_eq!(binary(BinaryOp::Add, CVal::int(250), CVal::int(10)), Ok(CVal::int(260)));
        assert_eq!(
            binary(BinaryOp::Add, CVal::Bits(250, 8), CVal::int(10)),
            Ok(CVal::Bits(4, 8))
        );
        assert!(binary(BinaryOp::Add, CVal::Bits(250, 8), CVal::int(300)).is_err());
        assert!(binary(BinaryOp::Add, CVal::Bits(1, 8), CVal::Bits(1, 16)).is_err());
        assert_eq!(
            binary(BinaryOp::Shl, CVal::int(1), CVal::int(40)),
            Ok(CVal::int(1 << 40))
        );
        assert!(binary(BinaryOp::Shl, CVal::int(1), CVal::int(200)).is_err());
        assert_eq!(
            binary(BinaryOp::Shl, CVal::Bits(1, 8), CVal::int(9)),
            Ok(CVal::Bits(0, 8))
        );
        assert_eq!(binary(BinaryOp::Lt, CVal::int(1), CVal::int(2)), Ok(CVal::Bool(true)));
        assert_eq!(unary(UnaryOp::Neg, CVal::Bits(1, 8)), Ok(CVal::Bits(255, 8)));
        assert_eq!(unary(UnaryOp::BitNot, CVal::Bits(0, 4)), Ok(CVal::Bits(15, 4)));
        assert!(unary(UnaryOp::BitNot, CVal::int(0)).is_err());
        assert_eq!(cast_bits(CVal::int(-1), 8), Ok(CVal::Bits(255, 8)));
        assert_eq!(cast_bool(CVal::Bits(1, 1)), Ok(CVal::Bool(true)));
        assert!(cast_bool(CVal::Bits(1, 2)).is_err());
        assert_eq!(CVal::int(-1).to_bits(8).unwrap_err(), "value -1 does not fit in bit<8>");
        assert_eq!(mask(128), u128::MAX);
        assert_eq!(bits_needed(0), 1);
        assert_eq!(bits_needed(255), 8);
    }

    /// P4's `int` folds exactly over every value a bit<128> takes, and
    /// its bitwise operators and shifts act as on an infinitely wide
    /// two's complement number.
    #[test]
    fn integers_reach_two_to_the_128() {
        let top = binary(BinaryOp::Shl, CVal::int(1), CVal::int(127)).unwrap();
        assert_eq!(top.to_bits(128), Ok(1u128 << 127));
        assert!(top.to_bits(127).is_err());
        // 2^128 itself is past the range: constant overflow.
        assert_eq!(binary(BinaryOp::Add, top, top), Err("constant overflow".to_string()));
        let max = binary(BinaryOp::Sub, top, CVal::int(1)).unwrap();
        let max = binary(BinaryOp::Add, max, top).unwrap();
        assert_eq!(max.to_bits(128), Ok(u128::MAX));
        assert_eq!(
            binary(BinaryOp::Shl, CVal::int(1), CVal::int(128)),
            Err("constant overflow".to_string())
        );
        assert_eq!(binary(BinaryOp::Shl, CVal::int(0), CVal::int(500)), Ok(CVal::int(0)));
        // Negative values: -1 & 0xff is 0xff; -8 >> 1 is -4, -7 >> 1 is -4.
        assert_eq!(
            binary(BinaryOp::BitAnd, CVal::int(-1), CVal::int(0xff)),
            Ok(CVal::int(0xff))
        );
        assert_eq!(binary(BinaryOp::BitOr, CVal::int(-8), CVal::int(3)), Ok(CVal::int(-5)));
        assert_eq!(binary(BinaryOp::BitXor, CVal::int(-1), CVal::int(-1)), Ok(CVal::int(0)));
        assert_eq!(binary(BinaryOp::Shr, CVal::int(-8), CVal::int(1)), Ok(CVal::int(-4)));
        assert_eq!(binary(BinaryOp::Shr, CVal::int(-7), CVal::int(1)), Ok(CVal::int(-4)));
        assert_eq!(binary(BinaryOp::Shr, CVal::int(-7), CVal::int(300)), Ok(CVal::int(-1)));
        assert_eq!(binary(BinaryOp::Sub, CVal::int(3), CVal::int(5)), Ok(CVal::int(-2)));
        assert_eq!(binary(BinaryOp::Mul, CVal::int(-3), CVal::int(5)), Ok(CVal::int(-15)));
        assert_eq!(binary(BinaryOp::Lt, CVal::int(-3), CVal::int(-2)), Ok(CVal::Bool(true)));
        assert_eq!(binary(BinaryOp::Gt, top, CVal::int(-2)), Ok(CVal::Bool(true)));
        assert_eq!(cast_bits(CVal::int(-2), 128), Ok(CVal::Bits(u128::MAX - 1, 128)));
        assert_eq!(
            unary(UnaryOp::Neg, top).unwrap().to_bits(8),
            Err(format!("value -{} does not fit in bit<8>", 1u128 << 127))
        );
    }
}
