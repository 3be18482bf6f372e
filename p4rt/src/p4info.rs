//! A program's P4Info: its tables with their match fields and actions, the
//! actions with their parameters, its meters and counters, each with an id
//! the control plane names it by.
//!
//! Ids follow the P4Runtime specification: `(prefix << 24) | suffix`, the
//! prefix by kind (action 0x01, table 0x02, counter 0x12, direct counter
//! 0x13, meter 0x14, direct meter 0x15). The
//! suffix is a hash of the object's name (24 bits of FNV-1a), so an
//! object keeps its id when the program around it changes; two names of
//! one kind whose hashes meet take the next free suffix in declaration
//! order. Match fields and action parameters are numbered 1..n in
//! declaration order, as the specification recommends.
//!
//! Names are the program's own (`l2_fwd`, `to_lif`): fairnic's
//! architecture has one ingress control, and the IR keeps no control name
//! to qualify them with; clients that match names by their dotted suffix
//! (p4runtime-shell) find them either way.

use crate::proto::p4::config::v1 as pi;
use dataplane::pipeline::{CounterUnit, MatchKind, MeterUnit, Program};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};
use std::collections::HashSet;

/// Id prefixes (`P4Ids.Prefix` of the specification).
pub mod prefix {
    pub const ACTION: u8 = 0x01;
    pub const TABLE: u8 = 0x02;
    pub const CONTROLLER_HEADER: u8 = 0x04;
    pub const COUNTER: u8 = 0x12;
    pub const DIRECT_COUNTER: u8 = 0x13;
    pub const METER: u8 = 0x14;
    pub const DIRECT_METER: u8 = 0x15;
}

/// The architecture name P4Info's `pkg_info.arch` carries.
pub const ARCH: &str = "fairnic";

/// The ids of a program's objects, each list in the IR's order (so
/// `tables[i]` is the id of `Program::tables[i]`). A table's direct counter
/// or meter is one of the program's counter or meter arrays, with a direct
/// id (prefix 0x13, 0x15) in `counters` or `meters`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ids {
    pub actions: Vec<u32>,
    pub tables: Vec<u32>,
    pub meters: Vec<u32>,
    pub counters: Vec<u32>,
}

impl Ids {
    /// The ids of `program`'s objects.
    pub fn of(program: &Program) -> Ids {
        Ids {
            actions: assign(prefix::ACTION, program.actions.iter().map(|a| a.name.as_str())),
            tables: assign(prefix::TABLE, program.tables.iter().map(|t| t.name.as_str())),
            meters: by_kind(
                program.meters.iter().map(|m| m.name.as_str()),
                |i| program.direct_meter_table(i).is_some(),
                prefix::METER,
                prefix::DIRECT_METER,
            ),
            counters: by_kind(
                program.counters.iter().map(|c| c.name.as_str()),
                |i| program.direct_counter_table(i).is_some(),
                prefix::COUNTER,
                prefix::DIRECT_COUNTER,
            ),
        }
    }

    /// Whether `id` names a direct counter or meter.
    pub fn is_direct(id: u32) -> bool {
        matches!((id >> 24) as u8, prefix::DIRECT_COUNTER | prefix::DIRECT_METER)
    }
}

/// Ids of arrays of two kinds (indexed and direct), in the IR's order:
/// each kind assigned as [`assign`] does among its own.
fn by_kind<'a>(
    names: impl Iterator<Item = &'a str>,
    direct: impl Fn(usize) -> bool,
    plain: u8,
    direct_prefix: u8,
) -> Vec<u32> {
    let names: Vec<&str> = names.collect();
    let direct = &direct;
    let pick = |d: bool| (0..names.len()).filter(move |&i| direct(i) == d);
    let mut out = vec![0; names.len()];
    for d in [false, true] {
        let idx: Vec<usize> = pick(d).collect();
        let ids = assign(if d { direct_prefix } else { plain }, idx.iter().map(|&i| names[i]));
        for (i, id) in idx.into_iter().zip(ids) {
            out[i] = id;
        }
    }
    out
}

