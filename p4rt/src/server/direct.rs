//! Direct counters and meters (`DirectCounterEntry`, `DirectMeterEntry`,
//! and a `TableEntry`'s `counter_data` and `meter_config`): each table
//! entry's own cells, kept by the device with the entry (device ABI 1.6,
//! `TableDataList` / `TableDataSet`).
//!
//! The specification's rules, as this server applies them: a direct entry
//! is only ever MODIFY'd (its cells come and go with the table entry); it
//! names its entry by a `TableEntry` whose match is the entry's key; a
//! read with `table_id` 0 reads every table that has the resource, a read
//! without a match every entry of the table. A `TableEntry` INSERT or
//! MODIFY may carry `counter_data` and `meter_config`, set with the entry;
//! a `TableEntry` read answers them when the request sets them (as
//! BMv2's server does). A table without the resource refuses them
//! (INVALID_ARGUMENT); a direct array's id is not a `CounterEntry` or
//! `MeterEntry` one (INVALID_ARGUMENT, naming the right entity).

use super::{entity, entry_key, update, Committed, Service};
use crate::entries::{from_abi, to_abi, Refusal};
use crate::meters::{from_device, to_device};
use crate::proto::p4::v1::*;
use dataplane::abi::{table_data_flags, TableEntry, TableEntryData};
use dataplane::pipeline::CounterUnit;
use tonic::{Code, Status};

/// Which direct resource an entity is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Meter,
}

impl Kind {
    fn flag(self) -> u32 {
        match self {
            Kind::Counter => table_data_flags::COUNTER,
            Kind::Meter => table_data_flags::METER,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Meter => "meter",
        }
    }

    /// Whether table `t` of the program has this resource.
    fn has(self, c: &Committed, t: usize) -> bool {
        let def = &c.program.tables[t];
        match self {
            Kind::Counter => def.direct_counter.is_some(),
            Kind::Meter => def.direct_meter.is_some(),
        }
    }
}

/// A counter cell in P4Runtime's form, in the counter's unit.
pub(super) fn counter_data(unit: CounterUnit, packets: u64, bytes: u64) -> CounterData {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    match unit {
        CounterUnit::Packets => CounterData {
            packet_count: n(packets),
            byte_count: 0,
        },
        CounterUnit::Bytes => CounterData {
            packet_count: 0,
            byte_count: n(bytes),
        },
        CounterUnit::PacketsAndBytes => CounterData {
            packet_count: n(packets),
            byte_count: n(bytes),
        },
    }
}

/// The device's record that sets `entry`'s cells: `counter` and/or
/// `meter` (`Some(None)`: the meter off).
fn record(
    c: &Committed,
    entry: &TableEntry,
    counter: Option<&CounterData>,
    meter: Option<Option<&MeterConfig>>,
) -> Result<TableEntryData, Refusal> {
    let t = entry.table_id.get() as usize;
    let def = &c.program.tables[t];
    let mut d = TableEntryData {
        entry: *entry,
        flags: 0.into(),
        slot: 0.into(),
        packets: 0.into(),
        bytes: 0.into(),
        meter: Default::default(),
        rsvd: [0; 8],
    };
    let mut flags = 0;
    if let Some(cd) = counter {
        if def.direct_counter.is_none() {
            return Err((
                Code::InvalidArgument,
                format!("table {} has no direct counter", def.name),
            ));
        }
        let (Ok(p), Ok(b)) = (u64::try_from(cd.packet_count), u64::try_from(cd.byte_count)) else {
            return Err((Code::InvalidArgument, "a counter's counts are not negative".into()));
        };
        d.packets = p.into();
        d.bytes = b.into();
        flags |= table_data_flags::COUNTER;
    }
    if let Some(cfg) = meter {
        let Some(m) = def.direct_meter else {
            return Err((Code::InvalidArgument, format!("table {} has no direct meter", def.name)));
        };
        d.meter = to_device(c.program.meters[usize::from(m)].unit.resource(), 0, cfg)?;
        flags |= table_data_flags::METER;
    }
    d.flags = flags.into();
    Ok(d)
}

