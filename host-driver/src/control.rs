//! The control socket: `nicctl` talks to a running `nicdrv` here, one JSON
//! line per request and per answer (`mgmt::proto`).
//!
//! Admin commands go to the function that may carry them: meters through
//! the PF (the device refuses them from a VF, and the answer says so),
//! statistics through the PF or the LIF's own function, moderation to the
//! function named.

use crate::nic::{DriverError, Nic};
use dataplane::abi::{self, AdminStatus, FromZeros, LifCounter, MeterConfig, Moderation, TableEntry};
use dataplane::pipeline::{MatchKind, Program};
use mgmt::proto::{
    self, Answer, EventRow, LifCounters, LifRow, Meter, ModerationSettings, Request, Response, TableEntryRow, TableView,
};
use mgmt::tables;

const NO_PIPELINE: &str = "no pipeline program loaded (start nicdrv with --pipeline, and with the PF)";
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What the control socket serves.
#[derive(Debug)]
pub struct ControlState {
    pub nics: Vec<Arc<Mutex<Nic>>>,
    pub app: String,
    /// The application's latest live figures.
    pub app_stats: Mutex<(f64, Vec<proto::AppLif>)>,
    /// The pipeline program this nicdrv loaded (through the PF), and the
    /// entries added through this socket, by table.
    pub pipeline: Mutex<Option<LoadedPipeline>>,
}

/// A loaded pipeline program and the entries the control plane added.
#[derive(Debug, Clone)]
pub struct LoadedPipeline {
    pub program: Program,
    pub entries: BTreeMap<String, Vec<TableEntryRow>>,
}

impl LoadedPipeline {
    pub fn new(program: Program) -> LoadedPipeline {
        LoadedPipeline {
            program,
            entries: BTreeMap::new(),
        }
    }
}

fn kind_of(k: MatchKind) -> tables::Kind {
    match k {
        MatchKind::Exact => tables::Kind::Exact,
        MatchKind::Lpm => tables::Kind::Lpm,
        MatchKind::Ternary => tables::Kind::Ternary,
    }
}

/// Whether a key reads as an address (dotted IPv4) when shown.
fn is_address(name: &str) -> bool {
    name.contains("addr")
}

/// The ABI entry for `keys` (text) in table `t` of `prog`, with `action`
/// and `args` when adding; also the row as it will be shown.
fn encode_entry(
    prog: &Program,
    table: &str,
    keys: &[String],
    action: Option<(&str, &[String])>,
    priority: u32,
) -> Result<(TableEntry, TableEntryRow), String> {
    let (t, def) = prog
        .table(table)
        .ok_or_else(|| format!("no table '{table}' in {} (tables: {})", prog.name, table_names(prog)))?;
    if keys.len() != def.keys.len() {
        return Err(format!(
            "table {table} has {} key field(s) ({}), given {}",
            def.keys.len(),
            def.keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", "),
            keys.len()
        ));
    }
    let mut e = TableEntry::new_zeroed();
    e.table_id = u32::from(t).into();
    e.priority = priority.into();
    let mut at = 0usize;
    let mut shown = Vec::with_capacity(keys.len());
    for (k, text) in def.keys.iter().zip(keys) {
        let kind = kind_of(k.kind);
        let m = tables::parse_match(text, k.width, kind).map_err(|why| format!("key {}: {why}", k.name))?;
        let n = usize::from(k.width).div_ceil(8);
        if at + n > e.key.len() {
            return Err(format!("table {table}: key longer than {} bytes", e.key.len()));
        }
        let vb = m.value.to_be_bytes();
        let mb = m.mask.to_be_bytes();
        e.key[at..at + n].copy_from_slice(&vb[16 - n..]);
        if k.kind == MatchKind::Ternary {
            e.mask[at..at + n].copy_from_slice(&mb[16 - n..]);
        } else if k.kind == MatchKind::Exact {
            e.mask[at..at + n].fill(0xff);
        } else {
            e.prefix_len = m.prefix.into();
        }
        shown.push(tables::format_match(&m, k.width, kind, is_address(&k.name)));
        at += n;
    }
    e.key_len = at as u8;
    let mut row = TableEntryRow {
        keys: shown,
        action: String::new(),
        args: Vec::new(),
        priority,
    };
    if let Some((name, args)) = action {
        let (a, act) = prog
            .action(name)
            .filter(|(a, _)| def.actions.contains(a))
            .ok_or_else(|| {
                let names: Vec<&str> = def
                    .actions
                    .iter()
                    .map(|&a| prog.actions[usize::from(a)].name.as_str())
                    .collect();
                format!("table {table} has no action '{name}' (actions: {})", names.join(", "))
            })?;
        if args.len() != act.params.len() {
            return Err(format!(
                "action {name} takes {} argument(s) ({}), given {}",
                act.params.len(),
                act.params
                    .iter()
                    .map(|p| format!("{}:{}", p.name, p.width))
                    .collect::<Vec<_>>()
                    .join(", "),
                args.len()
            ));
        }
        let mut at = 0usize;
        for (p, text) in act.params.iter().zip(args) {
            let v = tables::parse_value(text, p.width).map_err(|why| format!("argument {}: {why}", p.name))?;
            let n = usize::from(p.width).div_ceil(8);
            if at + n > e.params.len() {
                return Err(format!(
                    "action {name}: parameters longer than {} bytes",
                    e.params.len()
                ));
            }
            e.params[at..at + n].copy_from_slice(&v.to_be_bytes()[16 - n..]);
            row.args.push(tables::format_value(v, p.width, false));
            at += n;
        }
        e.param_len = at as u8;
        e.action_id = u32::from(a).into();
        row.action = name.to_string();
    }
    Ok((e, row))
}