/// 32-bit FNV-1a.
fn fnv1a(s: &str) -> u32 {
    s.bytes()
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Ids for `names` (one kind, declaration order): the name's hash as the
/// suffix, or the next free one (never 0) when an earlier name holds it.
fn assign<'a>(prefix: u8, names: impl Iterator<Item = &'a str>) -> Vec<u32> {
    const MASK: u32 = 0x00ff_ffff;
    let mut taken = HashSet::new();
    names
        .map(|n| {
            let mut s = fnv1a(n) & MASK;
            // At most 2^24 - 1 objects of a kind: the IR's limits keep
            // them far fewer, so a free suffix is always found.
            while s == 0 || taken.contains(&s) {
                s = (s + 1) & MASK;
            }
            taken.insert(s);
            (u32::from(prefix) << 24) | s
        })
        .collect()
}

/// A value in P4Runtime's canonical bytestring form: big-endian, no
/// leading zero bytes, one zero byte for 0.
pub fn canonical_bytes(v: u128) -> Vec<u8> {
    let b = v.to_be_bytes();
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len() - 1);
    b[first..].to_vec()
}

fn preamble(id: u32, name: &str) -> Option<pi::Preamble> {
    Some(pi::Preamble {
        id,
        name: name.to_string(),
        alias: name.to_string(),
        ..Default::default()
    })
}

/// The P4Info of `program`.
pub fn p4info(program: &Program) -> pi::P4Info {
    let ids = Ids::of(program);
    let actions = program
        .actions
        .iter()
        .zip(&ids.actions)
        .map(|(a, &id)| pi::Action {
            preamble: preamble(id, &a.name),
            params: a
                .params
                .iter()
                .zip(1u32..)
                .map(|(p, pid)| pi::action::Param {
                    id: pid,
                    name: p.name.clone(),
                    bitwidth: i32::from(p.width),
                    ..Default::default()
                })
                .collect(),
        })
        .collect();
    let tables = program
        .tables
        .iter()
        .zip(&ids.tables)
        .map(|(t, &id)| {
            let match_fields = t
                .keys
                .iter()
                .zip(1u32..)
                .map(|(k, kid)| pi::MatchField {
                    id: kid,
                    name: k.name.clone(),
                    bitwidth: i32::from(k.width),
                    r#match: Some(pi::match_field::Match::MatchType(match k.kind {
                        MatchKind::Exact => pi::match_field::MatchType::Exact,
                        MatchKind::Lpm => pi::match_field::MatchType::Lpm,
                        MatchKind::Ternary => pi::match_field::MatchType::Ternary,
                    } as i32)),
                    ..Default::default()
                })
                .collect();
            let action_refs = t
                .actions
                .iter()
                .map(|&a| pi::ActionRef {
                    id: ids.actions[usize::from(a)],
                    ..Default::default()
                })
                .collect();
            let default = usize::from(t.default_action);
            let initial_default_action = Some(pi::TableActionCall {
                action_id: ids.actions[default],
                arguments: t
                    .default_args
                    .iter()
                    .zip(1u32..)
                    .map(|(&v, pid)| pi::table_action_call::Argument {
                        param_id: pid,
                        value: canonical_bytes(u128::from(v)),
                    })
                    .collect(),
            });
            let direct_resource_ids = t
                .direct_counter
                .map(|c| ids.counters[usize::from(c)])
                .into_iter()
                .chain(t.direct_meter.map(|m| ids.meters[usize::from(m)]))
                .collect();
            pi::Table {
                preamble: preamble(id, &t.name),
                match_fields,
                action_refs,
                initial_default_action,
                direct_resource_ids,
                size: i64::from(t.size),
                has_initial_entries: !t.entries.is_empty(),
                ..Default::default()
            }
        })
        .collect();
    let meter_spec = |unit: MeterUnit| {
        Some(pi::MeterSpec {
            unit: match unit {
                MeterUnit::Packets => pi::meter_spec::Unit::Packets,
                MeterUnit::Bytes => pi::meter_spec::Unit::Bytes,
            } as i32,
            // Each cell runs RFC 2698 (cir/cburst/pir/pburst) or, given
            // an eburst, RFC 2697; P4Info names the first.
            r#type: pi::meter_spec::Type::TwoRateThreeColor as i32,
        })
    };
    let counter_spec = |unit: CounterUnit| {
        Some(pi::CounterSpec {
            unit: match unit {
                CounterUnit::Packets => pi::counter_spec::Unit::Packets,
                CounterUnit::Bytes => pi::counter_spec::Unit::Bytes,
                CounterUnit::PacketsAndBytes => pi::counter_spec::Unit::Both,
            } as i32,
        })
    };
    let (mut meters, mut direct_meters) = (Vec::new(), Vec::new());
    for (i, (m, &id)) in program.meters.iter().zip(&ids.meters).enumerate() {
        match program.direct_meter_table(i) {
            Some(t) => direct_meters.push(pi::DirectMeter {
                preamble: preamble(id, &m.name),
                spec: meter_spec(m.unit),
                direct_table_id: ids.tables[usize::from(t)],
            }),
            None => meters.push(pi::Meter {
                preamble: preamble(id, &m.name),
                spec: meter_spec(m.unit),
                size: i64::from(m.size),
            }),
        }
    }
    let (mut counters, mut direct_counters) = (Vec::new(), Vec::new());
    for (i, (c, &id)) in program.counters.iter().zip(&ids.counters).enumerate() {
        match program.direct_counter_table(i) {
            Some(t) => direct_counters.push(pi::DirectCounter {
                preamble: preamble(id, &c.name),
                spec: counter_spec(c.unit),
                direct_table_id: ids.tables[usize::from(t)],
            }),
            None => counters.push(pi::Counter {
                preamble: preamble(id, &c.name),
                spec: counter_spec(c.unit),
                size: i64::from(c.size),
            }),
        }
    }
    pi::P4Info {
        pkg_info: Some(pi::PkgInfo {
            name: program.name.clone(),
            arch: ARCH.to_string(),
            ..Default::default()
        }),
        tables,
        actions,
        counters,
        direct_counters,
        meters,
        direct_meters,
        controller_packet_metadata: controller_headers(),
    }
}

