//! What each request does: which function it goes to (meters and slots
//! through the PF, statistics through the PF or the LIF's own function,
//! moderation to the function named), and the device's refusals in words.

use super::convert::{
    counters, event_row, from_abi_meter, from_abi_moderation, lif_row, slot_settings, to_abi_meter, to_abi_moderation,
};
use super::tables::{encode_entry, row_of, row_of_data, table_names, view};
use super::{lock, ControlState, LoadedPipeline};
use crate::nic::{DriverError, Nic};
use dataplane::abi::{self, AdminStatus};
use dataplane::packet::EthernetAddress;
use mgmt::proto::{self, Answer, EventRow, LifCounters, LifRow, Meter, ModerationSettings, Request, SlotSettings};
use std::sync::{Arc, Mutex};

const NO_PIPELINE: &str = "no pipeline program loaded (start nicdrv with --pipeline, and with the PF)";

impl ControlState {
    /// The PF, if this nicdrv drives it.
    pub fn pf(&self) -> Option<&Arc<Mutex<Nic>>> {
        self.nics.iter().find(|n| lock(n).is_pf())
    }

    /// The function that owns `lif` (by asking each).
    fn owner(&self, lif: u16) -> Result<&Arc<Mutex<Nic>>, String> {
        for n in &self.nics {
            let mut g = lock(n);
            if g.lif_list()
                .map_err(|e| e.to_string())?
                .iter()
                .any(|l| l.lif.get() == lif && l.function_id.get() == g.identity.function_id)
            {
                return Ok(n);
            }
        }
        Err(format!("no LIF {lif} on the functions this nicdrv drives"))
    }

    /// Answer one request.
    pub(crate) fn handle(&self, req: Request) -> Result<Answer, String> {
        match req {
            Request::Hello => Ok(self.hello()),
            Request::LifList => self.lif_list().map(|lifs| Answer::Lifs { lifs }),
            Request::Stats {
                lif: Some(proto::UPLINK),
            } => Ok(Answer::Stats {
                stats: vec![self.uplink_stats()?],
            }),
            Request::Stats { lif } => self.stats(lif),
            Request::Events { from } => self.events(from),
            Request::SlotGet { function, slot } => self.slot_get(function, slot),
            Request::SlotSet { settings } => self.slot_set(&settings),
            Request::MeterGet { lif, resource } => {
                let n = self.lif_function(lif)?;
                let m = lock(n)
                    .meter(lif, resource)
                    .map_err(|e| explain(e, "read this meter"))?;
                Ok(Answer::Meter {
                    lif,
                    meter: from_abi_meter(&m),
                })
            }
            Request::MeterSet { lif, meter } => self.meter_set(lif, &meter),
            Request::ModerationGet { function, vector } => {
                let n = self.function(function)?;
                let m = lock(n).moderation(vector).map_err(|e| explain(e, "read this vector"))?;
                Ok(Answer::Moderation {
                    function,
                    vector,
                    moderation: from_abi_moderation(&m),
                })
            }
            Request::ModerationSet {
                function,
                vector,
                moderation,
            } => self.moderation_set(function, vector, &moderation),
            Request::AppStats => {
                let (elapsed_s, lifs) = self.app_stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
                Ok(Answer::App { elapsed_s, lifs })
            }
            Request::TableAdd {
                table,
                keys,
                action,
                args,
                priority,
            } => self.table_add(&table, &keys, &action, &args, priority),
            Request::TableDel { table, keys, priority } => self.table_del(&table, &keys, priority),
            Request::TableShow { table } => {
                let g = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
                let lp = g.as_ref().ok_or(NO_PIPELINE)?;
                self.tables(lp, table.as_deref())
            }
        }
    }

    /// Who answers: the protocol, this driver, the application, the
    /// functions, and the device's granularities (of the first function).
    fn hello(&self) -> Answer {
        Answer::Hello(proto::Hello {
            protocol: proto::PROTOCOL_VERSION,
            driver: concat!("nicdrv ", env!("CARGO_PKG_VERSION")).into(),
            app: self.app.clone(),
            functions: self.nics.iter().map(|n| lock(n).device().to_string()).collect(),
            meter_rate_granularity: self
                .nics
                .first()
                .map_or(0, |n| lock(n).info.meter_rate_granularity.get()),
            meter_burst_granularity: self
                .nics
                .first()
                .map_or(0, |n| lock(n).info.meter_burst_granularity.get()),
            moderation_granularity_ns: self
                .nics
                .first()
                .map_or(0, |n| lock(n).info.moderation_granularity_ns.get()),
        })
    }

