//! Statements (control and action bodies, parser states), keysets (select
//! cases and table entries) and parser transitions.

use super::decl::annotations;
use super::expr::{expr, expr_required};
use super::input::*;
use crate::ast::*;
use crate::lexer::{Punct, Tok};

/// `{ stmt* }`
pub fn block(i: Toks<'_>) -> PResult<'_, Vec<Stmt>> {
    let (mut i, _) = expect(i, Punct::LBrace)?;
    let mut out = Vec::new();
    loop {
        if i.is_punct(Punct::RBrace) {
            return Ok((i.skip(1), out));
        }
        if *i.tok() == Tok::Eof {
            return fatal(i, "expected `}`, found end of input");
        }
        let (r, s) = stmt(i)?;
        out.push(s);
        i = r;
    }
}

/// One statement.
pub fn stmt(i: Toks<'_>) -> PResult<'_, Stmt> {
    nested(i, stmt_inner)
}

fn is_word_not_kw(t: &Tok) -> bool {
    matches!(t, Tok::Word(w) if !is_keyword(w))
}

fn stmt_inner(i: Toks<'_>) -> PResult<'_, Stmt> {
    let (i, _) = annotations(i)?;
    let span = i.span();
    let done = |r, kind| Ok((r, Stmt { kind, span }));
    match i.tok() {
        Tok::P(Punct::LBrace) => {
            let (r, b) = block(i)?;
            done(r, StmtKind::Block(b))
        }
        Tok::P(Punct::Semi) => done(i.skip(1), StmtKind::Empty),
        Tok::Word(w) => match w.as_str() {
            "if" => if_stmt(i),
            "exit" => {
                let (r, _) = expect(i.skip(1), Punct::Semi)?;
                done(r, StmtKind::Exit)
            }
            "return" => fatal(i, "`return` is not supported (use `exit`)"),
            "switch" => fatal(i, "switch statements are not supported"),
            "for" => fatal(i, "`for` loops are not supported"),
            "transition" => fatal(i, "`transition` must be the last statement of a parser state"),
            "verify" => fatal(i, "`verify` is not supported"),
            "value_set" => fatal(i, "value_set is not supported"),
            "bit" | "bool" | "int" | "varbit" => fatal(i, "local variables are not supported"),
            "const" => fatal(i, "local constants inside blocks are not supported"),
            _ if is_word_not_kw(i.tok()) && is_word_not_kw(i.tok_at(1)) => {
                fatal(i, "local variables are not supported")
            }
            _ => simple(i),
        },
        _ => simple(i),
    }
}

fn if_stmt(i: Toks<'_>) -> PResult<'_, Stmt> {
    let span = i.span();
    let (r, _) = expect(i.skip(1), Punct::LParen)?;
    let (r, cond) = expr_required(r)?;
    let (r, _) = expect(r, Punct::RParen)?;
    let (r, then) = must(stmt(r))?;
    let (r, otherwise) = if r.is_word("else") {
        let (r, e) = must(stmt(r.skip(1)))?;
        (r, Some(Box::new(e)))
    } else {
        (r, None)
    };
    Ok((
        r,
        Stmt {
            kind: StmtKind::If(cond, Box::new(then), otherwise),
            span,
        },
    ))
}

/// An assignment or a call statement.
fn simple(i: Toks<'_>) -> PResult<'_, Stmt> {
    let span = i.span();
    let (r, lhs) = match expr(i) {
        Err(nom::Err::Error(_)) => return fatal(i, PErr::expected(i, "a statement").msg),
        x => x?,
    };
    if r.is_punct(Punct::Assign) {
        let (r, rhs) = expr_required(r.skip(1))?;
        let (r, _) = expect(r, Punct::Semi)?;
        return Ok((
            r,
            Stmt {
                kind: StmtKind::Assign(lhs, rhs),
                span,
            },
        ));
    }
    let (r, _) = expect(r, Punct::Semi)?;
    Ok((
        r,
        Stmt {
            kind: StmtKind::Call(lhs),
            span,
        },
    ))
}

/// One element of a keyset.
fn keyset_elem(i: Toks<'_>) -> PResult<'_, KeySet> {
    if i.is_word("default") || i.is_word("_") {
        return Ok((i.skip(1), KeySet::Any(i.span())));
    }
    let (r, v) = expr_required(i)?;
    if r.is_punct(Punct::DotDot) {
        return fatal(r, "ranges (`..`) are not supported");
    }
    if r.is_punct(Punct::Mask) {
        let (r, m) = expr_required(r.skip(1))?;
        return Ok((r, KeySet::Mask(v, m)));
    }
    Ok((r, KeySet::Value(v)))
}

/// A keyset: `default`, `_`, `(e1, e2 &&& m, _)` or a single element.
pub fn keys(i: Toks<'_>) -> PResult<'_, Keys> {
    let span = i.span();
    if i.is_word("default") || i.is_word("_") {
        return Ok((
            i.skip(1),
            Keys {
                elems: vec![KeySet::Any(span)],
                whole_default: true,
                span,
            },
        ));
    }
    if !i.is_punct(Punct::LParen) {
        let (r, e) = keyset_elem(i)?;
        return Ok((
            r,
            Keys {
                elems: vec![e],
                whole_default: false,
                span,
            },
        ));
    }
    let mut elems = Vec::new();
    let mut r = i.skip(1);
    loop {
        let (n, e) = keyset_elem(r)?;
        elems.push(e);
        if n.is_punct(Punct::Comma) {
            r = n.skip(1);
            continue;
        }
        let (n, _) = expect(n, Punct::RParen)?;
        return Ok((
            n,
            Keys {
                elems,
                whole_default: false,
                span,
            },
        ));
    }
}

/// `transition name;` or `transition select(...) { ... }` (after
/// `transition`).
pub fn transition(i: Toks<'_>) -> PResult<'_, Transition> {
    if !i.is_word("select") {
        let (r, name) = must(ident(i))?;
        let (r, _) = expect(r, Punct::Semi)?;
        return Ok((r, Transition::Direct(name)));
    }
    let span = i.span();
    let (r, _) = expect(i.skip(1), Punct::LParen)?;
    let mut keys_e = Vec::new();
    let mut r = r;
    loop {
        let (n, e) = expr_required(r)?;
        keys_e.push(e);
        if n.is_punct(Punct::Comma) {
            r = n.skip(1);
            continue;
        }
        let (n, _) = expect(n, Punct::RParen)?;
        r = n;
        break;
    }
    let (mut r, _) = expect(r, Punct::LBrace)?;
    let mut cases = Vec::new();
    while !r.is_punct(Punct::RBrace) {
        if *r.tok() == Tok::Eof {
            return fatal(r, "expected `}`, found end of input");
        }
        let (n, k) = keys(r)?;
        let (n, _) = expect(n, Punct::Colon)?;
        let (n, next) = must(ident(n))?;
        let (n, _) = expect(n, Punct::Semi)?;
        cases.push((k, next));
        r = n;
    }
    let r = r.skip(1);
    let r = if r.is_punct(Punct::Semi) { r.skip(1) } else { r };
    Ok((
        r,
        Transition::Select {
            keys: keys_e,
            cases,
            span,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::lex;
    use std::cell::Cell;

    fn parse_block(s: &str) -> Result<Vec<Stmt>, (u32, u32, String)> {
        let toks = lex(s, 0).map_err(|d| (d.span.line, d.span.col, d.msg))?;
        let depth = Cell::new(0);
        match block(Toks::new(&toks, &depth)) {
            Ok((_, b)) => Ok(b),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err((e.span.line, e.span.col, e.msg)),
            Err(nom::Err::Incomplete(_)) => Err((0, 0, "incomplete".into())),
        }
    }

    #[test]
    fn statements() {
        let b = parse_block("{ a.b = 1; if (!t.apply().hit) { f(); } else if (x) exit; ; { c.count(1); } }").unwrap();
        assert_eq!(b.len(), 4);
        assert!(matches!(b[0].kind, StmtKind::Assign(..)));
        assert!(matches!(b[1].kind, StmtKind::If(_, _, Some(_))));
        assert!(matches!(b[2].kind, StmtKind::Empty));
        assert!(matches!(b[3].kind, StmtKind::Block(_)));
    }

    #[test]
    fn statement_errors() {
        assert_eq!(
            parse_block("{ a = 1\n  b = 2; }").unwrap_err(),
            (2, 3, "expected `;`, found `b`".into())
        );
        assert!(parse_block("{ switch (x) { } }").unwrap_err().2.contains("switch"));
        assert!(parse_block("{ bit<8> x; }").unwrap_err().2.contains("local variables"));
        assert!(parse_block("{ my_t x; }").unwrap_err().2.contains("local variables"));
        assert!(parse_block("{ a = 1; ").unwrap_err().2.contains("expected `}`"));
        let deep = format!("{{{}{}}}", "{".repeat(5000), "}".repeat(5000));
        assert!(parse_block(&deep).unwrap_err().2.contains("nested too deeply"));
        let ifs = format!("{{{} x = 1; }}", "if (c) ".repeat(5000));
        assert!(parse_block(&ifs).unwrap_err().2.contains("nested too deeply"));
    }

    #[test]
    fn keysets() {
        let toks = lex("(0x800 &&& 0xf00, _): x;", 0).unwrap();
        let depth = Cell::new(0);
        let (_, k) = keys(Toks::new(&toks, &depth)).unwrap();
        assert_eq!(k.elems.len(), 2);
        assert!(matches!(k.elems[0], KeySet::Mask(..)));
        assert!(matches!(k.elems[1], KeySet::Any(_)));
        let toks = lex("1 .. 5", 0).unwrap();
        let e = keys(Toks::new(&toks, &depth)).unwrap_err();
        assert!(matches!(e, nom::Err::Failure(e) if e.msg.contains("ranges")));
    }
}
