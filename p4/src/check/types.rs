//! Types: what a written [`TypeRef`] means, and the layout of header and
//! struct types.

use super::globals::Globals;
use crate::ast::{Field, Ident, TypeRef};
use crate::diag::{err, DResult, Span};
use dataplane::pipeline::limits;
use std::collections::HashSet;

/// A resolved type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    Bit(u16),
    Bool,
    Void,
    Header(String),
    Struct(String),
    Enum(String),
    /// An extern object type (`packet_in`, `meter`, ...).
    Extern(String),
    /// A type parameter (`T` of `extract<T>`).
    Var(String),
    /// A parser or control type, with its type arguments.
    Proto(String, Vec<Ty>),
}

impl Ty {
    /// How the type reads in messages.
    pub fn show(&self) -> String {
        match self {
            Ty::Bit(w) => format!("bit<{w}>"),
            Ty::Bool => "bool".into(),
            Ty::Void => "void".into(),
            Ty::Header(n) => format!("header `{n}`"),
            Ty::Struct(n) => format!("struct `{n}`"),
            Ty::Enum(n) => format!("enum `{n}`"),
            Ty::Extern(n) => format!("extern `{n}`"),
            Ty::Var(n) => format!("type parameter `{n}`"),
            Ty::Proto(n, _) => format!("`{n}`"),
        }
    }

    /// The width of a scalar (bit<N> or bool).
    pub fn scalar_width(&self) -> Option<u16> {
        match self {
            Ty::Bit(w) => Some(*w),
            Ty::Bool => Some(1),
            _ => None,
        }
    }
}

/// A field of a header or of a metadata struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    pub name: String,
    pub ty: Ty,
    pub width: u16,
    pub span: Span,
}

/// A header type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderType {
    pub fields: Vec<FieldInfo>,
    /// Length in bytes.
    pub len: u16,
    pub span: Span,
}

/// A struct type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructType {
    pub members: Vec<(Ident, Ty)>,
    pub span: Span,
}

/// Extern types fairnic does not have, named so the error can say so.
const UNSUPPORTED_EXTERNS: &[&str] = &[
    "register",
    "Register",
    "Checksum16",
    "Checksum",
    "InternetChecksum",
    "Hash",
    "Random",
    "DirectCounter",
    "DirectMeter",
    "action_profile",
    "action_selector",
    "Digest",
];

impl Globals<'_> {
    /// What `t` means; `tparams` are the type parameters in scope.
    pub fn resolve(&self, t: &TypeRef, tparams: &[Ident]) -> DResult<Ty> {
        let (name, args) = match t {
            TypeRef::Bit(w, _) => return Ok(Ty::Bit(*w)),
            TypeRef::Bool(_) => return Ok(Ty::Bool),
            TypeRef::Void(_) => return Ok(Ty::Void),
            TypeRef::Named(n, args) => (n, args),
        };
        let no_args = || -> DResult<()> {
            if let Some(a) = args.first() {
                return err(a.span(), format!("`{}` takes no type arguments", name.name));
            }
            Ok(())
        };
        let n = name.name.as_str();
        if tparams.iter().any(|p| p.name == n) {
            no_args()?;
            return Ok(Ty::Var(n.to_string()));
        }
        if let Some(t) = self.typedefs.get(n) {
            no_args()?;
            return Ok(t.clone());
        }
        if self.headers.contains_key(n) {
            no_args()?;
            return Ok(Ty::Header(n.to_string()));
        }
        if self.structs.contains_key(n) {
            no_args()?;
            return Ok(Ty::Struct(n.to_string()));
        }
        if self.enums.contains_key(n) {
            no_args()?;
            return Ok(Ty::Enum(n.to_string()));
        }
        if let Some(e) = self.externs.get(n) {
            // A generic extern's type argument is checked to be a type;
            // the instance's methods say how it is used (`direct_meter<T>`:
            // the color's type, checked where `read` writes it).
            let want = match e {
                crate::ast::ExternDecl::Object { type_params, .. } => type_params.len(),
                crate::ast::ExternDecl::Function(_) => 0,
            };
            if args.len() != want {
                let at = args.first().map_or(name.span, |a| a.span());
                return err(
                    at,
                    format!("`{}` takes {want} type argument(s), {} given", name.name, args.len()),
                );
            }
            for a in args.iter() {
                self.resolve(a, tparams)?;
            }
            return Ok(Ty::Extern(n.to_string()));
        }
        if self.parser_types.contains_key(n) || self.control_types.contains_key(n) {
            let args = args
                .iter()
                .map(|a| self.resolve(a, tparams))
                .collect::<DResult<Vec<_>>>()?;
            return Ok(Ty::Proto(n.to_string(), args));
        }
        if UNSUPPORTED_EXTERNS.contains(&n) {
            return err(
                name.span,
                format!("extern `{n}` is not supported (fairnic has meter and counter)"),
            );
        }
        err(name.span, format!("unknown type `{n}`"))
    }

    /// A scalar type for a field, parameter or constant: bit<N> or bool.
    pub fn scalar(&self, t: &TypeRef, what: &str) -> DResult<(Ty, u16)> {
        let ty = self.resolve(t, &[])?;
        match ty.scalar_width() {
            Some(w) => Ok((ty, w)),
            None => err(t.span(), format!("{what} must be bit<N> or bool, not {}", ty.show())),
        }
    }

    /// Lay out a header type's fields.
    pub fn header_type(&self, name: &Ident, fields: &[Field]) -> DResult<HeaderType> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut bits = 0u32;
        for f in fields {
            let (ty, width) = self.scalar(&f.ty, "a header field")?;
            if !seen.insert(f.name.name.clone()) {
                return err(f.name.span, format!("duplicate field `{}`", f.name.name));
            }
            bits += u32::from(width);
            out.push(FieldInfo {
                name: f.name.name.clone(),
                ty,
                width,
                span: f.name.span,
            });
        }
        if out.is_empty() {
            return err(name.span, format!("header `{}` has no fields", name.name));
        }
        if out.len() > limits::FIELDS_PER_HEADER {
            return err(
                name.span,
                format!(
                    "header `{}` has more than {} fields",
                    name.name,
                    limits::FIELDS_PER_HEADER
                ),
            );
        }
        if !bits.is_multiple_of(8) {
            return err(
                name.span,
                format!("header `{}` is {bits} bits, not a whole number of bytes", name.name),
            );
        }
        if bits / 8 > limits::HEADER_BYTES as u32 {
            return err(
                name.span,
                format!(
                    "header `{}` is {} bytes; at most {} are supported",
                    name.name,
                    bits / 8,
                    limits::HEADER_BYTES
                ),
            );
        }
        Ok(HeaderType {
            fields: out,
            len: (bits / 8) as u16,
            span: name.span,
        })
    }

    /// A struct type's members: headers, bit<N> or bool.
    pub fn struct_type(&self, name: &Ident, fields: &[Field]) -> DResult<StructType> {
        let mut members: Vec<(Ident, Ty)> = Vec::new();
        for f in fields {
            let ty = self.resolve(&f.ty, &[])?;
            if !matches!(ty, Ty::Bit(_) | Ty::Bool | Ty::Header(_)) {
                return err(
                    f.ty.span(),
                    format!("struct members must be headers, bit<N> or bool, not {}", ty.show()),
                );
            }
            if members.iter().any(|(m, _)| m.name == f.name.name) {
                return err(f.name.span, format!("duplicate member `{}`", f.name.name));
            }
            members.push((f.name.clone(), ty));
        }
        Ok(StructType {
            members,
            span: name.span,
        })
    }
}
