//! RECONCILE_AND_COMMIT: load a new program and keep the forwarding state
//! of the committed one. The table entries the device holds are read back
//! (`TableEntryList`), checked against the new program before anything
//! changes (same table names and key shapes, same action names and
//! parameters, room in the table), the program is loaded, and the entries
//! are added again under the new program's numbers. The per-LIF meters are
//! the LIFs' own settings, which the device keeps across a load; the
//! program's other indexed meter arrays are read before the load and their
//! configured cells set again in the new program's array of the same name,
//! unit and at least that size. Direct
//! counters and meters go with their entries: read before the load, set
//! again where the new program's table has the same resource (a direct
//! meter of the same unit); what the old program counted between that
//! read and the load (one admin command's time) is not carried. If the
//! device refuses an entry or a cell afterwards, the old program and its
//! entries are put back.
//!
//! Frames in flight: the device switches programs between two frames (an
//! admin command runs between engine passes), so every frame is decided
//! by the old program or the new one and counted once either way; what
//! the program decides during the re-adding window is the new program's
//! with the entries added so far (a frame may miss an entry for that
//! long, as on any device reloading its tables).

use super::{entry_key, Service};
use crate::entries::Refusal;
use dataplane::abi::{table_data_flags, MeterConfig, MeterMode, TableEntry, TableEntryData};
use dataplane::pipeline::Program;
use std::collections::HashSet;
use tonic::{Code, Status};

/// The entries of `old`'s tables (as the device holds them) in `new`'s
/// numbering, or why `new` cannot take them.
pub fn carry_entries(old: &Program, new: &Program, held: &[Vec<TableEntry>]) -> Result<Vec<TableEntry>, Refusal> {
    let mut out = Vec::new();
    for (t, entries) in old.tables.iter().zip(held) {
        if entries.is_empty() {
            continue;
        }
        let n = entries.len();
        let Some((nt, new_t)) = new.table(&t.name) else {
            return Err((
                Code::InvalidArgument,
                format!(
                    "table {} holds {n} entries and the new program has no table of that name",
                    t.name
                ),
            ));
        };
        let shape = |k: &dataplane::pipeline::KeyDef| (k.name.clone(), k.kind, k.width);
        if t.keys.iter().map(shape).ne(new_t.keys.iter().map(shape)) {
            return Err((
                Code::InvalidArgument,
                format!(
                    "table {}: its key is not the same in the new program (names, match kinds and widths must be)",
                    t.name
                ),
            ));
        }
        if (new_t.size as usize) < n {
            return Err((
                Code::InvalidArgument,
                format!(
                    "table {} holds {n} entries; the new program's holds {}",
                    t.name, new_t.size
                ),
            ));
        }
        for e in entries {
            let a = old.actions.get(e.action_id.get() as usize).ok_or((
                Code::Internal,
                format!(
                    "the device listed an entry of {} with action {}, which the program lacks",
                    t.name,
                    e.action_id.get()
                ),
            ))?;
            let Some((na, new_a)) = new.action(&a.name) else {
                return Err((
                    Code::InvalidArgument,
                    format!(
                        "table {} has entries with action {}, which the new program lacks",
                        t.name, a.name
                    ),
                ));
            };
            let param = |p: &dataplane::pipeline::ParamDef| (p.name.clone(), p.width);
            if a.params.iter().map(param).ne(new_a.params.iter().map(param)) {
                return Err((
                    Code::InvalidArgument,
                    format!("action {}: its parameters are not the same in the new program", a.name),
                ));
            }
            if !new_t.actions.contains(&na) {
                return Err((
                    Code::InvalidArgument,
                    format!(
                        "table {} has entries with action {}, which its new definition does not list",
                        t.name, a.name
                    ),
                ));
            }
            let mut c = *e;
            c.table_id = u32::from(nt).into();
            c.action_id = u32::from(na).into();
            out.push(c);
        }
    }
    Ok(out)
}

/// The direct cells of `old`'s entries (`held`, per table) that `new`'s
/// tables keep, in `new`'s numbering: the counter where the new table has
/// a direct counter, the meter where it has a direct meter of the same
/// unit.
pub fn carry_cells(old: &Program, new: &Program, held: &[Vec<TableEntryData>]) -> Vec<TableEntryData> {
    let mut out = Vec::new();
    for (t, cells) in old.tables.iter().zip(held) {
        let Some((nt, new_t)) = new.table(&t.name) else {
            continue;
        };
        let mut keep = 0;
        if t.direct_counter.is_some() && new_t.direct_counter.is_some() {
            keep |= table_data_flags::COUNTER;
        }
        let unit = |p: &Program, m: Option<u16>| m.map(|m| p.meters[usize::from(m)].unit);
        if unit(old, t.direct_meter).is_some() && unit(old, t.direct_meter) == unit(new, new_t.direct_meter) {
            keep |= table_data_flags::METER;
        }
        for d in cells {
            let flags = d.flags.get() & keep;
            if flags == 0 {
                continue;
            }
            let mut c = *d;
            c.entry.table_id = u32::from(nt).into();
            c.flags = flags.into();
            c.slot = 0.into();
            if flags & table_data_flags::COUNTER == 0 {
                c.packets = 0.into();
                c.bytes = 0.into();
            }
            if flags & table_data_flags::METER == 0 {
                c.meter = Default::default();
            }
            out.push(c);
        }
    }
    out
}

