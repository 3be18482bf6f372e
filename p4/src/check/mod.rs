//! The checker: the syntax tree type-checked and lowered to the pipeline
//! IR ([`dataplane::pipeline::Program`]).
//!
//! Order: the top-level declarations (`globals`); `main` and its blocks,
//! which fix the header instances and metadata (`layout`); the ingress
//! control (`control`: global actions first, then the control's actions,
//! tables, meters and counters, then its apply block); the parser
//! (`parser`); the deparser. Errors in the top-level declarations stop
//! there (everything after depends on them); after that each declaration
//! and statement reports its own first error.

mod consts;
mod control;
mod expr;
mod globals;
mod layout;
mod parser;
mod stmt;
mod types;

use crate::ast::{Annotation, Decl};
use crate::diag::{err, DResult, Diag, Span};
use crate::lexer::Tok;
use dataplane::pipeline::{limits, Program, Stmt};

/// Where an annotation appears, for the cost annotations' rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostSite {
    State,
    Table,
    Action,
    /// The `main` instantiation (`@base_cost`).
    Main,
    Elsewhere,
}

/// The `@cost(n)` (or, on `main`, `@base_cost(n)`) among `anns`; 0 if
/// none. Either annotation elsewhere is an error; others are ignored.
pub fn annotation_costs(anns: &[Annotation], site: CostSite) -> DResult<u32> {
    let mut found: Option<u32> = None;
    for a in anns {
        let name = a.name.name.as_str();
        let allowed = match name {
            "cost" => matches!(site, CostSite::State | CostSite::Table | CostSite::Action),
            "base_cost" => site == CostSite::Main,
            _ => continue,
        };
        if !allowed {
            let msg = if name == "cost" {
                "@cost belongs on parser states, tables and actions"
            } else {
                "@base_cost belongs on the `main` package instantiation"
            };
            return err(a.name.span, msg);
        }
        let value = match a.args.as_slice() {
            [t] => match t.tok {
                Tok::Int(l) => u32::try_from(l.value).ok(),
                _ => None,
            },
            _ => None,
        };
        let Some(v) = value else {
            return err(a.name.span, format!("@{name} takes one integer, e.g. @{name}(2)"));
        };
        if found.replace(v).is_some() {
            return err(a.name.span, format!("duplicate @{name}"));
        }
    }
    Ok(found.unwrap_or(0))
}

/// Statements in `b` and everything nested in it (as the IR counts them).
fn count_stmts(b: &[Stmt]) -> usize {
    b.iter()
        .map(|s| match s {
            Stmt::Apply { on_hit, on_miss, .. } => count_stmts(on_hit) + count_stmts(on_miss),
            Stmt::If { then, otherwise, .. } => count_stmts(then) + count_stmts(otherwise),
            _ => 0,
        })
        .sum::<usize>()
        + b.len()
}

