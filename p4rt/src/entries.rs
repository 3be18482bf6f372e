//! P4Runtime table entries to and from the device's (`abi::TableEntry`),
//! against the program's P4Info ids. Everything a controller sends is
//! checked here before the device sees it, with the status P4Runtime
//! names for each fault.
//!
//! Bytestrings follow the specification's rules: a value is big-endian
//! and may carry leading zero bytes, but not a set bit past the field's
//! width (OUT_OF_RANGE), nor be empty (INVALID_ARGUMENT). A ternary or LPM
//! field may be left out (don't care); an exact one may not. Answers use
//! the canonical form (no leading zero bytes; one zero byte for 0).

use crate::p4info::{canonical_bytes, Ids};
use crate::proto::p4::v1 as p4v1;
use dataplane::abi::{EntryBuilder, EntryLayoutError, TableEntry};
use dataplane::pipeline::{MatchKind, Program};
use tonic::Code;

/// Why an entry was refused: the P4Runtime status and the reason.
pub type Refusal = (Code, String);

fn refuse<T>(code: Code, why: impl Into<String>) -> Result<T, Refusal> {
    Err((code, why.into()))
}

/// Cell `index` of the `size`-cell array `name` (a `kind`: "meter",
/// "counter") as a `T`, or OUT_OF_RANGE naming the array and its bounds
/// (also for a cell the type cannot hold).
pub fn array_index<T: TryFrom<i64>>(kind: &str, name: &str, index: i64, size: u32) -> Result<T, Refusal> {
    (0..i64::from(size))
        .contains(&index)
        .then(|| T::try_from(index).ok())
        .flatten()
        .ok_or_else(|| {
            (
                Code::OutOfRange,
                format!("{kind} {name}: index {index} outside 0..{size}"),
            )
        })
}

/// A bytestring of a `width`-bit field as a number.
pub fn value_of(bytes: &[u8], width: u16, what: &str) -> Result<u128, Refusal> {
    if bytes.is_empty() {
        return refuse(Code::InvalidArgument, format!("{what}: an empty bytestring"));
    }
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let sig = &bytes[first..];
    if sig.len() > 16 {
        return refuse(Code::OutOfRange, format!("{what}: wider than {width} bits"));
    }
    let v = sig.iter().fold(0u128, |v, &b| (v << 8) | u128::from(b));
    if width < 128 && v >> width != 0 {
        return refuse(Code::OutOfRange, format!("{what}: {v:#x} does not fit {width} bits"));
    }
    Ok(v)
}

