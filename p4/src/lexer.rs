//! The lexer: one file's text to [`Token`]s, written with nom.
//!
//! It skips whitespace and `//` / `/* */` comments, reads identifiers,
//! integer literals (`42`, `0x2a`, `0b101`, `0o52`, width-prefixed `8w42`,
//! underscores allowed), strings (annotation arguments), punctuation, and
//! `#include` directives (which the loader, [`crate::source`], resolves).
//! `>` is always a token of its own so that `bit<8>>` and `a >> b` can
//! both be told apart by the parser (two `>` tokens that touch are a
//! shift).
//!
//! Every token carries a [`Span`]; lines and columns are counted as the
//! lexer goes, so the whole file is walked once.

use crate::diag::{Diag, Span};
use nom::bytes::complete::{tag, take_till, take_until, take_while, take_while1};
use nom::character::complete::{char, multispace1, satisfy, space0};
use nom::combinator::recognize;
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser};

/// Widest integer literal or `bit<N>` type.
pub const MAX_WIDTH: u16 = 128;

/// An integer literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntLit {
    pub value: u128,
    /// `Some(w)` for `w`-prefixed literals such as `8w5`.
    pub width: Option<u16>,
}

/// Punctuation and operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Punct {
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Semi,
    Colon,
    Comma,
    Dot,
    DotDot,
    Assign,
    EqEq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Shl,
    AndAnd,
    OrOr,
    /// `&&&`, the mask operator of keysets.
    Mask,
    Not,
    Tilde,
    Minus,
    Plus,
    PlusPlus,
    SatPlus,
    SatMinus,
    Star,
    Slash,
    Percent,
    Amp,
    Pipe,
    Caret,
    Question,
    At,
}

/// Spellings, longest first so that a prefix never shadows a longer one.
const PUNCTS: [(&str, Punct); 37] = [
    ("&&&", Punct::Mask),
    ("|+|", Punct::SatPlus),
    ("|-|", Punct::SatMinus),
    ("&&", Punct::AndAnd),
    ("||", Punct::OrOr),
    ("==", Punct::EqEq),
    ("!=", Punct::Ne),
    ("<=", Punct::Le),
    (">=", Punct::Ge),
    ("<<", Punct::Shl),
    ("++", Punct::PlusPlus),
    ("..", Punct::DotDot),
    ("{", Punct::LBrace),
    ("}", Punct::RBrace),
    ("(", Punct::LParen),
    (")", Punct::RParen),
    ("[", Punct::LBracket),
    ("]", Punct::RBracket),
    (";", Punct::Semi),
    (":", Punct::Colon),
    (",", Punct::Comma),
    (".", Punct::Dot),
    ("=", Punct::Assign),
    ("<", Punct::Lt),
    (">", Punct::Gt),
    ("!", Punct::Not),
    ("~", Punct::Tilde),
    ("-", Punct::Minus),
    ("+", Punct::Plus),
    ("*", Punct::Star),
    ("/", Punct::Slash),
    ("%", Punct::Percent),
    ("&", Punct::Amp),
    ("|", Punct::Pipe),
    ("^", Punct::Caret),
    ("?", Punct::Question),
    ("@", Punct::At),
];

impl Punct {
    /// How the token is written.
    pub fn text(self) -> &'static str {
        PUNCTS.iter().find(|(_, p)| *p == self).map_or("?", |(s, _)| *s)
    }
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// An identifier or keyword.
    Word(String),
    Int(IntLit),
    Str(String),
    P(Punct),
    /// `#include <path>` (`angle`) or `#include "path"`.
    Include {
        path: String,
        angle: bool,
    },
    /// The end of the input (only the main file's survives loading).
    Eof,
}

impl Tok {
    /// For messages: the token as the user wrote it, quoted.
    pub fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Int(IntLit { value, width: Some(w) }) => format!("`{w}w{value}`"),
            Tok::Int(IntLit { value, width: None }) => format!("`{value}`"),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::P(p) => format!("`{}`", p.text()),
            Tok::Include { .. } => "`#include`".to_string(),
            Tok::Eof => "end of input".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// A lexing error: how much input was left where it happened, and why
/// (None: an unexpected character, described only if it is reported, since
/// failed alternatives make many of these).
#[derive(Debug, Clone, PartialEq, Eq)]
struct LexError {
    rest_len: usize,
    msg: Option<String>,
}

impl LexError {
    fn at(rest: &str, msg: impl Into<String>) -> LexError {
        LexError {
            rest_len: rest.len(),
            msg: Some(msg.into()),
        }
    }