/// The CPU port's headers (`fairnic_arch.p4`): the device adds and strips
/// their one field, the same for every fairnic program.
pub mod cpu_port {
    /// `packet_in`'s field: the LIF that sent the frame (0xffff: the wire).
    pub const PACKET_IN: (&str, &str) = ("packet_in", "ingress_lif");
    /// `packet_out`'s field: the LIF to deliver to (0xffff: the uplink).
    pub const PACKET_OUT: (&str, &str) = ("packet_out", "egress_lif");
    /// Their id within the header, and width.
    pub const FIELD_ID: u32 = 1;
    pub const FIELD_BITS: i32 = 16;
}

/// P4Info's `controller_packet_metadata`: `packet_in` and `packet_out`,
/// each with its one 16-bit field (id 1).
fn controller_headers() -> Vec<pi::ControllerPacketMetadata> {
    let names = [cpu_port::PACKET_IN, cpu_port::PACKET_OUT];
    let ids = assign(prefix::CONTROLLER_HEADER, names.iter().map(|(h, _)| *h));
    names
        .iter()
        .zip(ids)
        .map(|(&(header, field), id)| pi::ControllerPacketMetadata {
            preamble: preamble(id, header),
            metadata: vec![pi::controller_packet_metadata::Metadata {
                id: cpu_port::FIELD_ID,
                name: field.to_string(),
                bitwidth: cpu_port::FIELD_BITS,
                ..Default::default()
            }],
        })
        .collect()
}

