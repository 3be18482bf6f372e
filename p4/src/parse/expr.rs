//! Expressions and types.
//!
//! Binary operators use P4's precedence, which differs from C's in that
//! the bitwise operators bind tighter than comparisons (lowest first):
//! `||`, `&&`, `== !=`, `< <= > >=`, `|`, `^`, `&`, `<< >>`, `+ -`, `*`,
//! then prefix `! ~ -` and casts, then postfix member access, calls and
//! slices. All are left-associative. `>>` is two `>` tokens that touch.

use super::input::*;
use crate::ast::*;
use crate::lexer::{Punct, Tok, MAX_WIDTH};
use nom::multi::separated_list1;
use nom::Parser;

/// A node, or a fatal error when the tree grows past its height limit.
fn node<'a>(i: Toks<'a>, kind: ExprKind, span: crate::diag::Span) -> Result<Expr, nom::Err<PErr>> {
    Expr::node(kind, span).ok_or_else(|| {
        nom::Err::Failure(PErr::at(
            i,
            format!("expression too deeply nested (more than {MAX_EXPR_HEIGHT} levels)"),
        ))
    })
}

/// A full expression.
pub fn expr(i: Toks<'_>) -> PResult<'_, Expr> {
    nested(i, |i| binary(i, 0))
}

/// An expression that must be there.
pub fn expr_required(i: Toks<'_>) -> PResult<'_, Expr> {
    match expr(i) {
        Err(nom::Err::Error(_)) => fatal(i, PErr::expected(i, "an expression").msg),
        r => r,
    }
}

/// The binary operator at `i`: operator, precedence, tokens it spans.
fn binop(i: Toks<'_>) -> Option<(BinaryOp, u8, usize)> {
    let Tok::P(p) = i.tok() else { return None };
    let op = match p {
        Punct::OrOr => (BinaryOp::Or, 1, 1),
        Punct::AndAnd => (BinaryOp::And, 2, 1),
        Punct::EqEq => (BinaryOp::Eq, 3, 1),
        Punct::Ne => (BinaryOp::Ne, 3, 1),
        Punct::Lt => (BinaryOp::Lt, 4, 1),
        Punct::Le => (BinaryOp::Le, 4, 1),
        Punct::Ge => (BinaryOp::Ge, 4, 1),
        Punct::Gt if *i.tok_at(1) == Tok::P(Punct::Gt) && i.span().touches(i.span_at(1)) => (BinaryOp::Shr, 8, 2),
        Punct::Gt => (BinaryOp::Gt, 4, 1),
        Punct::Pipe => (BinaryOp::BitOr, 5, 1),
        Punct::Caret => (BinaryOp::BitXor, 6, 1),
        Punct::Amp => (BinaryOp::BitAnd, 7, 1),
        Punct::Shl => (BinaryOp::Shl, 8, 1),
        Punct::Plus => (BinaryOp::Add, 9, 1),
        Punct::Minus => (BinaryOp::Sub, 9, 1),
        Punct::Star => (BinaryOp::Mul, 10, 1),
        _ => return None,
    };
    Some(op)
}

/// Operators P4 has and this compiler does not.
fn unsupported_op(i: Toks<'_>) -> Option<&'static str> {
    match i.tok() {
        Tok::P(Punct::Slash) => Some("division (`/`) is not supported"),
        Tok::P(Punct::Percent) => Some("modulo (`%`) is not supported"),
        Tok::P(Punct::PlusPlus) => Some("concatenation (`++`) is not supported"),
        Tok::P(Punct::SatPlus | Punct::SatMinus) => Some("saturating arithmetic (`|+|`, `|-|`) is not supported"),
        Tok::P(Punct::Question) => Some("the conditional operator (`?:`) is not supported"),
        _ => None,
    }
}

/// Precedence climbing: operands joined by operators of at least `min`.
fn binary(i: Toks<'_>, min: u8) -> PResult<'_, Expr> {
    let (mut i, mut lhs) = prefix(i)?;
    loop {
        if let Some(msg) = unsupported_op(i) {
            return fatal(i, msg);
        }
        let Some((op, prec, n)) = binop(i) else { break };
        if prec < min {
            break;
        }
        let (r, rhs) = must(binary(i.skip(n), prec + 1))?;
        let span = lhs.span;
        lhs = node(i, ExprKind::Binary(op, i.span(), Box::new(lhs), Box::new(rhs)), span)?;
        i = r;
    }
    Ok((i, lhs))
}

/// Whether `t` can begin an operand (decides `(name) x` as a cast).
fn starts_operand(t: &Tok) -> bool {
    match t {
        Tok::Word(w) => !is_keyword(w) || w == "true" || w == "false",
        Tok::Int(_) => true,
        Tok::P(p) => matches!(p, Punct::LParen | Punct::Not | Punct::Tilde),
        _ => false,
    }
}

/// Whether `t` is a word that starts a base type (`bit`, `bool`, `int`,
/// `varbit`).
fn is_type_word(t: &Tok) -> bool {
    matches!(t, Tok::Word(w) if matches!(w.as_str(), "bit" | "bool" | "int" | "varbit"))
}

/// Whether the `(` at `i` opens a cast.
fn is_cast(i: Toks<'_>) -> bool {
    match i.tok_at(1) {
        t if is_type_word(t) => true,
        Tok::Word(w) if !is_keyword(w) => *i.tok_at(2) == Tok::P(Punct::RParen) && starts_operand(i.tok_at(3)),
        _ => false,
    }
}

fn prefix(i: Toks<'_>) -> PResult<'_, Expr> {
    let span = i.span();
    let op = match i.tok() {
        Tok::P(Punct::Not) => Some(UnaryOp::Not),
        Tok::P(Punct::Tilde) => Some(UnaryOp::BitNot),
        Tok::P(Punct::Minus) => Some(UnaryOp::Neg),
        _ => None,
    };
    if let Some(op) = op {
        return nested(i.skip(1), |r| {
            let (r, e) = must(prefix(r))?;
            Ok((r, node(i, ExprKind::Unary(op, Box::new(e)), span)?))
        });
    }
    if i.is_punct(Punct::LParen) && is_cast(i) {
        return nested(i.skip(1), |r| {
            let (r, ty) = must(type_ref(r))?;
            let (r, _) = expect(r, Punct::RParen)?;
            let (r, e) = must(prefix(r))?;
            Ok((r, node(i, ExprKind::Cast(ty, Box::new(e)), span)?))
        });
    }
    postfix(i)
}

fn primary(i: Toks<'_>) -> PResult<'_, Expr> {
    let span = i.span();
    match i.tok() {
        Tok::Int(l) => Ok((i.skip(1), Expr::leaf(ExprKind::Int(*l), span))),
        Tok::Word(w) if w == "true" || w == "false" => Ok((i.skip(1), Expr::leaf(ExprKind::Bool(w == "true"), span))),
        Tok::Word(w) if w == "error" => fatal(i, "error values (`error.X`) are not supported in expressions"),
        Tok::Word(w) if w == "this" => fatal(i, "`this` is not supported"),
        Tok::Word(w) if !is_keyword(w) => Ok((i.skip(1), Expr::leaf(ExprKind::Name(w.clone()), span))),
        Tok::P(Punct::LParen) => {
            let (r, e) = expr_required(i.skip(1))?;
            let (r, _) = expect(r, Punct::RParen)?;
            Ok((r, e))
        }
        Tok::P(Punct::LBrace) => fatal(i, "list and struct expressions (`{ ... }`) are not supported"),
        Tok::Str(_) => fatal(i, "string values are not supported (strings go only in annotations)"),
        _ => fail(i, "an expression"),
    }
}

/// Call arguments after `(`, up to and including `)`.
fn args(i: Toks<'_>) -> PResult<'_, Vec<Expr>> {
    if i.is_punct(Punct::RParen) {
        return Ok((i.skip(1), Vec::new()));
    }
    let mut out = Vec::new();
    let mut i = i;
    loop {
        if matches!(i.tok(), Tok::Word(_)) && *i.tok_at(1) == Tok::P(Punct::Assign) {
            return fatal(i, "named arguments are not supported");
        }
        if i.is_word("_") {
            return fatal(i, "don't-care arguments (`_`) are not supported");
        }
        let (r, e) = expr_required(i)?;
        out.push(e);
        if r.is_punct(Punct::Comma) {
            i = r.skip(1);
            continue;
        }
        let (r, _) = expect(r, Punct::RParen)?;
        return Ok((r, out));
    }
}

fn postfix(i: Toks<'_>) -> PResult<'_, Expr> {
    let (mut i, mut e) = primary(i)?;
    loop {
        match i.tok() {
            Tok::P(Punct::Dot) => {
                let (r, m) = must(word(i.skip(1)))?;
                let span = e.span;
                e = node(i, ExprKind::Member(Box::new(e), m), span)?;
                i = r;
            }
            Tok::P(Punct::Lt)
                if matches!(e.kind, ExprKind::Member(..))
                    && (is_type_word(i.tok_at(1))
                        || (matches!(i.tok_at(1), Tok::Word(_))
                            && *i.tok_at(2) == Tok::P(Punct::Gt)
                            && *i.tok_at(3) == Tok::P(Punct::LParen))) =>
            {
                return fatal(i, "explicit type arguments (`f<T>(...)`) are not supported");
            }
            Tok::P(Punct::LParen) => {
                let (r, a) = args(i.skip(1))?;
                let span = e.span;
                e = node(i, ExprKind::Call(Box::new(e), a), span)?;
                i = r;
            }
            Tok::P(Punct::LBracket) => {
                let (r, hi) = expr_required(i.skip(1))?;
                if r.is_punct(Punct::RBracket) {
                    return fatal(i, "header stacks and indexing (`[i]`) are not supported");
                }
                let (r, _) = expect(r, Punct::Colon)?;
                let (r, lo) = expr_required(r)?;
                let (r, _) = expect(r, Punct::RBracket)?;
                let span = e.span;
                e = node(i, ExprKind::Slice(Box::new(e), Box::new(hi), Box::new(lo)), span)?;
                i = r;
            }
            _ => return Ok((i, e)),
        }
    }
}

/// `bit<N>` after `bit`: the width.
fn bit_width(i: Toks<'_>) -> PResult<'_, u16> {
    if !i.is_punct(Punct::Lt) {
        return Ok((i, 1));
    }
    let r = i.skip(1);
    let (r, (lit, at)) = match int_lit(r) {
        Ok(x) => x,
        Err(_) => return fatal(r, "a bit width must be an integer literal"),
    };
    if lit.value == 0 || lit.value > u128::from(MAX_WIDTH) {
        return Err(nom::Err::Failure(PErr {
            pos: r.pos(),
            span: at,
            msg: format!("bit<{}>: widths are 1..={MAX_WIDTH}", lit.value),
        }));
    }
    if !r.is_punct(Punct::Gt) && !matches!(r.tok(), Tok::Eof) {
        // `bit<2 + 2>`, `bit<W * 8>`: P4 takes an expression here.
        return fatal(
            i.skip(1),
            "width expressions in `bit<...>` are not supported: write the width as a number (e.g. `bit<4>`)",
        );
    }
    let (r, _) = expect(r, Punct::Gt)?;
    Ok((r, lit.value as u16))
}

/// A type.
pub fn type_ref(i: Toks<'_>) -> PResult<'_, TypeRef> {
    nested(i, |i| {
        let (r, t) = base_type(i)?;
        if r.is_punct(Punct::LBracket) {
            return fatal(r, "header stacks are not supported");
        }
        Ok((r, t))
    })
}

fn base_type(i: Toks<'_>) -> PResult<'_, TypeRef> {
    let span = i.span();
    let Tok::Word(w) = i.tok() else {
        return fail(i, "a type");
    };
    match w.as_str() {
        "bit" => {
            let (r, w) = bit_width(i.skip(1))?;
            Ok((r, TypeRef::Bit(w, span)))
        }
        "bool" => Ok((i.skip(1), TypeRef::Bool(span))),
        "void" => Ok((i.skip(1), TypeRef::Void(span))),
        "int" => fatal(i, "signed integers (int<N>) are not supported"),
        "varbit" => fatal(i, "varbit is not supported"),
        "string" | "tuple" | "list" | "error" | "match_kind" | "header_union" => {
            fatal(i, format!("type `{w}` is not supported"))
        }
        _ if is_keyword(w) => fail(i, "a type"),
        _ => {
            let (r, name) = ident(i)?;
            if !r.is_punct(Punct::Lt) {
                return Ok((r, TypeRef::Named(name, Vec::new())));
            }
            let (r, targs) = must(separated_list1(punct(Punct::Comma), type_ref).parse(r.skip(1)))?;
            let (r, _) = expect(r, Punct::Gt)?;
            Ok((r, TypeRef::Named(name, targs)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::lex;
    use std::cell::Cell;

    fn parse_expr(s: &str) -> Result<String, String> {
        let toks = lex(s, 0).map_err(|d| d.msg)?;
        let depth = Cell::new(0);
        match expr(Toks::new(&toks, &depth)) {
            Ok((r, e)) if *r.tok() == Tok::Eof => Ok(e.render()),
            Ok((r, _)) => Err(format!("trailing {}", r.tok().describe())),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e.msg),
            Err(nom::Err::Incomplete(_)) => Err("incomplete".into()),
        }
    }

    #[test]
    fn p4_precedence() {
        assert_eq!(parse_expr("a & b == c").unwrap(), "((a & b) == c)");
        assert_eq!(parse_expr("a + b * c << 2").unwrap(), "((a + (b * c)) << 2)");
        assert_eq!(parse_expr("a || b && c").unwrap(), "(a || (b && c))");
        assert_eq!(parse_expr("a - b - c").unwrap(), "((a - b) - c)");
        assert_eq!(parse_expr("a | b ^ c & d").unwrap(), "(a | (b ^ (c & d)))");
        assert_eq!(parse_expr("a < b == c > d").unwrap(), "((a < b) == (c > d))");
        assert_eq!(parse_expr("x >> 2 > 1").unwrap(), "((x >> 2) > 1)");
        assert_eq!(parse_expr("x > > 2").unwrap_err(), "expected an expression, found `>`");
    }

    #[test]
    fn postfix_and_prefix() {
        assert_eq!(parse_expr("!t.apply().hit").unwrap(), "!t.apply().hit");
        assert_eq!(
            parse_expr("hdr.eth.dst[40:40] == 1").unwrap(),
            "(hdr.eth.dst[40:40] == 1)"
        );
        assert_eq!(parse_expr("(bit<32>) std.lif + 1").unwrap(), "((cast)std.lif + 1)");
        assert_eq!(parse_expr("(lif_t) x").unwrap(), "(cast)x");
        assert_eq!(parse_expr("(x) - 1").unwrap(), "(x - 1)");
        assert_eq!(parse_expr("8w5 + 16w0x800").unwrap(), "(8w5 + 16w2048)");
    }

    #[test]
    fn unsupported_and_malformed() {
        assert!(parse_expr("hdr.x[2]").unwrap_err().contains("header stacks"));
        assert!(parse_expr("a / b").unwrap_err().contains("division"));
        assert!(parse_expr("a ++ b").unwrap_err().contains("concatenation"));
        assert!(parse_expr("a ? b : c").unwrap_err().contains("conditional"));
        assert!(parse_expr("f(x = 1)").unwrap_err().contains("named arguments"));
        assert!(parse_expr("(int<8>) x").unwrap_err().contains("signed"));
        assert!(parse_expr("pkt.extract<h_t>(hdr.h)")
            .unwrap_err()
            .contains("type arguments"));
        assert_eq!(parse_expr("a.b < c").unwrap(), "(a.b < c)");
        assert_eq!(parse_expr("(a + b").unwrap_err(), "expected `)`, found end of input");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}x{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_expr(&deep).unwrap_err().contains("nested too deeply"));
        let long = vec!["x"; 10_000].join(" + ");
        assert!(parse_expr(&long).unwrap_err().contains("too deeply nested"));
        let neg = format!("{}x", "-".repeat(10_000));
        assert!(parse_expr(&neg).unwrap_err().contains("nested too deeply"));
        let members = format!("x{}", ".y".repeat(10_000));
        assert!(parse_expr(&members).is_err());
        let calls = format!("{}x{}", "f(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_expr(&calls).is_err());
    }
}