    /// The message, for the input `rest` where the error is.
    fn message(self, rest: &str) -> String {
        self.msg.unwrap_or_else(|| match rest.chars().next() {
            Some(c) => format!("unexpected character `{}`", c.escape_debug()),
            None => "unexpected end of input".to_string(),
        })
    }
}

impl ParseError<&str> for LexError {
    fn from_error_kind(input: &str, _kind: ErrorKind) -> Self {
        LexError {
            rest_len: input.len(),
            msg: None,
        }
    }

    fn append(_input: &str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type LResult<'a, O> = IResult<&'a str, O, LexError>;

fn failure<O>(rest: &str, msg: impl Into<String>) -> LResult<'_, O> {
    Err(nom::Err::Failure(LexError::at(rest, msg)))
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn line_comment(i: &str) -> LResult<'_, ()> {
    let (i, _) = tag("//")(i)?;
    let (i, _) = take_till(|c| c == '\n')(i)?;
    Ok((i, ()))
}

fn block_comment(i: &str) -> LResult<'_, ()> {
    let (body, _) = tag("/*")(i)?;
    match take_until::<_, _, nom::error::Error<&str>>("*/")(body) {
        Ok((r, _)) => Ok((&r[2..], ())),
        Err(_) => failure(i, "unterminated comment (`/*` without `*/`)"),
    }
}

/// Whitespace and comments.
fn trivia(mut i: &str) -> LResult<'_, ()> {
    loop {
        let before = i.len();
        if let Ok((r, _)) = multispace1::<_, LexError>(i) {
            i = r;
        }
        if let Ok((r, ())) = line_comment(i) {
            i = r;
        }
        match block_comment(i) {
            Ok((r, ())) => i = r,
            Err(nom::Err::Failure(e)) => return Err(nom::Err::Failure(e)),
            Err(_) => {}
        }
        if i.len() == before {
            return Ok((i, ()));
        }
    }
}

fn word(i: &str) -> LResult<'_, Tok> {
    let (r, w) = recognize((
        satisfy(|c| c.is_ascii_alphabetic() || c == '_'),
        take_while(is_word_char),
    ))
    .parse(i)?;
    Ok((r, Tok::Word(w.to_string())))
}

fn number(i: &str) -> LResult<'_, Tok> {
    let (r, text) = recognize((satisfy(|c| c.is_ascii_digit()), take_while(is_word_char))).parse(i)?;
    match int_literal(text) {
        Ok(lit) => Ok((r, Tok::Int(lit))),
        Err(msg) => failure(i, msg),
    }
}

/// The value of a literal's digits in `radix`.
fn digits(text: &str, radix: u32) -> Result<u128, String> {
    let mut value: u128 = 0;
    let mut any = false;
    for c in text.chars().filter(|&c| c != '_') {
        let d = c
            .to_digit(radix)
            .ok_or_else(|| format!("bad digit `{c}` in a base-{radix} integer literal"))?;
        value = value
            .checked_mul(u128::from(radix))
            .and_then(|v| v.checked_add(u128::from(d)))
            .ok_or("integer literal too large (more than 128 bits)")?;
        any = true;
    }
    if !any {
        return Err("integer literal without digits".into());
    }
    Ok(value)
}

/// Interpret an integer literal: optional `Nw` width, optional base prefix.
pub fn int_literal(text: &str) -> Result<IntLit, String> {
    let lead = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (width, body) = match text[lead..].chars().next() {
        Some('w') if lead > 0 => {
            let w = digits(&text[..lead], 10)?;
            if w == 0 || w > u128::from(MAX_WIDTH) {
                return Err(format!("literal width {w} is outside 1..={MAX_WIDTH}"));
            }
            (Some(w as u16), &text[lead + 1..])
        }
        Some('s') if lead > 0 => return Err("signed literals (`Ns...`, int<N>) are not supported".into()),
        _ => (None, text),
    };
    let lower = body.get(..2).map(str::to_ascii_lowercase);
    let value = match lower.as_deref() {
        Some("0x") => digits(&body[2..], 16)?,
        Some("0b") => digits(&body[2..], 2)?,
        Some("0o") => digits(&body[2..], 8)?,
        Some("0d") => digits(&body[2..], 10)?,
        _ => digits(body, 10)?,
    };
    if let Some(w) = width {
        if w < 128 && value >> w != 0 {
            return Err(format!("value {value} does not fit in bit<{w}>"));
        }
    }
    Ok(IntLit { value, width })
}

