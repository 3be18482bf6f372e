//! The internal switch between LIFs and the uplink.
//!
//! Once the PF loads a P4 program (`PipelineLoad`), the device runs it
//! (`dataplane::pipeline`): the program parses, classifies, meters and
//! decides each frame, its cost annotations give the frame's cost, and
//! `TableEntryAdd`/`Del` program its tables. The device keeps one table
//! entry per LIF MAC in the program's `l2_fwd` table (action `to_lif`), as
//! firmware does, if the program has them.
//!
//! Until then, the device forwards on destination MAC through one
//! built-in exact-match table, `l2_fwd` (table 1), which the device fills
//! with every LIF's MAC and the PF can extend with `TableEntryAdd`:
//!
//! | action | id | parameters |
//! |---|---|---|
//! | `to_lif` | 1 | LIF number, u16 little-endian |
//! | `to_uplink` | 2 | none |
//! | `drop` | 3 | none |
//! | `to_lif_recirc` | 4 | LIF number (u16 LE), extra passes (u8, 1..=7) |
//!
//! `to_lif_recirc` sends the frame through the pipeline again that many
//! times before delivering it (as tunnel processing does), and each pass
//! costs a full pass's cost units.
//!
//! A miss floods group addresses (to every LIF but the sender, and to the
//! uplink if a LIF sent it), sends unknown unicast from a LIF to the uplink,
//! and drops unknown unicast from the uplink (`DropNoRoute`).

use dataplane::abi::{self, table_data_flags, AdminStatus, MeterConfig, TableEntry, TableEntryData};
use dataplane::packet::{EthernetFrame, Mac};
use dataplane::pipeline::{self, EntryError, Pipeline, Program};
use std::collections::HashMap;

/// The loaded program's table and action the device keeps LIF MACs in.
pub const P4_L2_TABLE: &str = "l2_fwd";
pub const P4_TO_LIF: &str = "to_lif";

/// Table id of the built-in L2 table.
pub const L2_TABLE: u32 = 1;
/// Action: forward to a LIF.
pub const ACTION_TO_LIF: u32 = 1;
/// Action: send to the uplink.
pub const ACTION_TO_UPLINK: u32 = 2;
/// Action: drop.
pub const ACTION_DROP: u32 = 3;
/// Action: forward to a LIF after recirculating.
pub const ACTION_TO_LIF_RECIRC: u32 = 4;
/// Most extra passes a frame may make.
pub const MAX_RECIRCULATIONS: u8 = 7;
/// Most static entries.
pub const L2_CAPACITY: usize = 4096;

/// Where a frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Lif(u16),
    Uplink,
    /// The PF, through the CPU port (`PacketInject`): delivered to a LIF
    /// without passing through the pipeline.
    Cpu,
}

impl Source {
    /// The program's `ingress_lif` for a frame from here.
    pub fn ingress_lif(self) -> u16 {
        match self {
            Source::Lif(l) => l,
            Source::Uplink => pipeline::std_meta::LIF_NONE as u16,
            Source::Cpu => abi::LIF_CPU,
        }
    }
}

/// What the switch decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    ToLif(u16),
    ToUplink,
    Flood,
    /// Dropped by a `drop` entry.
    DropByTable,
    /// Unknown unicast from the uplink.
    NoRoute,
    /// Too short to have a MAC header.
    ParseError,
    /// Sent with a source MAC that is not the sending LIF's (spoof check).
    Spoofed,
    /// The source MAC is a group address.
    BadSource,
    /// To the CPU port (the program set `egress_lif` to `LIF_CPU`).
    ToCpu,
}