    /// Every LIF: as the PF sees them (all), else as each function does.
    fn lif_list(&self) -> Result<Vec<LifRow>, String> {
        let mut rows: Vec<LifRow> = Vec::new();
        let sources: Vec<&Arc<Mutex<Nic>>> = match self.pf() {
            Some(pf) => vec![pf],
            None => self.nics.iter().collect(),
        };
        for n in sources {
            for l in lock(n).lif_list().map_err(|e| e.to_string())? {
                if !rows.iter().any(|r| r.lif == l.lif.get()) {
                    rows.push(lif_row(&l));
                }
            }
        }
        rows.sort_by_key(|r| r.lif);
        Ok(rows)
    }

    /// One LIF's counters, or every LIF's and then the uplink's.
    fn stats(&self, lif: Option<u16>) -> Result<Answer, String> {
        let lifs: Vec<u16> = match lif {
            Some(l) => vec![l],
            None => self.lif_list()?.iter().map(|r| r.lif).collect(),
        };
        let mut stats = Vec::new();
        for l in lifs {
            let n = self.lif_function(l)?;
            let s = lock(n).stats(l).map_err(|e| explain(e, "read these statistics"))?;
            stats.push(LifCounters {
                lif: l,
                device_clock_ns: s.device_clock.get(),
                counters: counters(&s),
            });
        }
        // Every LIF, then the uplink (what ended there: frames from
        // the wire no LIF took), when there is a PF to ask.
        if lif.is_none() && self.pf().is_some() {
            stats.push(self.uplink_stats()?);
        }
        Ok(Answer::Stats { stats })
    }

    /// The device's events from `from` on (through the PF), at most
    /// `proto::MAX_EVENTS` of them.
    fn events(&self, from: Option<u64>) -> Result<Answer, String> {
        let pf = self
            .pf()
            .ok_or("device events are read through the PF, and this nicdrv drives none")?;
        let (events, next) = lock(pf)
            .events(from.unwrap_or(0))
            .map_err(|e| explain(e, "read device events"))?;
        let rows: Vec<EventRow> = events.iter().take(proto::MAX_EVENTS).map(event_row).collect();
        // Where the rows stop, when the device gave more.
        let next = match (events.len() > proto::MAX_EVENTS, rows.last()) {
            (true, Some(last)) => last.seq + 1,
            _ => next,
        };
        Ok(Answer::Events { events: rows, next })
    }

    /// One slot's settings of `function`, or every slot's (through the PF).
    fn slot_get(&self, function: u16, slot: Option<u16>) -> Result<Answer, String> {
        let pf = self
            .pf()
            .ok_or("slot settings are the PF's, and this nicdrv drives none")?;
        let mut g = lock(pf);
        let mut slots = Vec::new();
        // One slot, or every slot the function has (the device
        // answers NoEntry past the last).
        for s in slot.map_or(0..abi::MAX_LIFS_PER_FUNCTION, |s| s..s + 1) {
            match g.function_config(function, s) {
                Ok(c) => slots.push(slot_settings(&c)),
                Err(e) if e.admin_status() == Some(AdminStatus::NoEntry) && slot.is_none() && s > 0 => break,
                Err(e) => return Err(explain(e, "read slot settings")),
            }
        }
        Ok(Answer::Slots { slots })
    }