/// Why a P4Info text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("P4Info text format: {0}")]
    Parse(String),
    #[error("P4Info does not convert to its message: {0}")]
    Decode(String),
}

fn descriptor() -> MessageDescriptor {
    static P4INFO: std::sync::OnceLock<MessageDescriptor> = std::sync::OnceLock::new();
    P4INFO
        .get_or_init(|| {
            // The set is built into the crate from the same .proto files the
            // types come from: a failure here is a build defect, and a test
            // decodes it.
            let pool = DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET).expect("the built-in descriptor set decodes");
            pool.get_message_by_name("p4.config.v1.P4Info")
                .expect("the built-in descriptor set has P4Info")
        })
        .clone()
}

/// `info` in the protobuf text format as p4c and protobuf's C++ library
/// write it: fields in number order, two spaces per level, one block per
/// element of a repeated field, enums by name.
pub fn to_text(info: &pi::P4Info) -> String {
    let msg = DynamicMessage::decode(descriptor(), prost::Message::encode_to_vec(info).as_slice())
        .expect("a message's own encoding decodes with its descriptor");
    let mut out = String::new();
    write_message(&mut out, &msg, 0);
    out
}

fn write_message(out: &mut String, msg: &DynamicMessage, indent: usize) {
    let mut fields: Vec<_> = msg.fields().collect();
    fields.sort_by_key(|(f, _)| f.number());
    for (field, value) in fields {
        match value {
            Value::List(items) => {
                for v in items {
                    write_field(out, &field, v, indent);
                }
            }
            Value::Map(entries) => {
                // No map fields in fairnic's protos; written as the wire
                // sees them, a repeated entry message.
                let (k, v) = field.kind().as_message().map_or((None, None), |m| {
                    (Some(m.map_entry_key_field()), Some(m.map_entry_value_field()))
                });
                for (key, val) in entries {
                    out.push_str(&format!("{:indent$}{} {{\n", "", field.name()));
                    if let (Some(kf), Some(vf)) = (&k, &v) {
                        write_field(out, kf, &key.clone().into(), indent + 2);
                        write_field(out, vf, val, indent + 2);
                    }
                    out.push_str(&format!("{:indent$}}}\n", ""));
                }
            }
            v => write_field(out, &field, v, indent),
        }
    }
}

fn write_field(out: &mut String, field: &prost_reflect::FieldDescriptor, value: &Value, indent: usize) {
    let name = field.name();
    match value {
        Value::Message(m) => {
            out.push_str(&format!("{:indent$}{name} {{\n", ""));
            write_message(out, m, indent + 2);
            out.push_str(&format!("{:indent$}}}\n", ""));
        }
        Value::EnumNumber(n) => {
            let named = field
                .kind()
                .as_enum()
                .and_then(|e| e.get_value(*n))
                .map(|v| v.name().to_string());
            out.push_str(&format!(
                "{:indent$}{name}: {}\n",
                "",
                named.unwrap_or_else(|| n.to_string())
            ));
        }
        Value::String(s) => out.push_str(&format!("{:indent$}{name}: {}\n", "", quote(s.as_bytes()))),
        Value::Bytes(b) => out.push_str(&format!("{:indent$}{name}: {}\n", "", quote(b))),
        Value::Bool(v) => out.push_str(&format!("{:indent$}{name}: {v}\n", "")),
        Value::I32(v) => out.push_str(&format!("{:indent$}{name}: {v}\n", "")),
        Value::I64(v) => out.push_str(&format!("{:indent$}{name}: {v}\n", "")),
        Value::U32(v) => out.push_str(&format!("{:indent$}{name}: {v}\n", "")),
        Value::U64(v) => out.push_str(&format!("{:indent$}{name}: {v}\n", "")),
        Value::F32(v) => out.push_str(&format!("{:indent$}{name}: {v:?}\n", "")),
        Value::F64(v) => out.push_str(&format!("{:indent$}{name}: {v:?}\n", "")),
        // An element of a repeated field is never itself a list or map.
        Value::List(_) | Value::Map(_) => {}
    }
}