/// Why a table entry was refused.
pub type EntryRefusal = (AdminStatus, &'static str);

/// The switch's decision from the program's outcome.
fn decision(o: pipeline::Outcome) -> Decision {
    let verdict = match o.verdict {
        pipeline::Verdict::ToLif(abi::LIF_CPU) => Verdict::ToCpu,
        pipeline::Verdict::ToLif(l) => Verdict::ToLif(l),
        pipeline::Verdict::ToUplink => Verdict::ToUplink,
        pipeline::Verdict::Flood => Verdict::Flood,
        pipeline::Verdict::Drop => Verdict::DropByTable,
        pipeline::Verdict::NoRoute => Verdict::NoRoute,
        pipeline::Verdict::ParseError => Verdict::ParseError,
    };
    Decision {
        verdict,
        passes: o.recirculate.min(MAX_RECIRCULATIONS),
        pass_cost: Some(u64::from(o.cost)),
    }
}

/// The device's entry for a LIF MAC in `prog`'s `l2_fwd`, if it has one
/// keyed on a 48-bit field with a `to_lif(bit<16>)` action.
fn lif_entry(prog: &Program, mac: Mac, lif: u16) -> Option<TableEntry> {
    let (t, def) = prog.table(P4_L2_TABLE)?;
    let (a, act) = prog.action(P4_TO_LIF)?;
    if def.keys.len() != 1 || def.keys[0].width != 48 || !def.actions.contains(&a) {
        return None;
    }
    if act.params.len() != 1 || act.params[0].width != 16 {
        return None;
    }
    Some(TableEntry::exact(u32::from(t), &mac, u32::from(a), &lif.to_be_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    ToLif(u16, u8),
    ToUplink,
    Drop,
}

/// The switch's decision for a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// Extra pipeline passes.
    pub passes: u8,
    /// Cost units of one pass, when a program says (else the device's
    /// cost model applies).
    pub pass_cost: Option<u64>,
}

/// A control-plane entry of the loaded program's tables, as its table
/// holds it (to remove it by).
type EntryRef = (u16, u128, u128, u32);

/// The L2 forwarding table, or the loaded P4 program.
#[derive(Debug, Default)]
pub struct Switch {
    /// MACs of LIFs (installed by the device).
    lif_macs: HashMap<Mac, u16>,
    /// Entries the PF installed; they take precedence over LIF MACs.
    statics: HashMap<Mac, Action>,
    /// The static entries that deliver to each LIF.
    statics_by_lif: HashMap<u16, Vec<Mac>>,
    /// The loaded P4 program.
    program: Option<Pipeline>,
    /// Which of the program's actions deliver to a LIF (`to_lif*`, the
    /// LIF their first parameter).
    to_lif_actions: Vec<bool>,
    /// The program's control-plane entries that deliver to each LIF, so
    /// that a LIF's teardown costs its own entries, not the tables'.
    entries_by_lif: HashMap<u16, Vec<EntryRef>>,
    /// Entries visited by LIF teardowns (a count of work, for tests: it
    /// must not grow with other LIFs' entries).
    pub teardown_work: u64,
    /// Scratch: the program's outcomes for one batch.
    outcomes: Vec<pipeline::Outcome>,
}

impl Switch {
    /// A LIF appeared with `mac`. Returns false if another LIF has it.
    pub fn add_lif(&mut self, mac: Mac, lif: u16) -> bool {
        if self.lif_macs.contains_key(&mac) {
            return false;
        }
        self.lif_macs.insert(mac, lif);
        if let Some(p) = &mut self.program {
            if let Some(e) = lif_entry(p.program(), mac, lif) {
                match p.apply_entry(&e, true) {
                    Ok(a) => track(&self.to_lif_actions, &mut self.entries_by_lif, &a, true),
                    Err(err) => tracing::warn!(lif, "LIF MAC not installed in the program's l2_fwd: {err}"),
                }
            }
        }
        true
    }

    /// A LIF went away: its MAC and every control-plane entry delivering
    /// to it. Costs the LIF's own entries, whatever the size of the
    /// tables.
    pub fn remove_lif(&mut self, mac: Mac, lif: u16) {
        self.lif_macs.remove(&mac);
        for m in self.statics_by_lif.remove(&lif).unwrap_or_default() {
            self.teardown_work += 1;
            if matches!(self.statics.get(&m), Some(Action::ToLif(l, _)) if *l == lif) {
                self.statics.remove(&m);
            }
        }
        if let Some(p) = &mut self.program {
            for (t, key, mask, priority) in self.entries_by_lif.remove(&lif).unwrap_or_default() {
                self.teardown_work += 1;
                let _ = p.remove_entry(t, key, mask, priority);
            }
        }
    }

    /// Load a P4 program image: replaces the built-in table (and any
    /// earlier program) and installs the LIF MACs. On error nothing
    /// changes.
    pub fn load(&mut self, image: &[u8]) -> Result<(), pipeline::ProgramError> {
        let mut p = Pipeline::from_image(image)?;
        let to_lif: Vec<bool> = p
            .program()
            .actions
            .iter()
            .map(|a| a.name.starts_with(P4_TO_LIF) && a.params.first().is_some_and(|x| x.width <= 16))
            .collect();
        let mut by_lif = HashMap::new();
        for (&mac, &lif) in &self.lif_macs {
            if let Some(e) = lif_entry(p.program(), mac, lif) {
                let a = p
                    .apply_entry(&e, true)
                    .map_err(|err| pipeline::ProgramError::Invalid(format!("installing LIF MACs: {err}")))?;
                track(&to_lif, &mut by_lif, &a, true);
            }
        }
        self.program = Some(p);
        self.to_lif_actions = to_lif;
        self.entries_by_lif = by_lif;
        Ok(())
    }

    /// A LIF's meter for `cfg.resource` changed (`MeterSet`): the loaded
    /// program's per-LIF meter of that unit (`lif_packets`, `lif_bytes`)
    /// takes the same thresholds at index `lif`, so the colors the program
    /// sees are the fairness meters' settings.
    pub fn mirror_meter(&mut self, lif: u16, cfg: &MeterConfig, now: u64) {
        let Some(p) = &mut self.program else { return };
        let resource = cfg.resource();
        let Some(m) = p
            .program()
            .meters
            .iter()
            .position(|m| pipeline::lif_meter_resource(&m.name) == Some(resource))
        else {
            return;
        };
        let name = p.program().meters[m].name.clone();
        if let Err(e) = p.set_meter(m as u16, u32::from(lif), cfg, now) {
            tracing::debug!(lif, "program meter {name} not set: {e}");
        }
    }

    /// The loaded program.
    pub fn program(&self) -> Option<&Pipeline> {
        self.program.as_ref()
    }

    /// The loaded program, mutable (meters, tests).
    pub fn program_mut(&mut self) -> Option<&mut Pipeline> {
        self.program.as_mut()
    }

    /// Run frames from `src` through the loaded program as one batch (it
    /// may rewrite them), appending one decision per frame to `out`; false
    /// (and nothing appended) without a program.
    pub fn process_batch(&mut self, src: Source, frames: &mut [Vec<u8>], now: u64, out: &mut Vec<Decision>) -> bool {
        let Some(p) = self.program.as_mut() else {
            return false;
        };
        let ingress = src.ingress_lif();
        let mut batch: Vec<pipeline::Input<'_>> = frames
            .iter_mut()
            .map(|f| pipeline::Input {
                data: f.as_mut_slice(),
                ingress_lif: ingress,
            })
            .collect();
        let mut outcomes = std::mem::take(&mut self.outcomes);
        outcomes.clear();
        p.process_batch(now, &mut batch, &mut outcomes);
        out.extend(outcomes.drain(..).map(decision));
        self.outcomes = outcomes;
        true
    }

    /// Decide where `frame` from `src` goes, running the loaded program if
    /// there is one (it may rewrite the frame).
    pub fn process(&mut self, src: Source, frame: &mut [u8], now: u64) -> Decision {
        let Some(p) = &mut self.program else {
            let (verdict, passes) = self.decide(src, frame);
            return Decision {
                verdict,
                passes,
                pass_cost: None,
            };
        };
        decision(p.process(now, frame, src.ingress_lif()))
    }

    /// Whether `mac` belongs to a LIF.
    pub fn mac_in_use(&self, mac: &Mac) -> bool {
        self.lif_macs.contains_key(mac)
    }

    /// Decide where `frame` from `src` goes.
    pub fn forward(&self, src: Source, frame: &[u8]) -> Verdict {
        self.decide(src, frame).0
    }

    /// Decide where `frame` from `src` goes, and how many extra pipeline
    /// passes it makes on the way.
    pub fn decide(&self, src: Source, frame: &[u8]) -> (Verdict, u8) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return (Verdict::ParseError, 0);
        };
        let dst = eth.dst();
        if let Some(a) = self.statics.get(&dst) {
            return match *a {
                Action::ToLif(l, passes) => (Verdict::ToLif(l), passes),
                Action::ToUplink => (Verdict::ToUplink, 0),
                Action::Drop => (Verdict::DropByTable, 0),
            };
        }
        (self.by_mac(src, &eth), 0)
    }

    fn by_mac(&self, src: Source, eth: &EthernetFrame<&[u8]>) -> Verdict {
        let dst = eth.dst();
        if eth.is_group_dst() {
            return Verdict::Flood;
        }
        match (self.lif_macs.get(&dst), src) {
            (Some(&l), _) => Verdict::ToLif(l),
            (None, Source::Lif(_)) => Verdict::ToUplink,
            (None, Source::Uplink | Source::Cpu) => Verdict::NoRoute,
        }
    }

    /// Apply a `TableEntryAdd` (`add`) or `TableEntryDel`; `lif_exists`
    /// tells whether a `to_lif` target is real.
    pub fn apply(&mut self, e: &TableEntry, add: bool, lif_exists: impl Fn(u16) -> bool) -> Result<(), EntryRefusal> {
        if let Some(p) = &mut self.program {
            let a = p
                .apply_entry(e, add)
                .map_err(|err| (entry_status(&err), "refused by the loaded program's table"))?;
            track(&self.to_lif_actions, &mut self.entries_by_lif, &a, add);
            return Ok(());
        }
        if e.table_id.get() != L2_TABLE {
            return Err((AdminStatus::NoEntry, "no such table"));
        }
        if e.key_len != 6 || e.mask() != [0xff; 6] || e.prefix_len.get() != 0 {
            return Err((AdminStatus::Invalid, "l2_fwd is an exact match on a 6-byte MAC"));
        }
        let mac: Mac = e.key().try_into().expect("key_len is 6");
        if !add {
            return match self.statics.remove(&mac) {
                Some(old) => {
                    self.untrack_static(mac, old);
                    Ok(())
                }
                None => Err((AdminStatus::NoEntry, "no such entry")),
            };
        }
        let action = match (e.action_id.get(), e.params()) {
            (ACTION_TO_LIF, [lo, hi]) => {
                let lif = u16::from_le_bytes([*lo, *hi]);
                if !lif_exists(lif) {
                    return Err((AdminStatus::NoEntry, "to_lif names no LIF"));
                }
                Action::ToLif(lif, 0)
            }
            (ACTION_TO_LIF_RECIRC, [lo, hi, passes]) => {
                let lif = u16::from_le_bytes([*lo, *hi]);
                if !lif_exists(lif) {
                    return Err((AdminStatus::NoEntry, "to_lif_recirc names no LIF"));
                }
                if !(1..=MAX_RECIRCULATIONS).contains(passes) {
                    return Err((AdminStatus::Invalid, "to_lif_recirc passes must be 1..=7"));
                }
                Action::ToLif(lif, *passes)
            }
            (ACTION_TO_UPLINK, []) => Action::ToUplink,
            (ACTION_DROP, []) => Action::Drop,
            (ACTION_TO_LIF | ACTION_TO_UPLINK | ACTION_DROP | ACTION_TO_LIF_RECIRC, _) => {
                return Err((AdminStatus::Invalid, "wrong parameter length for the action"))
            }
            _ => return Err((AdminStatus::NoEntry, "no such action")),
        };
        if !self.statics.contains_key(&mac) && self.statics.len() >= L2_CAPACITY {
            return Err((AdminStatus::NoSpace, "l2_fwd is full"));
        }
        if let Some(old) = self.statics.insert(mac, action) {
            self.untrack_static(mac, old);
        }
        if let Action::ToLif(l, _) = action {
            self.statics_by_lif.entry(l).or_default().push(mac);
        }
        Ok(())
    }

    /// A static entry `mac -> old` was replaced or removed.
    fn untrack_static(&mut self, mac: Mac, old: Action) {
        if let Action::ToLif(l, _) = old {
            if let Some(v) = self.statics_by_lif.get_mut(&l) {
                v.retain(|m| *m != mac);
            }
        }
    }

    /// Table `table`'s entries for `TableEntryList`, in the order the ABI
    /// gives (by key, mask, priority): with a program, its entries (those
    /// the device installed for LIF MACs too); without, the built-in
    /// `l2_fwd`: every LIF's MAC and the PF's entries, a PF entry in place
    /// of a LIF's for the same MAC (it is the one that decides).
    /// Up to `n` entries from index `from` on, and how many there are.
    pub fn list(&self, table: u32, from: usize, n: usize) -> Result<(Vec<TableEntry>, usize), EntryRefusal> {
        if let Some(p) = &self.program {
            return u16::try_from(table)
                .ok()
                .and_then(|t| p.abi_entries(t, from, n))
                .ok_or((AdminStatus::NoEntry, "no such table in the loaded program"));
        }
        if table != L2_TABLE {
            return Err((AdminStatus::NoEntry, "no such table"));
        }
        let mut out: Vec<TableEntry> = self
            .lif_macs
            .iter()
            .filter(|(mac, _)| !self.statics.contains_key(*mac))
            .map(|(mac, lif)| TableEntry::exact(L2_TABLE, mac, ACTION_TO_LIF, &lif.to_le_bytes()))
            .chain(self.statics.iter().map(|(mac, a)| match *a {
                Action::ToLif(l, 0) => TableEntry::exact(L2_TABLE, mac, ACTION_TO_LIF, &l.to_le_bytes()),
                Action::ToLif(l, n) => {
                    let [lo, hi] = l.to_le_bytes();
                    TableEntry::exact(L2_TABLE, mac, ACTION_TO_LIF_RECIRC, &[lo, hi, n])
                }
                Action::ToUplink => TableEntry::exact(L2_TABLE, mac, ACTION_TO_UPLINK, &[]),
                Action::Drop => TableEntry::exact(L2_TABLE, mac, ACTION_DROP, &[]),
            }))
            .collect();
        out.sort_by_key(|a| a.key);
        let total = out.len();
        Ok((out.into_iter().skip(from).take(n).collect(), total))
    }

    /// Table `table`'s entries with their direct counter and meter, for
    /// `TableDataList`: the page `list` gives. The built-in switch's
    /// `l2_fwd` has neither (flags 0).
    pub fn list_data(&self, table: u32, from: usize, n: usize) -> Result<(Vec<TableEntryData>, usize), EntryRefusal> {
        let Some(p) = &self.program else {
            let (page, total) = self.list(table, from, n)?;
            return Ok((page.into_iter().map(|e| data_of(e, 0, None, None)).collect(), total));
        };
        let t = u16::try_from(table)
            .ok()
            .filter(|&t| usize::from(t) < p.program().tables.len())
            .ok_or((AdminStatus::NoEntry, "no such table in the loaded program"))?;
        let (page, total) = p
            .abi_entries_slots(t, from, n)
            .ok_or((AdminStatus::NoEntry, "no such table in the loaded program"))?;
        let def = &p.program().tables[usize::from(t)];
        let out = page
            .into_iter()
            .map(|(e, slot)| {
                let counter = def.direct_counter.and_then(|c| p.counter(c, slot));
                let meter = def.direct_meter.and_then(|m| p.meter_config(m, slot));
                data_of(e, slot, counter, meter)
            })
            .collect();
        Ok((out, total))
    }

    /// `TableDataSet`: the direct counter and/or meter of the entry `d`
    /// names (meter buckets full at `now`).
    pub fn set_data(&mut self, d: &TableEntryData, now: u64) -> Result<(), EntryRefusal> {
        let Some(p) = &mut self.program else {
            return Err((
                AdminStatus::NoEntry,
                "the built-in switch's table has no direct counter or meter",
            ));
        };
        let flags = d.flags.get();
        let counter = (flags & table_data_flags::COUNTER != 0).then(|| (d.packets.get(), d.bytes.get()));
        let meter = (flags & table_data_flags::METER != 0).then_some(&d.meter);
        p.set_direct(&d.entry, counter, meter, now)
            .map_err(|err| (entry_status(&err), "refused by the loaded program's table"))
    }

    /// Static entries (for stats and tests); with a program, the entries
    /// of all its tables.
    pub fn static_entries(&self) -> usize {
        match &self.program {
            Some(p) => (0..p.program().tables.len() as u16)
                .map(|t| p.table_len(t).unwrap_or(0) as usize)
                .sum(),
            None => self.statics.len(),
        }
    }
}