    /// Change a slot's MAC, spoof check and trust (through the PF); the
    /// answer is what the device applied.
    fn slot_set(&self, settings: &SlotSettings) -> Result<Answer, String> {
        let pf = self
            .pf()
            .ok_or("slot settings are the PF's, and this nicdrv drives none")?;
        use abi::function_config_flags as ff;
        let mac = match &settings.mac {
            Some(m) => Some(m.parse::<EthernetAddress>().map_err(|e| e.to_string())?.0),
            None => None,
        };
        if mac.is_some_and(|m| m[0] & 1 != 0 || m == [0; 6]) {
            return Err(format!(
                "{}: a LIF's MAC is a unicast address (first byte even, not all zeros)",
                settings.mac.clone().unwrap_or_default()
            ));
        }
        let c = abi::FunctionConfig {
            function: settings.function.into(),
            slot: settings.slot.into(),
            flags: if mac.is_some() { ff::MAC } else { 0 }
                | if settings.spoof_check { ff::SPOOF_CHECK } else { 0 }
                | if settings.trust { ff::TRUST } else { 0 },
            mac: mac.unwrap_or([0; 6]),
            ..Default::default()
        };
        let mut g = lock(pf);
        g.set_function_config(&c).map_err(|e| match e.admin_status() {
            Some(AdminStatus::Exists) => "another slot has that MAC already".to_string(),
            _ => explain(e, "change slot settings"),
        })?;
        let applied = g
            .function_config(settings.function, settings.slot)
            .map_err(|e| explain(e, "read slot settings"))?;
        Ok(Answer::Slots {
            slots: vec![slot_settings(&applied)],
        })
    }

    /// Set a LIF's meter, checked by the ABI's decoder first; the answer is
    /// what the device applied.
    fn meter_set(&self, lif: u16, meter: &Meter) -> Result<Answer, String> {
        let n = self.lif_function(lif)?;
        let cfg = to_abi_meter(meter);
        // The ABI's own checks first, for a message naming the field.
        let raw = abi::AdminCommand::MeterSet(cfg).encode(abi::CmdHeader { tag: 0, lif });
        abi::AdminCommand::decode(&raw).map_err(|e| format!("invalid meter: {e}"))?;
        let applied = lock(n).set_meter(lif, cfg).map_err(|e| explain(e, "change meters"))?;
        Ok(Answer::Meter {
            lif,
            meter: from_abi_meter(&applied),
        })
    }

    /// Set a vector's moderation, checked by the ABI's decoder first; the
    /// answer is what the device applied.
    fn moderation_set(&self, function: u16, vector: u16, moderation: &ModerationSettings) -> Result<Answer, String> {
        let n = self.function(function)?;
        let m = to_abi_moderation(vector, moderation);
        let raw = abi::AdminCommand::ModerationSet(m).encode(abi::CmdHeader { tag: 0, lif: 0 });
        abi::AdminCommand::decode(&raw).map_err(|e| format!("invalid moderation: {e}"))?;
        let applied = lock(n)
            .set_moderation(m)
            .map_err(|e| explain(e, "change this vector"))?;
        Ok(Answer::Moderation {
            function,
            vector,
            moderation: from_abi_moderation(&applied),
        })
    }

    /// Add an entry to a table of the loaded program (through the PF).
    fn table_add(
        &self,
        table: &str,
        keys: &[String],
        action: &str,
        args: &[String],
        priority: u32,
    ) -> Result<Answer, String> {
        let mut g = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
        let lp = g.as_mut().ok_or(NO_PIPELINE)?;
        let (e, row) = encode_entry(&lp.program, table, keys, Some((action, args)), priority)?;
        let pf = self
            .pf()
            .ok_or("table entries go through the PF, and this nicdrv drives none")?;
        lock(pf).table_add(&e).map_err(explain_table)?;
        lp.entries.entry(table.to_string()).or_default().push(row);
        self.tables(lp, Some(table))
    }

    /// Delete an entry (key and priority as added) from a table of the
    /// loaded program (through the PF).
    fn table_del(&self, table: &str, keys: &[String], priority: u32) -> Result<Answer, String> {
        let mut g = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
        let lp = g.as_mut().ok_or(NO_PIPELINE)?;
        let (e, row) = encode_entry(&lp.program, table, keys, None, priority)?;
        let pf = self
            .pf()
            .ok_or("table entries go through the PF, and this nicdrv drives none")?;
        lock(pf).table_del(&e).map_err(explain_table)?;
        if let Some(rows) = lp.entries.get_mut(table) {
            rows.retain(|r| r.keys != row.keys || r.priority != row.priority);
        }
        self.tables(lp, Some(table))
    }