fn string(i: &str) -> LResult<'_, Tok> {
    let (body, _) = char('"')(i)?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((&body[at + 1..], Tok::Str(out))),
            // A string may span lines (p4c takes them in annotations);
            // a backslash before the newline joins the lines.
            '\\' => match chars.next() {
                Some((_, '\n')) => {}
                None => break,
                Some((_, e)) => out.push(e),
            },
            _ => out.push(c),
        }
    }
    failure(i, "unterminated string")
}

fn punct(i: &str) -> LResult<'_, Tok> {
    let first = i.as_bytes().first().copied();
    for (text, p) in PUNCTS.iter().filter(|(t, _)| t.as_bytes().first().copied() == first) {
        if let Ok((r, _)) = tag::<_, _, LexError>(*text)(i) {
            return Ok((r, Tok::P(*p)));
        }
    }
    Err(nom::Err::Error(LexError::from_error_kind(i, ErrorKind::Tag)))
}

/// `#include <path>` or `#include "path"`, up to the end of its line.
fn directive(i: &str) -> LResult<'_, Tok> {
    let (r, _) = char('#')(i)?;
    let (r, _) = space0(r)?;
    let Ok((r, name)) = take_while1::<_, _, LexError>(is_word_char)(r) else {
        return failure(i, "expected a directive name after `#`");
    };
    if name != "include" {
        return failure(
            i,
            format!("preprocessor directive `#{name}` is not supported (only #include)"),
        );
    }
    let (r, _) = space0(r)?;
    let (close, angle) = match r.chars().next() {
        Some('<') => ('>', true),
        Some('"') => ('"', false),
        _ => return failure(i, "expected <file> or \"file\" after #include"),
    };
    let body = &r[1..];
    let end = body.find([close, '\n']).unwrap_or(body.len());
    if !body[end..].starts_with(close) || end == 0 {
        return failure(i, "malformed #include file name");
    }
    let path = body[..end].to_string();
    let (r, _) = space0(&body[end + 1..])?;
    let r = match line_comment(r) {
        Ok((r, ())) => r,
        Err(_) => r,
    };
    if !(r.is_empty() || r.starts_with('\n') || r.starts_with("\r\n")) {
        return failure(r, "unexpected text after #include");
    }
    Ok((r, Tok::Include { path, angle }))
}

fn token(i: &str) -> LResult<'_, Tok> {
    match i.chars().next() {
        Some('#') => directive(i),
        Some(c) if c.is_ascii_digit() => number(i),
        Some(c) if c.is_ascii_alphabetic() || c == '_' => word(i),
        Some('"') => string(i),
        _ => punct(i),
    }
}

/// Tracks line and column while the lexer moves forward.
struct Cursor<'a> {
    src: &'a str,
    off: usize,
    line: u32,
    col: u32,
    file: u16,
}

impl Cursor<'_> {
    /// The span at byte offset `to` (never before the last one asked).
    fn span_at(&mut self, to: usize) -> Span {
        let to = to.clamp(self.off, self.src.len());
        for c in self.src.get(self.off..to).unwrap_or("").chars() {
            if c == '\n' {
                self.line = self.line.saturating_add(1);
                self.col = 1;
            } else {
                self.col = self.col.saturating_add(1);
            }
        }
        self.off = to;
        Span {
            file: self.file,
            line: self.line,
            col: self.col,
        }
    }
}

