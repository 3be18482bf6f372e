//! The program's shape: `main`'s three blocks checked against the
//! architecture (parser, ingress, deparser and their parameters), and the
//! header instances and metadata fields laid out as the IR numbers them.
//!
//! The blocks' parameter lists are fixed by the device:
//!
//! - parser `(packet_in pkt, out H hdr, inout M meta, inout standard_metadata_t std)`
//! - ingress `(inout H hdr, inout M meta, inout standard_metadata_t std)`
//! - deparser `(packet_out pkt, in H hdr)`
//!
//! where `H` is a struct of headers (the header instances, in member
//! order) and `M` a struct of `bit<N>`/`bool` fields (the user metadata,
//! after the standard metadata). Parameter names are the program's choice.

use super::expr::BlockNames;
use super::globals::Globals;
use super::types::{FieldInfo, HeaderType, Ty};
use super::{annotation_costs, CostSite};
use crate::ast::{ControlDecl, Direction, Expr, ExprKind, Ident, Instance, Param, ParserDecl};
use crate::diag::{err, DResult, Span};
use dataplane::pipeline::{self as ir, limits, std_meta, FieldRef};
use std::collections::HashMap;

/// The name of the standard metadata struct.
pub const STD_STRUCT: &str = "standard_metadata_t";

/// Header instances and metadata fields, numbered as in the IR.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub headers: Vec<ir::HeaderDef>,
    /// Field types of each header instance (same order as `headers`).
    pub header_tys: Vec<HeaderType>,
    pub header_index: HashMap<String, u16>,
    pub meta: Vec<ir::FieldDef>,
    pub meta_tys: Vec<Ty>,
    /// User metadata field name to index in `meta`.
    pub user_meta: HashMap<String, u16>,
    /// Standard metadata field name to index in `meta`.
    pub std_index: HashMap<String, u16>,
    pub hdr_struct: String,
    pub meta_struct: String,
}

impl Layout {
    /// The metadata field `i` as a place.
    pub fn meta_field(&self, i: u16, writable: bool) -> super::expr::Place {
        super::expr::Place::Field {
            fr: FieldRef::Meta(i),
            ty: self.meta_tys[usize::from(i)].clone(),
            width: self.meta[usize::from(i)].width,
            writable,
        }
    }
}

/// A parser or control `main` does not use, with its parameters' names
/// (checked as one of main's blocks would be).
pub enum Unused<'a> {
    Parser(&'a ParserDecl, BlockNames),
    Ingress(&'a ControlDecl, BlockNames),
    Deparser(&'a ControlDecl, BlockNames),
}

/// What `main` instantiates.
#[derive(Debug)]
pub struct Blocks<'a> {
    /// The headers and metadata struct types main's blocks use.
    hdr: String,
    meta: String,
    pub parser: &'a ParserDecl,
    pub ingress: &'a ControlDecl,
    pub deparser: &'a ControlDecl,
    pub parser_names: BlockNames,
    pub ingress_names: BlockNames,
    pub deparser_names: BlockNames,
    pub base_cost: u32,
    pub layout: Layout,
}

/// What a parameter of a block must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Packet(&'static str),
    Headers,
    Meta,
    Std,
}

const PARSER_SHAPE: [(Direction, Role); 4] = [
    (Direction::None, Role::Packet("packet_in")),
    (Direction::Out, Role::Headers),
    (Direction::InOut, Role::Meta),
    (Direction::InOut, Role::Std),
];
const INGRESS_SHAPE: [(Direction, Role); 3] = [
    (Direction::InOut, Role::Headers),
    (Direction::InOut, Role::Meta),
    (Direction::InOut, Role::Std),
];
const DEPARSER_SHAPE: [(Direction, Role); 2] = [
    (Direction::None, Role::Packet("packet_out")),
    (Direction::In, Role::Headers),
];

fn shape_text(shape: &[(Direction, Role)]) -> String {
    let parts: Vec<String> = shape
        .iter()
        .map(|(d, r)| {
            let d = match d {
                Direction::None => "",
                Direction::In => "in ",
                Direction::Out => "out ",
                Direction::InOut => "inout ",
            };
            let t = match r {
                Role::Packet(p) => p,
                Role::Headers => "H",
                Role::Meta => "M",
                Role::Std => STD_STRUCT,
            };
            format!("{d}{t}")
        })
        .collect();
    format!("({})", parts.join(", "))
}