/// The program's own indexed meter arrays (not per-LIF, not direct): their
/// numbers.
fn program_meters(p: &Program) -> impl Iterator<Item = usize> + '_ {
    (0..p.meters.len()).filter(|&m| p.is_indexed_meter(m))
}

/// The configured cells of `old`'s indexed meter arrays (`held`, per array
/// [`program_meters`] gives, in order) that `new` keeps: an array of the
/// same name and unit, at least as big; as (array in `new`, cell, config).
pub fn carry_meters(old: &Program, new: &Program, held: &[Vec<MeterConfig>]) -> Vec<(u32, u32, MeterConfig)> {
    let mut out = Vec::new();
    for (m, cells) in program_meters(old).zip(held) {
        let def = &old.meters[m];
        let Some(n) = program_meters(new).find(|&n| new.meters[n].name == def.name) else {
            continue;
        };
        let nd = &new.meters[n];
        if nd.unit != def.unit || nd.size < def.size {
            continue;
        }
        for (i, c) in cells.iter().enumerate() {
            if c.mode() != MeterMode::Off {
                out.push((n as u32, i as u32, *c));
            }
        }
    }
    out
}

impl Service {
    /// The cells of every indexed meter array of `program` (see
    /// [`program_meters`]).
    fn held_meters(&self, program: &Program) -> Result<Vec<Vec<MeterConfig>>, Status> {
        program_meters(program)
            .map(|m| {
                self.target
                    .pipeline_meters(m as u32)
                    .map_err(|(c, w)| Status::new(c, w))
            })
            .collect()
    }

    /// Set the meter cells [`carry_meters`] gave; stops at the first
    /// refusal.
    fn restore_meters(&self, cells: &[(u32, u32, MeterConfig)]) -> Result<(), Refusal> {
        cells
            .iter()
            .try_for_each(|(m, i, c)| self.target.pipeline_meter_set(*m, *i, c))
    }

    /// The direct cells of every table of `program` that has any (empty
    /// for the others).
    fn held_cells(&self, program: &Program) -> Result<Vec<Vec<TableEntryData>>, Status> {
        program
            .tables
            .iter()
            .enumerate()
            .map(|(t, def)| {
                if def.direct_counter.is_none() && def.direct_meter.is_none() {
                    return Ok(Vec::new());
                }
                self.target.table_data(t as u32).map_err(|(c, w)| Status::new(c, w))
            })
            .collect()
    }

    /// Set cells [`carry_cells`] gave; stops at the first refusal.
    fn restore_cells(&self, cells: &[TableEntryData]) -> Result<(), Refusal> {
        cells.iter().try_for_each(|d| self.target.set_table_data(d))
    }

    /// Every table's entries as the device holds them, for `program`.
    fn held(&self, program: &Program) -> Result<Vec<Vec<TableEntry>>, Status> {
        (0..program.tables.len() as u32)
            .map(|t| self.target.table_entries(t).map_err(|(c, w)| Status::new(c, w)))
            .collect()
    }

    /// Add `entries` that the device does not hold already (it installs
    /// its own LIF entries at a load); stops at the first refusal.
    fn add_missing(&self, program: &Program, entries: &[TableEntry]) -> Result<(), Refusal> {
        let present: HashSet<(u32, Vec<u8>)> = self
            .held(program)
            .map_err(|s| (s.code(), s.message().to_string()))?
            .iter()
            .flatten()
            .map(entry_key)
            .collect();
        for e in entries.iter().filter(|e| !present.contains(&entry_key(e))) {
            self.target.table_entry(true, e)?;
        }
        Ok(())
    }