/// A string or bytes value quoted as the text format reads it: printable
/// ASCII as is (with `"`, `'` and `\\` escaped), anything else as a
/// three-digit octal escape.
fn quote(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() + 2);
    s.push('"');
    for &c in b {
        match c {
            b'"' => s.push_str("\\\""),
            b'\'' => s.push_str("\\'"),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            0x20..=0x7e => s.push(char::from(c)),
            _ => s.push_str(&format!("\\{c:03o}")),
        }
    }
    s.push('"');
    s
}

/// A P4Info from its text format.
pub fn from_text(text: &str) -> Result<pi::P4Info, TextError> {
    let msg = DynamicMessage::parse_text_format(descriptor(), text).map_err(|e| TextError::Parse(e.to_string()))?;
    msg.transcode_to::<pi::P4Info>()
        .map_err(|e| TextError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests;

/// Whether `given` (a controller's P4Info) describes `program`: every
/// table, action, meter and counter with the id, name and shape fairnic's
/// own P4Info gives it, and nothing else. Annotations, documentation and
/// package information are the controller's business. `Err`: the first
/// difference, in words.
pub fn check_matches(given: &pi::P4Info, program: &Program) -> Result<(), String> {
    fn shapes(info: &pi::P4Info) -> Vec<String> {
        let name = |p: &Option<pi::Preamble>| p.as_ref().map_or((0, String::new()), |p| (p.id, p.name.clone()));
        let mut v = Vec::new();
        for t in &info.tables {
            let (id, n) = name(&t.preamble);
            let keys: Vec<String> = t
                .match_fields
                .iter()
                .map(|f| format!("{}:{}:{}:{:?}", f.id, f.name, f.bitwidth, f.r#match))
                .collect();
            let mut acts: Vec<u32> = t.action_refs.iter().map(|a| a.id).collect();
            acts.sort_unstable();
            v.push(format!(
                "table {n} (id {id:#x}) size {} keys [{}] actions {acts:x?}",
                t.size,
                keys.join(", ")
            ));
        }
        for a in &info.actions {
            let (id, n) = name(&a.preamble);
            let params: Vec<String> = a
                .params
                .iter()
                .map(|p| format!("{}:{}:{}", p.id, p.name, p.bitwidth))
                .collect();
            v.push(format!("action {n} (id {id:#x}) params [{}]", params.join(", ")));
        }
        for m in &info.meters {
            let (id, n) = name(&m.preamble);
            let unit = m.spec.map_or(0, |s| s.unit);
            v.push(format!("meter {n} (id {id:#x}) unit {unit} size {}", m.size));
        }
        for c in &info.counters {
            let (id, n) = name(&c.preamble);
            let unit = c.spec.map_or(0, |s| s.unit);
            v.push(format!("counter {n} (id {id:#x}) unit {unit} size {}", c.size));
        }
        for d in &info.direct_meters {
            v.push(format!("direct meter {:?}", name(&d.preamble)));
        }
        for d in &info.direct_counters {
            v.push(format!("direct counter {:?}", name(&d.preamble)));
        }
        v.sort();
        v
    }
    let (want, got) = (shapes(&p4info(program)), shapes(given));
    if let Some(w) = got.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("the P4Info names `{}` twice", w[0]));
    }
    let missing = want.iter().find(|w| !got.contains(w));
    let extra = got.iter().find(|g| !want.contains(g));
    match (missing, extra) {
        (None, None) => Ok(()),
        (Some(w), Some(g)) => Err(format!(
            "the P4Info does not describe the program: it has `{g}` where the program has `{w}`"
        )),
        (Some(w), None) => Err(format!("the P4Info lacks `{w}`, which the program has")),
        (None, Some(g)) => Err(format!("the P4Info has `{g}`, which the program lacks")),
    }
}
