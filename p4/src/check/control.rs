//! The ingress control: global and local actions, tables, meter and counter
//! instances, local constants and the apply block, lowered in declaration
//! order (a name is usable after its declaration). A declaration that fails
//! is still registered (as an empty placeholder) so that one mistake is
//! reported once.

use super::consts::{mask, CVal};
use super::expr::{BlockNames, LocalItem, ParamInfo, Place, Scope, TExpr};
use super::globals::Globals;
use super::layout::Layout;
use super::stmt::{arity, BodyKind, Lowerer};
use super::types::Ty;
use super::{annotation_costs, CostSite};
use crate::ast::*;
use crate::diag::{err, DResult, Diag, Span};
use dataplane::pipeline::{self as ir, limits};
use std::collections::HashMap;

/// Default `size` of a table without one.
pub const DEFAULT_TABLE_SIZE: u32 = 1024;

/// What the ingress control lowers to.
#[derive(Debug)]
pub struct Ingress<'s, 'a> {
    g: &'s Globals<'a>,
    layout: &'s Layout,
    names: &'s BlockNames,
    locals: HashMap<String, LocalItem>,
    pub actions: Vec<ir::ActionDef>,
    sigs: Vec<Vec<ParamInfo>>,
    pub tables: Vec<ir::TableDef>,
    pub meters: Vec<ir::MeterDef>,
    pub counters: Vec<ir::CounterDef>,
    pub apply: Vec<ir::Stmt>,
    /// Direct counters and meters declared: the name, and the table that
    /// took each (`counters =` / `meters =`) once one has.
    direct: Vec<(LocalItem, Ident, Option<String>)>,
}

/// An action's parameters.
fn action_params(g: &Globals<'_>, a: &ActionDecl) -> DResult<Vec<ParamInfo>> {
    let mut out: Vec<ParamInfo> = Vec::new();
    for p in &a.params {
        if p.dir != Direction::None {
            return err(
                p.name.span,
                "action parameters with a direction are not supported (parameters come from the table entry)",
            );
        }
        let (ty, width) = g.scalar(&p.ty, "an action parameter")?;
        if width > 64 {
            return err(p.ty.span(), "action parameters are at most 64 bits wide");
        }
        if out.iter().any(|x| x.name == p.name.name) {
            return err(p.name.span, format!("duplicate parameter `{}`", p.name.name));
        }
        out.push(ParamInfo {
            name: p.name.name.clone(),
            ty,
            width,
        });
    }
    if out.len() > limits::PARAMS {
        return err(
            a.name.span,
            format!("action `{}` has more than {} parameters", a.name.name, limits::PARAMS),
        );
    }
    Ok(out)
}

fn placeholder(name: &str, params: &[ParamInfo]) -> ir::ActionDef {
    ir::ActionDef {
        name: name.to_string(),
        params: params
            .iter()
            .map(|p| ir::ParamDef {
                name: p.name.clone(),
                width: p.width,
            })
            .collect(),
        body: Vec::new(),
        cost: 0,
    }
}

/// Whether `m` is a prefix mask (leading ones) of `w` bits.
fn is_prefix(m: u128, w: u16) -> bool {
    let inv = !m & mask(w);
    inv & inv.wrapping_add(1) == 0
}

impl<'s, 'a> Ingress<'s, 'a> {
    pub fn new(g: &'s Globals<'a>, layout: &'s Layout, names: &'s BlockNames) -> Ingress<'s, 'a> {
        Ingress {
            g,
            layout,
            names,
            locals: HashMap::new(),
            actions: Vec::new(),
            sigs: Vec::new(),
            tables: Vec::new(),
            meters: Vec::new(),
            counters: Vec::new(),
            apply: Vec::new(),
            direct: Vec::new(),
        }
    }