fn table_names(p: &Program) -> String {
    p.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn view(p: &Program, id: usize, entries: &[TableEntryRow]) -> TableView {
    let t = &p.tables[id];
    let kind = |k: MatchKind| match k {
        MatchKind::Exact => "exact",
        MatchKind::Lpm => "lpm",
        MatchKind::Ternary => "ternary",
    };
    TableView {
        name: t.name.clone(),
        id: id as u16,
        keys: t
            .keys
            .iter()
            .map(|k| format!("{}:{}:{}", k.name, kind(k.kind), k.width))
            .collect(),
        actions: t
            .actions
            .iter()
            .map(|&a| {
                let a = &p.actions[usize::from(a)];
                let ps: Vec<String> = a.params.iter().map(|x| format!("{}:{}", x.name, x.width)).collect();
                format!("{}({})", a.name, ps.join(", "))
            })
            .collect(),
        default_action: p.actions[usize::from(t.default_action)].name.clone(),
        size: t.size,
        entries: entries.to_vec(),
    }
}

fn lock(n: &Arc<Mutex<Nic>>) -> std::sync::MutexGuard<'_, Nic> {
    n.lock().unwrap_or_else(|p| p.into_inner())
}

impl ControlState {
    fn pf(&self) -> Option<&Arc<Mutex<Nic>>> {
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

    fn handle(&self, req: Request) -> Result<Answer, String> {
        match req {
            Request::Hello => Ok(Answer::Hello(proto::Hello {
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
            })),
            Request::LifList => {
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
                Ok(Answer::Lifs { lifs: rows })
            }
            Request::Stats {
                lif: Some(proto::UPLINK),
            } => Ok(Answer::Stats {
                stats: vec![self.uplink_stats()?],
            }),
            Request::Stats { lif } => {
                let lifs: Vec<u16> = match lif {
                    Some(l) => vec![l],
                    None => match self.handle(Request::LifList)? {
                        Answer::Lifs { lifs } => lifs.iter().map(|r| r.lif).collect(),
                        _ => unreachable!("LifList answers Lifs"),
                    },
                };
                let mut stats = Vec::new();
                for l in lifs {
                    let n = match self.pf() {
                        Some(pf) => pf,
                        None => self.owner(l)?,
                    };
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
            Request::Events { from } => {
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
            Request::SlotGet { function, slot } => {
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
                        Err(DriverError::Admin {
                            status: AdminStatus::NoEntry,
                            ..
                        }) if slot.is_none() && s > 0 => break,
                        Err(e) => return Err(explain(e, "read slot settings")),
                    }
                }
                Ok(Answer::Slots { slots })
            }
            Request::SlotSet { settings } => {
                let pf = self
                    .pf()
                    .ok_or("slot settings are the PF's, and this nicdrv drives none")?;
                use abi::function_config_flags as ff;
                let mac = match &settings.mac {
                    Some(m) => Some(crate::apps::relay::parse_mac(m)?),
                    None => None,
                };
                if mac.is_some_and(|m| m[0] & 1 != 0 || m == [0; 6]) {
                    return Err(format!(
                        "{}: a LIF's MAC is a unicast address (first byte even, not all zeros)",
                        settings.mac.unwrap_or_default()
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
                g.set_function_config(&c).map_err(|e| match e {
                    DriverError::Admin {
                        status: AdminStatus::Exists,
                        ..
                    } => "another slot has that MAC already".to_string(),
                    e => explain(e, "change slot settings"),
                })?;
                let applied = g
                    .function_config(settings.function, settings.slot)
                    .map_err(|e| explain(e, "read slot settings"))?;
                Ok(Answer::Slots {
                    slots: vec![slot_settings(&applied)],
                })
            }
            Request::MeterGet { lif, resource } => {
                let n = match self.pf() {
                    Some(pf) => pf,
                    None => self.owner(lif)?,
                };
                let m = lock(n)
                    .meter(lif, resource)
                    .map_err(|e| explain(e, "read this meter"))?;
                Ok(Answer::Meter {
                    lif,
                    meter: from_abi_meter(&m),
                })
            }
            Request::MeterSet { lif, meter } => {
                let n = match self.pf() {
                    Some(pf) => pf,
                    None => self.owner(lif)?,
                };
                let cfg = to_abi_meter(&meter);
                // The ABI's own checks first, for a message naming the field.
                let raw = abi::AdminCommand::MeterSet(cfg).encode(abi::CmdHeader { tag: 0, lif });
                abi::AdminCommand::decode(&raw).map_err(|e| format!("invalid meter: {e}"))?;
                let applied = lock(n).set_meter(lif, cfg).map_err(|e| explain(e, "change meters"))?;
                Ok(Answer::Meter {
                    lif,
                    meter: from_abi_meter(&applied),
                })
            }
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
            } => {
                let n = self.function(function)?;
                let m = to_abi_moderation(vector, &moderation);
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
            } => {
                let mut g = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
                let lp = g.as_mut().ok_or(NO_PIPELINE)?;
                let (e, row) = encode_entry(&lp.program, &table, &keys, Some((&action, &args)), priority)?;
                let pf = self
                    .pf()
                    .ok_or("table entries go through the PF, and this nicdrv drives none")?;
                lock(pf).table_add(&e).map_err(explain_table)?;
                lp.entries.entry(table.clone()).or_default().push(row);
                self.tables(lp, Some(&table))
            }
            Request::TableDel { table, keys, priority } => {
                let mut g = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
                let lp = g.as_mut().ok_or(NO_PIPELINE)?;
                let (e, row) = encode_entry(&lp.program, &table, &keys, None, priority)?;
                let pf = self
                    .pf()
                    .ok_or("table entries go through the PF, and this nicdrv drives none")?;
                lock(pf).table_del(&e).map_err(explain_table)?;
                if let Some(rows) = lp.entries.get_mut(&table) {
                    rows.retain(|r| r.keys != row.keys || r.priority != row.priority);
                }
                self.tables(lp, Some(&table))
            }
            Request::TableShow { table } => {
                let g = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
                let lp = g.as_ref().ok_or(NO_PIPELINE)?;
                self.tables(lp, table.as_deref())
            }
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

    fn tables(&self, lp: &LoadedPipeline, only: Option<&str>) -> Result<Answer, String> {
        let p = &lp.program;
        let mut out = Vec::new();
        for (i, t) in p.tables.iter().enumerate() {
            if only.is_some_and(|n| n != t.name) {
                continue;
            }
            out.push(view(p, i, lp.entries.get(&t.name).map_or(&[][..], |v| v)));
        }
        if let (Some(n), true) = (only, out.is_empty()) {
            return Err(format!("no table '{n}' in {} (tables: {})", p.name, table_names(p)));
        }
        Ok(Answer::Tables {
            program: p.name.clone(),
            tables: out,
        })
    }

    fn function(&self, function: u16) -> Result<&Arc<Mutex<Nic>>, String> {
        self.nics
            .iter()
            .find(|n| lock(n).identity.function_id == function)
            .ok_or_else(|| format!("this nicdrv does not drive function {function}"))
    }
}

fn explain(e: DriverError, what: &str) -> String {
    match e {
        DriverError::Admin {
            status: AdminStatus::Permission,
            ..
        } => format!("permission denied: only the PF may {what} (this nicdrv drives no PF, or the LIF is not ours)"),
        DriverError::Admin {
            status: AdminStatus::NoEntry,
            ..
        } => format!("no such LIF or vector ({e})"),
        other => other.to_string(),
    }
}

fn explain_table(e: DriverError) -> String {
    match e {
        DriverError::Admin { status, .. } => match status {
            AdminStatus::NoEntry => "the device has no such entry (or table/action)".into(),
            AdminStatus::Exists => "the table already has an entry with that key".into(),
            AdminStatus::NoSpace => "the table is full".into(),
            AdminStatus::Permission => "permission denied: only the PF may program tables".into(),
            s => format!("the device refused the entry: {s:?}"),
        },
        other => other.to_string(),
    }
}

fn lif_row(l: &abi::LifInfo) -> LifRow {
    LifRow {
        lif: l.lif.get(),
        function: l.function_id.get(),
        name: abi::ascii_field(&l.name),
        mac: l.mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"),
        state: match l.state {
            abi::lif_state::UP => "up",
            abi::lif_state::ERROR => "error",
            _ => "down",
        }
        .into(),
        txq: l.ntxq.get(),
        rxq: l.nrxq.get(),
    }
}

/// A LIF's counters by name (snake case of [`LifCounter`]).
pub fn counters(s: &abi::LifStats) -> BTreeMap<String, u64> {
    LifCounter::ALL
        .iter()
        .map(|&c| (c.key().to_string(), s.get(c)))
        .collect()
}

/// An event as `nicctl events` shows it.
fn slot_settings(c: &abi::FunctionConfig) -> proto::SlotSettings {
    use abi::function_config_flags as ff;
    proto::SlotSettings {
        function: c.function.get(),
        slot: c.slot.get(),
        mac: (c.flags & ff::MAC != 0).then(|| crate::apps::relay::format_mac(&c.mac)),
        spoof_check: c.flags & ff::SPOOF_CHECK != 0,
        trust: c.flags & ff::TRUST != 0,
    }
}

fn event_row(e: &abi::DeviceEvent) -> EventRow {
    let lif = e.lif.get();
    let slot = e.slot.get();
    EventRow {
        seq: e.seq.get(),
        device_clock_ns: e.device_clock.get(),
        kind: match abi::EventKind::from_raw(e.kind) {
            Ok(k) => k.key().to_string(),
            Err(_) => format!("unknown_{}", e.kind),
        },
        function: e.function.get(),
        lif: (lif != abi::LIF_NONE).then_some(lif),
        slot: (slot != 0xffff).then_some(slot),
        detail: e.detail.get(),
        text: describe_event(e),
    }
}

/// What a device event says, in words: `VF 1 created LIF 5 in slot 0: PF
/// regulation applied (cost meter)`.
pub fn describe_event(e: &abi::DeviceEvent) -> String {
    use abi::EventKind;
    let f = crate::nic::function_name(e.function.get());
    let (lif, slot, detail) = (e.lif.get(), e.slot.get(), e.detail.get());
    match EventKind::from_raw(e.kind) {
        Ok(EventKind::LifCreated) => format!("{f} created LIF {lif} in slot {slot}"),
        Ok(EventKind::LifDestroyed) => format!("{f}'s LIF {lif} in slot {slot} destroyed"),
        Ok(EventKind::FunctionReset) => {
            let why = match detail {
                abi::reset_reason::MAILBOX => "by its driver (mailbox Reset)".to_string(),
                abi::reset_reason::FLR => "by a function-level reset".to_string(),
                abi::reset_reason::CLIENT_GONE => "because its driver went away".to_string(),
                abi::reset_reason::DEVICE => "by the device itself (firmware restart)".to_string(),
                other => format!("(reason {other})"),
            };
            format!("{f} was reset {why}: its LIFs and queues are gone")
        }
        Ok(EventKind::RegulationApplied) => {
            let meters: Vec<String> = abi::MeterResource::ALL
                .iter()
                .filter(|r| r.raw() < 32 && detail & (1 << r.raw()) != 0)
                .map(|r| r.key().to_string())
                .collect();
            let count = detail >> 32;
            format!(
                "{f} created LIF {lif} in slot {slot}: PF regulation applied ({} meter{}){}",
                if meters.is_empty() {
                    "no".to_string()
                } else {
                    meters.join(", ")
                },
                if meters.len() == 1 { "" } else { "s" },
                if count > 1 {
                    format!("; {count} times for this function")
                } else {
                    String::new()
                }
            )
        }
        Ok(EventKind::FunctionError) => {
            format!("{f} stopped after an internal device error; a reset of the function recovers it")
        }
        Ok(EventKind::SourceDropped) => {
            let why = match u8::try_from(detail).ok().and_then(|d| LifCounter::from_raw(d).ok()) {
                Some(LifCounter::DropSpoofed) => {
                    "drop_spoofed: a source MAC that is not the LIF's (spoof check)".to_string()
                }
                Some(LifCounter::DropBadSource) => "drop_bad_source: a group source MAC".to_string(),
                Some(c) => c.key().to_string(),
                None => format!("counter {detail}"),
            };
            format!("{f}'s LIF {lif} sent a frame the device dropped, {why} (the first; the counter has them all)")
        }
        Err(_) => format!(
            "{f}: event kind {} this driver does not know (LIF {lif}, slot {slot}, detail {detail:#x})",
            e.kind
        ),
    }
}

fn to_abi_meter(m: &Meter) -> MeterConfig {
    MeterConfig {
        resource: m.resource.raw(),
        mode: m.mode.raw(),
        policy: m.policy.raw(),
        cir: m.cir.into(),
        cburst: m.cburst.into(),
        pir: m.pir.into(),
        pburst: m.pburst.into(),
        eburst: m.eburst.into(),
        ..Default::default()
    }
}

fn from_abi_meter(m: &MeterConfig) -> Meter {
    Meter {
        resource: m.resource(),
        mode: m.mode(),
        policy: m.policy(),
        cir: m.cir.get(),
        cburst: m.cburst.get(),
        pir: m.pir.get(),
        pburst: m.pburst.get(),
        eburst: m.eburst.get(),
    }
}

fn to_abi_moderation(vector: u16, c: &ModerationSettings) -> Moderation {
    Moderation {
        vector: vector.into(),
        mode: c.mode.raw(),
        high_watermark_pct: c.high_watermark_pct,
        latency_interval_us: c.latency_interval_us.into(),
        overflow_interval_us: c.overflow_interval_us.into(),
        frame_threshold: c.frame_threshold.into(),
    }
}

fn from_abi_moderation(m: &Moderation) -> ModerationSettings {
    ModerationSettings {
        mode: m.mode(),
        latency_interval_us: m.latency_interval_us.get(),
        overflow_interval_us: m.overflow_interval_us.get(),
        frame_threshold: m.frame_threshold.get(),
        high_watermark_pct: m.high_watermark_pct,
    }
}

/// One request line in, one response line out.
pub fn respond(state: &ControlState, line: &[u8]) -> Response {
    match proto::parse_request(line) {
        Err(e) => Response::Error(e.to_string()),
        Ok(req) => match state.handle(req) {
            Ok(a) => Response::Ok(a),
            Err(e) => Response::Error(e),
        },
    }
}

fn serve_client(state: Arc<ControlState>, stream: UnixStream) {
    let Ok(w) = stream.try_clone() else { return };
    let mut w = w;
    let mut r = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        match (&mut r).take(proto::MAX_LINE as u64 + 1).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let too_long = line.len() > proto::MAX_LINE && !line.ends_with(b"\n");
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        let resp = if too_long {
            Response::Error(proto::ProtoError::TooLong(line.len()).to_string())
        } else {
            respond(&state, &line)
        };
        if w.write_all(proto::encode(&resp).as_bytes()).is_err() || too_long {
            return;
        }
    }
}

/// A running control socket; removes its socket file when dropped.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Listen on `path` (replacing a stale socket).
    pub fn start(path: &Path, state: Arc<ControlState>) -> std::io::Result<ControlServer> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!(
                        "{} is in use by another nicdrv (pass --control elsewhere)",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nicdrv-control".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.load(Ordering::Acquire) {
                        break;
                    }
                    if let Ok(c) = conn {
                        let st = state.clone();
                        let _ = std::thread::Builder::new()
                            .name("nicdrv-client".into())
                            .spawn(move || serve_client(st, c));
                    }
                }
            })?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The client half (for tests; `nicctl` uses it too).
pub use mgmt::client::request;
