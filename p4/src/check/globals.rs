//! Top-level declarations: every global name checked for duplicates and
//! recorded (types, constants, externs, parser/control/package types,
//! parsers, controls, global actions and the `main` instance), in
//! declaration order, so that a name is usable only after it is declared.

use super::consts::CVal;
use super::expr::Scope;
use super::types::{HeaderType, StructType, Ty};
use super::{annotation_costs, CostSite};
use crate::ast::*;
use crate::diag::{err, DResult, Diag, Span};
use dataplane::pipeline::limits;
use std::collections::HashMap;

/// Everything declared at top level.
#[derive(Debug, Default)]
pub struct Globals<'a> {
    /// Every global name and where it was declared.
    pub names: HashMap<String, Span>,
    pub typedefs: HashMap<String, Ty>,
    pub headers: HashMap<String, HeaderType>,
    pub structs: HashMap<String, StructType>,
    pub enums: HashMap<String, Vec<String>>,
    pub match_kinds: Vec<String>,
    pub errors: Vec<String>,
    pub consts: HashMap<String, CVal>,
    pub externs: HashMap<String, &'a ExternDecl>,
    pub parser_types: HashMap<String, &'a Proto>,
    pub control_types: HashMap<String, &'a Proto>,
    pub packages: HashMap<String, &'a Proto>,
    pub parsers: HashMap<String, &'a ParserDecl>,
    pub controls: HashMap<String, &'a ControlDecl>,
    /// Global actions (`NoAction`), in order: they come first in the
    /// program's action list.
    pub actions: Vec<&'a ActionDecl>,
    pub action_index: HashMap<String, u16>,
    pub main: Option<&'a Instance>,
}

/// Collect the globals; errors go to `errs`.
pub fn collect<'a>(decls: &'a [Decl], errs: &mut Vec<Diag>) -> Globals<'a> {
    let mut g = Globals::default();
    for d in decls {
        if let Err(e) = g.decl(d) {
            errs.push(e);
        }
    }
    g
}

impl<'a> Globals<'a> {
    fn declare(&mut self, name: &Ident) -> DResult<()> {
        if let Some(first) = self.names.get(&name.name) {
            return err(
                name.span,
                format!(
                    "duplicate declaration of `{}` (first declared at line {})",
                    name.name, first.line
                ),
            );
        }
        self.names.insert(name.name.clone(), name.span);
        Ok(())
    }

    fn decl(&mut self, d: &'a Decl) -> DResult<()> {
        annotation_costs(&d.annotations, CostSite::Elsewhere)?;
        match &d.kind {
            DeclKind::Const(c) => {
                self.declare(&c.name)?;
                let v = Scope::global(self).constant_of(&c.value, &c.ty)?;
                self.consts.insert(c.name.name.clone(), v);
            }
            DeclKind::Typedef(t, name) => {
                self.declare(name)?;
                let (ty, _) = self.scalar(t, "a typedef")?;
                self.typedefs.insert(name.name.clone(), ty);
            }
            DeclKind::Header(name, fields) => {
                self.declare(name)?;
                let h = self.header_type(name, fields)?;
                self.headers.insert(name.name.clone(), h);
            }
            DeclKind::Struct(name, fields) => {
                self.declare(name)?;
                let s = self.struct_type(name, fields)?;
                self.structs.insert(name.name.clone(), s);
            }
            DeclKind::Enum(name, members) => {
                self.declare(name)?;
                let mut out: Vec<String> = Vec::new();
                merge_members(&mut out, members)?;
                self.enums.insert(name.name.clone(), out);
            }
            DeclKind::Errors(members) => merge_members(&mut self.errors, members)?,
            DeclKind::MatchKinds(members) => merge_members(&mut self.match_kinds, members)?,
            DeclKind::Extern(e) => self.extern_decl(e)?,
            DeclKind::ParserType(p) => {
                self.proto(p)?;
                self.parser_types.insert(p.name.name.clone(), p);
            }
            DeclKind::ControlType(p) => {
                self.proto(p)?;
                self.control_types.insert(p.name.name.clone(), p);
            }
            DeclKind::Package(p) => {
                self.proto(p)?;
                self.packages.insert(p.name.name.clone(), p);
            }
            DeclKind::Parser(p) => {
                self.declare(&p.name)?;
                // A second parameter of the same name would be
                // unreachable (a name binds to the first).
                unique(p.params.iter().map(|p| &p.name), "parameter")?;
                self.parsers.insert(p.name.name.clone(), p);
            }
            DeclKind::Control(c) => {
                self.declare(&c.name)?;
                unique(c.params.iter().map(|p| &p.name), "parameter")?;
                self.controls.insert(c.name.name.clone(), c);
            }
            DeclKind::Action(a) => {
                if self.actions.len() >= limits::ACTIONS {
                    return err(a.name.span, format!("more than {} actions", limits::ACTIONS));
                }
                self.declare(&a.name)?;
                let i = u16::try_from(self.actions.len()).unwrap_or(u16::MAX);
                self.actions.push(a);
                self.action_index.insert(a.name.name.clone(), i);
            }
            DeclKind::Instance(x) => {
                if x.name.name != "main" {
                    return err(
                        x.name.span,
                        "only `main` may be instantiated at top level (extern instances belong in the ingress control)",
                    );
                }
                self.declare(&x.name)?;
                annotation_costs(&x.annotations, CostSite::Main)?;
                self.main = Some(x);
            }
        }
        Ok(())
    }