/// The table index and the device entry for `e` (for an insert, modify or
/// delete: `with_action` says whether an action must be there).
pub fn to_abi(program: &Program, ids: &Ids, e: &p4v1::TableEntry, with_action: bool) -> Result<TableEntry, Refusal> {
    let Some(t) = ids.tables.iter().position(|&id| id == e.table_id) else {
        return refuse(Code::NotFound, format!("no table with id {:#x}", e.table_id));
    };
    let def = &program.tables[t];
    if e.is_default_action {
        return refuse(Code::Unimplemented, "setting a table's default action");
    }
    // Its counter_data and meter_config are the server's to check
    // (`server::direct`): they are cells of the entry, not part of it.
    let ternary = def.keys.iter().any(|k| k.kind == MatchKind::Ternary);
    if ternary && e.priority <= 0 {
        return refuse(
            Code::InvalidArgument,
            format!("table {} has ternary keys: an entry needs a priority above 0", def.name),
        );
    }
    if !ternary && e.priority != 0 {
        return refuse(
            Code::InvalidArgument,
            format!("table {} has no ternary key: priority must be 0", def.name),
        );
    }
    let mut out = TableEntry::builder(t as u32, e.priority.max(0) as u32);
    let layout = |why: EntryLayoutError| (Code::Internal, format!("table {}: {why}", def.name));
    let mut seen = vec![false; def.keys.len()];
    let mut fields: Vec<Option<&p4v1::FieldMatch>> = vec![None; def.keys.len()];
    for m in &e.r#match {
        let i = (m.field_id as usize).wrapping_sub(1);
        if i >= def.keys.len() {
            return refuse(
                Code::InvalidArgument,
                format!("table {} has no match field {}", def.name, m.field_id),
            );
        }
        if std::mem::replace(&mut seen[i], true) {
            return refuse(Code::InvalidArgument, format!("match field {} given twice", m.field_id));
        }
        fields[i] = Some(m);
    }
    use p4v1::field_match::FieldMatchType as F;
    for (k, m) in def.keys.iter().zip(&fields) {
        let what = format!("match field {}", k.name);
        let (value, mask, prefix) = match (k.kind, m.and_then(|m| m.field_match_type.as_ref())) {
            (MatchKind::Exact, Some(F::Exact(x))) => {
                (value_of(&x.value, k.width, &what)?, EntryBuilder::ones(k.width), 0)
            }
            (MatchKind::Exact, None) => {
                return refuse(Code::InvalidArgument, format!("{what} is exact and must be given"))
            }
            (MatchKind::Ternary, Some(F::Ternary(x))) => {
                let (v, mk) = (value_of(&x.value, k.width, &what)?, value_of(&x.mask, k.width, &what)?);
                if mk == 0 {
                    return refuse(
                        Code::InvalidArgument,
                        format!("{what}: an all-zero mask is left out, not sent"),
                    );
                }
                if v & !mk != 0 {
                    return refuse(Code::InvalidArgument, format!("{what}: value bits outside the mask"));
                }
                (v, mk, 0)
            }
            (MatchKind::Lpm, Some(F::Lpm(x))) => {
                let v = value_of(&x.value, k.width, &what)?;
                if x.prefix_len <= 0 || x.prefix_len > i32::from(k.width) {
                    return refuse(
                        Code::InvalidArgument,
                        format!(
                            "{what}: prefix length {} (1..={}; 0 is left out)",
                            x.prefix_len, k.width
                        ),
                    );
                }
                let p = x.prefix_len as u16;
                let host = EntryBuilder::ones(k.width - p);
                if v & host != 0 {
                    return refuse(Code::InvalidArgument, format!("{what}: value bits past the prefix"));
                }
                (v, 0, p)
            }
            // Left out: don't care.
            (MatchKind::Ternary | MatchKind::Lpm, None) => (0, 0, 0),
            (_, Some(_)) => {
                return refuse(
                    Code::InvalidArgument,
                    format!("{what} is {:?}; the match given is of another kind", k.kind),
                )
            }
        };
        out.key(k.width, value, mask).map_err(layout)?;
        if k.kind == MatchKind::Lpm {
            out.prefix_len(prefix);
        }
    }
    match (&e.action, with_action) {
        (None, false) => {}
        (None, true) => return refuse(Code::InvalidArgument, "an entry to insert or modify needs an action"),
        (Some(_), false) => {}
        (Some(ta), true) => {
            let Some(p4v1::table_action::Type::Action(a)) = &ta.r#type else {
                return refuse(
                    Code::Unimplemented,
                    "action profiles: fairnic tables take a direct action",
                );
            };
            let Some(ai) = ids.actions.iter().position(|&id| id == a.action_id) else {
                return refuse(Code::NotFound, format!("no action with id {:#x}", a.action_id));
            };
            if !def.actions.contains(&(ai as u16)) {
                return refuse(
                    Code::InvalidArgument,
                    format!("table {} may not run action {}", def.name, program.actions[ai].name),
                );
            }
            let act = &program.actions[ai];
            let mut vals: Vec<Option<u128>> = vec![None; act.params.len()];
            for p in &a.params {
                let i = (p.param_id as usize).wrapping_sub(1);
                let Some(def_p) = act.params.get(i) else {
                    return refuse(
                        Code::InvalidArgument,
                        format!("action {} has no parameter {}", act.name, p.param_id),
                    );
                };
                if vals[i].is_some() {
                    return refuse(Code::InvalidArgument, format!("parameter {} given twice", p.param_id));
                }
                vals[i] = Some(value_of(&p.value, def_p.width, &format!("parameter {}", def_p.name))?);
            }
            for (p, v) in act.params.iter().zip(vals) {
                let Some(v) = v else {
                    return refuse(
                        Code::InvalidArgument,
                        format!("action {} needs parameter {}", act.name, p.name),
                    );
                };
                out.param(p.width, v).map_err(layout)?;
            }
            out.action(ai as u32);
        }
    }
    Ok(out.build())
}

/// The P4Runtime form of device entry `e` (as [`to_abi`] made it), with
/// canonical bytestrings and don't-care fields left out.
pub fn from_abi(program: &Program, ids: &Ids, e: &TableEntry) -> Option<p4v1::TableEntry> {
    let t = usize::try_from(e.table_id.get()).ok()?;
    let def = program.tables.get(t)?;
    let mut r#match = Vec::new();
    use p4v1::field_match::{Exact, FieldMatchType as F, Lpm, Ternary};
    let fields = e.key_fields(def.keys.iter().map(|k| k.width))?;
    for (i, (k, (v, m))) in def.keys.iter().zip(fields).enumerate() {
        let fm = match k.kind {
            MatchKind::Exact => Some(F::Exact(Exact {
                value: canonical_bytes(v),
            })),
            MatchKind::Ternary if m == 0 => None,
            MatchKind::Ternary => Some(F::Ternary(Ternary {
                value: canonical_bytes(v),
                mask: canonical_bytes(m),
            })),
            MatchKind::Lpm if e.prefix_len.get() == 0 => None,
            MatchKind::Lpm => Some(F::Lpm(Lpm {
                value: canonical_bytes(v),
                prefix_len: i32::from(e.prefix_len.get()),
            })),
        };
        if let Some(fm) = fm {
            r#match.push(p4v1::FieldMatch {
                field_id: i as u32 + 1,
                field_match_type: Some(fm),
            });
        }
    }
    let ai = usize::try_from(e.action_id.get()).ok()?;
    let act = program.actions.get(ai)?;
    let params = e
        .param_fields(act.params.iter().map(|p| p.width))?
        .into_iter()
        .enumerate()
        .map(|(i, v)| p4v1::action::Param {
            param_id: i as u32 + 1,
            value: canonical_bytes(v),
        })
        .collect();
    Some(p4v1::TableEntry {
        table_id: *ids.tables.get(t)?,
        r#match,
        action: Some(p4v1::TableAction {
            r#type: Some(p4v1::table_action::Type::Action(p4v1::Action {
                action_id: *ids.actions.get(ai)?,
                params,
            })),
        }),
        priority: e.priority.get() as i32,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests;
