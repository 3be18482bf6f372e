//! The parser's input: a token slice that nom can run combinators over
//! ([`Toks`] implements [`nom::Input`]), its error type ([`PErr`]), and the
//! token-level primitive parsers (punctuation, keywords, identifiers,
//! literals) the grammar is built from.
//!
//! The input also carries a shared nesting counter so that recursion
//! (blocks, parenthesised and prefix expressions) stops at
//! [`MAX_NESTING`] with an error instead of overflowing the stack.

use crate::diag::{Diag, Span};
use crate::lexer::{IntLit, Punct, Tok, Token};
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Input, Needed};
use std::cell::Cell;

/// Deepest nesting of blocks and expressions the parser follows.
pub const MAX_NESTING: u32 = 64;

/// Words that can never name anything. (`apply`, `key`, `actions`,
/// `state`, `entries`, `type` and `priority` are keywords only where P4
/// expects them, as in p4c.)
const KEYWORDS: &[&str] = &[
    "_",
    "abstract",
    "action",
    "bit",
    "bool",
    "const",
    "control",
    "default",
    "else",
    "enum",
    "error",
    "exit",
    "extern",
    "false",
    "header",
    "header_union",
    "if",
    "in",
    "inout",
    "int",
    "list",
    "match_kind",
    "out",
    "package",
    "parser",
    "return",
    "select",
    "string",
    "struct",
    "switch",
    "table",
    "this",
    "transition",
    "true",
    "tuple",
    "typedef",
    "value_set",
    "varbit",
    "void",
];

pub fn is_keyword(w: &str) -> bool {
    KEYWORDS.contains(&w)
}

/// A position in the token stream. Never empty in practice: the stream
/// ends with [`Tok::Eof`], which no parser consumes.
#[derive(Debug, Clone, Copy)]
pub struct Toks<'a> {
    toks: &'a [Token],
    /// Index of `toks[0]` in the whole stream.
    start: usize,
    eof: Span,
    depth: &'a Cell<u32>,
}

impl<'a> Toks<'a> {
    pub fn new(toks: &'a [Token], depth: &'a Cell<u32>) -> Toks<'a> {
        let eof = toks.last().map(|t| t.span).unwrap_or_default();
        Toks {
            toks,
            start: 0,
            eof,
            depth,
        }
    }

    /// The next token (Eof at the end).
    pub fn tok(&self) -> &'a Tok {
        const EOF: Tok = Tok::Eof;
        self.toks.first().map_or(&EOF, |t| &t.tok)
    }

    /// The token `n` ahead.
    pub fn tok_at(&self, n: usize) -> &'a Tok {
        const EOF: Tok = Tok::Eof;
        self.toks.get(n).map_or(&EOF, |t| &t.tok)
    }

    pub fn span(&self) -> Span {
        self.toks.first().map_or(self.eof, |t| t.span)
    }

    pub fn span_at(&self, n: usize) -> Span {
        self.toks.get(n).map_or(self.eof, |t| t.span)
    }

    /// Skip `n` tokens (never past Eof).
    pub fn skip(&self, n: usize) -> Toks<'a> {
        let n = n.min(self.toks.len().saturating_sub(1));
        self.take_from(n)
    }

    pub fn is_punct(&self, p: Punct) -> bool {
        *self.tok() == Tok::P(p)
    }

    pub fn is_word(&self, w: &str) -> bool {
        matches!(self.tok(), Tok::Word(x) if x == w)
    }

    pub fn pos(&self) -> usize {
        self.start
    }

    /// Tokens `a..b` from here (clamped).
    pub fn tokens(&self, a: usize, b: usize) -> &'a [Token] {
        let b = b.min(self.toks.len());
        self.toks.get(a.min(b)..b).unwrap_or(&[])
    }
}

impl<'a> Input for Toks<'a> {
    type Item = &'a Token;
    type Iter = std::slice::Iter<'a, Token>;
    type IterIndices = std::iter::Enumerate<std::slice::Iter<'a, Token>>;

    fn input_len(&self) -> usize {
        self.toks.len()
    }

    fn take(&self, index: usize) -> Self {
        Toks {
            toks: &self.toks[..index],
            ..*self
        }
    }

    fn take_from(&self, index: usize) -> Self {
        Toks {
            toks: &self.toks[index..],
            start: self.start + index,
            ..*self
        }
    }

    fn take_split(&self, index: usize) -> (Self, Self) {
        (self.take_from(index), self.take(index))
    }

    fn position<P>(&self, predicate: P) -> Option<usize>
    where
        P: Fn(Self::Item) -> bool,
    {
        self.toks.iter().position(predicate)
    }

    fn iter_elements(&self) -> Self::Iter {
        self.toks.iter()
    }

    fn iter_indices(&self) -> Self::IterIndices {
        self.toks.iter().enumerate()
    }

    fn slice_index(&self, count: usize) -> Result<usize, Needed> {
        if self.toks.len() >= count {
            Ok(count)
        } else {
            Err(Needed::new(count - self.toks.len()))
        }
    }
}

/// A syntax error: where (token index and span) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PErr {
    pub pos: usize,
    pub span: Span,
    pub msg: String,
}

