//! The parser: tokens to the syntax tree ([`crate::ast`]), written with
//! nom over a token stream (`input::Toks`).
//!
//! Alternatives are chosen by looking at the next token or two, never by
//! re-parsing nested input, so parsing is linear; after a token that
//! commits to a construct, errors are fatal and name what was expected and
//! what was found. Constructs outside the supported subset that are
//! recognisable by their syntax (header stacks, `switch`, `varbit`, ...)
//! are reported here; the rest by the checker.

mod decl;
mod expr;
mod input;
mod stmt;

use crate::ast::Decl;
use crate::diag::Diag;
use crate::lexer::{Punct, Tok, Token};
use input::Toks;
use std::cell::Cell;

pub use input::MAX_NESTING;

/// Parse a whole program (the token stream ends with Eof).
pub fn parse(toks: &[Token]) -> Result<Vec<Decl>, Diag> {
    let depth = Cell::new(0);
    let mut i = Toks::new(toks, &depth);
    let mut out = Vec::new();
    loop {
        match i.tok() {
            Tok::Eof => return Ok(out),
            Tok::P(Punct::Semi) => i = i.skip(1),
            _ => match decl::decl(i) {
                Ok((r, d)) => {
                    out.push(d);
                    i = r;
                }
                Err(nom::Err::Error(e) | nom::Err::Failure(e)) => return Err(e.into_diag()),
                Err(nom::Err::Incomplete(_)) => return Err(Diag::new(i.span(), "unexpected end of input")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::DeclKind;
    use crate::lexer::lex;

    fn parse_str(s: &str) -> Result<Vec<Decl>, String> {
        let toks = lex(s, 0).map_err(|d| d.to_string())?;
        parse(&toks).map_err(|d| d.to_string())
    }

    #[test]
    fn declarations() {
        let src = r#"
            const bit<16> ETH_IPV4 = 0x0800;
            typedef bit<48> mac_t;
            header eth_t { mac_t dst; mac_t src; bit<16> type; }
            struct hdrs_t { eth_t eth; }
            enum MeterType { packets, bytes }
            error { NoError, PacketTooShort }
            match_kind { exact, ternary, lpm }
            extern packet_in { void extract<T>(out T hdr); }
            extern counter { counter(bit<32> size, CounterType type); void count(in bit<32> index); }
            extern void mark_to_drop(inout standard_metadata_t std);
            parser P<H, M>(packet_in pkt, out H hdr);
            control C<H>(inout H hdr);
            package Pkg<H>(P<H, H> p, C<H> c);
            action NoAction() {}
            parser MyP(packet_in pkt, out hdrs_t hdr) {
                @cost(1) state start { pkt.extract(hdr.eth); transition select(hdr.eth.type) { ETH_IPV4: accept; default: reject; } }
            }
            control MyC(inout hdrs_t hdr) {
                counter(4, CounterType.packets) c;
                action a(bit<8> x) { hdr.eth.type = (bit<16>) x; }
                @cost(2) table t { key = { hdr.eth.dst: exact; } actions = { a; NoAction; } default_action = NoAction(); size = 16;
                    const entries = { 1 : a(2); } }
                apply { if (t.apply().hit) { c.count(0); } }
            }
            @base_cost(1) Pkg(MyP(), MyC()) main;
        "#;
        let d = parse_str(src).unwrap();
        assert_eq!(d.len(), 17);
        assert!(matches!(d[1].kind, DeclKind::Typedef(..)));
        assert!(matches!(d[15].kind, DeclKind::Control(ref c) if c.locals.len() == 3));
        assert!(matches!(d[16].kind, DeclKind::Instance(ref x) if x.annotations.len() == 1));
    }

    #[test]
    fn unsupported_declarations() {
        for (src, msg) in [
            ("header_union u { }", "header unions"),
            ("struct s { h_t[4] hs; }", "header stacks"),
            ("struct s { varbit<32> v; }", "varbit"),
            ("bit<8> f(in bit<8> x) { }", "function declarations"),
            ("bit<8> x;", "variables outside a control"),
            ("parser p()(bit<8> c) { }", "constructor parameters"),
            ("parser p() { value_set<bit<8>>(4) vs; }", "value_set"),
            ("control c() { bit<8> x; apply { } }", "local variables"),
            (
                "control c() { table t { implementation = x; } apply { } }",
                "table property `implementation`",
            ),
            ("control c() { }", "no apply block"),
            ("enum bit<8> E { A }", "underlying type"),
            ("extern E { abstract void f(); }", "abstract"),
        ] {
            let e = match parse_str(src) {
                Err(e) => e,
                Ok(_) => panic!("{src}: parsed"),
            };
            assert!(e.contains(msg), "{src}: {e}");
        }
    }

    #[test]
    fn missing_semicolon_points_at_the_next_token() {
        let e = parse_str("const bit<8> X = 1\nheader h { bit<8> a; }").unwrap_err();
        assert_eq!(e, "2:1: expected `;`, found `header`");
    }
}