/// The struct types bound to `H` and `M` so far.
#[derive(Debug, Default)]
struct Binding {
    hdr: Option<String>,
    meta: Option<String>,
}

fn bind(slot: &mut Option<String>, ty: &str, role: &str, span: Span) -> DResult<()> {
    match slot {
        Some(t) if t != ty => err(
            span,
            format!("the {role} struct is `{t}` elsewhere; every block must use the same type"),
        ),
        _ => {
            *slot = Some(ty.to_string());
            Ok(())
        }
    }
}

impl Globals<'_> {
    /// Check a block's parameters against `shape`; bind H and M.
    fn block_params(
        &self,
        name: &Ident,
        params: &[Param],
        shape: &[(Direction, Role)],
        b: &mut Binding,
    ) -> DResult<BlockNames> {
        if params.len() != shape.len() {
            return err(
                name.span,
                format!(
                    "`{}` must take {} parameters: {}",
                    name.name,
                    shape.len(),
                    shape_text(shape)
                ),
            );
        }
        let mut names = BlockNames::default();
        for (p, (dir, role)) in params.iter().zip(shape) {
            let ty = self.resolve(&p.ty, &[])?;
            let wrong = || {
                err(
                    p.name.span,
                    format!(
                        "parameter `{}` of `{}` does not fit {}",
                        p.name.name,
                        name.name,
                        shape_text(shape)
                    ),
                )
            };
            if p.dir != *dir {
                return wrong();
            }
            let n = p.name.name.clone();
            match (role, &ty) {
                (Role::Packet(want), Ty::Extern(got)) if want == got => names.pkt = Some((n, *want == "packet_in")),
                (Role::Std, Ty::Struct(s)) if s == STD_STRUCT => names.std = Some(n),
                (Role::Headers, Ty::Struct(s)) if s != STD_STRUCT => {
                    bind(&mut b.hdr, s, "headers", p.name.span)?;
                    names.hdr = Some(n);
                }
                (Role::Meta, Ty::Struct(s)) if s != STD_STRUCT => {
                    bind(&mut b.meta, s, "metadata", p.name.span)?;
                    names.meta = Some(n);
                }
                _ => return wrong(),
            }
        }
        Ok(names)
    }

    /// The parser or control `main` passes as argument `i`.
    fn main_arg(&self, e: &Expr) -> DResult<(Ident, bool)> {
        let ExprKind::Call(callee, args) = &e.kind else {
            return err(
                e.span,
                "expected a parser or control instantiation such as `MyParser()`",
            );
        };
        let ExprKind::Name(n) = &callee.kind else {
            return err(
                e.span,
                "expected a parser or control instantiation such as `MyParser()`",
            );
        };
        if let Some(a) = args.first() {
            return err(a.span, "constructor arguments are not supported");
        }
        let id = Ident {
            name: n.clone(),
            span: callee.span,
        };
        if self.parsers.contains_key(n) {
            return Ok((id, true));
        }
        if self.controls.contains_key(n) {
            return Ok((id, false));
        }
        err(callee.span, format!("`{n}` is not a declared parser or control"))
    }

    /// The parsers and controls `main` does not use, in declaration
    /// order, each with its names for main's header and metadata types,
    /// or why it cannot be checked as one of the pipeline's blocks (its
    /// parameters fit none, or name other types). A control of two
    /// parameters is taken for a deparser, else for an ingress.
    pub fn unused_blocks(&self, blocks: &Blocks<'_>) -> Vec<DResult<Unused<'_>>> {
        let used = [
            &blocks.parser.name.name,
            &blocks.ingress.name.name,
            &blocks.deparser.name.name,
        ];
        let mut out = Vec::new();
        let binding = || Binding {
            hdr: Some(blocks.hdr.clone()),
            meta: Some(blocks.meta.clone()),
        };
        // Those not used, in declaration order.
        fn not_used<'b, T>(all: &HashMap<String, &'b T>, name: impl Fn(&T) -> &Ident, used: &[&String]) -> Vec<&'b T> {
            let mut v: Vec<&'b T> = all
                .values()
                .copied()
                .filter(|x| !used.contains(&&name(x).name))
                .collect();
            v.sort_by_key(|x| {
                let s = name(x).span;
                (s.file, s.line, s.col)
            });
            v
        }
        for p in not_used(&self.parsers, |p: &ParserDecl| &p.name, &used) {
            out.push(
                self.block_params(&p.name, &p.params, &PARSER_SHAPE, &mut binding())
                    .map(|n| Unused::Parser(p, n)),
            );
        }
        for c in not_used(&self.controls, |c: &ControlDecl| &c.name, &used) {
            out.push(if c.params.len() == DEPARSER_SHAPE.len() {
                self.block_params(&c.name, &c.params, &DEPARSER_SHAPE, &mut binding())
                    .map(|n| Unused::Deparser(c, n))
            } else {
                self.block_params(&c.name, &c.params, &INGRESS_SHAPE, &mut binding())
                    .map(|n| Unused::Ingress(c, n))
            });
        }
        out
    }

    /// Check `main` and lay out the program it describes.
    pub fn blocks(&self, eof: Span) -> DResult<Blocks<'_>> {
        let Some(main) = self.main else {
            return err(
                eof,
                "no `main`: instantiate the package, e.g. `FairnicPipeline(P(), I(), D()) main;`",
            );
        };
        let (p, i, d) = self.main_args(main)?;
        let mut b = Binding::default();
        let (Some(parser), Some(ingress), Some(deparser)) = (
            self.parsers.get(&p.name),
            self.controls.get(&i.name),
            self.controls.get(&d.name),
        ) else {
            return err(main.name.span, "internal: `main`'s blocks vanished");
        };
        let parser_names = self.block_params(&parser.name, &parser.params, &PARSER_SHAPE, &mut b)?;
        let ingress_names = self.block_params(&ingress.name, &ingress.params, &INGRESS_SHAPE, &mut b)?;
        let deparser_names = self.block_params(&deparser.name, &deparser.params, &DEPARSER_SHAPE, &mut b)?;
        let (Some(hdr), Some(meta)) = (b.hdr, b.meta) else {
            return err(main.name.span, "internal: block types unbound");
        };
        let layout = self.layout(&hdr, &meta)?;
        Ok(Blocks {
            hdr,
            meta,
            parser,
            ingress,
            deparser,
            parser_names,
            ingress_names,
            deparser_names,
            base_cost: annotation_costs(&main.annotations, CostSite::Main)?,
            layout,
        })
    }

    /// `main`'s package and its (parser, ingress, deparser).
    fn main_args(&self, main: &Instance) -> DResult<(Ident, Ident, Ident)> {
        let crate::ast::TypeRef::Named(pkg, targs) = &main.ty else {
            return err(main.ty.span(), "`main` must instantiate a package");
        };
        let Some(proto) = self.packages.get(&pkg.name) else {
            if self.names.contains_key(&pkg.name) {
                return err(pkg.span, format!("`{}` is not a package", pkg.name));
            }
            if self.packages.contains_key("FairnicPipeline") {
                return err(
                    pkg.span,
                    format!(
                        "unknown package `{}`: fairnic's architecture has one package, \
                         `FairnicPipeline(parser, ingress, deparser)`; end the program with \
                         `FairnicPipeline(MyParser(), MyIngress(), MyDeparser()) main;`",
                        pkg.name
                    ),
                );
            }
            return err(
                pkg.span,
                format!(
                    "unknown package `{}` (is `#include <fairnic_arch.p4>` missing?)",
                    pkg.name
                ),
            );
        };
        if let Some(t) = targs.first() {
            return err(t.span(), "explicit type arguments are not supported");
        }
        let kinds: Vec<bool> = proto
            .params
            .iter()
            .map(|p| matches!(&p.ty, crate::ast::TypeRef::Named(n, _) if self.parser_types.contains_key(&n.name)))
            .collect();
        if kinds != [true, false, false] {
            return err(
                pkg.span,
                format!(
                    "package `{}` must take a parser, an ingress control and a deparser control",
                    pkg.name
                ),
            );
        }
        if main.args.len() != 3 {
            return err(
                main.name.span,
                format!("package `{}` takes 3 arguments, {} given", pkg.name, main.args.len()),
            );
        }
        let p = self.main_arg(&main.args[0])?;
        let i = self.main_arg(&main.args[1])?;
        let d = self.main_arg(&main.args[2])?;
        for ((id, is_parser), want) in [(&p, true), (&i, false), (&d, false)] {
            if *is_parser != want {
                let what = if want { "a parser" } else { "a control" };
                return err(id.span, format!("`{}` is not {what}", id.name));
            }
        }
        Ok((p.0, i.0, d.0))
    }

    /// Header instances and metadata for headers struct `hdr` and
    /// metadata struct `meta`.
    fn layout(&self, hdr: &str, meta: &str) -> DResult<Layout> {
        let mut l = Layout {
            hdr_struct: hdr.to_string(),
            meta_struct: meta.to_string(),
            ..Layout::default()
        };
        let hs = self.struct_named(hdr)?;
        if hs.members.len() > limits::HEADERS {
            return err(hs.span, format!("more than {} header instances", limits::HEADERS));
        }
        for (m, ty) in &hs.members {
            let Ty::Header(t) = ty else {
                return err(
                    m.span,
                    format!("member `{}` of the headers struct `{hdr}` is not a header", m.name),
                );
            };
            let Some(ht) = self.headers.get(t) else {
                return err(m.span, format!("unknown header type `{t}`"));
            };
            l.header_index.insert(m.name.clone(), l.headers.len() as u16);
            l.headers.push(header_def(&m.name, t, ht));
            l.header_tys.push(ht.clone());
        }
        self.std_layout(&mut l)?;
        let ms = self.struct_named(meta)?;
        for (m, ty) in &ms.members {
            let width = match ty {
                Ty::Bit(w) if *w <= 64 => *w,
                Ty::Bool => 1,
                _ => {
                    return err(
                        m.span,
                        format!(
                            "metadata field `{}` must be bit<N> (N <= 64) or bool, not {}",
                            m.name,
                            ty.show()
                        ),
                    )
                }
            };
            if l.meta.len() >= limits::META_FIELDS {
                return err(m.span, format!("more than {} metadata fields", limits::META_FIELDS));
            }
            l.user_meta.insert(m.name.clone(), l.meta.len() as u16);
            l.meta.push(ir::FieldDef {
                name: m.name.clone(),
                bit_off: 0,
                width,
            });
            l.meta_tys.push(ty.clone());
        }
        Ok(l)
    }

    fn struct_named(&self, n: &str) -> DResult<&super::types::StructType> {
        self.structs
            .get(n)
            .ok_or_else(|| crate::diag::Diag::new(Span::default(), format!("unknown struct `{n}`")))
    }

    /// The standard metadata, which must be the device's exactly.
    fn std_layout(&self, l: &mut Layout) -> DResult<()> {
        let s = self.struct_named(STD_STRUCT)?;
        let same = s.members.len() == std_meta::FIELDS.len()
            && s.members
                .iter()
                .zip(std_meta::FIELDS)
                .all(|((m, ty), (n, w))| m.name == n && ty.scalar_width() == Some(w));
        if !same {
            let want: Vec<String> = std_meta::FIELDS.iter().map(|(n, w)| format!("bit<{w}> {n}")).collect();
            return err(
                s.span,
                format!("`{STD_STRUCT}` must be exactly {{ {}; }}", want.join("; ")),
            );
        }
        for (i, (m, ty)) in s.members.iter().enumerate() {
            l.std_index.insert(m.name.clone(), i as u16);
            l.meta.push(ir::FieldDef {
                name: m.name.clone(),
                bit_off: 0,
                width: ty.scalar_width().unwrap_or(1),
            });
            l.meta_tys.push(ty.clone());
        }
        Ok(())
    }
}

fn header_def(instance: &str, type_name: &str, ht: &HeaderType) -> ir::HeaderDef {
    let mut off = 0u16;
    let fields = ht
        .fields
        .iter()
        .map(|f: &FieldInfo| {
            let d = ir::FieldDef {
                name: f.name.clone(),
                bit_off: off,
                width: f.width,
            };
            off += f.width;
            d
        })
        .collect();
    ir::HeaderDef {
        name: instance.to_string(),
        type_name: type_name.to_string(),
        fields,
        len: ht.len,
    }
}