    fn scope<'x>(&'x self, params: &'x [ParamInfo]) -> Scope<'x, 'a> {
        Scope {
            g: self.g,
            layout: Some(self.layout),
            names: Some(self.names),
            locals: Some(&self.locals),
            params,
        }
    }

    /// Lower an action; on failure record a placeholder and return the error.
    fn add_action(&mut self, a: &ActionDecl, global: bool) -> DResult<()> {
        let params = action_params(self.g, a).inspect_err(|_| {
            self.actions.push(placeholder(&a.name.name, &[]));
            self.sigs.push(Vec::new());
        })?;
        let body = (|| {
            let cost = annotation_costs(&a.annotations, CostSite::Action)?;
            let scope = if global {
                Scope {
                    params: &params,
                    ..Scope::global(self.g)
                }
            } else {
                self.scope(&params)
            };
            let lw = Lowerer {
                scope,
                kind: BodyKind::Action,
                sigs: &[],
                reads_direct: &[],
            };
            let mut body = Vec::new();
            lw.block(&a.body, 0, &mut body)?;
            Ok((body, cost))
        })();
        let mut def = placeholder(&a.name.name, &params);
        self.sigs.push(params);
        match body {
            Ok((body, cost)) => {
                def.body = body;
                def.cost = cost;
                self.actions.push(def);
                Ok(())
            }
            Err(e) => {
                self.actions.push(def);
                Err(e)
            }
        }
    }

    /// The global actions (`NoAction`), first in the program's list.
    pub fn global_actions(&mut self, errs: &mut Vec<Diag>) {
        for a in self.g.actions.clone() {
            if let Err(e) = self.add_action(a, true) {
                errs.push(e);
            }
        }
    }

    fn next_index(n: usize, max: usize, what: &str, span: Span) -> DResult<u16> {
        if n >= max {
            return err(span, format!("more than {max} {what}"));
        }
        Ok(n as u16)
    }

    fn declare(&mut self, name: &Ident, item: LocalItem) -> DResult<()> {
        let n = &name.name;
        let b = self.names;
        let is_param = [&b.hdr, &b.meta, &b.std]
            .iter()
            .any(|x| x.as_deref() == Some(n.as_str()));
        if self.locals.contains_key(n) || self.g.action_index.contains_key(n) || is_param {
            return err(name.span, format!("duplicate declaration of `{n}`"));
        }
        self.locals.insert(n.clone(), item);
        Ok(())
    }

    /// The control's declarations, in order.
    pub fn locals(&mut self, c: &ControlDecl, errs: &mut Vec<Diag>) {
        for l in &c.locals {
            if let Err(e) = self.local(l) {
                errs.push(e);
            }
        }
    }

    fn local(&mut self, l: &Local) -> DResult<()> {
        match l {
            Local::Action(a) => {
                let i = Self::next_index(self.actions.len(), limits::ACTIONS, "actions", a.name.span)?;
                self.declare(&a.name, LocalItem::Action(i))?;
                self.add_action(a, false)
            }
            Local::Table(t) => {
                let i = Self::next_index(self.tables.len(), limits::TABLES, "tables", t.name.span)?;
                self.declare(&t.name, LocalItem::Table(i))?;
                let def = self.table(t);
                let placeholder = ir::TableDef {
                    name: t.name.name.clone(),
                    keys: Vec::new(),
                    actions: Vec::new(),
                    default_action: 0,
                    default_args: Vec::new(),
                    size: 1,
                    cost: 0,
                    entries: Vec::new(),
                    direct_counter: None,
                    direct_meter: None,
                };
                match def {
                    Ok(d) => {
                        self.claim_direct(&d)?;
                        self.tables.push(d)
                    }
                    Err(e) => {
                        self.tables.push(placeholder);
                        return Err(e);
                    }
                }
                Ok(())
            }
            Local::Instance(x) => self.instance(x),
            Local::Const(c) => {
                let v = self.scope(&[]).constant_of(&c.value, &c.ty)?;
                self.declare(&c.name, LocalItem::Const(v))
            }
        }
    }

    /// The direct counter and meter table `d` names take its size and
    /// are its own: another table naming one is an error.
    fn claim_direct(&mut self, d: &ir::TableDef) -> DResult<()> {
        let wanted = [
            d.direct_counter.map(LocalItem::DirectCounter),
            d.direct_meter.map(LocalItem::DirectMeter),
        ];
        for want in wanted.into_iter().flatten() {
            let Some((_, id, owner)) = self.direct.iter_mut().find(|(x, _, _)| *x == want) else {
                continue;
            };
            if let Some(o) = owner {
                return err(
                    id.span,
                    format!(
                        "`{}` is table `{o}`'s already; a direct resource belongs to one table",
                        id.name
                    ),
                );
            }
            *owner = Some(d.name.clone());
            match want {
                LocalItem::DirectCounter(c) => self.counters[usize::from(c)].size = d.size,
                LocalItem::DirectMeter(m) => self.meters[usize::from(m)].size = d.size,
                _ => {}
            }
        }
        Ok(())
    }

    /// After the declarations: every direct counter and meter belongs to a
    /// table.
    fn direct_owned(&self, errs: &mut Vec<Diag>) {
        for (item, id, owner) in &self.direct {
            if owner.is_none() {
                let prop = if matches!(item, LocalItem::DirectMeter(_)) {
                    "meters"
                } else {
                    "counters"
                };
                errs.push(Diag::new(
                    id.span,
                    format!(
                        "`{}` belongs to no table: name it in one table's properties (`{prop} = {};`)",
                        id.name, id.name
                    ),
                ));
            }
        }
    }

    /// The apply block; each top-level statement's error is reported.
    pub fn apply_block(&mut self, c: &ControlDecl, errs: &mut Vec<Diag>) {
        let mut out = Vec::new();
        {
            let reads_direct: Vec<bool> = self.actions.iter().map(|a| !a.direct_meters().is_empty()).collect();
            let lw = Lowerer {
                scope: self.scope(&[]),
                kind: BodyKind::Ingress,
                sigs: &self.sigs,
                reads_direct: &reads_direct,
            };
            for s in &c.apply {
                if let Err(e) = lw.stmt(s, 0, &mut out) {
                    errs.push(e);
                }
            }
        }
        self.apply = out;
        self.direct_owned(errs);
    }

    /// An action named in a table.
    fn action_ref(&self, id: &Ident) -> DResult<u16> {
        match self.locals.get(&id.name) {
            Some(LocalItem::Action(a)) => return Ok(*a),
            Some(_) => return err(id.span, format!("`{}` is not an action", id.name)),
            None => {}
        }
        match self.g.action_index.get(&id.name) {
            Some(a) => Ok(*a),
            None => err(id.span, format!("unknown action `{}`", id.name)),
        }
    }

    /// `a(args)` or `a` naming one of `allowed`, with constant arguments.
    fn action_call(&self, e: &Expr, allowed: &[u16], table: &Ident) -> DResult<(u16, Vec<u64>)> {
        let (callee, args): (&Expr, &[Expr]) = match &e.kind {
            ExprKind::Call(c, a) => (c, a),
            _ => (e, &[]),
        };
        let ExprKind::Name(n) = &callee.kind else {
            return err(e.span, "expected an action call such as `to_lif(1)`");
        };
        let id = Ident {
            name: n.clone(),
            span: callee.span,
        };
        let a = self.action_ref(&id)?;
        if !allowed.contains(&a) {
            return err(
                id.span,
                format!("action `{n}` is not in the actions of table `{}`", table.name),
            );
        }
        let params = self.sigs.get(usize::from(a)).map_or(&[][..], Vec::as_slice);
        arity(&id, params.len(), args)?;
        let scope = self.scope(&[]);
        let mut out = Vec::new();
        for (p, x) in params.iter().zip(args) {
            let v = scope.key_value(x, p.width, p.ty == Ty::Bool)?;
            out.push(v as u64);
        }
        Ok((a, out))
    }

    fn match_kind(&self, id: &Ident) -> DResult<ir::MatchKind> {
        if !self.g.match_kinds.contains(&id.name) {
            return err(id.span, format!("unknown match kind `{}`", id.name));
        }
        match id.name.as_str() {
            "exact" => Ok(ir::MatchKind::Exact),
            "ternary" => Ok(ir::MatchKind::Ternary),
            "lpm" => Ok(ir::MatchKind::Lpm),
            n => err(id.span, format!("match kind `{n}` is not supported")),
        }
    }

    /// A key field, and whether it is a bool.
    fn key(&self, k: &KeyElem) -> DResult<(ir::KeyDef, bool)> {
        let kind = self.match_kind(&k.kind)?;
        let scope = self.scope(&[]);
        let not_a_key = || {
            err(
                k.expr.span,
                format!(
                    "a table key must be a header or metadata field, or `h.isValid()`, not `{}`",
                    k.expr.render()
                ),
            )
        };
        let (expr, width, is_bool) = match &k.expr.kind {
            ExprKind::Call(callee, args) => match &callee.kind {
                ExprKind::Member(base, m) if m.name == "isValid" && args.is_empty() => match scope.place(base)? {
                    Place::Header(h) => (ir::KeyExpr::Valid(h), 1, true),
                    _ => return not_a_key(),
                },
                _ => return not_a_key(),
            },
            ExprKind::Name(_) | ExprKind::Member(..) => match scope.place(&k.expr)? {
                Place::Field { fr, ty, width, .. } => (ir::KeyExpr::Field(fr), width, ty == Ty::Bool),
                _ => return not_a_key(),
            },
            _ => return not_a_key(),
        };
        let def = ir::KeyDef {
            expr,
            kind,
            width,
            name: k.expr.render(),
        };
        Ok((def, is_bool))
    }

    fn keys(&self, t: &TableDecl, ks: &[KeyElem]) -> DResult<(Vec<ir::KeyDef>, Vec<bool>)> {
        let mut defs = Vec::new();
        let mut bools = Vec::new();
        for k in ks {
            let (d, b) = self.key(k)?;
            defs.push(d);
            bools.push(b);
        }
        if defs.len() > limits::KEYS {
            return err(
                t.name.span,
                format!("table `{}` has more than {} key fields", t.name.name, limits::KEYS),
            );
        }
        let bits: u32 = defs.iter().map(|k| u32::from(k.width)).sum();
        if bits > limits::KEY_BITS {
            return err(
                t.name.span,
                format!(
                    "table `{}`'s key is {bits} bits; at most {} are supported",
                    t.name.name,
                    limits::KEY_BITS
                ),
            );
        }
        if defs.iter().filter(|k| k.kind == ir::MatchKind::Lpm).count() > 1 {
            return err(
                t.name.span,
                format!("table `{}` has more than one lpm key", t.name.name),
            );
        }
        Ok((defs, bools))
    }

    /// One key value of an entry.
    fn entry_key(&self, ks: &KeySet, kd: &ir::KeyDef, is_bool: bool) -> DResult<(u128, u128)> {
        let full = mask(kd.width);
        let scope = self.scope(&[]);
        match ks {
            KeySet::Any(span) if kd.kind == ir::MatchKind::Exact => {
                err(*span, format!("exact key `{}` needs a value", kd.name))
            }
            KeySet::Any(_) => Ok((0, 0)),
            KeySet::Value(e) => Ok((scope.key_value(e, kd.width, is_bool)?, full)),
            KeySet::Mask(e, m) => {
                let v = scope.key_value(e, kd.width, is_bool)?;
                let mk = scope.key_value(m, kd.width, is_bool)?;
                match kd.kind {
                    ir::MatchKind::Exact if mk != full => err(m.span, format!("exact key `{}` takes no mask", kd.name)),
                    ir::MatchKind::Lpm if !is_prefix(mk, kd.width) => {
                        err(m.span, format!("the mask of lpm key `{}` is not a prefix", kd.name))
                    }
                    _ => Ok((v & mk, mk)),
                }
            }
        }
    }

    fn entries(
        &self,
        t: &TableDecl,
        es: &[Entry],
        keys: &[ir::KeyDef],
        bools: &[bool],
        actions: &[u16],
    ) -> DResult<Vec<ir::EntryDef>> {
        let mut out = Vec::new();
        for (i, e) in es.iter().enumerate() {
            let elems: Vec<KeySet> = if e.keys.whole_default {
                vec![KeySet::Any(e.keys.span); keys.len()]
            } else {
                e.keys.elems.clone()
            };
            if elems.len() != keys.len() {
                return err(
                    e.keys.span,
                    format!(
                        "the entry has {} key values; table `{}` has {} keys",
                        elems.len(),
                        t.name.name,
                        keys.len()
                    ),
                );
            }
            let mut key = Vec::new();
            for ((ks, kd), b) in elems.iter().zip(keys).zip(bools) {
                key.push(self.entry_key(ks, kd, *b)?);
            }
            let (action, args) = self.action_call(&e.action, actions, &t.name)?;
            out.push(ir::EntryDef {
                key,
                priority: u32::try_from(es.len() - i).unwrap_or(u32::MAX),
                action,
                args,
            });
        }
        Ok(out)
    }

    fn table(&self, t: &TableDecl) -> DResult<ir::TableDef> {
        let cost = annotation_costs(&t.annotations, CostSite::Table)?;
        let mut key = None;
        let mut actions = None;
        let mut default = None;
        let mut size = None;
        let mut entries = None;
        let mut direct_counter = None;
        let mut direct_meter = None;
        for (p, span) in &t.props {
            // P4_16: `default_action` names one of the `actions`, which
            // must come first (p4c refuses it before them).
            if matches!(p, TableProp::DefaultAction(_)) && actions.is_none() {
                return err(
                    *span,
                    format!("`default_action` of table `{}` comes before its `actions`", t.name.name),
                );
            }
            let (again, name) = match p {
                TableProp::Key(k) => (key.replace(k).is_some(), "key"),
                TableProp::Actions(a) => (actions.replace(a).is_some(), "actions"),
                TableProp::DefaultAction(d) => (default.replace(d).is_some(), "default_action"),
                TableProp::Size(s) => (size.replace(s).is_some(), "size"),
                TableProp::Entries(e) => (entries.replace(e).is_some(), "entries"),
                TableProp::Counters(e) => (direct_counter.replace(e).is_some(), "counters"),
                TableProp::Meters(e) => (direct_meter.replace(e).is_some(), "meters"),
            };
            if again {
                return err(*span, format!("duplicate table property `{name}`"));
            }
        }
        let Some(action_names) = actions else {
            return err(t.name.span, format!("table `{}` has no `actions`", t.name.name));
        };
        let mut list = Vec::new();
        for a in action_names {
            let i = self.action_ref(&a.name)?;
            if list.contains(&i) {
                return err(a.name.span, format!("action `{}` is listed twice", a.name.name));
            }
            if a.default_only && a.table_only {
                return err(
                    a.name.span,
                    format!("action `{}` cannot be both @defaultonly and @tableonly", a.name.name),
                );
            }
            list.push(i);
        }
        let scoped = |i: u16| action_names.iter().zip(&list).find(|(_, &x)| x == i).map(|(a, _)| a);
        let (keys, bools) = self.keys(t, key.map_or(&[][..], Vec::as_slice))?;
        let (default_action, default_args) = match default {
            Some(d) => {
                let (a, args) = self.action_call(d, &list, &t.name)?;
                if let Some(r) = scoped(a).filter(|r| r.table_only) {
                    return err(
                        d.span,
                        format!(
                            "action `{}` is @tableonly in table `{}`: it cannot be the default action",
                            r.name.name, t.name.name
                        ),
                    );
                }
                (a, args)
            }
            None => match self.g.action_index.get("NoAction") {
                Some(&a) => (a, Vec::new()),
                None => {
                    return err(
                        t.name.span,
                        format!("table `{}` needs a default_action (there is no NoAction)", t.name.name),
                    )
                }
            },
        };
        let size = match size {
            None => DEFAULT_TABLE_SIZE,
            Some(e) => match self.scope(&[]).expr(e)? {
                TExpr::Const(CVal::Int(v))
                    if v.nonneg()
                        .is_some_and(|v| v >= 1 && v <= u128::from(limits::TABLE_SIZE)) =>
                {
                    v.nonneg().unwrap_or(0) as u32
                }
                TExpr::Const(CVal::Bits(v, _)) if v >= 1 && v <= u128::from(limits::TABLE_SIZE) => v as u32,
                _ => {
                    return err(
                        e.span,
                        format!("a table size must be a constant in 1..={}", limits::TABLE_SIZE),
                    )
                }
            },
        };
        let entries = match entries {
            Some(es) => {
                if keys.is_empty() {
                    let at = t
                        .props
                        .iter()
                        .find(|(p, _)| matches!(p, TableProp::Entries(_)))
                        .map_or(t.name.span, |(_, s)| *s);
                    return err(
                        at,
                        format!("table `{}` has no key: it cannot have entries", t.name.name),
                    );
                }
                let out = self.entries(t, es, &keys, &bools, &list)?;
                for (e, x) in es.iter().zip(&out) {
                    if let Some(r) = scoped(x.action).filter(|r| r.default_only) {
                        return err(
                            e.action.span,
                            format!(
                                "action `{}` is @defaultonly in table `{}`: an entry cannot run it",
                                r.name.name, t.name.name
                            ),
                        );
                    }
                }
                out
            }
            None => Vec::new(),
        };
        let scope = self.scope(&[]);
        let direct_counter = match direct_counter {
            None => None,
            Some(e) => match scope.place(e)? {
                Place::DirectCounter(c) => Some(c),
                _ => return err(e.span, format!("`{}` is not a direct_counter", e.render())),
            },
        };
        let direct_meter = match direct_meter {
            None => None,
            Some(e) => match scope.place(e)? {
                Place::DirectMeter(m) => Some(m),
                _ => return err(e.span, format!("`{}` is not a direct_meter", e.render())),
            },
        };
        if (direct_counter.is_some() || direct_meter.is_some()) && keys.is_empty() {
            return err(
                t.name.span,
                format!(
                    "table `{}` has no key: it has no entries to count or meter",
                    t.name.name
                ),
            );
        }
        // An action that reads a direct meter runs only from the table
        // that has it.
        for (a, &i) in action_names.iter().zip(&list) {
            let reads = self
                .actions
                .get(usize::from(i))
                .map(|d| d.direct_meters())
                .unwrap_or_default();
            if reads.iter().any(|&m| Some(m) != direct_meter) {
                return err(
                    a.name.span,
                    format!(
                        "action `{}` reads a direct meter that table `{}` does not have (`meters = ...;`)",
                        a.name.name, t.name.name
                    ),
                );
            }
        }
        let def = ir::TableDef {
            name: t.name.name.clone(),
            keys,
            actions: list,
            default_action,
            default_args,
            size,
            cost,
            entries,
            direct_counter,
            direct_meter,
        };
        // Loaded as the device loads it: whatever it would refuse is
        // refused here, at the entry.
        if let Err((i, e)) = ir::table::Table::with_entries(&def, limits::PARAMS) {
            let es = t
                .props
                .iter()
                .find_map(|(p, _)| match p {
                    TableProp::Entries(es) => Some(es),
                    _ => None,
                })
                .map_or(&[][..], Vec::as_slice);
            let at = es.get(i).map_or(t.name.span, |e| e.keys.span);
            let same = |j: usize| {
                let (a, b) = (&def.entries[i], &def.entries[j]);
                a.key == b.key
                    && (def.keys.iter().all(|k| k.kind != ir::MatchKind::Ternary) || a.priority == b.priority)
            };
            let msg = match e {
                ir::table::TableError::Exists => match (0..i).find(|&j| same(j)) {
                    Some(j) => format!(
                        "duplicate entry keys: this entry of table `{}` matches what its entry {} (line {}) matches",
                        t.name.name,
                        j + 1,
                        es.get(j).map_or(0, |e| e.keys.span.line)
                    ),
                    None => format!("duplicate entry keys in table `{}`", t.name.name),
                },
                ir::table::TableError::Full => format!(
                    "table `{}` has {} const entries but size {}: declare `size = {}` or more",
                    t.name.name,
                    def.entries.len(),
                    def.size,
                    def.entries.len()
                ),
                other => format!("the device refuses this entry of table `{}`: {other:?}", t.name.name),
            };
            return err(at, msg);
        }
        Ok(def)
    }

    /// `meter(size, MeterType.x) name;` or `counter(size, CounterType.x) name;`
    fn instance(&mut self, x: &Instance) -> DResult<()> {
        annotation_costs(&x.annotations, CostSite::Elsewhere)?;
        let ty = self.g.resolve(&x.ty, &[])?;
        let Ty::Extern(ext) = ty else {
            return err(
                x.ty.span(),
                format!("only meter and counter can be instantiated here, not {}", ty.show()),
            );
        };
        if !matches!(ext.as_str(), "meter" | "counter" | "direct_meter" | "direct_counter") {
            return err(x.ty.span(), format!("extern `{ext}` is not supported by fairnic"));
        }
        let ctors = match self.g.externs.get(&ext) {
            Some(ExternDecl::Object { ctors, .. }) => ctors,
            _ => return err(x.ty.span(), format!("`{ext}` is not an extern object")),
        };
        let Some(ctor) = ctors.iter().find(|c| c.len() == x.args.len()) else {
            let want = ctors.first().map_or(0, Vec::len);
            let id = Ident {
                name: ext.clone(),
                span: x.ty.span(),
            };
            return arity(&id, want, &x.args);
        };
        let (size, unit) = self.ctor_args(&ext, ctor, &x.args, x.name.span)?;
        let span = x.name.span;
        let name = x.name.name.clone();
        // A direct array's size is its table's, set when a table takes it.
        let direct = ext.starts_with("direct_");
        let size = match size {
            Some(s) => s,
            None if direct => 1,
            None => return err(span, format!("`{ext}` needs a size and a type")),
        };
        if ext.ends_with("meter") {
            let i = Self::next_index(self.meters.len(), limits::METERS, "meters", span)?;
            let unit = match unit.as_str() {
                "packets" => ir::MeterUnit::Packets,
                "bytes" => ir::MeterUnit::Bytes,
                u => return err(span, format!("`{u}` is not a meter type (packets or bytes)")),
            };
            let item = if direct {
                if dataplane::pipeline::lif_meter_resource(&name).is_some() {
                    return err(
                        span,
                        format!("`{name}` is a per-LIF meter's name: a direct meter cannot have it"),
                    );
                }
                LocalItem::DirectMeter(i)
            } else {
                LocalItem::Meter(i)
            };
            self.declare(&x.name, item)?;
            self.meters.push(ir::MeterDef { name, size, unit });
            if direct {
                self.direct.push((item, x.name.clone(), None));
            }
        } else {
            let i = Self::next_index(self.counters.len(), limits::COUNTERS, "counters", span)?;
            let unit = match unit.as_str() {
                "packets" => ir::CounterUnit::Packets,
                "bytes" => ir::CounterUnit::Bytes,
                "packets_and_bytes" => ir::CounterUnit::PacketsAndBytes,
                u => return err(span, format!("`{u}` is not a counter type")),
            };
            let item = if direct {
                LocalItem::DirectCounter(i)
            } else {
                LocalItem::Counter(i)
            };
            self.declare(&x.name, item)?;
            self.counters.push(ir::CounterDef { name, size, unit });
            if direct {
                self.direct.push((item, x.name.clone(), None));
            }
        }
        Ok(())
    }

    /// A meter's or counter's (size, unit member) from its arguments.
    fn ctor_args(&self, ext: &str, ctor: &[Param], args: &[Expr], at: Span) -> DResult<(Option<u32>, String)> {
        let scope = self.scope(&[]);
        let mut size = None;
        let mut unit = None;
        for (p, a) in ctor.iter().zip(args) {
            match self.g.resolve(&p.ty, &[])? {
                Ty::Bit(w) => {
                    let v = scope.key_value(a, w, false)?;
                    if v == 0 || v > u128::from(limits::ARRAY_SIZE) {
                        return err(a.span, format!("a {ext}'s size must be 1..={}", limits::ARRAY_SIZE));
                    }
                    size = Some(v as u32);
                }
                Ty::Enum(e) => match scope.place(a)? {
                    Place::EnumMember(ae, m) if ae == e => unit = Some(m),
                    _ => return err(a.span, format!("expected a member of enum `{e}`, e.g. `{e}.packets`")),
                },
                other => {
                    return err(
                        a.span,
                        format!("unsupported constructor parameter type {}", other.show()),
                    )
                }
            }
        }
        match unit {
            Some(u) => Ok((size, u)),
            None => err(at, format!("`{ext}` needs a type")),
        }
    }
}