impl Service {
    /// A `TableEntry` INSERT's or MODIFY's `counter_data` and
    /// `meter_config`, refused before the entry is written when its table
    /// lacks them; `None` when it carries neither.
    pub(super) fn entry_cells(
        &self,
        c: &Committed,
        te: &crate::proto::p4::v1::TableEntry,
        e: &TableEntry,
    ) -> Result<Option<TableEntryData>, Refusal> {
        if te.meter_counter_data.is_some() {
            return Err((Code::Unimplemented, "meter counter data".into()));
        }
        let meter = te.meter_config.as_ref().map(Some);
        if te.counter_data.is_none() && meter.is_none() {
            return Ok(None);
        }
        record(c, e, te.counter_data.as_ref(), meter).map(Some)
    }

    /// The direct cells of entry `old` that a MODIFY (a delete and an add
    /// on the device) must put back: those its table has and `given` does
    /// not set. `None` when there are none.
    pub(super) fn kept_cells(
        &self,
        c: &Committed,
        old: &TableEntry,
        given: Option<&TableEntryData>,
    ) -> Result<Option<TableEntryData>, Refusal> {
        // `old` is the device's listing: its table is checked, not trusted.
        let t = old.table_id.get() as usize;
        let Some(def) = c.program.tables.get(t) else {
            return Ok(None);
        };
        let has =
            def.direct_counter.map_or(0, |_| Kind::Counter.flag()) | def.direct_meter.map_or(0, |_| Kind::Meter.flag());
        let keep = has & !given.map_or(0, |d| d.flags.get());
        if keep == 0 {
            return Ok(None);
        }
        let key = entry_key(old);
        let Some(mut d) = self
            .target
            .table_data(t as u32)?
            .into_iter()
            .find(|d| entry_key(&d.entry) == key)
        else {
            return Ok(None);
        };
        d.flags = keep.into();
        d.slot = 0.into();
        if keep & Kind::Counter.flag() == 0 {
            d.packets = 0.into();
            d.bytes = 0.into();
        }
        if keep & Kind::Meter.flag() == 0 {
            d.meter = Default::default();
        }
        Ok(Some(d))
    }

    /// Set cells [`Service::entry_cells`] made, after the entry is in.
    pub(super) fn set_cells(&self, d: &TableEntryData) -> Result<(), Refusal> {
        self.target.set_table_data(d)
    }

    /// A `DirectCounterEntry` or `DirectMeterEntry` Write: MODIFY only, of
    /// an existing entry's cell (no data, or no config: a reset, or the
    /// meter off).
    pub(super) fn apply_direct(
        &self,
        c: &Committed,
        kind: Kind,
        te: Option<&crate::proto::p4::v1::TableEntry>,
        counter: Option<&CounterData>,
        meter: Option<&MeterConfig>,
        update: update::Type,
    ) -> Result<(), Refusal> {
        if update != update::Type::Modify {
            return Err((
                Code::InvalidArgument,
                format!(
                    "a direct {} comes and goes with its table entry: only MODIFY applies",
                    kind.name()
                ),
            ));
        }
        let Some(te) = te else {
            return Err((
                Code::InvalidArgument,
                format!("a direct {} entry names its table entry", kind.name()),
            ));
        };
        let e = to_abi(&c.program, &c.ids, te, false)?;
        if !kind.has(c, e.table_id.get() as usize) {
            let name = &c.program.tables[e.table_id.get() as usize].name;
            return Err((
                Code::InvalidArgument,
                format!("table {name} has no direct {}", kind.name()),
            ));
        }
        let zero = CounterData::default();
        let d = match kind {
            Kind::Counter => record(c, &e, Some(counter.unwrap_or(&zero)), None)?,
            Kind::Meter => record(c, &e, None, Some(meter))?,
        };
        self.target.set_table_data(&d)
    }