/// Keep `by_lif` in step with an entry added (`add`) or removed: entries
/// whose action delivers to a LIF are listed under it.
fn track(to_lif: &[bool], by_lif: &mut HashMap<u16, Vec<EntryRef>>, a: &pipeline::Applied, add: bool) {
    if !to_lif.get(usize::from(a.hit.action)).copied().unwrap_or(false) {
        return;
    }
    let Some(&lif) = a.hit.args.first() else { return };
    let Ok(lif) = u16::try_from(lif) else { return };
    let r = (a.table, a.key, a.mask, a.priority);
    if add {
        by_lif.entry(lif).or_default().push(r);
    } else if let Some(v) = by_lif.get_mut(&lif) {
        v.retain(|x| *x != r);
    }
}

/// The admin status of a table operation the loaded program refused.
pub fn entry_status(err: &EntryError) -> AdminStatus {
    match err {
        EntryError::NoTable(_)
        | EntryError::NoAction { .. }
        | EntryError::NotFound(_)
        | EntryError::NoDirect { .. } => AdminStatus::NoEntry,
        EntryError::Invalid { .. } | EntryError::Meter { .. } => AdminStatus::Invalid,
        EntryError::Full(_) => AdminStatus::NoSpace,
        EntryError::Exists(_) => AdminStatus::Exists,
    }
}