/// Lex a whole file. The last token is [`Tok::Eof`].
pub fn lex(src: &str, file: u16) -> Result<Vec<Token>, Diag> {
    let mut cur = Cursor {
        src,
        off: 0,
        line: 1,
        col: 1,
        file,
    };
    let body = src.strip_prefix('\u{feff}').unwrap_or(src);
    if body.len() != src.len() {
        cur.off = src.len() - body.len();
    }
    let mut rest = body;
    let mut out: Vec<Token> = Vec::new();
    let fail = |cur: &mut Cursor, e: nom::Err<LexError>| {
        let e = match e {
            nom::Err::Error(e) | nom::Err::Failure(e) => e,
            nom::Err::Incomplete(_) => LexError::at("", "unexpected end of input"),
        };
        let at = src.len().saturating_sub(e.rest_len);
        let rest = src.get(at..).unwrap_or("");
        Diag::new(cur.span_at(at), e.message(rest))
    };
    loop {
        rest = match trivia(rest) {
            Ok((r, ())) => r,
            Err(e) => return Err(fail(&mut cur, e)),
        };
        let span = cur.span_at(src.len() - rest.len());
        if rest.is_empty() {
            out.push(Token { tok: Tok::Eof, span });
            return Ok(out);
        }
        let (r, tok) = token(rest).map_err(|e| fail(&mut cur, e))?;
        if matches!(tok, Tok::Include { .. }) && out.last().is_some_and(|t| t.span.line == span.line) {
            return Err(Diag::new(span, "`#include` must begin a line"));
        }
        out.push(Token { tok, span });
        rest = r;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s, 0).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn lex_err(s: &str) -> Diag {
        lex(s, 0).unwrap_err()
    }

    #[test]
    fn literals() {
        assert_eq!(int_literal("42"), Ok(IntLit { value: 42, width: None }));
        assert_eq!(int_literal("0x2A"), Ok(IntLit { value: 42, width: None }));
        assert_eq!(int_literal("0b10_1010"), Ok(IntLit { value: 42, width: None }));
        assert_eq!(int_literal("0o52"), Ok(IntLit { value: 42, width: None }));
        assert_eq!(
            int_literal("16w0x800"),
            Ok(IntLit {
                value: 0x800,
                width: Some(16)
            })
        );
        assert_eq!(
            int_literal("8w255"),
            Ok(IntLit {
                value: 255,
                width: Some(8)
            })
        );
        assert!(int_literal("8w300").unwrap_err().contains("does not fit in bit<8>"));
        assert!(int_literal("0w1").is_err());
        assert!(int_literal("8s1").unwrap_err().contains("signed"));
        assert!(int_literal("12ab").is_err());
        assert!(int_literal("0x").is_err());
        assert!(int_literal("340282366920938463463374607431768211456").is_err());
        assert_eq!(
            int_literal("128w0xffffffffffffffffffffffffffffffff").map(|l| l.value),
            Ok(u128::MAX)
        );
    }

    #[test]
    fn punctuation_longest_first() {
        use Punct::*;
        assert_eq!(
            toks("a &&& b && c >> d >= e"),
            vec![
                Tok::Word("a".into()),
                Tok::P(Mask),
                Tok::Word("b".into()),
                Tok::P(AndAnd),
                Tok::Word("c".into()),
                Tok::P(Gt),
                Tok::P(Gt),
                Tok::Word("d".into()),
                Tok::P(Ge),
                Tok::Word("e".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn spans_count_lines_and_columns() {
        let t = lex("a\n  /* x\n */ bc // d\n\tef", 0).unwrap();
        let at: Vec<(u32, u32)> = t.iter().map(|t| (t.span.line, t.span.col)).collect();
        assert_eq!(at, vec![(1, 1), (3, 5), (4, 2), (4, 4)]);
    }

    #[test]
    fn includes() {
        assert_eq!(
            toks("#include <a.p4>\n# include \"b/c.p4\" // why\n"),
            vec![
                Tok::Include {
                    path: "a.p4".into(),
                    angle: true
                },
                Tok::Include {
                    path: "b/c.p4".into(),
                    angle: false
                },
                Tok::Eof
            ]
        );
        assert!(lex_err("#define X 1\n").msg.contains("#define"));
        assert!(lex_err("a #include <x>\n").msg.contains("begin a line"));
        assert!(lex_err("#include <x> y\n").msg.contains("after #include"));
        assert!(lex_err("#include <x\n").msg.contains("malformed"));
    }

    #[test]
    fn errors_have_positions() {
        let e = lex_err("a\n  /* never closed");
        assert_eq!((e.span.line, e.span.col), (2, 3));
        assert!(e.msg.contains("unterminated comment"));
        let e = lex_err("x = 8w300;");
        assert_eq!((e.span.line, e.span.col), (1, 5));
        let e = lex_err("x $ y");
        assert_eq!((e.span.line, e.span.col), (1, 3));
        assert!(e.msg.contains('$'));
        let e = lex_err("@name(\"abc");
        assert!(e.msg.contains("unterminated string"));
        // Across lines it is one string, its spans after it right.
        let t = lex("@name(\"a\nb\") x", 0).unwrap();
        assert_eq!(t[3].tok, Tok::Str("a\nb".into()));
        assert_eq!((t[5].span.line, t[5].span.col), (2, 5));
        let e = lex_err("é");
        assert_eq!((e.span.line, e.span.col), (1, 1));
    }

    #[test]
    fn strings_and_bom() {
        assert_eq!(toks("\u{feff}\"a\\\"b\""), vec![Tok::Str("a\"b".into()), Tok::Eof]);
    }
}