    /// The entries a direct read asks for: one table's (one entry of it,
    /// with a match) or, with `table_id` 0, every table's that has the
    /// resource.
    pub(super) fn read_direct(
        &self,
        c: &Committed,
        kind: Kind,
        want: Option<&crate::proto::p4::v1::TableEntry>,
    ) -> Result<Vec<Entity>, Status> {
        let status = |(code, why): Refusal| Status::new(code, why);
        let table_id = want.map_or(0, |t| t.table_id);
        let tables: Vec<usize> = if table_id == 0 {
            (0..c.program.tables.len()).filter(|&t| kind.has(c, t)).collect()
        } else {
            let Some(t) = c.ids.tables.iter().position(|&id| id == table_id) else {
                return Err(Status::not_found(format!("no table with id {table_id:#x}")));
            };
            if !kind.has(c, t) {
                return Err(Status::invalid_argument(format!(
                    "table {} has no direct {}",
                    c.program.tables[t].name,
                    kind.name()
                )));
            }
            vec![t]
        };
        let only = match want {
            Some(w) if w.table_id != 0 && !w.r#match.is_empty() => {
                Some(entry_key(&to_abi(&c.program, &c.ids, w, false).map_err(status)?))
            }
            _ => None,
        };
        let mut out = Vec::new();
        for t in tables {
            for d in self.target.table_data(t as u32).map_err(status)? {
                if only.as_ref().is_some_and(|k| *k != entry_key(&d.entry)) {
                    continue;
                }
                let Some(mut te) = from_abi(&c.program, &c.ids, &d.entry) else {
                    continue;
                };
                // The entity names its entry by key alone.
                te.action = None;
                let entity = match kind {
                    Kind::Counter => entity::Entity::DirectCounterEntry(DirectCounterEntry {
                        table_entry: Some(te),
                        data: self.cell_counter(c, t, &d),
                    }),
                    Kind::Meter => entity::Entity::DirectMeterEntry(DirectMeterEntry {
                        table_entry: Some(te),
                        config: self.cell_meter(c, t, &d),
                        counter_data: None,
                    }),
                };
                out.push(Entity { entity: Some(entity) });
            }
        }
        Ok(out)
    }

    /// A listed record's counter, in the table's counter's unit.
    fn cell_counter(&self, c: &Committed, t: usize, d: &TableEntryData) -> Option<CounterData> {
        let ctr = c.program.tables[t].direct_counter?;
        if d.flags.get() & Kind::Counter.flag() == 0 {
            return None;
        }
        let unit = c.program.counters[usize::from(ctr)].unit;
        Some(counter_data(unit, d.packets.get(), d.bytes.get()))
    }

    /// A listed record's meter config (`None`: off).
    fn cell_meter(&self, c: &Committed, t: usize, d: &TableEntryData) -> Option<MeterConfig> {
        c.program.tables[t].direct_meter?;
        if d.flags.get() & Kind::Meter.flag() == 0 {
            return None;
        }
        from_device(&d.meter)
    }

    /// A `TableEntry` read that asks for `counter_data` or `meter_config`:
    /// each entry of table `t` with the cells asked for, by its key.
    pub(super) fn entry_cells_read(
        &self,
        c: &Committed,
        t: usize,
        want: &crate::proto::p4::v1::TableEntry,
    ) -> Result<Option<Vec<TableEntryData>>, Status> {
        let def = &c.program.tables[t];
        let counter = want.counter_data.is_some() && def.direct_counter.is_some();
        let meter = want.meter_config.is_some() && def.direct_meter.is_some();
        if !counter && !meter {
            return Ok(None);
        }
        self.target
            .table_data(t as u32)
            .map(Some)
            .map_err(|(code, why)| Status::new(code, why))
    }

    /// Fill `te`'s `counter_data` and `meter_config` from its listed cells,
    /// as `want` asks.
    pub(super) fn fill_cells(
        &self,
        c: &Committed,
        t: usize,
        want: &crate::proto::p4::v1::TableEntry,
        d: &TableEntryData,
        te: &mut crate::proto::p4::v1::TableEntry,
    ) {
        if want.counter_data.is_some() {
            te.counter_data = self.cell_counter(c, t, d);
        }
        if want.meter_config.is_some() {
            te.meter_config = self.cell_meter(c, t, d);
        }
    }
}