/// Check `decls` and lower them to a program named `name`; `eof` is where
/// a missing `main` is reported.
pub fn lower(decls: &[Decl], name: &str, eof: Span) -> Result<Program, Vec<Diag>> {
    let mut errs = Vec::new();
    let g = globals::collect(decls, &mut errs);
    if !errs.is_empty() {
        return Err(errs);
    }
    let blocks = g.blocks(eof).map_err(|e| vec![e])?;
    let layout = &blocks.layout;

    let mut ing = control::Ingress::new(&g, layout, &blocks.ingress_names);
    ing.global_actions(&mut errs);
    ing.locals(blocks.ingress, &mut errs);
    ing.apply_block(blocks.ingress, &mut errs);

    let states = parser::lower(&g, layout, &blocks.parser_names, blocks.parser, &mut errs);
    if !states.is_empty() && !parser_ends(&states) {
        errs.push(Diag::new(
            blocks.parser.name.span,
            format!(
                "parser `{}` never reaches `accept` or `reject`: every packet would end in a parser timeout",
                blocks.parser.name.name
            ),
        ));
    }
    let deparse = control::deparser(&g, layout, &blocks.deparser_names, blocks.deparser).unwrap_or_else(|e| {
        errs.push(e);
        Vec::new()
    });

    let stmts = ing.actions.iter().map(|a| count_stmts(&a.body)).sum::<usize>() + count_stmts(&ing.apply);
    if stmts > limits::STMTS {
        errs.push(Diag::new(
            blocks.ingress.name.span,
            format!(
                "the program has {stmts} statements; at most {} are supported",
                limits::STMTS
            ),
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    // The parsers and controls `main` does not use are checked too (as
    // p4c does): as a block of the same pipeline, their code discarded.
    for u in g.unused_blocks(&blocks) {
        match u {
            Err(e) => errs.push(e),
            Ok(layout::Unused::Parser(p, names)) => {
                parser::lower(&g, layout, &names, p, &mut errs);
            }
            Ok(layout::Unused::Ingress(c, names)) => {
                let mut other = control::Ingress::new(&g, layout, &names);
                other.global_actions(&mut errs);
                other.locals(c, &mut errs);
                other.apply_block(c, &mut errs);
            }
            Ok(layout::Unused::Deparser(c, names)) => {
                if let Err(e) = control::deparser(&g, layout, &names, c) {
                    errs.push(e);
                }
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let program = Program {
        name: name.to_string(),
        headers: layout.headers.clone(),
        meta: layout.meta.clone(),
        parser: states,
        actions: ing.actions,
        tables: ing.tables,
        meters: ing.meters,
        counters: ing.counters,
        ingress: ing.apply,
        deparse,
        base_cost: blocks.base_cost,
    };
    // The device's state budget, said at the declaration that takes the
    // most of it (a user's error, not the compiler's).
    let state = program.state_bytes();
    if state > limits::STATE_BYTES {
        let (big, bytes) = program.state_by_name().max_by_key(|x| x.1).unwrap_or(("", 0));
        let at = blocks
            .ingress
            .locals
            .iter()
            .find_map(|l| match l {
                crate::ast::Local::Table(t) if t.name.name == big => Some(t.name.span),
                crate::ast::Local::Instance(i) if i.name.name == big => Some(i.name.span),
                _ => None,
            })
            .unwrap_or(blocks.ingress.name.span);
        return Err(vec![Diag::new(
            at,
            format!(
                "the program's tables, meters and counters need {} KiB of device state, the device has {} KiB; \
                 `{big}` alone takes {} KiB (a table entry of its size counts {} bytes, a counter cell {}, a meter \
                 cell {}): make it smaller",
                state >> 10,
                limits::STATE_BYTES >> 10,
                bytes >> 10,
                limits::TABLE_ENTRY_BYTES,
                limits::COUNTER_BYTES,
                dataplane::meter::layout::SIZE
            ),
        )]);
    }
    if let Err(e) = program.validate() {
        return Err(vec![Diag::new(
            blocks.ingress.name.span,
            format!("internal error: the compiled program does not validate: {e}"),
        )]);
    }
    Ok(program)
}

/// Whether some path from the start state reaches `accept` or `reject`.
fn parser_ends(states: &[dataplane::pipeline::ParserState]) -> bool {
    use dataplane::pipeline::Next;
    let mut seen = vec![false; states.len()];
    let mut todo = vec![0usize];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        for n in states[i].transition.nexts() {
            match n {
                Next::Accept | Next::Reject => return true,
                Next::State(j) if usize::from(j) < states.len() => todo.push(usize::from(j)),
                Next::State(_) => {}
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Ident;
    use crate::lexer::lex;

    fn ann(src: &str) -> Vec<Annotation> {
        // `@name(args)` as the parser keeps it.
        let toks = lex(src, 0).unwrap();
        let name = match &toks[1].tok {
            Tok::Word(w) => w.clone(),
            _ => panic!(),
        };
        let args = toks[3..toks.len() - 2].to_vec();
        vec![Annotation {
            name: Ident {
                name,
                span: toks[1].span,
            },
            args,
        }]
    }

    #[test]
    fn cost_annotations() {
        assert_eq!(annotation_costs(&ann("@cost(3)"), CostSite::Table), Ok(3));
        assert_eq!(annotation_costs(&ann("@base_cost(2)"), CostSite::Main), Ok(2));
        assert_eq!(annotation_costs(&ann("@name(\"x\")"), CostSite::Elsewhere), Ok(0));
        assert!(annotation_costs(&ann("@cost(3)"), CostSite::Main).is_err());
        assert!(annotation_costs(&ann("@base_cost(3)"), CostSite::Action).is_err());
        assert!(annotation_costs(&ann("@cost(1, 2)"), CostSite::State).is_err());
        assert!(annotation_costs(&ann("@cost(0x1_0000_0000)"), CostSite::State).is_err());
        let two = [ann("@cost(1)"), ann("@cost(2)")].concat();
        assert!(annotation_costs(&two, CostSite::Action)
            .unwrap_err()
            .msg
            .contains("duplicate"));
    }
}
