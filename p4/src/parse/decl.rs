//! Declarations: constants, typedefs, headers, structs, enums, `error` and
//! `match_kind`, externs, parser/control/package types, parsers (states),
//! controls (actions, tables, extern instances, apply), and instances.
//! Annotations (`@name(...)`) are read wherever P4 allows them.

use super::expr::{expr_required, type_ref};
use super::input::*;
use super::stmt::{block, keys, stmt, transition};
use crate::ast::*;
use crate::lexer::{Punct, Tok};

/// `@name`, `@name(tokens)` or `@name[tokens]`, any number of them.
pub fn annotations(mut i: Toks<'_>) -> PResult<'_, Vec<Annotation>> {
    let mut out = Vec::new();
    while i.is_punct(Punct::At) {
        let (r, name) = must(word(i.skip(1)))?;
        if name.name == "pragma" {
            // `@pragma name args...`: the rest of its line.
            let (line, file) = (name.span.line, name.span.file);
            let mut n = 0usize;
            while !matches!(r.tok_at(n), Tok::Eof) && r.span_at(n).line == line && r.span_at(n).file == file {
                n += 1;
            }
            out.push(Annotation {
                name,
                args: r.tokens(0, n).to_vec(),
            });
            i = r.skip(n);
            continue;
        }
        let (open, close) = match r.tok() {
            Tok::P(Punct::LParen) => (Punct::LParen, Punct::RParen),
            Tok::P(Punct::LBracket) => (Punct::LBracket, Punct::RBracket),
            _ => {
                out.push(Annotation { name, args: Vec::new() });
                i = r;
                continue;
            }
        };
        let mut depth = 0usize;
        let mut n = 0usize;
        loop {
            match r.tok_at(n) {
                Tok::Eof => return fatal(r, "unterminated annotation"),
                Tok::P(p) if *p == open => depth += 1,
                Tok::P(p) if *p == close => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            n += 1;
        }
        out.push(Annotation {
            name,
            args: r.tokens(1, n).to_vec(),
        });
        i = r.skip(n + 1);
    }
    Ok((i, out))
}

/// A comma-separated list of `item` up to `close` (consumed); a trailing
/// comma is allowed.
fn list<'a, T>(mut i: Toks<'a>, close: Punct, mut item: impl FnMut(Toks<'a>) -> PResult<'a, T>) -> PResult<'a, Vec<T>> {
    let mut out = Vec::new();
    loop {
        if i.is_punct(close) {
            return Ok((i.skip(1), out));
        }
        let (r, x) = must(item(i))?;
        out.push(x);
        if r.is_punct(Punct::Comma) {
            i = r.skip(1);
        } else {
            let (r, _) = expect(r, close)?;
            return Ok((r, out));
        }
    }
}

/// `<T, U>` if present.
fn type_params(i: Toks<'_>) -> PResult<'_, Vec<Ident>> {
    if !i.is_punct(Punct::Lt) {
        return Ok((i, Vec::new()));
    }
    list(i.skip(1), Punct::Gt, ident)
}

fn param(i: Toks<'_>) -> PResult<'_, Param> {
    let (i, _) = annotations(i)?;
    let (i, dir) = match i.tok() {
        Tok::Word(w) if w == "in" => (i.skip(1), Direction::In),
        Tok::Word(w) if w == "out" => (i.skip(1), Direction::Out),
        Tok::Word(w) if w == "inout" => (i.skip(1), Direction::InOut),
        _ => (i, Direction::None),
    };
    let (i, ty) = must(type_ref(i))?;
    let (i, name) = must(ident(i))?;
    if i.is_punct(Punct::Assign) {
        return fatal(i, "default parameter values are not supported");
    }
    Ok((i, Param { dir, ty, name }))
}

/// `(params)`
fn params(i: Toks<'_>) -> PResult<'_, Vec<Param>> {
    let (i, _) = expect(i, Punct::LParen)?;
    list(i, Punct::RParen, param)
}

/// `{ (type name;)* }`
fn fields(i: Toks<'_>) -> PResult<'_, Vec<Field>> {
    let (mut i, _) = expect(i, Punct::LBrace)?;
    let mut out = Vec::new();
    loop {
        let (r, _) = annotations(i)?;
        if r.is_punct(Punct::RBrace) {
            return Ok((r.skip(1), out));
        }
        let (r, ty) = match type_ref(r) {
            Err(nom::Err::Error(_)) => return fatal(r, PErr::expected(r, "a field or `}`").msg),
            x => x?,
        };
        let (r, name) = must(ident(r))?;
        let (r, _) = expect(r, Punct::Semi)?;
        out.push(Field { ty, name });
        i = r;
    }
}

/// `{ a, b, c }`
fn members(i: Toks<'_>) -> PResult<'_, Vec<Ident>> {
    let (i, _) = expect(i, Punct::LBrace)?;
    list(i, Punct::RBrace, ident)
}

fn const_decl(i: Toks<'_>) -> PResult<'_, ConstDecl> {
    let (i, ty) = must(type_ref(i.skip(1)))?;
    let (i, name) = must(ident(i))?;
    let (i, _) = expect(i, Punct::Assign)?;
    let (i, value) = expr_required(i)?;
    let (i, _) = expect(i, Punct::Semi)?;
    Ok((i, ConstDecl { ty, name, value }))
}

/// One top-level declaration.
pub fn decl(i: Toks<'_>) -> PResult<'_, Decl> {
    let (i, annotations) = annotations(i)?;
    let span = i.span();
    let (r, kind) = decl_kind(i, annotations.clone())?;
    let annotations = match kind {
        DeclKind::Action(_) | DeclKind::Instance(_) => Vec::new(),
        _ => annotations,
    };
    Ok((
        r,
        Decl {
            annotations,
            kind,
            span,
        },
    ))
}

fn decl_kind(i: Toks<'_>, anns: Vec<Annotation>) -> PResult<'_, DeclKind> {
    let Tok::Word(w) = i.tok() else {
        return fatal(i, PErr::expected(i, "a declaration").msg);
    };
    let next = i.skip(1);
    match w.as_str() {
        "const" => const_decl(i).map(|(r, c)| (r, DeclKind::Const(c))),
        "typedef" => {
            let (r, ty) = must(type_ref(next))?;
            let (r, name) = must(ident(r))?;
            let (r, _) = expect(r, Punct::Semi)?;
            Ok((r, DeclKind::Typedef(ty, name)))
        }
        "type" if matches!(next.tok(), Tok::Word(_)) => fatal(i, "`type` declarations are not supported (use typedef)"),
        "header" => {
            let (r, name) = must(ident(next))?;
            let (r, f) = fields(r)?;
            Ok((r, DeclKind::Header(name, f)))
        }
        "header_union" => fatal(i, "header unions are not supported"),
        "struct" => {
            let (r, name) = must(ident(next))?;
            let (r, f) = fields(r)?;
            Ok((r, DeclKind::Struct(name, f)))
        }
        "enum" => {
            if next.is_word("bit") || next.is_word("int") {
                return fatal(i, "enums with an underlying type are not supported");
            }
            let (r, name) = must(ident(next))?;
            let (r, m) = members(r)?;
            Ok((r, DeclKind::Enum(name, m)))
        }
        "error" => members(next).map(|(r, m)| (r, DeclKind::Errors(m))),
        "match_kind" => members(next).map(|(r, m)| (r, DeclKind::MatchKinds(m))),
        "extern" => extern_decl(next).map(|(r, e)| (r, DeclKind::Extern(e))),
        "parser" => parser_decl(next),
        "control" => control_decl(next),
        "package" => {
            let (r, p) = proto(next)?;
            let (r, _) = expect(r, Punct::Semi)?;
            Ok((r, DeclKind::Package(p)))
        }
        "action" => action_decl(i, anns).map(|(r, a)| (r, DeclKind::Action(a))),
        "value_set" => fatal(i, "value_set is not supported"),
        "table" => fatal(i, "tables must be declared inside a control"),
        "state" => fatal(i, "states must be declared inside a parser"),
        _ => {
            instance(i, anns, "variables outside a control are not supported").map(|(r, x)| (r, DeclKind::Instance(x)))
        }
    }
}

/// `name<T>(params)` of a parser, control or package type.
fn proto(i: Toks<'_>) -> PResult<'_, Proto> {
    let (i, name) = must(ident(i))?;
    let (i, tps) = type_params(i)?;
    let (i, ps) = params(i)?;
    Ok((
        i,
        Proto {
            name,
            type_params: tps,
            params: ps,
        },
    ))
}

/// `Type(args) name;`, or the error for what else a line starting with a
/// type can be (a variable: `var_msg`, or a function).
fn instance<'a>(i: Toks<'a>, annotations: Vec<Annotation>, var_msg: &str) -> PResult<'a, Instance> {
    let (r, ty) = match type_ref(i) {
        Err(nom::Err::Error(_)) => return fatal(i, PErr::expected(i, "a declaration").msg),
        x => x?,
    };
    if !r.is_punct(Punct::LParen) {
        if matches!(r.tok(), Tok::Word(w) if !is_keyword(w)) {
            if *r.tok_at(1) == Tok::P(Punct::LParen) || *r.tok_at(1) == Tok::P(Punct::Lt) {
                return fatal(i, "function declarations are not supported");
            }
            return fatal(i, var_msg.to_string());
        }
        return fatal(r, PErr::expected(r, "`(`").msg);
    }
    let (r, args) = list(r.skip(1), Punct::RParen, expr_required)?;
    let (r, name) = must(ident(r))?;
    let (r, _) = expect(r, Punct::Semi)?;
    Ok((
        r,
        Instance {
            annotations,
            ty,
            args,
            name,
        },
    ))
}

/// After `extern`: an object (`name<T> { ... }`) or a function.
fn extern_decl(i: Toks<'_>) -> PResult<'_, ExternDecl> {
    if let (Tok::Word(w), true) = (i.tok(), matches!(i.tok_at(1), Tok::P(Punct::LBrace | Punct::Lt))) {
        if !is_keyword(w) {
            let (r, name) = ident(i)?;
            let (r, tps) = type_params(r)?;
            if r.is_punct(Punct::LBrace) {
                return extern_object(r.skip(1), name, tps);
            }
        }
    }
    let (r, m) = method(i)?;
    Ok((r, ExternDecl::Function(m)))
}

/// `ret name<T>(params);`
fn method(i: Toks<'_>) -> PResult<'_, Method> {
    let (r, ret) = must(type_ref(i))?;
    let (r, name) = must(ident(r))?;
    let (r, tps) = type_params(r)?;
    let (r, ps) = params(r)?;
    let (r, _) = expect(r, Punct::Semi)?;
    Ok((
        r,
        Method {
            ret,
            name,
            type_params: tps,
            params: ps,
        },
    ))
}

fn extern_object(mut i: Toks<'_>, name: Ident, type_params: Vec<Ident>) -> PResult<'_, ExternDecl> {
    let mut ctors = Vec::new();
    let mut methods = Vec::new();
    loop {
        let (r, _) = annotations(i)?;
        if r.is_punct(Punct::RBrace) {
            let r = r.skip(1);
            return Ok((
                r,
                ExternDecl::Object {
                    name,
                    type_params,
                    ctors,
                    methods,
                },
            ));
        }
        if r.is_word("abstract") {
            return fatal(r, "abstract methods are not supported");
        }
        if r.is_word(&name.name) && *r.tok_at(1) == Tok::P(Punct::LParen) {
            let (n, ps) = params(r.skip(1))?;
            let (n, _) = expect(n, Punct::Semi)?;
            ctors.push(ps);
            i = n;
            continue;
        }
        if *r.tok() == Tok::Eof {
            return fatal(r, "expected `}`, found end of input");
        }
        let (n, m) = method(r)?;
        methods.push(m);
        i = n;
    }
}

/// After `parser`: a parser type (`;`) or a parser with states.
fn parser_decl(i: Toks<'_>) -> PResult<'_, DeclKind> {
    let (r, p) = proto(i)?;
    if r.is_punct(Punct::Semi) {
        return Ok((r.skip(1), DeclKind::ParserType(p)));
    }
    if r.is_punct(Punct::LParen) {
        return fatal(r, "constructor parameters are not supported");
    }
    if !p.type_params.is_empty() {
        return fatal(i, "generic parsers are not supported");
    }
    let (mut r, _) = expect(r, Punct::LBrace)?;
    let mut states = Vec::new();
    loop {
        let (n, anns) = annotations(r)?;
        if n.is_punct(Punct::RBrace) {
            return Ok((
                n.skip(1),
                DeclKind::Parser(ParserDecl {
                    name: p.name,
                    params: p.params,
                    states,
                }),
            ));
        }
        if n.is_word("value_set") {
            return fatal(n, "value_set is not supported");
        }
        if !n.is_word("state") {
            if *n.tok() == Tok::Eof {
                return fatal(n, "expected `}`, found end of input");
            }
            return fatal(n, "only states may be declared in a parser");
        }
        let (n, s) = state(n.skip(1), anns)?;
        states.push(s);
        r = n;
    }
}

/// After `state`.
fn state(i: Toks<'_>, annotations: Vec<Annotation>) -> PResult<'_, State> {
    let (i, name) = must(ident(i))?;
    let (mut i, _) = expect(i, Punct::LBrace)?;
    let mut stmts = Vec::new();
    loop {
        if i.is_punct(Punct::RBrace) {
            return Ok((
                i.skip(1),
                State {
                    annotations,
                    name,
                    stmts,
                    transition: None,
                },
            ));
        }
        if i.is_word("transition") {
            let (r, t) = transition(i.skip(1))?;
            let (r, _) = expect(r, Punct::RBrace)?;
            return Ok((
                r,
                State {
                    annotations,
                    name,
                    stmts,
                    transition: Some(t),
                },
            ));
        }
        if *i.tok() == Tok::Eof {
            return fatal(i, "expected `}`, found end of input");
        }
        let (r, s) = stmt(i)?;
        stmts.push(s);
        i = r;
    }
}

/// After `control`: a control type (`;`) or a control.
fn control_decl(i: Toks<'_>) -> PResult<'_, DeclKind> {
    let (r, p) = proto(i)?;
    if r.is_punct(Punct::Semi) {
        return Ok((r.skip(1), DeclKind::ControlType(p)));
    }
    if r.is_punct(Punct::LParen) {
        return fatal(r, "constructor parameters are not supported");
    }
    if !p.type_params.is_empty() {
        return fatal(i, "generic controls are not supported");
    }
    let (mut r, _) = expect(r, Punct::LBrace)?;
    let mut locals = Vec::new();
    loop {
        let (n, anns) = annotations(r)?;
        let Tok::Word(w) = n.tok() else {
            let what = if n.is_punct(Punct::RBrace) {
                format!("control `{}` has no apply block", p.name.name)
            } else {
                PErr::expected(n, "a declaration or `apply`").msg
            };
            return fatal(n, what);
        };
        let (n, local) = match w.as_str() {
            "apply" if *n.tok_at(1) == Tok::P(Punct::LBrace) => {
                let (n, body) = block(n.skip(1))?;
                let (n, _) = expect(n, Punct::RBrace)?;
                let c = ControlDecl {
                    name: p.name,
                    params: p.params,
                    locals,
                    apply: body,
                };
                return Ok((n, DeclKind::Control(c)));
            }
            "action" => action_decl(n, anns).map(|(r, a)| (r, Local::Action(a)))?,
            "table" => table_decl(n, anns).map(|(r, t)| (r, Local::Table(t)))?,
            "const" => const_decl(n).map(|(r, c)| (r, Local::Const(c)))?,
            _ => instance(n, anns, "local variables are not supported").map(|(r, x)| (r, Local::Instance(x)))?,
        };
        locals.push(local);
        r = n;
    }
}

/// `action name(params) { body }` (at `action`).
fn action_decl(i: Toks<'_>, annotations: Vec<Annotation>) -> PResult<'_, ActionDecl> {
    let (i, name) = must(ident(i.skip(1)))?;
    let (i, ps) = params(i)?;
    let (i, body) = block(i)?;
    Ok((
        i,
        ActionDecl {
            annotations,
            name,
            params: ps,
            body,
        },
    ))
}

/// `table name { properties }` (at `table`).
fn table_decl(i: Toks<'_>, annotations: Vec<Annotation>) -> PResult<'_, TableDecl> {
    let (i, name) = must(ident(i.skip(1)))?;
    let (mut i, _) = expect(i, Punct::LBrace)?;
    let mut props = Vec::new();
    loop {
        let (r, _) = annotations_ignored(i)?;
        if r.is_punct(Punct::RBrace) {
            return Ok((
                r.skip(1),
                TableDecl {
                    annotations,
                    name,
                    props,
                },
            ));
        }
        let r = if r.is_word("const") { r.skip(1) } else { r };
        let span = r.span();
        let (r, prop) = table_prop(r)?;
        props.push((prop, span));
        i = r;
    }
}

fn annotations_ignored(i: Toks<'_>) -> PResult<'_, ()> {
    annotations(i).map(|(r, _)| (r, ()))
}

fn table_prop(i: Toks<'_>) -> PResult<'_, TableProp> {
    let Tok::Word(w) = i.tok() else {
        return fatal(i, PErr::expected(i, "a table property").msg);
    };
    let prop = w.as_str();
    if !matches!(
        prop,
        "key" | "actions" | "default_action" | "size" | "entries" | "counters" | "meters"
    ) {
        return fatal(i, format!("table property `{prop}` is not supported"));
    }
    let (r, _) = expect(i.skip(1), Punct::Assign)?;
    match prop {
        "key" => {
            let (r, ks) = brace_items(r, |i, _| key_elem(i))?;
            Ok((r, TableProp::Key(ks)))
        }
        "actions" => {
            let (r, a) = brace_items(r, action_ref)?;
            Ok((r, TableProp::Actions(a)))
        }
        "entries" => {
            let (r, e) = brace_items(r, |i, _| entry(i))?;
            Ok((r, TableProp::Entries(e)))
        }
        _ => {
            let (r, e) = expr_required(r)?;
            let (r, _) = expect(r, Punct::Semi)?;
            Ok((
                r,
                match prop {
                    "size" => TableProp::Size(e),
                    "counters" => TableProp::Counters(e),
                    "meters" => TableProp::Meters(e),
                    _ => TableProp::DefaultAction(e),
                },
            ))
        }
    }
}

/// `{ item* }` where each item ends itself (with `;`); `item` gets the
/// annotations written before it.
fn brace_items<'a, T>(i: Toks<'a>, item: impl Fn(Toks<'a>, Vec<Annotation>) -> PResult<'a, T>) -> PResult<'a, Vec<T>> {
    let (mut i, _) = expect(i, Punct::LBrace)?;
    let mut out = Vec::new();
    loop {
        let (r, anns) = annotations(i)?;
        if r.is_punct(Punct::RBrace) {
            let r = r.skip(1);
            let r = if r.is_punct(Punct::Semi) { r.skip(1) } else { r };
            return Ok((r, out));
        }
        if *r.tok() == Tok::Eof {
            return fatal(r, "expected `}`, found end of input");
        }
        let (r, x) = item(r, anns)?;
        out.push(x);
        i = r;
    }
}

/// `expr : match_kind;`
fn key_elem(i: Toks<'_>) -> PResult<'_, KeyElem> {
    let (r, expr) = expr_required(i)?;
    let (r, _) = expect(r, Punct::Colon)?;
    let (r, kind) = must(ident(r))?;
    let (r, _) = annotations(r)?;
    let (r, _) = expect(r, Punct::Semi)?;
    Ok((r, KeyElem { expr, kind }))
}

/// `name;` in `actions` (the last `;` may be left out), with its
/// `@defaultonly` or `@tableonly`.
fn action_ref(i: Toks<'_>, anns: Vec<Annotation>) -> PResult<'_, ActionRef> {
    let (r, name) = must(ident(i))?;
    if r.is_punct(Punct::LParen) {
        return fatal(r, "action arguments in an actions list are not supported");
    }
    let a = ActionRef {
        name,
        default_only: anns.iter().any(|a| a.name.name == "defaultonly"),
        table_only: anns.iter().any(|a| a.name.name == "tableonly"),
    };
    if r.is_punct(Punct::RBrace) {
        return Ok((r, a));
    }
    let (r, _) = expect(r, Punct::Semi)?;
    Ok((r, a))
}

/// `keyset : action(args);`
fn entry(i: Toks<'_>) -> PResult<'_, Entry> {
    if i.is_word("priority") {
        return fatal(i, "entry priorities are not supported (entries match in order)");
    }
    let (r, k) = keys(i)?;
    let (r, _) = expect(r, Punct::Colon)?;
    let (r, action) = expr_required(r)?;
    let (r, _) = expect(r, Punct::Semi)?;
    Ok((r, Entry { keys: k, action }))
}