/// The deparser: `pkt.emit(hdr.x);` statements (or `pkt.emit(hdr);` for
/// every header in order), the emit order.
pub fn deparser(g: &Globals<'_>, layout: &Layout, names: &BlockNames, c: &ControlDecl) -> DResult<Vec<u16>> {
    if let Some(l) = c.locals.first() {
        let span = match l {
            Local::Action(a) => a.name.span,
            Local::Table(t) => t.name.span,
            Local::Instance(x) => x.name.span,
            Local::Const(k) => k.name.span,
        };
        return err(span, "the deparser may only emit headers (no declarations)");
    }
    let scope = Scope {
        g,
        layout: Some(layout),
        names: Some(names),
        locals: None,
        params: &[],
    };
    let mut out = Vec::new();
    emits(&scope, &c.apply, layout, &mut out)?;
    Ok(out)
}

fn emits(scope: &Scope<'_, '_>, stmts: &[Stmt], layout: &Layout, out: &mut Vec<u16>) -> DResult<()> {
    for s in stmts {
        match &s.kind {
            StmtKind::Empty => {}
            StmtKind::Block(b) => emits(scope, b, layout, out)?,
            StmtKind::Call(e) => {
                let bad = || err(e.span, "the deparser may only emit headers (`pkt.emit(hdr.x);`)");
                let ExprKind::Call(callee, args) = &e.kind else {
                    return bad();
                };
                let ExprKind::Member(base, m) = &callee.kind else {
                    return bad();
                };
                if m.name != "emit" || scope.place(base)? != (Place::Packet { input: false }) {
                    return bad();
                }
                arity(m, 1, args)?;
                match scope.place(&args[0])? {
                    Place::Header(h) => out.push(h),
                    Place::HeadersStruct => out.extend(0..layout.headers.len() as u16),
                    _ => return err(args[0].span, format!("`{}` is not a header", args[0].render())),
                }
            }
            _ => return err(s.span, "the deparser may only emit headers (`pkt.emit(hdr.x);`)"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert!(is_prefix(0xff00_0000, 32));
        assert!(is_prefix(0, 32));
        assert!(is_prefix(0xffff_ffff, 32));
        assert!(!is_prefix(0x0f, 8));
        assert!(!is_prefix(0xf0f0, 16));
        assert!(is_prefix(0, 128) && is_prefix(u128::MAX, 128));
    }
}