    /// Where a LIF's meters and counters are read and set: the PF, else
    /// the function that owns the LIF.
    fn lif_function(&self, lif: u16) -> Result<&Arc<Mutex<Nic>>, String> {
        match self.pf() {
            Some(pf) => Ok(pf),
            None => self.owner(lif),
        }
    }

    /// The uplink's counters (through the PF).
    fn uplink_stats(&self) -> Result<LifCounters, String> {
        let pf = self
            .pf()
            .ok_or("the uplink's counters are read through the PF, and this nicdrv drives none")?;
        let s = lock(pf)
            .port_stats()
            .map_err(|e| explain(e, "read the uplink's counters"))?;
        Ok(LifCounters {
            lif: proto::UPLINK,
            device_clock_ns: s.device_clock.get(),
            counters: counters(&s),
        })
    }

    /// The loaded program's tables (or only the one named) with their
    /// entries.
    fn tables(&self, lp: &LoadedPipeline, only: Option<&str>) -> Result<Answer, String> {
        let p = &lp.program;
        let mut out = Vec::new();
        for (i, t) in p.tables.iter().enumerate() {
            if only.is_some_and(|n| n != t.name) {
                continue;
            }
            // What the device holds (those written over P4Runtime and the
            // ones it installs itself too); without a PF, or from a device
            // older than ABI 1.3, the entries added through this socket.
            // Only the rows a view shows are read (a listing of the whole
            // table after every add made a table's filling quadratic).
            let most = mgmt::proto::MAX_TABLE_ROWS as u64;
            // A table with a direct counter or meter: its entries with
            // their cells (ABI 1.6).
            let direct = t.direct_counter.is_some() || t.direct_meter.is_some();
            let listed = self.pf().and_then(|pf| {
                let mut nic = lock(pf);
                if direct {
                    if let Ok((ds, total)) = nic.table_data_first(i as u32, most) {
                        let rows: Vec<_> = ds.iter().filter_map(|d| row_of_data(p, i, d)).collect();
                        return Some((rows, total as usize));
                    }
                }
                nic.table_entries_first(i as u32, most).ok().map(|(es, total)| {
                    let rows: Vec<_> = es.iter().filter_map(|e| row_of(p, i, e)).collect();
                    (rows, total as usize)
                })
            });
            match listed {
                Some((rows, total)) => out.push(view(p, i, &rows, total)),
                None => {
                    let rows = lp.entries.get(&t.name).map_or(&[][..], |v| v);
                    out.push(view(p, i, rows, rows.len()))
                }
            }
        }
        if let (Some(n), true) = (only, out.is_empty()) {
            return Err(format!("no table '{n}' in {} (tables: {})", p.name, table_names(p)));
        }
        // Which executor runs it, as the device reports (PF's Identify).
        let executor = self.pf().and_then(|n| lock(n).pipeline_executor().ok().flatten());
        Ok(Answer::Tables {
            program: p.name.clone(),
            tables: out,
            executor,
        })
    }

    /// The function numbered `function`, if this nicdrv drives it.
    fn function(&self, function: u16) -> Result<&Arc<Mutex<Nic>>, String> {
        self.nics
            .iter()
            .find(|n| lock(n).identity.function_id == function)
            .ok_or_else(|| format!("this nicdrv does not drive function {function}"))
    }
}

/// A device's refusal of `what` in words (a permission or a missing LIF
/// or vector said plainly; anything else as the driver says it).
fn explain(e: DriverError, what: &str) -> String {
    match e.admin_status() {
        Some(AdminStatus::Permission) => {
            format!("permission denied: only the PF may {what} (this nicdrv drives no PF, or the LIF is not ours)")
        }
        Some(AdminStatus::NoEntry) => format!("no such LIF or vector ({e})"),
        _ => e.to_string(),
    }
}

/// A device's refusal of a table entry in words.
fn explain_table(e: DriverError) -> String {
    match e.admin_status() {
        Some(status) => match status {
            AdminStatus::NoEntry => "the device has no such entry (or table/action)".into(),
            AdminStatus::Exists => "the table already has an entry with that key".into(),
            AdminStatus::NoSpace => "the table is full".into(),
            AdminStatus::Permission => "permission denied: only the PF may program tables".into(),
            s => format!("the device refused the entry: {s:?}"),
        },
        None => e.to_string(),
    }
}