/// A listed entry with its slot and direct cells, as `TableDataList`
/// writes it.
fn data_of(entry: TableEntry, slot: u32, counter: Option<(u64, u64)>, meter: Option<MeterConfig>) -> TableEntryData {
    let mut flags = 0;
    let (packets, bytes) = counter
        .inspect(|_| flags |= table_data_flags::COUNTER)
        .unwrap_or((0, 0));
    let meter = meter.inspect(|_| flags |= table_data_flags::METER).unwrap_or_default();
    TableEntryData {
        entry,
        flags: flags.into(),
        slot: slot.into(),
        packets: packets.into(),
        bytes: bytes.into(),
        meter,
        rsvd: [0; 8],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::abi::FromZeros;

    fn frame(dst: Mac) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&dst);
        f
    }

    fn entry(mac: Mac, action: u32, params: &[u8]) -> TableEntry {
        let mut e = TableEntry::new_zeroed();
        e.table_id = L2_TABLE.into();
        e.action_id = action.into();
        e.key_len = 6;
        e.key[..6].copy_from_slice(&mac);
        e.mask[..6].copy_from_slice(&[0xff; 6]);
        e.param_len = params.len() as u8;
        e.params[..params.len()].copy_from_slice(params);
        e
    }

    #[test]
    fn forwards_floods_and_drops() {
        let mut s = Switch::default();
        assert!(s.add_lif([2, 0, 0, 0, 0, 1], 1));
        assert!(!s.add_lif([2, 0, 0, 0, 0, 1], 2), "MACs are unique");
        assert_eq!(s.forward(Source::Uplink, &frame([2, 0, 0, 0, 0, 1])), Verdict::ToLif(1));
        assert_eq!(s.forward(Source::Lif(1), &frame([2, 9, 9, 9, 9, 9])), Verdict::ToUplink);
        assert_eq!(s.forward(Source::Uplink, &frame([2, 9, 9, 9, 9, 9])), Verdict::NoRoute);
        assert_eq!(s.forward(Source::Lif(1), &frame([0xff; 6])), Verdict::Flood);
        assert_eq!(s.forward(Source::Lif(1), &[0; 10]), Verdict::ParseError);
    }

    #[test]
    fn static_entries_override_and_are_checked() {
        let mut s = Switch::default();
        s.add_lif([2, 0, 0, 0, 0, 1], 1);
        let exists = |l| l == 1 || l == 2;
        s.apply(&entry([2, 0, 0, 0, 0, 1], ACTION_DROP, &[]), true, exists)
            .unwrap();
        assert_eq!(
            s.forward(Source::Uplink, &frame([2, 0, 0, 0, 0, 1])),
            Verdict::DropByTable
        );
        s.apply(
            &entry([2, 7, 7, 7, 7, 7], ACTION_TO_LIF, &2u16.to_le_bytes()),
            true,
            exists,
        )
        .unwrap();
        assert_eq!(s.forward(Source::Uplink, &frame([2, 7, 7, 7, 7, 7])), Verdict::ToLif(2));
        assert_eq!(
            s.apply(
                &entry([2, 7, 7, 7, 7, 8], ACTION_TO_LIF, &9u16.to_le_bytes()),
                true,
                exists
            ),
            Err((AdminStatus::NoEntry, "to_lif names no LIF"))
        );
        assert_eq!(
            s.apply(&entry([2, 7, 7, 7, 7, 8], 99, &[]), true, exists)
                .unwrap_err()
                .0,
            AdminStatus::NoEntry
        );
        assert_eq!(
            s.apply(&entry([2, 7, 7, 7, 7, 8], ACTION_DROP, &[1]), true, exists)
                .unwrap_err()
                .0,
            AdminStatus::Invalid
        );
        s.apply(
            &entry([2, 7, 7, 7, 7, 9], ACTION_TO_LIF_RECIRC, &[1, 0, 3]),
            true,
            exists,
        )
        .unwrap();
        assert_eq!(
            s.decide(Source::Uplink, &frame([2, 7, 7, 7, 7, 9])),
            (Verdict::ToLif(1), 3)
        );
        assert_eq!(
            s.apply(
                &entry([2, 7, 7, 7, 7, 9], ACTION_TO_LIF_RECIRC, &[1, 0, 9]),
                true,
                exists
            )
            .unwrap_err()
            .0,
            AdminStatus::Invalid
        );
        s.remove_lif([2, 7, 7, 7, 7, 6], 2);
        assert_eq!(
            s.forward(Source::Uplink, &frame([2, 7, 7, 7, 7, 7])),
            Verdict::NoRoute,
            "entries to a removed LIF go"
        );
        s.apply(&entry([2, 0, 0, 0, 0, 1], 0, &[]), false, exists).unwrap();
        assert_eq!(s.forward(Source::Uplink, &frame([2, 0, 0, 0, 0, 1])), Verdict::ToLif(1));
        assert_eq!(
            s.apply(&entry([2, 0, 0, 0, 0, 1], 0, &[]), false, exists)
                .unwrap_err()
                .0,
            AdminStatus::NoEntry
        );
    }
}