    /// RECONCILE_AND_COMMIT of a verified config and its program.
    pub(super) fn reconcile(
        &self,
        config: crate::proto::p4::v1::ForwardingPipelineConfig,
        program: Program,
    ) -> Result<(), Status> {
        let old = {
            let g = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
            g.committed
                .as_ref()
                .map(|c| (c.program.clone(), c.config.p4_device_config.clone()))
        };
        let Some((old_program, old_image)) = old else {
            return Err(Status::failed_precondition(
                "RECONCILE_AND_COMMIT keeps the committed program's state: nothing is committed (VERIFY_AND_COMMIT first)",
            ));
        };
        let held = self.held(&old_program)?;
        let carried = carry_entries(&old_program, &program, &held).map_err(|(c, w)| Status::new(c, w))?;
        let old_cells = self.held_cells(&old_program)?;
        let cells = carry_cells(&old_program, &program, &old_cells);
        let old_meters = self.held_meters(&old_program)?;
        let meters = carry_meters(&old_program, &program, &old_meters);
        self.target
            .load_pipeline(&program, &config.p4_device_config)
            .map_err(|e| Status::internal(format!("the device refused the program: {e}")))?;
        match self
            .add_missing(&program, &carried)
            .and_then(|()| self.restore_cells(&cells))
            .and_then(|()| self.restore_meters(&meters))
        {
            Ok(()) => {
                let mut g = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
                let ids = crate::p4info::Ids::of(&program);
                g.committed = Some(super::Committed { config, program, ids });
                Ok(())
            }
            Err((code, why)) => {
                // Put the old program and its entries back.
                let old_entries: Vec<TableEntry> = held.into_iter().flatten().collect();
                let back = self
                    .target
                    .load_pipeline(&old_program, &old_image)
                    .map_err(|e| (Code::Internal, e))
                    .and_then(|()| self.add_missing(&old_program, &old_entries))
                    .and_then(|()| self.restore_cells(&carry_cells(&old_program, &old_program, &old_cells)))
                    .and_then(|()| self.restore_meters(&carry_meters(&old_program, &old_program, &old_meters)));
                let outcome = match back {
                    Ok(()) => "the committed program and its entries are back".to_string(),
                    Err((_, e)) => format!("and putting the committed program back failed too: {e}"),
                };
                Err(Status::new(
                    code,
                    format!("the device refused an entry of the new program: {why}; {outcome}"),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fairnic.p4 with `from` replaced by `to` in its source.
    fn variant(edits: &[(&str, &str)]) -> Program {
        let mut src = p4::FAIRNIC_P4.to_string();
        for (from, to) in edits {
            assert!(src.contains(from), "{from} is in fairnic.p4");
            src = src.replace(from, to);
        }
        p4::compile_str(&src, "variant.p4").unwrap()
    }

    /// fairnic.p4's tables' entries: two in l2_fwd (to_lif 1, to_uplink).
    fn held(p: &Program) -> Vec<Vec<TableEntry>> {
        let (l2, _) = p.table("l2_fwd").unwrap();
        let id = |n| u32::from(p.action(n).unwrap().0);
        let mut h = vec![Vec::new(); p.tables.len()];
        h[usize::from(l2)] = vec![
            TableEntry::exact(l2.into(), &[2, 0, 0, 0, 0, 1], id("to_lif"), &[0, 1]),
            TableEntry::exact(l2.into(), &[2, 0, 0, 0, 0, 2], id("to_uplink"), &[]),
        ];
        h
    }

    #[test]
    fn entries_move_to_the_new_programs_numbers() {
        let old = p4::fairnic();
        let same = carry_entries(&old, &old, &held(&old)).unwrap();
        assert_eq!(same, held(&old).concat());
        // An action and a table declared first renumber the others.
        let new = variant(&[
            ("    /* Deliver to LIF `lif`. */", "    action first() { }\n    /* Deliver to LIF `lif`. */"),
            (
                "    /* IPv4 filter: entries drop what they match. */",
                "    table first_table { key = { hdr.ipv4.ttl: exact; } actions = { first; NoAction; } default_action = NoAction(); size = 4; }\n",
            ),
        ]);
        let moved = carry_entries(&old, &new, &held(&old)).unwrap();
        let (l2, _) = new.table("l2_fwd").unwrap();
        assert_eq!(l2, old.table("l2_fwd").unwrap().0 + 1);
        let names: Vec<&str> = moved
            .iter()
            .map(|e| new.actions[e.action_id.get() as usize].name.as_str())
            .collect();
        assert_eq!(names, ["to_lif", "to_uplink"]);
        assert!(moved.iter().all(|e| e.table_id.get() == u32::from(l2)));
        assert_eq!(moved[0].key(), held(&old)[1][0].key());
        assert_eq!(moved[0].params(), [0, 1]);
    }

    #[test]
    fn a_program_that_cannot_hold_the_entries_is_refused() {
        let old = p4::fairnic();
        for (edits, says) in [
            (
                vec![("hdr.ethernet.dst_addr: exact;", "hdr.ethernet.src_addr: exact;")],
                "key is not the same",
            ),
            (
                vec![("size = 8192;", "size = 1;")],
                "holds 2 entries; the new program's holds 1",
            ),
            (
                vec![("            to_lif;\n            to_uplink;\n", "            to_lif;\n")],
                "does not list",
            ),
            (
                vec![(
                    "action to_lif(bit<16> lif) {\n        std.egress_lif = lif;",
                    "action to_lif(bit<16> port) {\n        std.egress_lif = port;",
                )],
                "parameters are not the same",
            ),
            (
                vec![("table l2_fwd {", "table l2 {"), ("l2_fwd.apply()", "l2.apply()")],
                "no table of that name",
            ),
        ] {
            let new = variant(&edits);
            let (code, why) = carry_entries(&old, &new, &held(&old)).unwrap_err();
            assert_eq!(code, Code::InvalidArgument, "{why}");
            assert!(why.contains(says), "{says:?} in {why}");
        }
        // Tables without entries may change at will.
        let new = variant(&[("hdr.ipv4.dst_addr: lpm;", "hdr.ipv4.src_addr: lpm;")]);
        assert!(carry_entries(&old, &new, &held(&old)).is_ok());
    }
}