impl PErr {
    pub fn at(i: Toks<'_>, msg: impl Into<String>) -> PErr {
        PErr {
            pos: i.pos(),
            span: i.span(),
            msg: msg.into(),
        }
    }

    /// "expected X, found Y".
    pub fn expected(i: Toks<'_>, what: &str) -> PErr {
        PErr::at(i, format!("expected {what}, found {}", i.tok().describe()))
    }

    pub fn into_diag(self) -> Diag {
        Diag::new(self.span, self.msg)
    }
}

impl<'a> ParseError<Toks<'a>> for PErr {
    fn from_error_kind(input: Toks<'a>, _kind: ErrorKind) -> Self {
        PErr::at(input, format!("unexpected {}", input.tok().describe()))
    }

    fn append(_input: Toks<'a>, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    /// Of two failed alternatives, report the one that got further.
    fn or(self, other: Self) -> Self {
        if other.pos >= self.pos {
            other
        } else {
            self
        }
    }
}

pub type PResult<'a, O> = IResult<Toks<'a>, O, PErr>;

/// A recoverable error (another alternative may match).
pub fn fail<'a, O>(i: Toks<'a>, what: &str) -> PResult<'a, O> {
    Err(nom::Err::Error(PErr::expected(i, what)))
}

/// An error that ends the parse.
pub fn fatal<O>(i: Toks<'_>, msg: impl Into<String>) -> PResult<'_, O> {
    Err(nom::Err::Failure(PErr::at(i, msg)))
}

/// Run `f` one nesting level deeper, failing past [`MAX_NESTING`].
pub fn nested<'a, O>(i: Toks<'a>, f: impl FnOnce(Toks<'a>) -> PResult<'a, O>) -> PResult<'a, O> {
    let d = i.depth.get();
    if d >= MAX_NESTING {
        return fatal(i, format!("nested too deeply (more than {MAX_NESTING} levels)"));
    }
    i.depth.set(d + 1);
    let r = f(i);
    i.depth.set(d);
    r
}

/// The punctuation `p`.
pub fn punct<'a>(p: Punct) -> impl Fn(Toks<'a>) -> PResult<'a, Span> {
    move |i: Toks<'a>| {
        if i.is_punct(p) {
            Ok((i.skip(1), i.span()))
        } else {
            fail(i, &format!("`{}`", p.text()))
        }
    }
}

/// A name (any word but a keyword).
pub fn ident(i: Toks<'_>) -> PResult<'_, crate::ast::Ident> {
    match i.tok() {
        Tok::Word(w) if !is_keyword(w) => Ok((
            i.skip(1),
            crate::ast::Ident {
                name: w.clone(),
                span: i.span(),
            },
        )),
        _ => fail(i, "a name"),
    }
}

/// Any word, keywords included (member names such as `.apply`).
pub fn word(i: Toks<'_>) -> PResult<'_, crate::ast::Ident> {
    match i.tok() {
        Tok::Word(w) => Ok((
            i.skip(1),
            crate::ast::Ident {
                name: w.clone(),
                span: i.span(),
            },
        )),
        _ => fail(i, "a name"),
    }
}

pub fn int_lit(i: Toks<'_>) -> PResult<'_, (IntLit, Span)> {
    match i.tok() {
        Tok::Int(l) => Ok((i.skip(1), (*l, i.span()))),
        _ => fail(i, "an integer"),
    }
}

/// Turn a recoverable error into a fatal one (after a committing token).
pub fn must<'a, O>(r: PResult<'a, O>) -> PResult<'a, O> {
    r.map_err(|e| match e {
        nom::Err::Error(e) => nom::Err::Failure(e),
        other => other,
    })
}

/// `p`, required.
pub fn expect<'a>(i: Toks<'a>, p: Punct) -> PResult<'a, Span> {
    must(punct(p)(i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::lex;
    use nom::multi::separated_list1;
    use nom::Parser;

    #[test]
    fn nom_combinators_run_over_tokens() {
        let toks = lex("a, b, c;", 0).unwrap();
        let depth = Cell::new(0);
        let i = Toks::new(&toks, &depth);
        let (rest, names) = separated_list1(punct(Punct::Comma), ident).parse(i).unwrap();
        assert_eq!(names.len(), 3);
        assert!(rest.is_punct(Punct::Semi));
        assert_eq!(rest.pos(), 5);
    }

    #[test]
    fn errors_name_what_was_found() {
        let toks = lex("header", 0).unwrap();
        let depth = Cell::new(0);
        let e = ident(Toks::new(&toks, &depth)).unwrap_err();
        let nom::Err::Error(e) = e else { panic!() };
        assert_eq!(e.msg, "expected a name, found `header`");
    }

    #[test]
    fn nesting_is_bounded_and_restored() {
        let toks = lex("x", 0).unwrap();
        let depth = Cell::new(0);
        let i = Toks::new(&toks, &depth);
        fn deep(i: Toks<'_>) -> PResult<'_, ()> {
            nested(i, deep)
        }
        assert!(matches!(deep(i), Err(nom::Err::Failure(_))));
        assert_eq!(depth.get(), 0);
    }
}