    /// Check that every type a prototype's parameters name exists, and
    /// that no parameter or type parameter name is given twice.
    fn params_resolve(&self, params: &[Param], tparams: &[Ident]) -> DResult<()> {
        unique(tparams.iter(), "type parameter")?;
        unique(params.iter().map(|p| &p.name), "parameter")?;
        for p in params {
            self.resolve(&p.ty, tparams)?;
        }
        Ok(())
    }

    fn proto(&mut self, p: &Proto) -> DResult<()> {
        self.declare(&p.name)?;
        self.params_resolve(&p.params, &p.type_params)
    }

    fn extern_decl(&mut self, e: &'a ExternDecl) -> DResult<()> {
        match e {
            ExternDecl::Object {
                name,
                type_params,
                ctors,
                methods,
            } => {
                // A generic extern (`direct_meter<T>`): its type
                // parameters are in scope in its methods.
                if let Some(t) = type_params.get(1) {
                    return err(t.span, "extern types of more than one type parameter are not supported");
                }
                self.declare(name)?;
                self.externs.insert(name.name.clone(), e);
                for c in ctors {
                    self.params_resolve(c, &[])?;
                }
                for m in methods {
                    let scope: Vec<Ident> = type_params.iter().chain(&m.type_params).cloned().collect();
                    self.params_resolve(&m.params, &scope)?;
                    self.resolve(&m.ret, &scope)?;
                }
            }
            ExternDecl::Function(m) => {
                self.declare(&m.name)?;
                self.params_resolve(&m.params, &m.type_params)?;
                self.resolve(&m.ret, &m.type_params)?;
                self.externs.insert(m.name.name.clone(), e);
            }
        }
        Ok(())
    }

    /// The method `name` of extern object `ext`.
    pub fn method(&self, ext: &str, name: &Ident) -> DResult<&'a Method> {
        match self.externs.get(ext) {
            Some(ExternDecl::Object { methods, .. }) => methods
                .iter()
                .find(|m| m.name.name == name.name)
                .ok_or_else(|| Diag::new(name.span, format!("extern `{ext}` has no method `{}`", name.name))),
            _ => err(name.span, format!("`{ext}` is not an extern object")),
        }
    }
}

/// No two of `names` alike (`what`: what they name, for the message).
fn unique<'n>(names: impl Iterator<Item = &'n Ident>, what: &str) -> DResult<()> {
    let mut seen: Vec<&Ident> = Vec::new();
    for n in names {
        if let Some(first) = seen.iter().find(|x| x.name == n.name) {
            return err(
                n.span,
                format!("duplicate {what} `{}` (first at line {})", n.name, first.span.line),
            );
        }
        seen.push(n);
    }
    Ok(())
}

/// Add `members` to `out` (an enum's, `error`'s or `match_kind`'s).
fn merge_members(out: &mut Vec<String>, members: &[Ident]) -> DResult<()> {
    for m in members {
        if out.contains(&m.name) {
            return err(m.span, format!("duplicate member `{}`", m.name));
        }
        out.push(m.name.clone());
    }
    Ok(())
}
